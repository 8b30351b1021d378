/** Projects both ways in: Dockup/Suble `/projects[/{id}]` and backlex `/org/{slug}/projects[/{projectSlug}]`. */
import { beforeAll, describe, expect, it } from "vitest";
import { api, createOrgKey, orgWithEveryRole, signUp, type TestUser } from "./helpers";

type Team = Awaited<ReturnType<typeof orgWithEveryRole>>;

const ids = (list: any[]) => list.map((p: any) => p.id);

function expectError(res: { status: number; body: any; text: string }, status: number, code: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.body.error.code, res.text).toBe(code);
  expect(typeof res.body.error.message).toBe("string");
}

describe("Dockup/Suble /projects", () => {
  let alice: TestUser;

  beforeAll(async () => {
    alice = await signUp({ name: "Alice" });
  });

  it("lists the default project made at sign-up, with the caller's role", async () => {
    const res = await api("/projects", { token: alice.token });
    expect(res.status, res.text).toBe(200);
    expect(Array.isArray(res.body)).toBe(true);
    expect(res.body).toHaveLength(1);
    expect(res.body[0]).toMatchObject({ id: alice.projectId, name: "My Project", status: "active", role: "owner" });
    expect(res.body[0].id).toMatch(/^prj_/);
  });

  it("creates a project in the personal org, derives a slug, and returns it with 201", async () => {
    const res = await api("/projects", { token: alice.token, body: { name: "  Web Shop  " } });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ name: "Web Shop", slug: "web-shop", status: "active", environment: "production", role: "owner", memberCount: 1 });
    expect(res.body.id).toMatch(/^prj_/);
    expect(res.body.uid).toBe(res.body.id);
    const orgs = await api("/orgs", { token: alice.token });
    expect(res.body.org_slug).toBe(alice.orgSlug);
    expect(res.body.org_id).toBe(orgs.body.orgs[0].id);

    const list = await api("/projects", { token: alice.token });
    expect(ids(list.body)).toContain(res.body.id);
    const got = await api(`/projects/${res.body.id}`, { token: alice.token });
    expect(got.status, got.text).toBe(200);
    expect(got.body).toMatchObject({ id: res.body.id, name: "Web Shop", slug: "web-shop", role: "owner", memberCount: 1 });
  });

  it("keeps Suble's category and environment on create", async () => {
    const res = await api("/projects", { token: alice.token, body: { name: "Stage box", category: "personal", environment: "staging" } });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ category: "personal", environment: "staging" });
  });

  it("takes an explicit slug and answers 409 slug_taken when it is in use", async () => {
    const first = await api("/projects", { token: alice.token, body: { name: "API", slug: "api-svc" } });
    expect(first.status, first.text).toBe(201);
    expect(first.body.slug).toBe("api-svc");
    const again = await api("/projects", { token: alice.token, body: { name: "Another API", slug: "api-svc" } });
    expectError(again, 409, "slug_taken");
    expect(again.body.error.message).toContain("api-svc");
    // The clash did not create anything.
    const list = await api("/projects", { token: alice.token });
    expect(list.body.filter((p: any) => p.slug === "api-svc")).toHaveLength(1);
  });

  it("gives a derived slug a suffix instead of failing", async () => {
    const a = await api("/projects", { token: alice.token, body: { name: "Twin" } });
    const b = await api("/projects", { token: alice.token, body: { name: "Twin" } });
    expect(a.status, a.text).toBe(201);
    expect(b.status, b.text).toBe(201);
    expect(a.body.slug).toBe("twin");
    expect(b.body.slug).not.toBe("twin");
    expect(b.body.slug).toMatch(/^twin-/);
  });

  it("rejects an invalid body with 400 invalid_name (Suble) or invalid_request", async () => {
    expectError(await api("/projects", { token: alice.token, body: { name: "" } }), 400, "invalid_name");
    expectError(await api("/projects", { token: alice.token, body: {} }), 400, "invalid_name");
    expectError(await api("/projects", { token: alice.token, body: { name: "x", slug: "Not A Slug" } }), 400, "invalid_request");
    expectError(await api("/projects", { token: alice.token, raw: "{nope" }), 400, "invalid_json");
  });

  it("renames and changes environment with PATCH; null name leaves it as is", async () => {
    const created = await api("/projects", { token: alice.token, body: { name: "Renamable" } });
    const id = created.body.id;
    const patched = await api(`/projects/${id}`, { token: alice.token, method: "PATCH", body: { name: "Renamed", environment: "development" } });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body).toMatchObject({ id, name: "Renamed", environment: "development", slug: created.body.slug });
    const nulled = await api(`/projects/${id}`, { token: alice.token, method: "PATCH", body: { name: null } });
    expect(nulled.status, nulled.text).toBe(200);
    expect(nulled.body.name).toBe("Renamed");
    const got = await api(`/projects/${id}`, { token: alice.token });
    expect(got.body).toMatchObject({ name: "Renamed", environment: "development" });
    expectError(await api(`/projects/${id}`, { token: alice.token, method: "PATCH", body: { environment: "moon" } }), 400, "invalid_request");
  });

  it("soft-deletes: 200 ok, then gone from every list and 404 everywhere", async () => {
    const created = await api("/projects", { token: alice.token, body: { name: "Doomed", slug: "doomed" } });
    const id = created.body.id;
    const del = await api(`/projects/${id}`, { token: alice.token, method: "DELETE" });
    expect(del.status, del.text).toBe(200);
    expect(del.body).toEqual({ ok: true });

    expect(ids((await api("/projects", { token: alice.token })).body)).not.toContain(id);
    const orgList = await api(`/org/${alice.orgSlug}/projects`, { token: alice.token });
    expect(ids(orgList.body.projects)).not.toContain(id);
    const overview = await api(`/org/${alice.orgSlug}/overview`, { token: alice.token });
    expect(ids(overview.body.projects)).not.toContain(id);

    expectError(await api(`/projects/${id}`, { token: alice.token }), 404, "not_found");
    expectError(await api(`/projects/${id}`, { token: alice.token, method: "PATCH", body: { name: "Zombie" } }), 404, "not_found");
    expectError(await api(`/projects/${id}`, { token: alice.token, method: "DELETE" }), 404, "not_found");
    expectError(await api(`/org/${alice.orgSlug}/projects/doomed`, { token: alice.token }), 404, "PROJECT_NOT_FOUND");

    // The slug is free again.
    const reborn = await api("/projects", { token: alice.token, body: { name: "Doomed again", slug: "doomed" } });
    expect(reborn.status, reborn.text).toBe(201);
    expect(reborn.body.id).not.toBe(id);
  });

  it("answers 401 unauthorized without a valid credential", async () => {
    const routes: [string, string, unknown?][] = [
      ["GET", "/projects"],
      ["POST", "/projects", { name: "x" }],
      ["GET", `/projects/${alice.projectId}`],
      ["PATCH", `/projects/${alice.projectId}`, { name: "x" }],
      ["DELETE", `/projects/${alice.projectId}`],
    ];
    for (const [method, path, body] of routes) {
      for (const token of [undefined, "not-a-session", "pak_" + "0".repeat(64), "dkp_" + "0".repeat(64)]) {
        const res = await api(path, { method, body, token });
        expect(res.status, `${method} ${path} with ${token}: ${res.text}`).toBe(401);
        expect(res.body.error.code).toBe("unauthorized");
      }
    }
    // Nothing happened to the project.
    const got = await api(`/projects/${alice.projectId}`, { token: alice.token });
    expect(got.body.name).toBe("My Project");
  });

  it("hides another tenant's project: 404 on every route, and nothing changes", async () => {
    const bob = await signUp({ name: "Bob" });
    const id = alice.projectId;
    expectError(await api(`/projects/${id}`, { token: bob.token }), 404, "not_found");
    expectError(await api(`/projects/${id}`, { token: bob.token, method: "PATCH", body: { name: "Mine now" } }), 404, "not_found");
    expectError(await api(`/projects/${id}`, { token: bob.token, method: "DELETE" }), 404, "not_found");
    expect(ids((await api("/projects", { token: bob.token })).body)).toEqual([bob.projectId]);
    // Creating into someone else's org by slug or id is 404 too.
    expectError(await api("/projects", { token: bob.token, body: { name: "Sneaky", org: alice.orgSlug } }), 404, "not_found");
    const got = await api(`/projects/${id}`, { token: alice.token });
    expect(got.status).toBe(200);
    expect(got.body.name).toBe("My Project");
  });

  it("a nonexistent project id is 404", async () => {
    expectError(await api(`/projects/prj_doesnotexist0000`, { token: alice.token }), 404, "not_found");
  });
});

describe("/projects inside a team org", () => {
  let t: Team;

  beforeAll(async () => {
    t = await orgWithEveryRole();
  });

  it("creates in the named org; the list spans every org with the role in each", async () => {
    const res = await api("/projects", { token: t.developer.token, body: { name: "Team app", org: t.slug } });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ org_id: t.orgId, org_slug: t.slug, role: "developer", memberCount: 4 });

    const devList = await api("/projects", { token: t.developer.token });
    const inTeam = devList.body.find((p: any) => p.id === res.body.id);
    expect(inTeam.role).toBe("developer");
    const personal = devList.body.find((p: any) => p.id === t.developer.projectId);
    expect(personal.role).toBe("owner");

    const filtered = await api(`/projects?org=${t.slug}`, { token: t.developer.token });
    expect(filtered.status, filtered.text).toBe(200);
    expect(ids(filtered.body)).toEqual([res.body.id]);
    const byId = await api(`/projects?org=${t.orgId}`, { token: t.developer.token });
    expect(ids(byId.body)).toEqual([res.body.id]);
    expectError(await api(`/projects?org=${t.owner.orgSlug}`, { token: t.developer.token }), 404, "not_found");

    for (const [who, role] of [
      [t.owner, "owner"],
      [t.admin, "admin"],
      [t.viewer, "viewer"],
    ] as const) {
      const got = await api(`/projects/${res.body.id}`, { token: who.token });
      expect(got.status, got.text).toBe(200);
      expect(got.body.role).toBe(role);
    }
  });

  it("a viewer cannot create (403) and nothing is created", async () => {
    const res = await api("/projects", { token: t.viewer.token, body: { name: "Viewer app", org: t.slug } });
    expectError(res, 403, "forbidden");
    const orgRes = await api(`/org/${t.slug}/projects`, { token: t.viewer.token, body: { name: "Viewer app" } });
    expectError(orgRes, 403, "FORBIDDEN");
    const list = await api(`/org/${t.slug}/projects`, { token: t.owner.token });
    expect(list.body.projects.map((p: any) => p.name)).not.toContain("Viewer app");
  });

  it("PATCH needs project:update, DELETE needs project:delete", async () => {
    const res = await api("/projects", { token: t.owner.token, body: { name: "Perms", org: t.slug } });
    const id = res.body.id;
    expectError(await api(`/projects/${id}`, { token: t.viewer.token, method: "PATCH", body: { name: "Viewer was here" } }), 403, "forbidden");
    const dev = await api(`/projects/${id}`, { token: t.developer.token, method: "PATCH", body: { name: "Dev was here" } });
    expect(dev.status, dev.text).toBe(200);
    expect(dev.body.name).toBe("Dev was here");
    expectError(await api(`/projects/${id}`, { token: t.developer.token, method: "DELETE" }), 403, "forbidden");
    expectError(await api(`/projects/${id}`, { token: t.viewer.token, method: "DELETE" }), 403, "forbidden");
    expect((await api(`/projects/${id}`, { token: t.owner.token })).status).toBe(200);
    const del = await api(`/projects/${id}`, { token: t.admin.token, method: "DELETE" });
    expect(del.status, del.text).toBe(200);
    expect((await api(`/projects/${id}`, { token: t.owner.token })).status).toBe(404);
  });
});

describe("backlex /org/{slug}/projects", () => {
  let t: Team;

  beforeAll(async () => {
    t = await orgWithEveryRole();
  });

  async function create(name: string, who: TestUser = t.owner, extra: Record<string, unknown> = {}) {
    const res = await api(`/org/${t.slug}/projects`, { token: who.token, body: { name, ...extra } });
    expect(res.status, res.text).toBe(201);
    return res.body.project;
  }

  it("creates with region and environment, wrapped in {project}", async () => {
    const p = await create("Edge API", t.developer, { region: "ams", environment: "staging", dbType: "d1" });
    expect(p).toMatchObject({ name: "Edge API", slug: "edge-api", region: "ams", primaryRegion: "ams", environment: "staging", status: "active", org_slug: t.slug, role: "developer" });
    // Default region comes from the org.
    const q = await create("Default region");
    expect(q.region).toBe("fra");
  });

  it("rejects bad input with 422 VALIDATION (backlex)", async () => {
    for (const body of [{ name: "x" }, { name: "Good name", region: "mars" }, { name: "Good name", dbType: "postgres" }, {}]) {
      expectError(await api(`/org/${t.slug}/projects`, { token: t.owner.token, body }), 422, "VALIDATION");
    }
  });

  it("gives a second project with the same name a new slug", async () => {
    const a = await create("Same Name");
    const b = await create("Same Name");
    expect(a.slug).toBe("same-name");
    expect(b.slug).not.toBe(a.slug);
    const got = await api(`/org/${t.slug}/projects/${b.slug}`, { token: t.viewer.token });
    expect(got.body.project.id).toBe(b.id);
  });

  it("lists the org's projects to every role, and only that org's", async () => {
    const p = await create("Listed");
    for (const who of [t.owner, t.admin, t.developer, t.viewer]) {
      const res = await api(`/org/${t.slug}/projects`, { token: who.token });
      expect(res.status, res.text).toBe(200);
      expect(ids(res.body.projects)).toContain(p.id);
      expect(res.body.projects.every((x: any) => x.org_id === t.orgId && x.org_slug === t.slug)).toBe(true);
      expect(ids(res.body.projects)).not.toContain(who.projectId);
    }
  });

  it("GET one project: the project, the caller's role, and latestTemplateVersion", async () => {
    const p = await create("Readable");
    const res = await api(`/org/${t.slug}/projects/${p.slug}`, { token: t.viewer.token });
    expect(res.status, res.text).toBe(200);
    expect(res.body.project).toMatchObject({ id: p.id, slug: p.slug, name: "Readable", role: "viewer" });
    expect(res.body.latestTemplateVersion).toBeNull();
    expectError(await api(`/org/${t.slug}/projects/no-such-project`, { token: t.owner.token }), 404, "PROJECT_NOT_FOUND");
  });

  it("PATCH renames (developer and up; viewer 403)", async () => {
    const p = await create("Before");
    expectError(await api(`/org/${t.slug}/projects/${p.slug}`, { token: t.viewer.token, method: "PATCH", body: { name: "Viewer" } }), 403, "FORBIDDEN");
    const res = await api(`/org/${t.slug}/projects/${p.slug}`, { token: t.developer.token, method: "PATCH", body: { name: "After", environment: "development" } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.project).toMatchObject({ id: p.id, name: "After", environment: "development", slug: p.slug });
    const got = await api(`/projects/${p.id}`, { token: t.owner.token });
    expect(got.body).toMatchObject({ name: "After", environment: "development" });
  });

  it("pause and resume change the state, need project:lifecycle, and repeat harmlessly", async () => {
    const p = await create("Lifecycle");
    const path = `/org/${t.slug}/projects/${p.slug}`;
    for (const who of [t.developer, t.viewer]) {
      expectError(await api(`${path}/pause`, { token: who.token, method: "POST" }), 403, "FORBIDDEN");
    }
    expect((await api(path, { token: t.owner.token })).body.project.status).toBe("active");

    const paused = await api(`${path}/pause`, { token: t.admin.token, method: "POST" });
    expect(paused.status, paused.text).toBe(200);
    expect(paused.body.project).toMatchObject({ id: p.id, status: "paused" });
    expect((await api(path, { token: t.viewer.token })).body.project.status).toBe("paused");
    expect((await api(`/projects/${p.id}`, { token: t.viewer.token })).body.status).toBe("paused");

    const again = await api(`${path}/pause`, { token: t.owner.token, method: "POST" });
    expect(again.status, again.text).toBe(200);
    expect(again.body.project.status).toBe("paused");

    for (const who of [t.developer, t.viewer]) {
      expectError(await api(`${path}/resume`, { token: who.token, method: "POST" }), 403, "FORBIDDEN");
    }
    expect((await api(path, { token: t.owner.token })).body.project.status).toBe("paused");
    const resumed = await api(`${path}/resume`, { token: t.owner.token, method: "POST" });
    expect(resumed.status, resumed.text).toBe(200);
    expect(resumed.body.project.status).toBe("active");
    expect((await api(path, { token: t.viewer.token })).body.project.status).toBe("active");

    // One audit event per real change, none for the repeat.
    const audit = await api(`/org/${t.slug}/audit?limit=100`, { token: t.owner.token });
    const lifecycle = audit.body.events.filter((e: any) => e.target?.id === p.id && /^project\.(pause|resume)$/.test(e.action));
    expect(lifecycle.map((e: any) => e.action).sort()).toEqual(["project.pause", "project.resume"]);
  });

  it("DELETE needs project:delete, then the project is gone and its slug free", async () => {
    const p = await create("Removable");
    const path = `/org/${t.slug}/projects/${p.slug}`;
    expectError(await api(path, { token: t.developer.token, method: "DELETE" }), 403, "FORBIDDEN");
    expectError(await api(path, { token: t.viewer.token, method: "DELETE" }), 403, "FORBIDDEN");
    expect((await api(path, { token: t.viewer.token })).status).toBe(200);

    const del = await api(path, { token: t.admin.token, method: "DELETE" });
    expect(del.status, del.text).toBe(200);
    expect(del.body).toEqual({ ok: true });
    expectError(await api(path, { token: t.owner.token }), 404, "PROJECT_NOT_FOUND");
    expectError(await api(path, { token: t.owner.token, method: "PATCH", body: { name: "Zombie" } }), 404, "PROJECT_NOT_FOUND");
    expectError(await api(`${path}/pause`, { token: t.owner.token, method: "POST" }), 404, "PROJECT_NOT_FOUND");
    expectError(await api(path, { token: t.owner.token, method: "DELETE" }), 404, "PROJECT_NOT_FOUND");
    expectError(await api(`/projects/${p.id}`, { token: t.owner.token }), 404, "not_found");
    expect(ids((await api(`/org/${t.slug}/projects`, { token: t.owner.token })).body.projects)).not.toContain(p.id);
    expect(ids((await api(`/projects`, { token: t.owner.token })).body)).not.toContain(p.id);

    const again = await create("Removable");
    expect(again.slug).toBe(p.slug);
    expect(again.id).not.toBe(p.id);
  });

  it("org keys act by scope: read-only reads only, full may create, pause and delete", async () => {
    const ro = await createOrgKey(t.owner, t.slug, "read-only");
    const full = await createOrgKey(t.owner, t.slug, "full");
    const p = await create("Keyed");
    const path = `/org/${t.slug}/projects/${p.slug}`;

    const list = await api(`/org/${t.slug}/projects`, { token: ro.key });
    expect(list.status, list.text).toBe(200);
    expect(ids(list.body.projects)).toContain(p.id);
    expectError(await api(`/org/${t.slug}/projects`, { token: ro.key, body: { name: "RO made" } }), 403, "FORBIDDEN");
    expectError(await api(path, { token: ro.key, method: "PATCH", body: { name: "RO" } }), 403, "FORBIDDEN");
    expectError(await api(`${path}/pause`, { token: ro.key, method: "POST" }), 403, "FORBIDDEN");
    expectError(await api(path, { token: ro.key, method: "DELETE" }), 403, "FORBIDDEN");
    expect((await api(path, { token: t.owner.token })).body.project).toMatchObject({ name: "Keyed", status: "active" });

    const made = await api(`/org/${t.slug}/projects`, { token: full.key, body: { name: "Full made" } });
    expect(made.status, made.text).toBe(201);
    const paused = await api(`${path}/pause`, { token: full.key, method: "POST" });
    expect(paused.status, paused.text).toBe(200);
    expect(paused.body.project.status).toBe("paused");
    const del = await api(`/org/${t.slug}/projects/${made.body.project.slug}`, { token: full.key, method: "DELETE" });
    expect(del.status, del.text).toBe(200);
    expect((await api(`/projects/${made.body.project.id}`, { token: t.owner.token })).status).toBe(404);
  });

  it("answers 401 without a credential on every route", async () => {
    const p = await create("Guarded");
    const path = `/org/${t.slug}/projects/${p.slug}`;
    const routes: [string, string, unknown?][] = [
      ["GET", `/org/${t.slug}/projects`],
      ["POST", `/org/${t.slug}/projects`, { name: "Anon" }],
      ["GET", path],
      ["PATCH", path, { name: "Anon" }],
      ["DELETE", path],
      ["POST", `${path}/pause`],
      ["POST", `${path}/resume`],
    ];
    for (const [method, url, body] of routes) {
      const res = await api(url, { method, body });
      expect(res.status, `${method} ${url}: ${res.text}`).toBe(401);
      expect(res.body.error.code).toBe("UNAUTHORIZED");
    }
    expect((await api(path, { token: t.owner.token })).body.project).toMatchObject({ name: "Guarded", status: "active" });
  });

  it("another tenant gets 404 (not 403) on every route, for an existing project and a made-up one", async () => {
    const p = await create("Private");
    const outsider = await signUp({ name: "Outsider" });
    const path = `/org/${t.slug}/projects/${p.slug}`;
    // backlex's codes on its routes (the org, then the project), Suble's on /projects/{project}.
    const routes: [string, string, string, unknown?][] = [
      ["GET", `/org/${t.slug}/projects`, "NOT_FOUND"],
      ["POST", `/org/${t.slug}/projects`, "NOT_FOUND", { name: "Planted" }],
      ["GET", path, "PROJECT_NOT_FOUND"],
      ["PATCH", path, "PROJECT_NOT_FOUND", { name: "Owned" }],
      ["DELETE", path, "PROJECT_NOT_FOUND"],
      ["POST", `${path}/pause`, "PROJECT_NOT_FOUND"],
      ["POST", `${path}/resume`, "PROJECT_NOT_FOUND"],
      ["GET", `/org/${t.slug}/projects/made-up`, "PROJECT_NOT_FOUND"],
      ["GET", `/projects/${p.id}`, "not_found"],
      ["PATCH", `/projects/${p.id}`, "not_found", { name: "Owned" }],
      ["DELETE", `/projects/${p.id}`, "not_found"],
    ];
    for (const [method, url, code, body] of routes) {
      const res = await api(url, { method, body, token: outsider.token });
      expect(res.status, `${method} ${url}: ${res.text}`).toBe(404);
      expect(res.body.error.code).toBe(code);
    }
    // The outsider's own org, addressed with the victim's project slug, is 404 too.
    expectError(await api(`/org/${outsider.orgSlug}/projects/${p.slug}`, { token: outsider.token }), 404, "PROJECT_NOT_FOUND");
    const after = await api(path, { token: t.owner.token });
    expect(after.body.project).toMatchObject({ name: "Private", status: "active" });
    const list = await api(`/org/${t.slug}/projects`, { token: t.owner.token });
    expect(list.body.projects.map((x: any) => x.name)).not.toContain("Planted");
  });

  it("an unknown org slug is 404", async () => {
    expectError(await api(`/org/no-such-org-xyz/projects`, { token: t.owner.token }), 404, "NOT_FOUND");
  });
});

describe("concurrent project creation", () => {
  it("gives projects created at the same moment with one name distinct slugs, never a 500", async () => {
    const owner = await signUp();
    const results = await Promise.all(
      Array.from({ length: 4 }, () => api(`/org/${owner.orgSlug}/projects`, { token: owner.token, body: { name: "Same Name" } })),
    );
    expect(results.map((r) => r.status)).toEqual([201, 201, 201, 201]);
    const slugs = results.map((r) => r.body.project.slug);
    expect(new Set(slugs).size).toBe(4);
  });
});
