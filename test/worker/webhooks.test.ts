/**
 * backlex's webhooks and notifications: endpoints with a signing secret shown once,
 * signed deliveries to a real receiver on loopback (test/fake-webhook/server.ts) through
 * the real Queue, retries and their record, and the events a deploy's end sends.
 */
import { describe, expect, it } from "vitest";
import { checkWebhookUrl, eventMatches } from "../../src/services/webhooks";
import { api, createOrgKey, env, orgWithEveryRole, seatExisting, signUp, type TestUser, until } from "./helpers";

const RECEIVER = env.WEBHOOK_RECEIVER_URL;
let seq = 0;
const receiverName = (kind: "ok" | "fail" | "flaky" | "slow") => `${kind}-${Date.now().toString(36)}-${++seq}`;

async function received(name: string): Promise<Array<{ event?: string; delivery?: string; signature?: string; contentType?: string; body: string }>> {
  return (await fetch(`${RECEIVER}/__received/${name}`)).json();
}

async function hmacHex(secret: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return [...new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function addWebhook(owner: TestUser, name: string, events: string[] = ["*"]) {
  const res = await api(`/org/${owner.orgSlug}/webhooks`, { token: owner.token, body: { url: `${RECEIVER}/hook/${name}`, events } });
  expect(res.status, res.text).toBe(201);
  return res.body.webhook as { id: string; url: string; events: string[]; secret: string };
}

const deliveries = async (owner: TestUser, webhookId?: string) =>
  (await api(`/org/${owner.orgSlug}/webhook-deliveries${webhookId ? `?webhookId=${webhookId}` : ""}`, { token: owner.token })).body.deliveries as any[];

/** A deploy that the (HTTP) agent ends with `status`. */
async function deployAndEnd(owner: TestUser, status: "succeeded" | "failed") {
  const created = await api(`/org/${owner.orgSlug}/hosts`, { token: owner.token, body: { name: `box-${++seq}`, kind: "docker" } });
  const joined = await api("/agent/join", { body: { join_token: created.body.join_token, agent_version: "test", facts: { cpus: 2, memory_bytes: 4 * 1024 ** 3 } } });
  const credential = joined.body.credential as string;
  const app = await api(`/projects/${owner.projectId}/apps`, { token: owner.token, body: { name: `Hooked ${++seq}`, image: "127.0.0.1:5000/berth/hello:v1" } });
  expect(app.status, app.text).toBe(201);
  const deploy = await api(`/apps/${app.body.id}/deploy`, { token: owner.token, method: "POST" });
  expect(deploy.status, deploy.text).toBe(202);
  const jobId = deploy.body.job.id as string;
  let lease: any;
  const end = Date.now() + 10_000;
  while (!lease && Date.now() < end) lease = (await api("/agent/claim", { token: credential, body: { held: [], wait: 2 } })).body.leases.find((l: any) => l.job_id === jobId);
  expect(lease, `no lease for ${jobId}`).toBeDefined();
  expect((await api(`/agent/leases/${lease.lease_id}/start`, { token: credential, method: "POST" })).status).toBe(200);
  const finish =
    status === "succeeded"
      ? { status, result: { container_id: "c0ffee", host_port: null } }
      : { status, error: "The new container never became healthy: connection refused (exit status 1). The previous version keeps serving." };
  expect((await api(`/agent/leases/${lease.lease_id}/finish`, { token: credential, body: finish })).status).toBe(200);
  return { appId: app.body.id as string, appName: app.body.name as string, jobId };
}

describe("webhooks", () => {
  it("are created with a secret shown once, listed without it, and deleted", async () => {
    const owner = await signUp();
    const hook = await addWebhook(owner, receiverName("ok"), ["deployment.*", "instance.failed"]);
    expect(hook).toMatchObject({ id: expect.stringMatching(/^whk_/), events: ["deployment.*", "instance.failed"], secret: expect.stringMatching(/^whsec_[0-9a-f]{64}$/) });

    const list = await api(`/org/${owner.orgSlug}/webhooks`, { token: owner.token });
    expect(list.status).toBe(200);
    expect(list.body.webhooks).toEqual([{ id: hook.id, url: hook.url, events: hook.events, createdAt: expect.any(String) }]);
    expect(list.text).not.toContain(hook.secret);
    // Stored encrypted; the audit log names the endpoint, never the secret.
    const row = await env.DB.prepare("SELECT * FROM webhook WHERE id = ?").bind(hook.id).first();
    expect(JSON.stringify(row)).not.toContain(hook.secret);
    const audit = await api(`/org/${owner.orgSlug}/audit?action=webhook.create`, { token: owner.token });
    expect(audit.body.events).toHaveLength(1);
    expect(audit.text).not.toContain(hook.secret);

    const del = await api(`/org/${owner.orgSlug}/webhooks/${hook.id}`, { token: owner.token, method: "DELETE" });
    expect(del.status, del.text).toBe(204);
    expect((await api(`/org/${owner.orgSlug}/webhooks`, { token: owner.token })).body.webhooks).toEqual([]);
    const again = await api(`/org/${owner.orgSlug}/webhooks/${hook.id}`, { token: owner.token, method: "DELETE" });
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe("WEBHOOK_NOT_FOUND");
  });

  it("refuse an endpoint or an event that cannot work, in backlex's error codes", async () => {
    const owner = await signUp();
    const post = (body: unknown) => api(`/org/${owner.orgSlug}/webhooks`, { token: owner.token, body });
    for (const url of ["ftp://example.com/hook", "not a url", "https://user:pass@example.com/hook"]) {
      const res = await post({ url, events: ["*"] });
      expect(res.status, url).toBe(400);
      expect(res.body.error.code).toBe("INVALID_URL");
    }
    const unknown = await post({ url: "https://example.com/hook", events: ["deployment.exploded"] });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe("UNKNOWN_EVENT");
    for (const body of [{ url: "https://example.com/hook" }, { url: "https://example.com/hook", events: [] }, { events: ["*"] }]) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.body.error.code).toBe("VALIDATION");
    }
    expect((await api(`/org/${owner.orgSlug}/webhooks`, { token: owner.token })).body.webhooks).toEqual([]);
  });

  it("outside development, refuse endpoints on loopback, private and link-local addresses", () => {
    const production = { ENVIRONMENT: "production" };
    for (const url of ["http://127.0.0.1:8787/x", "http://localhost/x", "http://10.1.2.3/x", "http://192.168.1.1/x", "http://172.20.0.5/x", "http://169.254.169.254/latest", "http://[::1]/x", "http://berth.internal/x"]) {
      expect(() => checkWebhookUrl(production, url), url).toThrow(/public host/);
    }
    expect(checkWebhookUrl(production, "https://hooks.example.com/berth")).toBe("https://hooks.example.com/berth");
    expect(checkWebhookUrl({ ENVIRONMENT: "development" }, "http://127.0.0.1:9000/hook")).toBe("http://127.0.0.1:9000/hook");
  });

  it("match an event by name, by family and by *", () => {
    expect(eventMatches(["deployment.failed"], "deployment.failed")).toBe(true);
    expect(eventMatches(["deployment.*"], "deployment.succeeded")).toBe(true);
    expect(eventMatches(["deployment.*"], "instance.failed")).toBe(false);
    expect(eventMatches(["*"], "instance.failed")).toBe(true);
    expect(eventMatches(["deployment.succeeded"], "deployment.failed")).toBe(false);
  });

  it("send a signed test delivery the receiver can verify, and record it", async () => {
    const owner = await signUp();
    const name = receiverName("ok");
    const hook = await addWebhook(owner, name, ["deployment.failed"]);
    const test = await api(`/org/${owner.orgSlug}/webhooks/${hook.id}/test`, { token: owner.token, method: "POST" });
    expect(test.status, test.text).toBe(200);
    expect(test.body).toMatchObject({ ok: true, deliveryId: expect.stringMatching(/^whd_/) });

    const [got] = await until("the test delivery", () => received(name), (r) => r.length === 1, 10_000);
    expect(got).toMatchObject({ event: "webhook.test", delivery: test.body.deliveryId, contentType: "application/json" });
    expect(got!.signature).toBe(`sha256=${await hmacHex(hook.secret, got!.body)}`);
    const body = JSON.parse(got!.body);
    expect(body).toMatchObject({ id: expect.stringMatching(/^evt_/), type: "webhook.test", org_id: expect.any(String), data: { webhook_id: hook.id } });

    const [delivery] = await until("the delivery's record", () => deliveries(owner, hook.id), (d) => d[0]?.status === "succeeded", 10_000);
    expect(delivery).toMatchObject({ id: test.body.deliveryId, webhookId: hook.id, event: "webhook.test", eventId: body.id, status: "succeeded", attempts: 1, responseStatus: 204, error: null });
  });

  it("try a failing receiver again, and record each try until it gives up or succeeds", async () => {
    const owner = await signUp();
    const failing = await addWebhook(owner, receiverName("fail"));
    const flakyName = receiverName("flaky");
    const flaky = await addWebhook(owner, flakyName);
    for (const h of [failing, flaky]) expect((await api(`/org/${owner.orgSlug}/webhooks/${h.id}/test`, { token: owner.token, method: "POST" })).status).toBe(200);

    // WEBHOOK_MAX_ATTEMPTS is 3 in the tests.
    const [gaveUp] = await until("the failing delivery to give up", () => deliveries(owner, failing.id), (d) => d[0]?.status === "failed", 20_000);
    expect(gaveUp).toMatchObject({ status: "failed", attempts: 3, responseStatus: 500, error: "The receiver answered HTTP 500" });
    const [recovered] = await until("the flaky delivery to succeed", () => deliveries(owner, flaky.id), (d) => d[0]?.status === "succeeded", 20_000);
    expect(recovered).toMatchObject({ status: "succeeded", attempts: 2, responseStatus: 200, error: null });
    // The same delivery both times, with the same body and signature.
    const tries = await received(flakyName);
    expect(tries).toHaveLength(2);
    expect(new Set(tries.map((t) => t.delivery)).size).toBe(1);
    expect(tries[0]!.body).toBe(tries[1]!.body);
  });

  it("tell subscribers and members when a deploy fails, and subscribers only when one succeeds", async () => {
    const owner = await signUp();
    const viewer = await signUp();
    const failedName = receiverName("ok");
    const allName = receiverName("ok");
    await addWebhook(owner, failedName, ["deployment.failed"]);
    await addWebhook(owner, allName, ["deployment.*"]);
    // A second member: each member gets their own notification.
    await seatExisting(owner, viewer, "viewer", owner.orgSlug);

    const ok = await deployAndEnd(owner, "succeeded");
    const bad = await deployAndEnd(owner, "failed");

    const all = await until("both deploy events", () => received(allName), (r) => r.length === 2, 10_000);
    const events = all.map((r) => JSON.parse(r.body));
    expect(events.map((e) => e.type).sort()).toEqual(["deployment.failed", "deployment.succeeded"]);
    const failedEvent = events.find((e) => e.type === "deployment.failed");
    expect(failedEvent.data).toMatchObject({ app: { id: bad.appId, name: bad.appName }, job_id: bad.jobId, status: "failed", error: expect.stringContaining("never became healthy") });
    expect(events.find((e) => e.type === "deployment.succeeded").data).toMatchObject({ app: { id: ok.appId }, status: "succeeded", error: null });
    const onlyFailed = await until("the failed deploy's event", () => received(failedName), (r) => r.length >= 1, 10_000);
    expect(onlyFailed.map((r) => r.event)).toEqual(["deployment.failed"]);

    const notes = await until(
      "the owner's notification",
      async () => (await api(`/org/${owner.orgSlug}/notifications`, { token: owner.token })).body,
      (b) => b.notifications?.length === 1,
      10_000,
    );
    expect(notes.unread).toBe(1);
    expect(notes.notifications[0]).toMatchObject({ kind: "deployment.failed", title: `Deploy of ${bad.appName} failed`, read: false, link: expect.stringContaining(bad.appId) });
    const theirs = (await api(`/org/${owner.orgSlug}/notifications`, { token: viewer.token })).body;
    expect(theirs.notifications.map((n: any) => n.title)).toEqual([`Deploy of ${bad.appName} failed`]);
    expect(theirs.notifications[0].id).not.toBe(notes.notifications[0].id);
  });

  it("keep notifications per person: each reads and marks their own", async () => {
    const owner = await signUp();
    const org = await env.DB.prepare("SELECT id FROM org WHERE slug = ?").bind(owner.orgSlug).first<{ id: string }>();
    const ids = [`ntf_${crypto.randomUUID().slice(0, 8)}a`, `ntf_${crypto.randomUUID().slice(0, 8)}b`];
    for (const id of ids) {
      await env.DB.prepare("INSERT INTO notification (id, org_id, user_id, event_id, kind, title) VALUES (?, ?, ?, 'evt_x', 'deployment.failed', 'Deploy failed')").bind(id, org!.id, owner.id).run();
    }
    const mark = await api(`/org/${owner.orgSlug}/notifications/${ids[0]}/read`, { token: owner.token, method: "POST" });
    expect(mark.status, mark.text).toBe(200);
    let list = (await api(`/org/${owner.orgSlug}/notifications`, { token: owner.token })).body;
    expect(list.unread).toBe(1);
    expect(list.notifications.find((n: any) => n.id === ids[0]).read).toBe(true);
    expect((await api(`/org/${owner.orgSlug}/notifications/read-all`, { token: owner.token, method: "POST" })).status).toBe(200);
    list = (await api(`/org/${owner.orgSlug}/notifications`, { token: owner.token })).body;
    expect(list.unread).toBe(0);
    // Another person cannot mark (or see) them, and an unknown id is 404.
    const outsider = await signUp();
    expect((await api(`/org/${owner.orgSlug}/notifications/${ids[1]}/read`, { token: outsider.token, method: "POST" })).status).toBe(404);
    expect((await api(`/org/${owner.orgSlug}/notifications/ntf_nope/read`, { token: owner.token, method: "POST" })).status).toBe(404);
    // An org key has no person to read them.
    const key = await createOrgKey(owner, owner.orgSlug, "full");
    expect((await api(`/org/${owner.orgSlug}/notifications`, { token: key.key })).status).toBe(403);
  });

  it("are managed by owners and admins only; others get 403, other orgs 404", async () => {
    const t = await orgWithEveryRole();
    const made = await api(`/org/${t.slug}/webhooks`, { token: t.admin.token, body: { url: "https://example.com/hooks/admin", events: ["*"] } });
    expect(made.status, made.text).toBe(201);
    for (const who of [t.developer, t.viewer]) {
      expect((await api(`/org/${t.slug}/webhooks`, { token: who.token })).status).toBe(403);
      expect((await api(`/org/${t.slug}/webhook-deliveries`, { token: who.token })).status).toBe(403);
      expect((await api(`/org/${t.slug}/webhooks/${made.body.webhook.id}`, { token: who.token, method: "DELETE" })).status).toBe(403);
    }
    for (const scope of ["read-only", "deploy"] as const) {
      const k = await createOrgKey(t.owner, t.slug, scope);
      expect((await api(`/org/${t.slug}/webhooks`, { token: k.key, body: { url: "https://example.com/hooks/key", events: ["*"] } })).status).toBe(403);
    }
    const outsider = await signUp();
    expect((await api(`/org/${t.slug}/webhooks`, { token: outsider.token })).status).toBe(404);
    expect((await api(`/org/${t.slug}/webhooks/${made.body.webhook.id}/test`, { token: outsider.token, method: "POST" })).status).toBe(404);
    // Another org's webhook id under one's own org is not found either.
    expect((await api(`/org/${outsider.orgSlug}/webhooks/${made.body.webhook.id}`, { token: outsider.token, method: "DELETE" })).status).toBe(404);
    expect((await api(`/org/${outsider.orgSlug}/webhook-deliveries?webhookId=${made.body.webhook.id}`, { token: outsider.token })).status).toBe(404);
    expect((await api(`/org/${t.slug}/webhooks`)).status).toBe(401);
  });
});
