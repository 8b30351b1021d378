/** Deploys through the API: who may deploy, where a deploy goes, and what it records. */
import { describe, expect, it } from "vitest";
import { runInDurableObject } from "cloudflare:test";
import { api, createOrgKey, env, fetchWorker, orgWithEveryRole, signUp, type TestUser, until } from "./helpers";
import type { Env } from "../../src/env";

async function onlineHost(owner: TestUser, orgSlug: string, name: string, memoryMb: number) {
  const created = await api(`/org/${orgSlug}/hosts`, { token: owner.token, body: { name, kind: "docker" } });
  expect(created.status, created.text).toBe(201);
  const joined = await api("/agent/join", { body: { join_token: created.body.join_token, agent_version: "test", facts: { cpus: 2, memory_bytes: memoryMb * 1024 * 1024 } } });
  expect(joined.status, joined.text).toBe(201);
  return { id: created.body.host.id as string, credential: joined.body.credential as string };
}

async function newApp(owner: TestUser, projectId: string, memory_limit = 256) {
  const res = await api(`/projects/${projectId}/apps`, { token: owner.token, body: { name: `App ${Math.random().toString(36).slice(2, 8)}`, image: "127.0.0.1:5000/berth/hello:v1", memory_limit } });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

/** The agent's side of a deploy over HTTP: claim the lease, start, finish with the container it made. */
async function runDeploy(credential: string, jobId: string, containerId: string) {
  let lease: any;
  const end = Date.now() + 10_000;
  while (!lease && Date.now() < end) {
    const claim = await api("/agent/claim", { token: credential, body: { held: [], wait: 2 } });
    lease = claim.body.leases.find((l: any) => l.job_id === jobId);
  }
  expect(lease, `no lease for ${jobId}`).toBeDefined();
  expect((await api(`/agent/leases/${lease.lease_id}/start`, { token: credential, method: "POST" })).status).toBe(200);
  const done = await api(`/agent/leases/${lease.lease_id}/finish`, { token: credential, body: { status: "succeeded", result: { container_id: containerId, host_port: 30000 } } });
  expect(done.status, done.text).toBe(200);
}

describe("deploys", () => {
  it("place an app on the online Docker host with the most memory left, and keep it there", async () => {
    const owner = await signUp();
    const small = await onlineHost(owner, owner.orgSlug, "small", 1024);
    const big = await onlineHost(owner, owner.orgSlug, "big", 4096);
    const app = await newApp(owner, owner.projectId);

    const first = await api(`/apps/${app.id}/deploy`, { token: owner.token, method: "POST" });
    expect(first.status, first.text).toBe(202);
    expect(first.body).toMatchObject({ status: "pending", image: "127.0.0.1:5000/berth/hello:v1", deployment: { status: "pending" } });
    expect(first.body.job).toMatchObject({ type: "app.deploy", host_id: big.id, instance: app.id });
    expect((await api(`/apps/${app.id}`, { token: owner.token })).body.app.host_id).toBe(big.id);

    // Even when the other host now has more room, the app stays where it is.
    await env.DB.prepare("UPDATE host SET facts = json_set(facts, '$.memory_bytes', ?) WHERE id = ?").bind(64 * 1024 ** 3, small.id).run();
    const second = await api(`/deploy/${app.slug}`, { token: owner.token, method: "POST" });
    expect(second.status, second.text).toBe(202);
    expect(second.body.job.host_id).toBe(big.id);

    // Its host gone, it moves.
    expect((await api(`/org/${owner.orgSlug}/hosts/${big.id}`, { token: owner.token, method: "DELETE" })).status).toBe(200);
    const third = await api(`/apps/${app.id}/deploy`, { token: owner.token, method: "POST" });
    expect(third.body.job.host_id).toBe(small.id);

    // The deploys whose host was deleted under them fail with the reason (at once, or when the Queue hands them over).
    const stranded = async () => (await api(`/apps/${app.id}/deployments`, { token: owner.token })).body.find((d: any) => d.id === second.body.deployment.id);
    const end = Date.now() + 10_000;
    while ((await stranded()).status === "pending" && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    expect((await stranded()).status).toBe("failed");
    expect((await stranded()).error).toMatch(/host was deleted/);
    expect((await api(`/apps/${app.id}/deployments`, { token: owner.token })).body).toHaveLength(3);
  });

  it("refuse with 409 when no host is online or none has room", async () => {
    const owner = await signUp();
    const app = await newApp(owner, owner.projectId);
    const none = await api(`/apps/${app.id}/deploy`, { token: owner.token, method: "POST" });
    expect(none.status).toBe(409);
    expect(none.body.error.code).toBe("no_host_available");

    await onlineHost(owner, owner.orgSlug, "tiny", 128);
    const tooBig = await api(`/apps/${app.id}/deploy`, { token: owner.token, method: "POST" });
    expect(tooBig.status).toBe(409);
    expect(tooBig.body.error.message).toMatch(/256 MB/);
    // Nothing was recorded for refused deploys.
    expect((await api(`/apps/${app.id}/deployments`, { token: owner.token })).body).toEqual([]);
  });

  it("change the image by slug, and answer with the app, the deployment and the slug", async () => {
    const owner = await signUp();
    await onlineHost(owner, owner.orgSlug, "box", 4096);
    const app = await newApp(owner, owner.projectId);
    const res = await api(`/deploy/${app.slug}`, { token: owner.token, body: { image: "127.0.0.1:5000/berth/hello:v2" } });
    expect(res.status, res.text).toBe(202);
    expect(res.body).toMatchObject({ slug: app.slug, app: { id: app.id, image: "127.0.0.1:5000/berth/hello:v2" }, deployment: { image: "127.0.0.1:5000/berth/hello:v2", status: "pending" } });
    expect((await api(`/deploy/${app.slug}`, { token: owner.token, body: { image: "has space" } })).status).toBe(400);
    expect((await api(`/deploy/no-such-app-here`, { token: owner.token, method: "POST" })).status).toBe(404);
  });

  it("are allowed to developers and to dkp_, full and deploy keys; not to viewers, read-only keys or other orgs", async () => {
    const t = await orgWithEveryRole();
    await onlineHost(t.owner, t.slug, "box", 8192);
    const project = await api(`/org/${t.slug}/projects`, { token: t.owner.token, body: { name: "Shop" } });
    const app = await newApp(t.owner, project.body.project.id, 64);
    const deploy = (token: string) => api(`/deploy/${app.slug}`, { token, method: "POST" });

    expect((await deploy(t.developer.token)).status).toBe(202);
    expect((await deploy(t.viewer.token)).status).toBe(403);
    const dkp = await api("/api-keys", { token: t.developer.token, body: { name: "ci" } });
    expect((await deploy(dkp.body.key)).status).toBe(202);
    expect((await deploy((await createOrgKey(t.owner, t.slug, "deploy")).key)).status).toBe(202);
    expect((await deploy((await createOrgKey(t.owner, t.slug, "full")).key)).status).toBe(202);
    expect((await deploy((await createOrgKey(t.owner, t.slug, "read-only")).key)).status).toBe(403);

    const outsider = await signUp();
    expect((await deploy(outsider.token)).status).toBe(404);
    for (const action of ["start", "stop", "restart", "deploy"]) {
      expect((await api(`/apps/${app.id}/${action}`, { token: outsider.token, method: "POST" })).status, action).toBe(404);
    }
    expect((await api(`/apps/${app.id}/logs`, { token: outsider.token })).status).toBe(404);
    expect((await api(`/apps/${app.id}/stats`, { token: outsider.token })).status).toBe(404);
    expect((await api(`/apps/${app.id}/stats/history`, { token: outsider.token })).status).toBe(404);
    expect((await deploy("")).status).toBe(401);
  });

  it("answer 409 not_deployed to lifecycle actions on an app that never ran, and 503 for logs when the agent is away", async () => {
    const owner = await signUp();
    const app = await newApp(owner, owner.projectId);
    const start = await api(`/apps/${app.id}/start`, { token: owner.token, method: "POST" });
    expect(start.status).toBe(409);
    expect(start.body.error.code).toBe("not_deployed");
    expect((await api(`/apps/${app.id}/logs`, { token: owner.token })).body).toEqual([]);

    await onlineHost(owner, owner.orgSlug, "box", 4096);
    expect((await api(`/apps/${app.id}/deploy`, { token: owner.token, method: "POST" })).status).toBe(202);
    const logs = await api(`/apps/${app.id}/logs`, { token: owner.token });
    expect(logs.status).toBe(503);
    expect(logs.body.error.code).toBe("host_unreachable");
  });
});

describe("app reports", () => {
  const report = (credential: string, appId: string, containerId: string, state = "running") =>
    api("/agent/apps/report", { token: credential, body: { apps: [{ app_id: appId, container_id: containerId, state }] } });

  it("tell a host that comes back to remove an app that moved away, and any host to remove a deleted app", async () => {
    const owner = await signUp();
    const a = await onlineHost(owner, owner.orgSlug, "a", 8192);
    const app = await newApp(owner, owner.projectId);
    const first = await api(`/apps/${app.id}/deploy`, { token: owner.token, method: "POST" });
    expect(first.body.job.host_id).toBe(a.id);
    await runDeploy(a.credential, first.body.job.id, "c".repeat(64));
    expect((await api(`/apps/${app.id}`, { token: owner.token })).body.app).toMatchObject({ host_id: a.id, status: "running" });

    // A goes quiet; the next deploy goes to B, and the app moves only when it succeeds.
    await env.DB.prepare("UPDATE host SET last_seen_at = 0 WHERE id = ?").bind(a.id).run();
    const b = await onlineHost(owner, owner.orgSlug, "b", 8192);
    const second = await api(`/apps/${app.id}/deploy`, { token: owner.token, method: "POST" });
    expect(second.body.job.host_id).toBe(b.id);
    expect((await api(`/apps/${app.id}`, { token: owner.token })).body.app.host_id).toBe(a.id);
    // B's report about the container it is deploying is neither applied nor an orphan.
    expect((await report(b.credential, app.id, "d".repeat(64))).body).toEqual({ applied: 0, orphans: [], sleep_after_minutes: {} });
    await runDeploy(b.credential, second.body.job.id, "d".repeat(64));
    expect((await api(`/apps/${app.id}`, { token: owner.token })).body.app).toMatchObject({ host_id: b.id, container_id: "d".repeat(64) });

    // A comes back and still runs the old container: it is told to remove it.
    expect((await report(a.credential, app.id, "c".repeat(64))).body).toEqual({ applied: 0, orphans: [app.id], sleep_after_minutes: {} });
    // The host that runs it also learns its sleep setting (0: never).
    expect((await report(b.credential, app.id, "d".repeat(64), "exited")).body).toEqual({ applied: 1, orphans: [], sleep_after_minutes: { [app.id]: 0 } });
    expect((await api(`/apps/${app.id}`, { token: owner.token })).body.app.status).toBe("stopped");

    // Deleted, it is an orphan wherever it is reported; another org's app id is not even looked at.
    expect((await api(`/apps/${app.id}`, { token: owner.token, method: "DELETE" })).status).toBe(200);
    const afterDelete = (await report(b.credential, app.id, "d".repeat(64))).body;
    expect(afterDelete.orphans).toEqual([app.id]);
    expect(afterDelete.sleep_after_minutes).toEqual({});
    const other = await signUp();
    const theirs = await newApp(other, other.projectId);
    expect((await report(b.credential, theirs.id, "e".repeat(64))).body).toEqual({ applied: 0, orphans: [], sleep_after_minutes: {} });
  });
});

describe("deploy events", () => {
  it("reach the project's subscribers only once the app and its deployment are written, so a page that reads them on the event is right", async () => {
    const owner = await signUp();
    const box = await onlineHost(owner, owner.orgSlug, "box", 4096);
    const app = await newApp(owner, owner.projectId);
    const deploy = await api(`/apps/${app.id}/deploy`, { token: owner.token, method: "POST" });
    expect(deploy.status, deploy.text).toBe(202);
    const jobId = deploy.body.job.id as string;

    // D1 in production is a network hop away; here it answers within a millisecond, which would
    // hide a wrong order. The project's object gets the same D1, slowed by 300 ms per batch.
    const stub = env.PROJECT_DO.get(env.PROJECT_DO.idFromName(`project:${owner.projectId}`));
    await runInDurableObject(stub, (instance) => {
      const object = instance as unknown as { env: Env };
      const d1 = object.env.DB;
      const slowed = {
        prepare: (query: string) => d1.prepare(query),
        batch: async (statements: D1PreparedStatement[]) => {
          await scheduler.wait(300);
          return d1.batch(statements);
        },
      };
      object.env = new Proxy(object.env, { get: (target, key) => (key === "DB" ? slowed : Reflect.get(target, key)) });
    });

    const upgrade = await fetchWorker(`/api/v1/projects/${owner.projectId}/events`, { headers: { upgrade: "websocket", authorization: `Bearer ${owner.token}` } });
    expect(upgrade.status).toBe(101);
    const ws = upgrade.webSocket!;
    ws.accept();
    // What a page reading the app and its deployments on each event would show.
    const seen: Array<{ type: string; app: Promise<any>; deployments: Promise<any> }> = [];
    ws.addEventListener("message", (e) => {
      const event = JSON.parse(e.data as string);
      if (event.job_id !== jobId) return;
      seen.push({ type: event.type, app: api(`/apps/${app.id}`, { token: owner.token }), deployments: api(`/apps/${app.id}/deployments`, { token: owner.token }) });
    });

    await runDeploy(box.credential, jobId, "c0ffee");
    await until("job.succeeded", async () => seen.map((s) => s.type), (types) => types.includes("job.succeeded"));
    ws.close();

    const succeeded = seen.find((s) => s.type === "job.succeeded")!;
    expect((await succeeded.app).body.app).toMatchObject({ status: "running" });
    expect((await succeeded.deployments).body[0]).toMatchObject({ id: deploy.body.deployment.id, status: "succeeded" });
    const running = seen.find((s) => s.type === "job.running")!;
    expect((await running.deployments).body[0]).toMatchObject({ id: deploy.body.deployment.id, status: "running" });
  });
});
