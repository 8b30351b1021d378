/** Dockup's apps: CRUD, access by role, key and tenant, global slugs, and env vars that never come back out. */
import { beforeAll, describe, expect, it } from "vitest";
import { decryptJson, encryptJson } from "../../src/lib/secrets";
import { answerOf, api, createOrgKey, env, expectApiError, orgWithEveryRole, signUp, type TestUser } from "./helpers";

type Team = Awaited<ReturnType<typeof orgWithEveryRole>>;

let seq = 0;
/** A slug no other test (or test file run) has taken: app slugs are global. */
const uniqueSlug = (tag: string) => `${tag}-${Date.now().toString(36)}-${++seq}-${Math.random().toString(36).slice(2, 6)}`;

const MASK = "••••••";
const SECRET_A = "postgres://admin:hunter2-very-secret@db.internal:5432/app";
const SECRET_B = "sk_live_4f9c0e7d1b2a3c4d5e6f";

async function createApp(token: string, projectId: string, body: Record<string, unknown>) {
  const res = await api(`/projects/${projectId}/apps`, { token, body });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

const appRow = (id: string) => env.DB.prepare("SELECT * FROM app WHERE id = ?").bind(id).first<Record<string, any>>();

async function teamProject(t: Team, name: string) {
  const res = await api("/projects", { token: t.owner.token, body: { name, org: t.slug } });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; slug: string };
}

describe("apps: create, read, update, delete", () => {
  let alice: TestUser;

  beforeAll(async () => {
    alice = await signUp({ name: "Alice" });
  });

  it("creates an app with Dockup's defaults and answers its shape with 201", async () => {
    const slug = uniqueSlug("web");
    const res = await api(`/projects/${alice.projectId}/apps`, { token: alice.token, body: { name: "Web", slug, image: "nginx:alpine" } });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^app_[0-9a-z]{16}$/),
      name: "Web",
      slug,
      project_id: alice.projectId,
      image: "nginx:alpine",
      internal_port: 8080,
      env_vars: {},
      command: null,
      cpu_limit: 0.5,
      memory_limit: 512,
      gpu_enabled: false,
      git_repo_url: null,
      git_branch: null,
      git_provider: null,
      git_webhook_url: null,
      status: "stopped",
      state: "created",
      sleeping: false,
      cpu_usage: null,
      memory_usage: null,
      url: `http://${slug}-app.${env.BASE_DOMAIN}`,
      host_id: null,
      container_id: null,
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
  });

  it("keeps every setting given on create", async () => {
    const app = await createApp(alice.token, alice.projectId, {
      name: "Worker",
      slug: uniqueSlug("worker"),
      image: "ghcr.io/acme/worker:1.2.3",
      internal_port: 3000,
      command: "node dist/worker.js --queue default",
      cpu_limit: 2.5,
      memory_limit: 2048,
      gpu_enabled: true,
      git_repo_url: "acme/worker",
      git_provider: "github",
      env_vars: { NODE_ENV: "production" },
    });
    expect(app).toMatchObject({
      internal_port: 3000,
      command: "node dist/worker.js --queue default",
      cpu_limit: 2.5,
      memory_limit: 2048,
      gpu_enabled: true,
      git_repo_url: "acme/worker",
      git_branch: "main",
      git_provider: "github",
      env_vars: { NODE_ENV: MASK },
    });
  });

  it("derives a slug from the name, with a suffix when it is taken", async () => {
    const name = `My Shiny App ${uniqueSlug("x")}`;
    const a = await createApp(alice.token, alice.projectId, { name, image: "nginx" });
    const b = await createApp(alice.token, alice.projectId, { name, image: "nginx" });
    expect(a.slug).toMatch(/^my-shiny-app-x-[a-z0-9-]+$/);
    expect(b.slug).not.toBe(a.slug);
    expect(b.slug.startsWith(a.slug.slice(0, 30))).toBe(true);
    for (const s of [a.slug, b.slug]) expect(s).toMatch(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/);
    // A name with nothing sluggable still gets a slug.
    const odd = await createApp(alice.token, alice.projectId, { name: "!!!", image: "nginx" });
    expect(odd.slug).toMatch(/^app(-[a-z0-9]+)?$/);
  });

  it("lists the project's apps as an array; reads one by id and by slug with its container state", async () => {
    const created = await createApp(alice.token, alice.projectId, { name: "Listed", slug: uniqueSlug("listed"), image: "redis:7" });
    const list = await api(`/projects/${alice.projectId}/apps`, { token: alice.token });
    expect(list.status, list.text).toBe(200);
    expect(Array.isArray(list.body)).toBe(true);
    expect(list.body.map((a: any) => a.id)).toContain(created.id);
    expect(list.body.every((a: any) => a.project_id === alice.projectId)).toBe(true);

    for (const ref of [created.id, created.slug]) {
      const got = await api(`/apps/${ref}`, { token: alice.token });
      expect(got.status, got.text).toBe(200);
      expect(got.body).toEqual({ app: created, container_state: null });
    }
  });

  it("shows a container's state once it has one", async () => {
    const created = await createApp(alice.token, alice.projectId, { name: "Running", slug: uniqueSlug("running"), image: "nginx" });
    await env.DB.prepare("UPDATE app SET status = 'running', container_id = 'c0ffee', cpu_usage = 12.5, memory_usage = 64 WHERE id = ?").bind(created.id).run();
    const got = await api(`/apps/${created.slug}`, { token: alice.token });
    expect(got.body.container_state).toEqual({ status: "running", container_id: "c0ffee", host_id: null });
    expect(got.body.app).toMatchObject({ status: "running", state: "running", cpu_usage: 12.5, memory_usage: 64, container_id: "c0ffee" });
    await env.DB.prepare("UPDATE app SET status = 'failed' WHERE id = ?").bind(created.id).run();
    const failed = await api(`/apps/${created.id}`, { token: alice.token });
    expect(failed.body.app).toMatchObject({ status: "stopped", state: "failed" });
  });

  it("updates settings with PUT, by id or slug, and only what was sent", async () => {
    const created = await createApp(alice.token, alice.projectId, { name: "Editable", slug: uniqueSlug("edit"), image: "nginx:1.25", command: "nginx -g 'daemon off;'" });
    const put = await api(`/apps/${created.slug}`, {
      token: alice.token,
      method: "PUT",
      body: { name: "Edited", image: "nginx:1.27", internal_port: 80, cpu_limit: 1, memory_limit: 1024, gpu_enabled: true, git_branch: "release" },
    });
    expect(put.status, put.text).toBe(200);
    expect(put.body).toMatchObject({
      id: created.id,
      slug: created.slug,
      name: "Edited",
      image: "nginx:1.27",
      internal_port: 80,
      cpu_limit: 1,
      memory_limit: 1024,
      gpu_enabled: true,
      git_branch: "release",
      command: "nginx -g 'daemon off;'",
    });
    const cleared = await api(`/apps/${created.id}`, { token: alice.token, method: "PUT", body: { command: null, git_branch: null } });
    expect(cleared.status, cleared.text).toBe(200);
    expect(cleared.body).toMatchObject({ command: null, git_branch: null, name: "Edited" });
    const empty = await api(`/apps/${created.id}`, { token: alice.token, method: "PUT", body: {} });
    expect(empty.status, empty.text).toBe(200);
    expect(empty.body.updated_at).toBe(cleared.body.updated_at);
    expect((await api(`/apps/${created.id}`, { token: alice.token })).body.app).toEqual(cleared.body);
  });

  it("records create and update in the app's events, newest first", async () => {
    const created = await createApp(alice.token, alice.projectId, { name: "Eventful", slug: uniqueSlug("events"), image: "nginx" });
    await api(`/apps/${created.id}`, { token: alice.token, method: "PUT", body: { image: "nginx:2", env_vars: { TOKEN: SECRET_B } } });
    const events = await api(`/apps/${created.slug}/events`, { token: alice.token });
    expect(events.status, events.text).toBe(200);
    expect(events.body).toHaveLength(2);
    expect(events.body.map((e: any) => e.type)).toEqual(["updated", "created"]);
    expect(events.body[0]).toEqual({
      id: expect.stringMatching(/^aev_/),
      type: "updated",
      message: expect.stringContaining("image"),
      data: { fields: ["image", "env_vars"], env_keys: ["TOKEN"] },
      status: null,
      details: { fields: ["image", "env_vars"], env_keys: ["TOKEN"] },
      created_at: expect.any(String),
    });
    expect(events.text).not.toContain(SECRET_B);
    const one = await api(`/apps/${created.id}/events?limit=1`, { token: alice.token });
    expect(one.body.map((e: any) => e.type)).toEqual(["updated"]);
    expectApiError(await api(`/apps/${created.id}/events?limit=0`, { token: alice.token }), 400, "invalid_request");
  });

  it("lists deployments newest first", async () => {
    const created = await createApp(alice.token, alice.projectId, { name: "Deployed", slug: uniqueSlug("deployed"), image: "nginx" });
    const none = await api(`/apps/${created.id}/deployments`, { token: alice.token });
    expect(none.status, none.text).toBe(200);
    expect(none.body).toEqual([]);
    const t0 = Date.now() - 10_000;
    await env.DB.prepare("INSERT INTO deployment (id, app_id, image, status, created_at) VALUES (?, ?, 'nginx:1', 'succeeded', ?), (?, ?, 'nginx:2', 'failed', ?)")
      .bind("dep_old0000000000000", created.id, t0, "dep_new0000000000000", created.id, t0 + 1000)
      .run();
    await env.DB.prepare("UPDATE deployment SET error = 'pull failed', job_id = 'job_x', finished_at = ? WHERE id = 'dep_new0000000000000'").bind(t0 + 2000).run();
    const list = await api(`/apps/${created.slug}/deployments`, { token: alice.token });
    expect(list.body.map((d: any) => d.id)).toEqual(["dep_new0000000000000", "dep_old0000000000000"]);
    expect(list.body[0]).toEqual({
      id: "dep_new0000000000000",
      app_id: created.id,
      image: "nginx:2",
      status: "failed",
      container_id: null,
      commit_sha: null,
      error: "pull failed",
      job_id: "job_x",
      started_at: null,
      finished_at: new Date(t0 + 2000).toISOString(),
      created_at: new Date(t0 + 1000).toISOString(),
    });
  });

  it("soft-deletes: 200 ok, then 404 everywhere, gone from the list, and the slug is free again", async () => {
    const slug = uniqueSlug("doomed");
    const created = await createApp(alice.token, alice.projectId, { name: "Doomed", slug, image: "nginx" });
    const del = await api(`/apps/${slug}`, { token: alice.token, method: "DELETE" });
    expect(del.status, del.text).toBe(200);
    expect(del.body).toEqual({ ok: true });
    for (const ref of [created.id, slug]) {
      expectApiError(await api(`/apps/${ref}`, { token: alice.token }), 404, "app_not_found");
      expectApiError(await api(`/apps/${ref}`, { token: alice.token, method: "PUT", body: { name: "Zombie" } }), 404, "app_not_found");
      expectApiError(await api(`/apps/${ref}`, { token: alice.token, method: "DELETE" }), 404, "app_not_found");
      expectApiError(await api(`/apps/${ref}/events`, { token: alice.token }), 404, "app_not_found");
      expectApiError(await api(`/apps/${ref}/deployments`, { token: alice.token }), 404, "app_not_found");
    }
    const list = await api(`/projects/${alice.projectId}/apps`, { token: alice.token });
    expect(list.body.map((a: any) => a.id)).not.toContain(created.id);
    expect((await appRow(created.id))!.deleted_at).toEqual(expect.any(Number));

    const reborn = await createApp(alice.token, alice.projectId, { name: "Reborn", slug, image: "nginx" });
    expect(reborn.id).not.toBe(created.id);
    expect((await api(`/apps/${slug}`, { token: alice.token })).body.app.id).toBe(reborn.id);
  });

  it("an unknown app is 404; an unknown project is 404", async () => {
    expectApiError(await api("/apps/app_doesnotexist0000", { token: alice.token }), 404, "app_not_found");
    expectApiError(await api("/apps/no-such-slug-anywhere", { token: alice.token }), 404, "app_not_found");
    expectApiError(await api("/projects/prj_doesnotexist0000/apps", { token: alice.token }), 404, "project_not_found");
    expectApiError(await api("/projects/prj_doesnotexist0000/apps", { token: alice.token, body: { name: "x", image: "nginx" } }), 404, "project_not_found");
  });

  it("an app of a deleted project is gone too", async () => {
    const p = await api("/projects", { token: alice.token, body: { name: "Short lived" } });
    const created = await createApp(alice.token, p.body.id, { name: "Orphan", slug: uniqueSlug("orphan"), image: "nginx" });
    expect((await api(`/projects/${p.body.id}`, { token: alice.token, method: "DELETE" })).status).toBe(200);
    expectApiError(await api(`/apps/${created.id}`, { token: alice.token }), 404, "app_not_found");
    expectApiError(await api(`/apps/${created.slug}`, { token: alice.token, method: "PUT", body: { name: "x" } }), 404, "app_not_found");
  });
});

describe("apps: validation", () => {
  let u: TestUser;

  beforeAll(async () => {
    u = await signUp({ name: "Validator" });
  });

  const create = (body: unknown) => api(`/projects/${u.projectId}/apps`, { token: u.token, body });

  it("rejects bad create bodies with 400 invalid_request, and creates nothing", async () => {
    const bad: Record<string, unknown>[] = [
      {},
      { name: "x" },
      { image: "nginx" },
      { name: "", image: "nginx" },
      { name: "x".repeat(101), image: "nginx" },
      { name: "x", image: "" },
      { name: "x", image: "nginx alpine" },
      { name: "x", image: "nginx\t" },
      { name: "x", image: "n".repeat(513) },
      { name: "x", image: "nginx", internal_port: 0 },
      { name: "x", image: "nginx", internal_port: 65536 },
      { name: "x", image: "nginx", internal_port: 80.5 },
      { name: "x", image: "nginx", internal_port: "80" },
      { name: "x", image: "nginx", cpu_limit: 0.01 },
      { name: "x", image: "nginx", cpu_limit: 65 },
      { name: "x", image: "nginx", memory_limit: 15 },
      { name: "x", image: "nginx", memory_limit: 262145 },
      { name: "x", image: "nginx", memory_limit: 512.5 },
      { name: "x", image: "nginx", gpu_enabled: "yes" },
      { name: "x", image: "nginx", command: "c".repeat(4097) },
      { name: "x", image: "nginx", git_provider: "gitlab" },
      { name: "x", image: "nginx", slug: "Not A Slug" },
      { name: "x", image: "nginx", slug: "-edge" },
      { name: "x", image: "nginx", slug: "edge-" },
      { name: "x", image: "nginx", slug: "under_score" },
      { name: "x", image: "nginx", slug: "a".repeat(60) },
      { name: "x", image: "nginx", slug: "xn--punycode" },
      { name: "x", image: "nginx", env_vars: { "1ABC": "v" } },
      { name: "x", image: "nginx", env_vars: { "BAD-KEY": "v" } },
      { name: "x", image: "nginx", env_vars: { "HAS SPACE": "v" } },
      { name: "x", image: "nginx", env_vars: { "": "v" } },
      { name: "x", image: "nginx", env_vars: { OK: 1 } },
      { name: "x", image: "nginx", env_vars: { OK: null } },
      { name: "x", image: "nginx", env_vars: { OK: "a\u0000b" } },
      { name: "x", image: "nginx", env_vars: ["A=1"] },
      { name: "x", image: "nginx", env_vars: "A=1" },
      { name: "x", image: "nginx", env_vars: { BIG: "v".repeat(32 * 1024 + 1) } },
      { name: "x", image: "nginx", env_vars: { BIG: "é".repeat(16 * 1024 + 1) } },
      { name: "x", image: "nginx", env_vars: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`K${i}`, "v"])) },
      { name: "x", image: "nginx", env_vars: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`K${i}`, "v".repeat(32 * 1024)])) },
    ];
    for (const body of bad) {
      const res = await create(body);
      expect(res.status, `${JSON.stringify(body).slice(0, 120)}: ${res.text.slice(0, 300)}`).toBe(400);
      expect(res.body.error.code).toBe("invalid_request");
      expect(Array.isArray(res.body.error.details.issues)).toBe(true);
    }
    expectApiError(await api(`/projects/${u.projectId}/apps`, { token: u.token, raw: "{nope" }), 400, "invalid_json");
    expect((await api(`/projects/${u.projectId}/apps`, { token: u.token })).body).toEqual([]);
  });

  it("a rejected value is not echoed in the error", async () => {
    const secret = "super-secret-value-" + "x".repeat(32 * 1024);
    const res = await create({ name: "x", image: "nginx", env_vars: { BAD: secret, "2BAD": "also-secret-value" } });
    expect(res.status).toBe(400);
    expect(res.text).not.toContain("super-secret-value");
    expect(res.text).not.toContain("also-secret-value");
  });

  it("accepts the limits themselves", async () => {
    const app = await createApp(u.token, u.projectId, {
      name: "n".repeat(100),
      slug: uniqueSlug("limits").padEnd(59, "z").slice(0, 59),
      image: "i".repeat(512),
      internal_port: 65535,
      cpu_limit: 64,
      memory_limit: 262144,
      command: "c".repeat(4096),
      git_provider: "custom",
      git_repo_url: "https://git.example.com/acme/app.git",
      env_vars: { _UNDERSCORE: "", lower_case: "x", BIG: "v".repeat(32 * 1024), ...Object.fromEntries(Array.from({ length: 97 }, (_, i) => [`K${i}`, String(i)])) },
    });
    expect(Object.keys(app.env_vars)).toHaveLength(100);
    expect(app.slug).toHaveLength(59);
    const low = await createApp(u.token, u.projectId, { name: "low", image: "nginx", internal_port: 1, cpu_limit: 0.05, memory_limit: 16 });
    expect(low).toMatchObject({ internal_port: 1, cpu_limit: 0.05, memory_limit: 16 });
  });

  it("rejects bad update bodies", async () => {
    const app = await createApp(u.token, u.projectId, { name: "upd", image: "nginx" });
    for (const body of [
      { name: "" },
      { image: "has space" },
      { internal_port: -1 },
      { internal_port: 70000 },
      { cpu_limit: 100 },
      { memory_limit: 1 },
      { env_vars: { "bad key": "v" } },
      { env_vars: { OK: "v".repeat(33 * 1024) } },
      { git_provider: "bitbucket" },
    ]) {
      expectApiError(await api(`/apps/${app.id}`, { token: u.token, method: "PUT", body }), 400, "invalid_request");
    }
    expectApiError(await api(`/apps/${app.id}`, { token: u.token, method: "PUT", raw: "nope" }), 400, "invalid_json");
    expect((await api(`/apps/${app.id}`, { token: u.token })).body.app).toEqual(app);
  });
});

describe("apps: env vars are write-only and encrypted at rest", () => {
  let t: Team;
  let projectId: string;

  beforeAll(async () => {
    t = await orgWithEveryRole();
    projectId = (await teamProject(t, "Secrets")).id;
  });

  it("never answers a value: create, get, list, update; the audit log and events hold names only; D1 holds ciphertext that decrypts back", async () => {
    const created = await api(`/projects/${projectId}/apps`, {
      token: t.developer.token,
      body: { name: "Secretive", slug: uniqueSlug("secretive"), image: "nginx", env_vars: { DATABASE_URL: SECRET_A, API_TOKEN: SECRET_B } },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body.env_vars).toEqual({ DATABASE_URL: MASK, API_TOKEN: MASK });
    const id = created.body.id;

    const texts = [created.text];
    texts.push((await api(`/apps/${id}`, { token: t.viewer.token })).text);
    texts.push((await api(`/apps/${created.body.slug}`, { token: t.owner.token })).text);
    texts.push((await api(`/projects/${projectId}/apps`, { token: t.developer.token })).text);

    const rotated = "rotated-" + SECRET_B;
    const put = await api(`/apps/${id}`, { token: t.developer.token, method: "PUT", body: { env_vars: { DATABASE_URL: SECRET_A, NEW_ONE: rotated } } });
    expect(put.status, put.text).toBe(200);
    expect(put.body.env_vars).toEqual({ DATABASE_URL: MASK, NEW_ONE: MASK });
    texts.push(put.text);
    texts.push((await api(`/apps/${id}/events`, { token: t.developer.token })).text);
    texts.push((await api(`/apps/${id}/deployments`, { token: t.developer.token })).text);
    const audit = await api(`/org/${t.slug}/audit`, { token: t.owner.token });
    expect(audit.status, audit.text).toBe(200);
    texts.push(audit.text);
    for (const text of texts) {
      for (const secret of [SECRET_A, SECRET_B, rotated, "hunter2", "sk_live_"]) expect(text).not.toContain(secret);
    }
    const appAudit = (action: string) => audit.body.events.filter((e: any) => e.target?.id === id && e.action === action);
    expect(appAudit("app.create")).toHaveLength(1);
    expect(appAudit("app.create")[0].metadata).toMatchObject({ name: "Secretive", env_keys: ["API_TOKEN", "DATABASE_URL"] });
    expect(appAudit("app.update")).toHaveLength(1);
    expect(appAudit("app.update")[0].metadata).toEqual({ fields: ["env_vars"], env_keys: ["DATABASE_URL", "NEW_ONE"] });

    // At rest: ciphertext only, and it decrypts to what was sent.
    const row = (await appRow(id))!;
    expect(JSON.stringify(row)).not.toContain("hunter2");
    expect(JSON.stringify(row)).not.toContain(rotated);
    expect(row.env_ciphertext).toMatch(/^v1\.[A-Za-z0-9+/=]+\.[A-Za-z0-9+/=]+$/);
    expect(JSON.parse(row.env_keys)).toEqual(["DATABASE_URL", "NEW_ONE"]);
    expect(await decryptJson(env, row.env_ciphertext)).toEqual({ DATABASE_URL: SECRET_A, NEW_ONE: rotated });
    const auditRows = await env.DB.prepare("SELECT metadata FROM audit_event WHERE target_id = ?").bind(id).all();
    expect(JSON.stringify(auditRows.results)).not.toContain("hunter2");
    const eventRows = await env.DB.prepare("SELECT data, message FROM app_event WHERE app_id = ?").bind(id).all();
    expect(JSON.stringify(eventRows.results)).not.toContain("hunter2");
  });

  it("a value sent back masked keeps what is stored; an unchanged set is not an update", async () => {
    const created = await createApp(t.developer.token, projectId, {
      name: "Roundtrip",
      slug: uniqueSlug("roundtrip"),
      image: "nginx",
      env_vars: { DATABASE_URL: SECRET_A, API_TOKEN: SECRET_B },
    });
    const before = (await appRow(created.id))!;
    // What a client read, sent back as is: nothing changes.
    const same = await api(`/apps/${created.id}`, { token: t.developer.token, method: "PUT", body: created });
    expect(same.status, same.text).toBe(200);
    expect((await appRow(created.id))!.env_ciphertext).toBe(before.env_ciphertext);
    expect((await api(`/apps/${created.id}/events`, { token: t.developer.token })).body).toHaveLength(1);
    // One value changed, one kept by its mask, one dropped.
    const put = await api(`/apps/${created.id}`, { token: t.developer.token, method: "PUT", body: { env_vars: { DATABASE_URL: MASK, EXTRA: "1" } } });
    expect(put.body.env_vars).toEqual({ DATABASE_URL: MASK, EXTRA: MASK });
    expect(await decryptJson(env, (await appRow(created.id))!.env_ciphertext)).toEqual({ DATABASE_URL: SECRET_A, EXTRA: "1" });
    // An empty set clears them all.
    const cleared = await api(`/apps/${created.id}`, { token: t.developer.token, method: "PUT", body: { env_vars: {} } });
    expect(cleared.body.env_vars).toEqual({});
    const row = (await appRow(created.id))!;
    expect(row.env_ciphertext).toBeNull();
    expect(JSON.parse(row.env_keys)).toEqual([]);
  });

  it("names that are also Object's own (constructor, toString) are plain variables; __proto__ is refused, not dropped", async () => {
    const refused = `{"name":"Protos","image":"nginx","env_vars":{"__proto__":"p-value","OK":"1"}}`;
    const bad = await api(`/projects/${projectId}/apps`, { token: t.developer.token, raw: refused });
    expectApiError(bad, 400, "invalid_request");
    expect(bad.body.error.details.issues[0].path).toBe("env_vars.__proto__");
    expect(bad.text).not.toContain("p-value");

    const raw = `{"name":"Protos","image":"nginx","env_vars":{"constructor":"c-value","toString":"t-value"}}`;
    const res = await api(`/projects/${projectId}/apps`, { token: t.developer.token, raw });
    expect(res.status, res.text).toBe(201);
    expect(res.body.env_vars).toEqual({ constructor: MASK, toString: MASK });
    const stored = await decryptJson<Record<string, string>>(env, (await appRow(res.body.id))!.env_ciphertext);
    expect(Object.entries(stored).sort()).toEqual([["constructor", "c-value"], ["toString", "t-value"]]);
    // Masked values sent back keep them; a mask for a name never stored is kept as sent.
    const put = await api(`/apps/${res.body.id}`, {
      token: t.developer.token,
      method: "PUT",
      raw: `{"env_vars":{"constructor":"${MASK}","hasOwnProperty":"${MASK}"}}`,
    });
    expect(put.status, put.text).toBe(200);
    const after = await decryptJson<Record<string, string>>(env, (await appRow(res.body.id))!.env_ciphertext);
    expect(Object.entries(after).sort()).toEqual([["constructor", "c-value"], ["hasOwnProperty", MASK]]);
    const putProto = await api(`/apps/${res.body.id}`, { token: t.developer.token, method: "PUT", raw: `{"env_vars":{"__proto__":"x"}}` });
    expectApiError(putProto, 400, "invalid_request");
  });

  it("env vars that no longer decrypt (key changed) can be replaced in full, not kept by mask", async () => {
    const created = await createApp(t.developer.token, projectId, { name: "Rekeyed", slug: uniqueSlug("rekeyed"), image: "nginx", env_vars: { A: "1", B: "2" } });
    const foreign = await encryptJson({ ENVIRONMENT: "production", ENCRYPTION_KEY: "a key this deployment never had" }, { A: "1", B: "2" });
    await env.DB.prepare("UPDATE app SET env_ciphertext = ? WHERE id = ?").bind(foreign, created.id).run();
    // Reading still works: only names are shown.
    expect((await api(`/apps/${created.id}`, { token: t.developer.token })).body.app.env_vars).toEqual({ A: MASK, B: MASK });
    expectApiError(await api(`/apps/${created.id}`, { token: t.developer.token, method: "PUT", body: { env_vars: { A: MASK, B: "3" } } }), 409, "env_vars_unreadable");
    const put = await api(`/apps/${created.id}`, { token: t.developer.token, method: "PUT", body: { env_vars: { A: "1", B: "3" } } });
    expect(put.status, put.text).toBe(200);
    expect(await decryptJson(env, (await appRow(created.id))!.env_ciphertext)).toEqual({ A: "1", B: "3" });
  });

  it("encrypts with a fresh IV each time and refuses altered or foreign ciphertext", async () => {
    const a = await encryptJson(env, { K: "v" });
    const b = await encryptJson(env, { K: "v" });
    expect(a).not.toBe(b);
    expect(await decryptJson(env, a)).toEqual({ K: "v" });
    const [v, iv, ct] = a.split(".");
    const flipped = ct!.startsWith("A") ? "B" + ct!.slice(1) : "A" + ct!.slice(1);
    await expect(decryptJson(env, `${v}.${iv}.${flipped}`)).rejects.toThrow(/decrypt/);
    await expect(decryptJson(env, `v2.${iv}.${ct}`)).rejects.toThrow(/format/);
    await expect(decryptJson(env, "garbage")).rejects.toThrow(/format/);
    const other = { ...env, ENCRYPTION_KEY: "another key entirely" };
    await expect(decryptJson(other, a)).rejects.toThrow(/another ENCRYPTION_KEY/);
  });

  it("takes a base64 32-byte key or any string; production without a key refuses", async () => {
    const raw = crypto.getRandomValues(new Uint8Array(32));
    const b64 = btoa(String.fromCharCode(...raw));
    const withRaw = { ENVIRONMENT: "production", ENCRYPTION_KEY: b64 };
    const sealed = await encryptJson(withRaw, { A: "1" });
    expect(await decryptJson(withRaw, sealed)).toEqual({ A: "1" });
    // The base64 key is used as the AES key itself: WebCrypto with those bytes opens it.
    const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["decrypt"]);
    const [, iv, ct] = sealed.split(".");
    const bytes = (s: string) => Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0));
    const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: bytes(iv!) }, key, bytes(ct!));
    expect(JSON.parse(new TextDecoder().decode(plain))).toEqual({ A: "1" });

    const passphrase = { ENVIRONMENT: "production", ENCRYPTION_KEY: "correct horse battery staple" };
    expect(await decryptJson(passphrase, await encryptJson(passphrase, ["x"]))).toEqual(["x"]);
    await expect(decryptJson(withRaw, await encryptJson(passphrase, ["x"]))).rejects.toThrow();

    await expect(encryptJson({ ENVIRONMENT: "production" }, {})).rejects.toThrow(/ENCRYPTION_KEY is not set/);
    await expect(decryptJson({ ENVIRONMENT: "production" }, sealed)).rejects.toThrow(/ENCRYPTION_KEY is not set/);
    // Development and tests share a built-in key.
    expect(await decryptJson({ ENVIRONMENT: "development" }, await encryptJson({ ENVIRONMENT: "test" }, 1))).toBe(1);
  });
});

describe("apps: slugs are global", () => {
  it("a slug taken in one org is 409 slug_taken in another, also under a race", async () => {
    const a = await signUp({ name: "Slug A" });
    const b = await signUp({ name: "Slug B" });
    const slug = uniqueSlug("shared");
    await createApp(a.token, a.projectId, { name: "First", slug, image: "nginx" });
    const clash = await api(`/projects/${b.projectId}/apps`, { token: b.token, body: { name: "Second", slug, image: "nginx" } });
    expectApiError(clash, 409, "slug_taken");
    expect(clash.body.error.message).toContain(slug);
    expect((await api(`/projects/${b.projectId}/apps`, { token: b.token })).body).toEqual([]);

    // Two creates of one slug at once: one wins, the other is 409 (never a 500).
    const raced = uniqueSlug("race");
    const results = await Promise.all([
      api(`/projects/${a.projectId}/apps`, { token: a.token, body: { name: "R1", slug: raced, image: "nginx" } }),
      api(`/projects/${b.projectId}/apps`, { token: b.token, body: { name: "R2", slug: raced, image: "nginx" } }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    const n = await env.DB.prepare("SELECT count(*) AS n FROM app WHERE slug = ? AND deleted_at IS NULL").bind(raced).first<{ n: number }>();
    expect(n!.n).toBe(1);

    // Derived slugs race too, and both get one.
    const name = `Same Name ${uniqueSlug("n")}`;
    const derived = await Promise.all([
      api(`/projects/${a.projectId}/apps`, { token: a.token, body: { name, image: "nginx" } }),
      api(`/projects/${b.projectId}/apps`, { token: b.token, body: { name, image: "nginx" } }),
    ]);
    expect(derived.map((r) => r.status)).toEqual([201, 201]);
    expect(derived[0]!.body.slug).not.toBe(derived[1]!.body.slug);
  });
});

describe("apps: who may do what", () => {
  let t: Team;
  let p1: string;
  let p2: string;
  let app1: any;
  let app2: any;

  beforeAll(async () => {
    t = await orgWithEveryRole();
    p1 = (await teamProject(t, "Roles one")).id;
    p2 = (await teamProject(t, "Roles two")).id;
    app1 = await createApp(t.owner.token, p1, { name: "One", slug: uniqueSlug("one"), image: "nginx", env_vars: { K: "v" } });
    app2 = await createApp(t.owner.token, p2, { name: "Two", slug: uniqueSlug("two"), image: "nginx" });
  });

  it("401 without a valid credential on every route", async () => {
    const routes: [string, string, unknown?][] = [
      ["GET", `/projects/${p1}/apps`],
      ["POST", `/projects/${p1}/apps`, { name: "x", image: "nginx" }],
      ["GET", `/apps/${app1.id}`],
      ["PUT", `/apps/${app1.id}`, { name: "x" }],
      ["DELETE", `/apps/${app1.slug}`],
      ["GET", `/apps/${app1.id}/deployments`],
      ["GET", `/apps/${app1.slug}/events`],
    ];
    for (const [method, path, body] of routes) {
      for (const token of [undefined, "not-a-session", "pak_" + "0".repeat(64), "dkp_" + "0".repeat(64)]) {
        const res = await api(path, { method, body, token });
        expect(res.status, `${method} ${path} with ${token}: ${res.text}`).toBe(401);
        expect(res.body.error.code).toBe("unauthorized");
      }
    }
    expect((await api(`/apps/${app1.id}`, { token: t.owner.token })).body.app.name).toBe("One");
  });

  it("developer and admin create, update and delete", async () => {
    for (const who of [t.developer, t.admin]) {
      const created = await createApp(who.token, p1, { name: "By member", slug: uniqueSlug("member"), image: "nginx" });
      const put = await api(`/apps/${created.id}`, { token: who.token, method: "PUT", body: { image: "nginx:2" } });
      expect(put.status, put.text).toBe(200);
      const del = await api(`/apps/${created.slug}`, { token: who.token, method: "DELETE" });
      expect(del.status, del.text).toBe(200);
    }
  });

  it("a viewer reads everything and writes nothing (403)", async () => {
    const v = t.viewer.token;
    expect((await api(`/projects/${p1}/apps`, { token: v })).status).toBe(200);
    for (const ref of [app1.id, app1.slug]) {
      expect((await api(`/apps/${ref}`, { token: v })).status).toBe(200);
      expect((await api(`/apps/${ref}/deployments`, { token: v })).status).toBe(200);
      expect((await api(`/apps/${ref}/events`, { token: v })).status).toBe(200);
      expectApiError(await api(`/apps/${ref}`, { token: v, method: "PUT", body: { name: "Viewer was here" } }), 403, "forbidden");
      expectApiError(await api(`/apps/${ref}`, { token: v, method: "DELETE" }), 403, "forbidden");
    }
    expectApiError(await api(`/projects/${p1}/apps`, { token: v, body: { name: "Nope", image: "nginx" } }), 403, "forbidden");
    const got = await api(`/apps/${app1.id}`, { token: t.owner.token });
    expect(got.body.app.name).toBe("One");
    expect((await api(`/projects/${p1}/apps`, { token: t.owner.token })).body.map((a: any) => a.name)).not.toContain("Nope");
  });

  it("a read-only pak_ key reads but may not write; deploy and full keys may", async () => {
    const ro = await createOrgKey(t.owner, t.slug, "read-only");
    expect((await api(`/apps/${app1.slug}`, { token: ro.key })).status).toBe(200);
    expect((await api(`/projects/${p1}/apps`, { token: ro.key })).status).toBe(200);
    expectApiError(await api(`/projects/${p1}/apps`, { token: ro.key, body: { name: "ro", image: "nginx" } }), 403, "forbidden");
    expectApiError(await api(`/apps/${app1.id}`, { token: ro.key, method: "PUT", body: { name: "ro" } }), 403, "forbidden");
    expectApiError(await api(`/apps/${app1.id}`, { token: ro.key, method: "DELETE" }), 403, "forbidden");

    for (const scope of ["deploy", "full"] as const) {
      const key = await createOrgKey(t.owner, t.slug, scope);
      const created = await createApp(key.key, p1, { name: `By ${scope} key`, slug: uniqueSlug(scope), image: "nginx" });
      expect((await api(`/apps/${created.id}`, { token: key.key, method: "PUT", body: { cpu_limit: 1 } })).status).toBe(200);
      expect((await api(`/apps/${created.id}`, { token: key.key, method: "DELETE" })).status).toBe(200);
    }
  });

  it("a project-bound pak_ key works on its project's apps and is 403 on a sibling project's", async () => {
    const res = await api(`/projects/${p1}/api-keys`, { token: t.owner.token, body: { name: "p1 deployer", scope: "deploy" } });
    expect(res.status, res.text).toBe(201);
    const key: string = res.body.key;
    expect((await api(`/apps/${app1.slug}`, { token: key })).status).toBe(200);
    const mine = await createApp(key, p1, { name: "Bound", slug: uniqueSlug("bound"), image: "nginx" });
    expect((await api(`/apps/${mine.id}`, { token: key, method: "PUT", body: { name: "Bound 2" } })).status).toBe(200);

    for (const ref of [app2.id, app2.slug]) {
      expectApiError(await api(`/apps/${ref}`, { token: key }), 403, "forbidden");
      expectApiError(await api(`/apps/${ref}`, { token: key, method: "PUT", body: { name: "Hijacked" } }), 403, "forbidden");
      expectApiError(await api(`/apps/${ref}`, { token: key, method: "DELETE" }), 403, "forbidden");
      expectApiError(await api(`/apps/${ref}/events`, { token: key }), 403, "forbidden");
      expectApiError(await api(`/apps/${ref}/deployments`, { token: key }), 403, "forbidden");
    }
    expectApiError(await api(`/projects/${p2}/apps`, { token: key }), 403, "forbidden");
    expectApiError(await api(`/projects/${p2}/apps`, { token: key, body: { name: "Sneaky", image: "nginx" } }), 403, "forbidden");
    expect((await api(`/apps/${app2.id}`, { token: t.owner.token })).body.app.name).toBe("Two");
  });

  it("another org's user, and another org's key, get 404 on every app route, by id and by slug; nothing changes", async () => {
    const mallory = await signUp({ name: "Mallory" });
    const malloryKey = await createOrgKey(mallory, mallory.orgSlug, "full");
    for (const token of [mallory.token, malloryKey.key]) {
      expectApiError(await api(`/projects/${p1}/apps`, { token }), 404, "project_not_found");
      expectApiError(await api(`/projects/${p1}/apps`, { token, body: { name: "Planted", image: "nginx" } }), 404, "project_not_found");
      for (const ref of [app1.id, app1.slug]) {
        expectApiError(await api(`/apps/${ref}`, { token }), 404, "app_not_found");
        expectApiError(await api(`/apps/${ref}`, { token, method: "PUT", body: { name: "Mine now", env_vars: {} } }), 404, "app_not_found");
        expectApiError(await api(`/apps/${ref}`, { token, method: "DELETE" }), 404, "app_not_found");
        expectApiError(await api(`/apps/${ref}/deployments`, { token }), 404, "app_not_found");
        expectApiError(await api(`/apps/${ref}/events`, { token }), 404, "app_not_found");
      }
    }
    // The same answer as for an app that does not exist.
    const missing = await api("/apps/app_doesnotexist0000", { token: mallory.token });
    const hidden = await api(`/apps/${app1.id}`, { token: mallory.token });
    expect(answerOf(hidden)).toEqual(answerOf(missing));
    const got = await api(`/apps/${app1.id}`, { token: t.owner.token });
    expect(got.body.app).toMatchObject({ name: "One", env_vars: { K: MASK } });
    expect((await api(`/projects/${p1}/apps`, { token: t.owner.token })).body.map((a: any) => a.name)).not.toContain("Planted");
  });
});
