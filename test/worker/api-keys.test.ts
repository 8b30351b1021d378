/** API keys: Dockup's personal dkp_, backlex's org pak_ with scopes, Suble's project-bound pak_. */
import { beforeAll, describe, expect, it } from "vitest";
import { CREDENTIAL_CACHE_MS, forgetCredentials } from "../../src/auth/credential-cache";
import { api, createOrgKey, env, fetchWorker, orgWithEveryRole, signUp, type TestUser } from "./helpers";

type Team = Awaited<ReturnType<typeof orgWithEveryRole>>;

const ids = (list: any[]) => list.map((p: any) => p.id);

function expectError(res: { status: number; body: any; text: string }, status: number, code: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.body.error.code, res.text).toBe(code);
}

async function sha256Hex(input: string) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(input));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const keyRow = (id: string) => env.DB.prepare("SELECT * FROM api_key WHERE id = ?").bind(id).first<Record<string, any>>();

/** Last use is recorded after the response (waitUntil), so poll for it briefly. */
async function lastUsedOf(id: string): Promise<number | null> {
  for (let i = 0; i < 40; i++) {
    const row = await keyRow(id);
    if (row?.last_used_at) return row.last_used_at as number;
    await new Promise((r) => setTimeout(r, 50));
  }
  return null;
}

async function teamProject(t: Team, name: string) {
  const res = await api(`/org/${t.slug}/projects`, { token: t.owner.token, body: { name } });
  expect(res.status, res.text).toBe(201);
  return res.body.project as { id: string; slug: string; name: string };
}

async function personalKey(user: TestUser, body: Record<string, unknown> = { name: "laptop" }) {
  const res = await api("/api-keys", { token: user.token, body });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; key: string; prefix: string };
}

describe("personal dkp_ keys", () => {
  let alice: TestUser;

  beforeAll(async () => {
    alice = await signUp({ name: "Alice" });
  });

  it("shows the secret once; the list shows the prefix only", async () => {
    const res = await api("/api-keys", { token: alice.token, body: { name: "laptop" } });
    expect(res.status, res.text).toBe(201);
    const key = res.body;
    expect(key.key).toMatch(/^dkp_[0-9a-f]{64}$/);
    expect(key.token).toBe(key.key);
    expect(key).toMatchObject({ name: "laptop", scope: "full", org_id: null, project_id: null, expires_at: null, last_used_at: null });
    expect(key.id).toMatch(/^apk_/);
    expect(key.prefix).toBe(key.key.slice(0, key.prefix.length));
    expect(key.prefix.length).toBeLessThan(key.key.length);
    expect(key.key_prefix).toBe(key.prefix);

    const list = await api("/api-keys", { token: alice.token });
    expect(list.status, list.text).toBe(200);
    const listed = list.body.find((k: any) => k.id === key.id);
    expect(listed).toMatchObject({ id: key.id, name: "laptop", prefix: key.prefix, scope: "full" });
    expect(listed.key).toBeUndefined();
    expect(listed.token).toBeUndefined();
    expect(list.text).not.toContain(key.key);
    expect(list.text).not.toContain(await sha256Hex(key.key));
  });

  it("defaults the name to 'default' when there is no body", async () => {
    const res = await api("/api-keys", { token: alice.token, method: "POST" });
    expect(res.status, res.text).toBe(201);
    expect(res.body.name).toBe("default");
    expect(res.body.key).toMatch(/^dkp_/);
  });

  it("works as a Bearer credential and acts as its user", async () => {
    const key = await personalKey(alice);
    const me = await api("/auth/me", { token: key.key });
    expect(me.status, me.text).toBe(200);
    expect(me.body).toMatchObject({ id: alice.id, email: alice.email });
    const suble = await api("/me", { token: key.key });
    expect(suble.body.id).toBe(alice.id);
    const projects = await api("/projects", { token: key.key });
    expect(projects.status, projects.text).toBe(200);
    expect(ids(projects.body)).toContain(alice.projectId);
    const orgs = await api("/orgs", { token: key.key });
    expect(orgs.body.orgs.map((o: any) => o.slug)).toEqual([alice.orgSlug]);
    const made = await api("/projects", { token: key.key, body: { name: "Made by key" } });
    expect(made.status, made.text).toBe(201);
    expect((await api(`/projects/${made.body.id}`, { token: alice.token })).body.name).toBe("Made by key");
    // Other people's things stay invisible to it.
    const bob = await signUp({ name: "Bob" });
    expectError(await api(`/projects/${bob.projectId}`, { token: key.key }), 404, "not_found");
  });

  it("carries its user's roles: a viewer's key cannot create, a developer's cannot delete", async () => {
    const t = await orgWithEveryRole();
    const p = await teamProject(t, "Team thing");
    const viewerKey = await personalKey(t.viewer);
    const devKey = await personalKey(t.developer);
    expect((await api(`/projects/${p.id}`, { token: viewerKey.key })).body.role).toBe("viewer");
    expectError(await api(`/org/${t.slug}/projects`, { token: viewerKey.key, body: { name: "Viewer made" } }), 403, "FORBIDDEN");
    expectError(await api(`/projects/${p.id}`, { token: devKey.key, method: "DELETE" }), 403, "forbidden");
    const edit = await api(`/projects/${p.id}`, { token: devKey.key, method: "PATCH", body: { name: "Dev renamed" } });
    expect(edit.status, edit.text).toBe(200);

    // Removing the user from the org takes the org away from their key too.
    const members = await api(`/org/${t.slug}/members`, { token: t.owner.token });
    const seat = members.body.members.find((m: any) => m.userId === t.developer.id);
    const removed = await api(`/org/${t.slug}/members/${seat.id}`, { token: t.owner.token, method: "DELETE" });
    expect(removed.status, removed.text).toBe(204);
    expectError(await api(`/projects/${p.id}`, { token: devKey.key }), 404, "not_found");
  });

  it("even an owner's key cannot manage keys or members, or delete the org", async () => {
    const t = await orgWithEveryRole();
    const key = await personalKey(t.owner);
    expectError(await api("/api-keys", { token: key.key, body: { name: "minted by a key" } }), 403, "forbidden");
    expectError(await api(`/api-keys/${key.id}`, { token: key.key, method: "DELETE" }), 403, "forbidden");
    expectError(await api(`/org/${t.slug}/api-keys`, { token: key.key, body: { name: "minted", scope: "full" } }), 403, "FORBIDDEN");
    const outsider = await signUp();
    expectError(await api(`/org/${t.slug}/invitations`, { token: key.key, body: { email: outsider.email, role: "admin" } }), 403, "FORBIDDEN");
    expectError(await api(`/org/${t.slug}`, { token: key.key, method: "DELETE" }), 403, "FORBIDDEN");
    // The key still reads, and the org and its keys are as they were.
    expect((await api(`/org/${t.slug}/overview`, { token: key.key })).status).toBe(200);
    const list = await api("/api-keys", { token: t.owner.token });
    expect(list.body.map((k: any) => k.name)).toEqual(["laptop"]);
    expect((await api(`/org/${t.slug}/api-keys`, { token: t.owner.token })).body.keys).toEqual([]);
  });

  it("a read-only personal key reads but cannot write", async () => {
    const key = await personalKey(alice, { name: "reader", scope: "read-only" });
    expect(key).toMatchObject({ scope: "read-only" });
    expect((await api(`/projects/${alice.projectId}`, { token: key.key })).status).toBe(200);
    expectError(await api("/projects", { token: key.key, body: { name: "RO made" } }), 403, "forbidden");
    expectError(await api(`/projects/${alice.projectId}`, { token: key.key, method: "PATCH", body: { name: "RO renamed" } }), 403, "forbidden");
    expect((await api(`/projects/${alice.projectId}`, { token: alice.token })).body.name).toBe("My Project");
  });

  it("revocation takes effect on the very next request", async () => {
    const key = await personalKey(alice, { name: "to revoke" });
    expect((await api("/projects", { token: key.key })).status).toBe(200);
    const del = await api(`/api-keys/${key.id}`, { token: alice.token, method: "DELETE" });
    expect(del.status, del.text).toBe(204);
    const after = await api("/projects", { token: key.key });
    expectError(after, 401, "unauthorized");
    expect(after.body.error.message).toMatch(/revoked/i);
    expect(ids((await api("/api-keys", { token: alice.token })).body)).not.toContain(key.id);
    expectError(await api(`/api-keys/${key.id}`, { token: alice.token, method: "DELETE" }), 404, "api_key_not_found");
    const row = await keyRow(key.id);
    expect(row?.revoked_at).toBeTruthy();
  });

  it("one user cannot see or revoke another's key (404)", async () => {
    const key = await personalKey(alice, { name: "mine" });
    const bob = await signUp({ name: "Bob" });
    expectError(await api(`/api-keys/${key.id}`, { token: bob.token, method: "DELETE" }), 404, "api_key_not_found");
    expect(ids((await api("/api-keys", { token: bob.token })).body)).not.toContain(key.id);
    expect((await api("/projects", { token: key.key })).status).toBe(200);
  });

  it("validates input and needs a credential", async () => {
    expectError(await api("/api-keys", { token: alice.token, body: { name: "" } }), 400, "invalid_request");
    expectError(await api("/api-keys", { token: alice.token, body: { name: "x", scope: "god" } }), 400, "invalid_request");
    expectError(await api("/api-keys", { token: alice.token, body: { name: "x", expiresInDays: 0 } }), 400, "invalid_request");
    expectError(await api("/api-keys"), 401, "unauthorized");
    expectError(await api("/api-keys", { body: { name: "anon" } }), 401, "unauthorized");
    expectError(await api("/api-keys/apk_whatever", { method: "DELETE" }), 401, "unauthorized");
  });

  it("org keys cannot use the personal key routes", async () => {
    const t = await orgWithEveryRole();
    const key = await createOrgKey(t.owner, t.slug, "full");
    expectError(await api("/api-keys", { token: key.key }), 403, "forbidden");
    expectError(await api("/api-keys", { token: key.key, body: { name: "sneaky" } }), 403, "forbidden");
  });
});

describe("org pak_ keys", () => {
  let t: Team;
  let project: { id: string; slug: string; name: string };

  beforeAll(async () => {
    t = await orgWithEveryRole();
    project = await teamProject(t, "Org keyed");
  });

  it("creates with a scope, shows the secret once, lists prefixes only", async () => {
    const res = await api(`/org/${t.slug}/api-keys`, { token: t.admin.token, body: { name: "ci", scope: "deploy" } });
    expect(res.status, res.text).toBe(201);
    const key = res.body.key;
    expect(key.key).toMatch(/^pak_[0-9a-f]{64}$/);
    expect(key).toMatchObject({ name: "ci", scope: "deploy", org_id: t.orgId, project_id: null, expiresAt: null });
    expect(key.prefix).toBe(key.key.slice(0, key.prefix.length));

    const list = await api(`/org/${t.slug}/api-keys`, { token: t.owner.token });
    expect(list.status, list.text).toBe(200);
    const listed = list.body.keys.find((k: any) => k.id === key.id);
    expect(listed).toMatchObject({ name: "ci", scope: "deploy", prefix: key.prefix });
    expect(listed.key).toBeUndefined();
    expect(list.text).not.toContain(key.key);
  });

  it("only owner and admin read or manage org keys", async () => {
    for (const who of [t.developer, t.viewer]) {
      expectError(await api(`/org/${t.slug}/api-keys`, { token: who.token }), 403, "FORBIDDEN");
      expectError(await api(`/org/${t.slug}/api-keys`, { token: who.token, body: { name: "mine", scope: "full" } }), 403, "FORBIDDEN");
    }
    const key = await createOrgKey(t.owner, t.slug, "read-only");
    expectError(await api(`/org/${t.slug}/api-keys/${key.id}`, { token: t.developer.token, method: "DELETE" }), 403, "FORBIDDEN");
    expect((await api(`/org/${t.slug}/projects`, { token: key.key })).status).toBe(200);
  });

  it("validates scope and expiry", async () => {
    for (const body of [{ name: "x" }, { name: "x", scope: "admin" }, { name: "", scope: "full" }, { name: "x", scope: "full", expiresInDays: -1 }, { name: "x", scope: "full", expiresInDays: 1.5 }]) {
      expectError(await api(`/org/${t.slug}/api-keys`, { token: t.owner.token, body }), 422, "VALIDATION");
    }
  });

  it("read-only reads but cannot write (403), and nothing changes", async () => {
    const key = await createOrgKey(t.owner, t.slug, "read-only");
    expect((await api(`/org/${t.slug}/overview`, { token: key.key })).status).toBe(200);
    expect((await api(`/org/${t.slug}/members`, { token: key.key })).status).toBe(200);
    const list = await api(`/org/${t.slug}/projects`, { token: key.key });
    expect(ids(list.body.projects)).toContain(project.id);
    const flat = await api("/projects", { token: key.key });
    expect(flat.status, flat.text).toBe(200);
    expect(ids(flat.body)).toContain(project.id);
    expect((await api(`/projects/${project.id}`, { token: key.key })).status).toBe(200);
    for (const org of [t.slug, t.orgId]) {
      const own = await api(`/projects?org=${org}`, { token: key.key });
      expect(own.status, own.text).toBe(200);
      expect(ids(own.body)).toContain(project.id);
    }
    expectError(await api(`/projects?org=${t.owner.orgSlug}`, { token: key.key }), 404, "not_found");

    expectError(await api("/projects", { token: key.key, body: { name: "RO made" } }), 403, "forbidden");
    expectError(await api(`/org/${t.slug}/projects`, { token: key.key, body: { name: "RO made" } }), 403, "FORBIDDEN");
    expectError(await api(`/projects/${project.id}`, { token: key.key, method: "PATCH", body: { name: "RO renamed" } }), 403, "forbidden");
    expectError(await api(`/projects/${project.id}`, { token: key.key, method: "DELETE" }), 403, "forbidden");
    expectError(await api(`/org/${t.slug}`, { token: key.key, method: "PATCH", body: { name: "RO org" } }), 403, "FORBIDDEN");
    expectError(await api(`/org/${t.slug}/audit`, { token: key.key }), 403, "FORBIDDEN");
    const after = await api(`/projects/${project.id}`, { token: t.owner.token });
    expect(after.body.name).toBe("Org keyed");
    expect((await api(`/org/${t.slug}/projects`, { token: t.owner.token })).body.projects.map((p: any) => p.name)).not.toContain("RO made");
  });

  it("deploy scope reads but cannot create projects", async () => {
    const key = await createOrgKey(t.owner, t.slug, "deploy");
    expect((await api(`/org/${t.slug}/projects`, { token: key.key })).status).toBe(200);
    expect((await api(`/org/${t.slug}/projects/${project.slug}`, { token: key.key })).status).toBe(200);
    expectError(await api(`/org/${t.slug}/projects`, { token: key.key, body: { name: "Deploy made" } }), 403, "FORBIDDEN");
    expectError(await api("/projects", { token: key.key, body: { name: "Deploy made" } }), 403, "forbidden");
    expectError(await api(`/projects/${project.id}`, { token: key.key, method: "PATCH", body: { name: "x" } }), 403, "forbidden");
  });

  it("full may create and change projects, but not create keys or manage members (403)", async () => {
    const key = await createOrgKey(t.owner, t.slug, "full");
    const made = await api("/projects", { token: key.key, body: { name: "Full made" } });
    expect(made.status, made.text).toBe(201);
    expect(made.body.org_id).toBe(t.orgId);
    for (const org of [t.slug, t.orgId]) {
      const named = await api("/projects", { token: key.key, body: { name: `Named ${org}`, org } });
      expect(named.status, named.text).toBe(201);
      expect(named.body.org_id).toBe(t.orgId);
    }
    expectError(await api("/projects", { token: key.key, body: { name: "Elsewhere", org: t.owner.orgSlug } }), 404, "not_found");
    expect(ids((await api(`/projects?org=${t.owner.orgSlug}`, { token: t.owner.token })).body)).toEqual([t.owner.projectId]);
    const renamed = await api(`/projects/${made.body.id}`, { token: key.key, method: "PATCH", body: { name: "Full renamed" } });
    expect(renamed.status, renamed.text).toBe(200);
    expect((await api(`/org/${t.slug}/audit?limit=1`, { token: key.key })).status).toBe(200);

    expectError(await api(`/org/${t.slug}/api-keys`, { token: key.key, body: { name: "child", scope: "full" } }), 403, "FORBIDDEN");
    expectError(await api(`/org/${t.slug}/api-keys`, { token: key.key }), 403, "FORBIDDEN");
    expectError(await api(`/projects/${project.id}/api-keys`, { token: key.key, body: { name: "child" } }), 403, "forbidden");
    expectError(await api(`/org/${t.slug}/api-keys/${key.id}`, { token: key.key, method: "DELETE" }), 403, "FORBIDDEN");
    const outsider = await signUp();
    expectError(await api(`/org/${t.slug}/invitations`, { token: key.key, body: { email: outsider.email, role: "admin" } }), 403, "FORBIDDEN");
    const members = await api(`/org/${t.slug}/members`, { token: key.key });
    const viewerSeat = members.body.members.find((m: any) => m.userId === t.viewer.id);
    expectError(await api(`/org/${t.slug}/members/${viewerSeat.id}`, { token: key.key, method: "PATCH", body: { role: "admin" } }), 403, "FORBIDDEN");
    expectError(await api(`/org/${t.slug}/members/${viewerSeat.id}`, { token: key.key, method: "DELETE" }), 403, "FORBIDDEN");
    expectError(await api(`/projects/${project.id}/members`, { token: key.key, body: { email: outsider.email } }), 403, "forbidden");
    expectError(await api(`/org/${t.slug}`, { token: key.key, method: "DELETE" }), 403, "FORBIDDEN");

    const after = await api(`/org/${t.slug}/members`, { token: t.owner.token });
    expect(after.body.members.find((m: any) => m.userId === t.viewer.id).role).toBe("viewer");
    expect(after.body.members.map((m: any) => m.email)).not.toContain(outsider.email);
    expect((await api(`/org/${t.slug}/overview`, { token: t.owner.token })).status).toBe(200);
  });

  it("revoking an org key: 204, then 401 on the next request, gone from the list", async () => {
    const key = await createOrgKey(t.owner, t.slug, "full");
    expect((await api(`/org/${t.slug}/projects`, { token: key.key })).status).toBe(200);
    const del = await api(`/org/${t.slug}/api-keys/${key.id}`, { token: t.admin.token, method: "DELETE" });
    expect(del.status, del.text).toBe(204);
    expectError(await api(`/org/${t.slug}/projects`, { token: key.key }), 401, "UNAUTHORIZED");
    expectError(await api("/projects", { token: key.key }), 401, "unauthorized");
    const list = await api(`/org/${t.slug}/api-keys`, { token: t.owner.token });
    expect(ids(list.body.keys)).not.toContain(key.id);
    expectError(await api(`/org/${t.slug}/api-keys/${key.id}`, { token: t.owner.token, method: "DELETE" }), 404, "API_KEY_NOT_FOUND");
  });

  it("expiresInDays sets the expiry; past it the key is refused with 401", async () => {
    const before = Date.now();
    const key = await createOrgKey(t.owner, t.slug, "read-only", { expiresInDays: 30 });
    const listed = (await api(`/org/${t.slug}/api-keys`, { token: t.owner.token })).body.keys.find((k: any) => k.id === key.id);
    const expires = Date.parse(listed.expiresAt);
    expect(listed.expires_at).toBe(listed.expiresAt);
    expect(expires).toBeGreaterThanOrEqual(before + 30 * 86_400_000 - 1000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 30 * 86_400_000 + 1000);
    expect((await api(`/org/${t.slug}/projects`, { token: key.key })).status).toBe(200);

    const moved = await env.DB.prepare("UPDATE api_key SET expires_at = ? WHERE id = ?").bind(Date.now() - 1000, key.id).run();
    expect(moved.meta.changes).toBe(1);
    // The clock moved past the expiry for this isolate too: nothing it validated before is still cached.
    forgetCredentials();
    const res = await api(`/org/${t.slug}/projects`, { token: key.key });
    expectError(res, 401, "UNAUTHORIZED");
    expect(res.body.error.message).toMatch(/expired/i);
    expectError(await api("/projects", { token: key.key, method: "GET" }), 401, "unauthorized");
  });

  it("an expired personal key is refused too", async () => {
    const user = await signUp();
    const key = await personalKey(user, { name: "short", expiresInDays: 1 });
    expect(Date.parse((key as any).expiresAt)).toBeGreaterThan(Date.now());
    expect((await api("/auth/me", { token: key.key })).status).toBe(200);
    await env.DB.prepare("UPDATE api_key SET expires_at = ? WHERE id = ?").bind(Date.now() - 1, key.id).run();
    forgetCredentials(); // as above: the clock moved past the expiry
    expectError(await api("/auth/me", { token: key.key }), 401, "unauthorized");
  });

  it("records the last use", async () => {
    const key = await createOrgKey(t.owner, t.slug, "read-only");
    expect((await keyRow(key.id))?.last_used_at).toBeNull();
    const before = Date.now();
    expect((await api(`/org/${t.slug}/projects`, { token: key.key })).status).toBe(200);
    const used = await lastUsedOf(key.id);
    expect(used, "last_used_at was never written").not.toBeNull();
    expect(used!).toBeGreaterThanOrEqual(before - 1000);
    expect(used!).toBeLessThanOrEqual(Date.now() + 1000);
    const listed = (await api(`/org/${t.slug}/api-keys`, { token: t.owner.token })).body.keys.find((k: any) => k.id === key.id);
    expect(Date.parse(listed.lastUsedAt)).toBe(used);
    expect(listed.last_used_at).toBe(listed.lastUsedAt);

    // Personal keys too.
    const pk = await personalKey(t.viewer);
    expect((await api("/auth/me", { token: pk.key })).status).toBe(200);
    expect(await lastUsedOf(pk.id)).not.toBeNull();
    const mine = (await api("/api-keys", { token: t.viewer.token })).body.find((k: any) => k.id === pk.id);
    expect(mine.lastUsedAt).not.toBeNull();
  });

  it("a key works as ?token= only to open a WebSocket, where a browser cannot send a header", async () => {
    const key = await createOrgKey(t.owner, t.slug, "full");
    const events = (token: string, headers: Record<string, string> = { upgrade: "websocket" }) =>
      fetchWorker(`/api/v1/projects/${project.id}/events?token=${encodeURIComponent(token)}`, { headers });
    const opened = await events(key.key);
    expect(opened.status).toBe(101);
    opened.webSocket!.accept();
    opened.webSocket!.close();

    // On a plain GET a token in the URL would end up in logs and browser history: it is not a credential there.
    expectError(await api(`/org/${t.slug}/projects?token=${key.key}`), 401, "UNAUTHORIZED");
    expectError(await api(`/projects?token=${key.key}`), 401, "unauthorized");
    expectError(await api(`/org/${t.slug}/projects?token=${key.key}`, { body: { name: "Query made" } }), 401, "UNAUTHORIZED");
    expectError(await api(`/projects/${project.id}?token=${key.key}`, { method: "PATCH", body: { name: "Query renamed" } }), 401, "unauthorized");
    expectError(await api(`/projects/${project.id}?token=${key.key}`, { method: "DELETE" }), 401, "unauthorized");
    expect((await api(`/projects/${project.id}`, { token: t.owner.token })).body.name).toBe("Org keyed");
    expect((await api(`/org/${t.slug}/projects`, { token: t.owner.token })).body.projects.map((p: any) => p.name)).not.toContain("Query made");
    expect((await events(key.key, {})).status).toBe(401);

    // Personal keys and session tokens alike.
    const pk = await personalKey(t.owner);
    expectError(await api(`/auth/me?token=${pk.key}`), 401, "unauthorized");
    expectError(await api(`/auth/me?token=${encodeURIComponent(t.viewer.token)}`), 401, "unauthorized");
    const viaSession = await events(t.owner.token);
    expect(viaSession.status).toBe(101);
    viaSession.webSocket!.accept();
    viaSession.webSocket!.close();
    // A revoked key in the query is refused as well.
    await api(`/org/${t.slug}/api-keys/${key.id}`, { token: t.owner.token, method: "DELETE" });
    expect((await events(key.key)).status).toBe(401);
  });

  it("stores keys hashed: the raw secret is nowhere in the table", async () => {
    const org = await createOrgKey(t.owner, t.slug, "full");
    const personal = await personalKey(t.owner);
    const proj = await api(`/projects/${project.id}/api-keys`, { token: t.owner.token, body: { name: "hashed" } });
    expect(proj.status, proj.text).toBe(201);
    const all = await env.DB.prepare("SELECT * FROM api_key").all();
    const dump = JSON.stringify(all.results);
    for (const secret of [org.key, personal.key, proj.body.key as string]) {
      expect(dump).not.toContain(secret);
      expect(dump).not.toContain(secret.slice(4)); // not even without its prefix
    }
    const row = await keyRow(org.id);
    expect(row!.hash).toBe(await sha256Hex(org.key));
    expect(row!.prefix).toBe(org.prefix);
    expect(org.key.startsWith(row!.prefix)).toBe(true);
    expect(row!.prefix.length).toBeLessThanOrEqual(16);
  });
});

describe("Suble project keys", () => {
  let t: Team;
  let p1: { id: string; slug: string; name: string };
  let p2: { id: string; slug: string; name: string };

  beforeAll(async () => {
    t = await orgWithEveryRole();
    p1 = await teamProject(t, "Keyed project");
    p2 = await teamProject(t, "Sibling project");
  });

  async function projectKey(projectId = p1.id, body: Record<string, unknown> = { name: "ci" }, by: TestUser = t.owner) {
    const res = await api(`/projects/${projectId}/api-keys`, { token: by.token, body });
    expect(res.status, res.text).toBe(201);
    return res.body as { id: string; key: string; prefix: string; project_id: string };
  }

  it("creates a pak_ bound to the project, listed there and in the org's list, secret once", async () => {
    const key = await projectKey(p1.id, { name: "deployer", permissions: 5, scope: "deploy" });
    expect(key.key).toMatch(/^pak_[0-9a-f]{64}$/);
    expect(key).toMatchObject({ name: "deployer", project_id: p1.id, org_id: t.orgId, scope: "deploy", permissions: 5 });
    const defaults = await projectKey(p1.id, { name: "defaults" });
    expect(defaults).toMatchObject({ scope: "full" });
    expect(typeof (defaults as any).permissions).toBe("number");

    const list = await api(`/projects/${p1.id}/api-keys`, { token: t.admin.token });
    expect(list.status, list.text).toBe(200);
    expect(ids(list.body)).toEqual(expect.arrayContaining([key.id, defaults.id]));
    expect(list.body.every((k: any) => k.project_id === p1.id && k.key === undefined)).toBe(true);
    expect(list.text).not.toContain(key.key);
    expect(ids((await api(`/projects/${p2.id}/api-keys`, { token: t.admin.token })).body)).not.toContain(key.id);
    const orgList = await api(`/org/${t.slug}/api-keys`, { token: t.owner.token });
    expect(ids(orgList.body.keys)).toContain(key.id);
  });

  it("only owner and admin read or create project keys", async () => {
    for (const who of [t.developer, t.viewer]) {
      expectError(await api(`/projects/${p1.id}/api-keys`, { token: who.token }), 403, "forbidden");
      expectError(await api(`/projects/${p1.id}/api-keys`, { token: who.token, body: { name: "mine" } }), 403, "forbidden");
    }
    expectError(await api(`/projects/${p1.id}/api-keys`, { token: t.owner.token, body: { name: "" } }), 400, "invalid_request");
  });

  it("sees its one project only: 403 on a sibling project, 404 in another org", async () => {
    const key = await projectKey();
    const list = await api("/projects", { token: key.key });
    expect(list.status, list.text).toBe(200);
    expect(ids(list.body)).toEqual([p1.id]);
    const got = await api(`/projects/${p1.id}`, { token: key.key });
    expect(got.status, got.text).toBe(200);
    expect(got.body.id).toBe(p1.id);
    expect((await api(`/org/${t.slug}/projects/${p1.slug}`, { token: key.key })).status).toBe(200);
    const renamed = await api(`/projects/${p1.id}`, { token: key.key, method: "PATCH", body: { environment: "staging" } });
    expect(renamed.status, renamed.text).toBe(200);

    expectError(await api(`/projects/${p2.id}`, { token: key.key }), 403, "forbidden");
    expectError(await api(`/projects/${p2.id}`, { token: key.key, method: "PATCH", body: { name: "Hijacked" } }), 403, "forbidden");
    expectError(await api(`/projects/${p2.id}`, { token: key.key, method: "DELETE" }), 403, "forbidden");
    expectError(await api(`/org/${t.slug}/projects/${p2.slug}`, { token: key.key }), 403, "FORBIDDEN");
    expectError(await api(`/projects/${p2.id}/members`, { token: key.key }), 403, "forbidden");
    // Org-wide routes are out of reach for a key bound to one project.
    expectError(await api(`/org/${t.slug}/projects`, { token: key.key, body: { name: "New one" } }), 403, "FORBIDDEN");
    expectError(await api("/projects", { token: key.key, body: { name: "New one" } }), 403, "forbidden");
    expectError(await api(`/org/${t.slug}/api-keys`, { token: key.key }), 403, "FORBIDDEN");
    // Keys cannot make keys.
    expectError(await api(`/projects/${p1.id}/api-keys`, { token: key.key, body: { name: "child" } }), 403, "forbidden");
    expect((await api(`/projects/${p2.id}`, { token: t.owner.token })).body.name).toBe("Sibling project");

    const other = await signUp({ name: "Other org" });
    expectError(await api(`/projects/${other.projectId}`, { token: key.key }), 404, "not_found");
    expectError(await api(`/projects/${other.projectId}/members`, { token: key.key }), 404, "project_not_found");
    expectError(await api(`/org/${other.orgSlug}/projects`, { token: key.key }), 404, "NOT_FOUND");
    expectError(await api(`/org/${other.orgSlug}/overview`, { token: key.key }), 404, "NOT_FOUND");
  });

  it("a read-only project key cannot change its project", async () => {
    const key = await projectKey(p1.id, { name: "ro", scope: "read-only" });
    expect((await api(`/projects/${p1.id}`, { token: key.key })).status).toBe(200);
    expectError(await api(`/projects/${p1.id}`, { token: key.key, method: "PATCH", body: { name: "RO" } }), 403, "forbidden");
    expectError(await api(`/projects/${p1.id}`, { token: key.key, method: "DELETE" }), 403, "forbidden");
  });

  it("revocation: 204, then 401 on the very next request", async () => {
    const key = await projectKey();
    expect((await api(`/projects/${p1.id}`, { token: key.key })).status).toBe(200);
    // The wrong project, or an org key id on the project route, is not found.
    expectError(await api(`/projects/${p2.id}/api-keys/${key.id}`, { token: t.owner.token, method: "DELETE" }), 404, "api_key_not_found");
    const orgKey = await createOrgKey(t.owner, t.slug, "read-only");
    expectError(await api(`/projects/${p1.id}/api-keys/${orgKey.id}`, { token: t.owner.token, method: "DELETE" }), 404, "api_key_not_found");
    expect((await api(`/org/${t.slug}/projects`, { token: orgKey.key })).status).toBe(200);
    expectError(await api(`/projects/${p1.id}/api-keys/${key.id}`, { token: t.developer.token, method: "DELETE" }), 403, "forbidden");
    expect((await api(`/projects/${p1.id}`, { token: key.key })).status).toBe(200);

    const del = await api(`/projects/${p1.id}/api-keys/${key.id}`, { token: t.admin.token, method: "DELETE" });
    expect(del.status, del.text).toBe(204);
    expectError(await api(`/projects/${p1.id}`, { token: key.key }), 401, "unauthorized");
    expect(ids((await api(`/projects/${p1.id}/api-keys`, { token: t.owner.token })).body)).not.toContain(key.id);
    expectError(await api(`/projects/${p1.id}/api-keys/${key.id}`, { token: t.admin.token, method: "DELETE" }), 404, "api_key_not_found");
  });

  it("a key for a deleted project reaches nothing", async () => {
    const doomed = await teamProject(t, "Doomed keyed");
    const key = await projectKey(doomed.id);
    expect(ids((await api("/projects", { token: key.key })).body)).toEqual([doomed.id]);
    expect((await api(`/projects/${doomed.id}`, { token: t.owner.token, method: "DELETE" })).status).toBe(200);
    expectError(await api(`/projects/${doomed.id}`, { token: key.key }), 404, "not_found");
    const list = await api("/projects", { token: key.key });
    expect(list.status, list.text).toBe(200);
    expect(list.body).toEqual([]);
  });
});

describe("validated keys are cached briefly in the isolate", { timeout: 30_000 }, () => {
  it("a key revoked where this isolate cannot see it is refused within the cache's bound; one revoked here at once", async () => {
    const t = await orgWithEveryRole();
    const key = await createOrgKey(t.owner, t.slug, "read-only");
    expect((await api(`/org/${t.slug}/projects`, { token: key.key })).status).toBe(200);
    // Another isolate revokes it: the row changes, and nothing here hears of it.
    await env.DB.prepare("UPDATE api_key SET revoked_at = ? WHERE id = ?").bind(Date.now(), key.id).run();
    const revoked = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - revoked < CREDENTIAL_CACHE_MS + 3_000) {
      status = (await api(`/org/${t.slug}/projects`, { token: key.key })).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 250));
    }
    expect(status).toBe(401);
    expect(Date.now() - revoked).toBeLessThan(CREDENTIAL_CACHE_MS + 1_500);

    // Through this isolate's API, the very next request is refused.
    const other = await createOrgKey(t.owner, t.slug, "read-only");
    expect((await api(`/org/${t.slug}/projects`, { token: other.key })).status).toBe(200);
    const gone = await api(`/org/${t.slug}/api-keys/${other.id}`, { token: t.owner.token, method: "DELETE" });
    expect(gone.status, gone.text).toBeLessThan(300);
    expect((await api(`/org/${t.slug}/projects`, { token: other.key })).status).toBe(401);
  });
});
