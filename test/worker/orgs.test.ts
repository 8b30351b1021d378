/** backlex orgs: GET /orgs, POST /org, GET /org/{slug}/overview, PATCH and DELETE /org/{slug}. */
import { describe, expect, it, vi } from "vitest";
import { answerOf, api, createOrgKey, expectApiError, orgWithEveryRole, signUp, type TestUser } from "./helpers";

// Every sign-up hashes a password; fixtures of several users take a few seconds under load.
vi.setConfig({ testTimeout: 60_000 });

const tag = () => Math.random().toString(36).slice(2, 8);

/** The Org fields the backlex seed requires, with Berth's additions. */
const orgShape = {
  id: expect.stringMatching(/^org_/),
  slug: expect.any(String),
  name: expect.any(String),
  planId: expect.any(String),
  residency: expect.any(String),
  defaultRegion: expect.any(String),
  ipAllowlist: expect.any(Array),
  status: "active",
  personal: expect.any(Boolean),
  createdAt: expect.any(String),
};

async function createOrg(user: TestUser, body: Record<string, unknown>) {
  const res = await api("/org", { token: user.token, body });
  expect(res.status, res.text).toBe(201);
  return res.body.org as { id: string; slug: string; name: string };
}

async function orgSlugs(user: TestUser): Promise<string[]> {
  const res = await api("/orgs", { token: user.token });
  expect(res.status, res.text).toBe(200);
  return res.body.orgs.map((o: any) => o.slug);
}

describe("GET /orgs", () => {
  it("lists the personal org made at sign-up, with the caller's role", async () => {
    const u = await signUp({ name: "Grace Hopper" });
    const res = await api("/orgs", { token: u.token });
    expect(res.status, res.text).toBe(200);
    expect(res.body.orgs).toHaveLength(1);
    expect(res.body.orgs[0]).toEqual({
      ...orgShape,
      slug: u.orgSlug,
      name: "Grace Hopper",
      planId: "free",
      residency: "global",
      defaultRegion: "fra",
      ipAllowlist: [],
      webhookUrl: null,
      personal: true,
      role: "owner",
    });
  });

  it("includes every org the caller joined, each with its own role, oldest first", async () => {
    const t = await orgWithEveryRole();
    for (const [who, role] of [
      [t.owner, "owner"],
      [t.admin, "admin"],
      [t.developer, "developer"],
      [t.viewer, "viewer"],
    ] as const) {
      const res = await api("/orgs", { token: who.token });
      expect(res.status, res.text).toBe(200);
      expect(res.body.orgs.map((o: any) => [o.slug, o.role]).sort()).toEqual(
        [
          [who.orgSlug, "owner"],
          [t.slug, role],
        ].sort(),
      );
      const created = res.body.orgs.map((o: any) => Date.parse(o.createdAt));
      expect(created).toEqual([...created].sort((a: number, b: number) => a - b));
    }
    // The team was made after the owner's personal org and before the others signed up.
    expect((await orgSlugs(t.owner))).toEqual([t.owner.orgSlug, t.slug]);
    expect((await orgSlugs(t.viewer))).toEqual([t.slug, t.viewer.orgSlug]);
  });

  it("does not list orgs the caller is not in", async () => {
    const t = await orgWithEveryRole();
    const outsider = await signUp();
    expect(await orgSlugs(outsider)).toEqual([outsider.orgSlug]);
    expect(await orgSlugs(outsider)).not.toContain(t.slug);
  });

  it("needs a signed-in person: 401 without or with a dead credential, 403 for an org key", async () => {
    expectApiError(await api("/orgs"), 401, "UNAUTHORIZED");
    expectApiError(await api("/orgs", { token: "not-a-session" }), 401, "UNAUTHORIZED");
    const u = await signUp();
    const key = await createOrgKey(u, u.orgSlug, "full");
    expectApiError(await api("/orgs", { token: key.key }), 403, "FORBIDDEN");
  });
});

describe("POST /org", () => {
  it("creates an org with the caller as owner and backlex's defaults", async () => {
    const u = await signUp();
    const name = `Acme Rockets ${tag()}`;
    const res = await api("/org", { token: u.token, body: { name } });
    expect(res.status, res.text).toBe(201);
    expect(Object.keys(res.body)).toEqual(["org"]);
    expect(res.body.org).toEqual({
      ...orgShape,
      name,
      slug: name.toLowerCase().replace(/ /g, "-"),
      planId: "free",
      residency: "global",
      defaultRegion: "fra",
      ipAllowlist: [],
      webhookUrl: null,
      personal: false,
    });
    const orgs = await api("/orgs", { token: u.token });
    expect(orgs.body.orgs.find((o: any) => o.slug === res.body.org.slug)).toMatchObject({ id: res.body.org.id, role: "owner" });
    const overview = await api(`/org/${res.body.org.slug}/overview`, { token: u.token });
    expect(overview.status, overview.text).toBe(200);
    expect(overview.body).toMatchObject({ role: "owner", projectCount: 0, projects: [] });
    const members = await api(`/org/${res.body.org.slug}/members`, { token: u.token });
    expect(members.body.members.map((m: any) => [m.userId, m.role, m.status])).toEqual([[u.id, "owner", "active"]]);
  });

  it("keeps residency and default region when given", async () => {
    const u = await signUp();
    const org = await createOrg(u, { name: `Euro ${tag()}`, residency: "eu", defaultRegion: "ams", purpose: "saas", teamSize: "2-10" });
    const overview = await api(`/org/${org.slug}/overview`, { token: u.token });
    expect(overview.body.org).toMatchObject({ residency: "eu", defaultRegion: "ams" });
  });

  it("derives the slug from the name: lowercase, accents folded, punctuation to single hyphens", async () => {
    const u = await signUp();
    const t = tag();
    const org = await createOrg(u, { name: `  Ünïcode   Café & Co. ${t}!  ` });
    expect(org.slug).toBe(`unicode-cafe-co-${t}`);
    expect(org.name).toBe(`Ünïcode   Café & Co. ${t}!`);
    const symbols = await createOrg(u, { name: "!!!" });
    expect(symbols.slug).toMatch(/^org(-[a-z0-9]{6})?$/);
  });

  it("gives a second org with a taken name its own slug, for the same or another user", async () => {
    const a = await signUp();
    const b = await signUp();
    const name = `Same Name ${tag()}`;
    const first = await createOrg(a, { name });
    const second = await createOrg(a, { name });
    const third = await createOrg(b, { name });
    expect(first.slug).toBe(name.toLowerCase().replace(/ /g, "-"));
    expect(second.slug).toMatch(new RegExp(`^${first.slug}-[a-z0-9]{6}$`));
    expect(third.slug).toMatch(new RegExp(`^${first.slug}-[a-z0-9]{6}$`));
    expect(new Set([first.slug, second.slug, third.slug]).size).toBe(3);
    expect(await orgSlugs(b)).not.toContain(first.slug);
  });

  it("never fails with a 500 when creates with one name race: each gets its own slug or 409 slug_taken", async () => {
    const u = await signUp();
    const name = `Race ${tag()}`;
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => api("/org", { token: u.token, body: { name } })));
    for (const r of results) {
      expect([201, 409], r.text).toContain(r.status);
      if (r.status === 409) expectApiError(r, 409, "SLUG_TAKEN");
    }
    const created = results.filter((r) => r.status === 201).map((r) => r.body.org.slug as string);
    expect(created.length).toBeGreaterThan(0);
    expect(new Set(created).size).toBe(created.length);
    // Exactly the orgs that answered 201 exist, each with the caller as owner.
    const mine = await api("/orgs", { token: u.token });
    expect(mine.body.orgs.filter((o: any) => o.name === name).map((o: any) => o.slug).sort()).toEqual([...created].sort());
    expect(mine.body.orgs.filter((o: any) => o.name === name).every((o: any) => o.role === "owner")).toBe(true);
  });

  it("rejects invalid input with 400 invalid_request naming the field", async () => {
    const u = await signUp();
    for (const [body, field] of [
      [{}, "name"],
      [{ name: "A" }, "name"],
      [{ name: "x".repeat(81) }, "name"],
      [{ name: "Valid Name", residency: "mars" }, "residency"],
      [{ name: "Valid Name", defaultRegion: "moon" }, "defaultRegion"],
    ] as const) {
      const res = await api("/org", { token: u.token, body });
      expectApiError(res, 422, "VALIDATION");
      expect(res.body.error.details.issues.map((i: any) => i.path)).toContain(field);
    }
    expectApiError(await api("/org", { token: u.token, raw: "{not json" }), 400, "INVALID_JSON");
    expect(await orgSlugs(u)).toEqual([u.orgSlug]);
  });

  it("needs a credential that may write: 401 anonymous, 403 org keys and read-only or deploy personal keys", async () => {
    expectApiError(await api("/org", { body: { name: "Anonymous Co" } }), 401, "UNAUTHORIZED");
    const u = await signUp();
    const orgKey = await createOrgKey(u, u.orgSlug, "full");
    expectApiError(await api("/org", { token: orgKey.key, body: { name: "Key Co" } }), 403, "FORBIDDEN");
    for (const scope of ["read-only", "deploy"]) {
      const k = await api("/api-keys", { token: u.token, body: { name: scope, scope } });
      expect(k.status, k.text).toBe(201);
      expectApiError(await api("/org", { token: k.body.key, body: { name: `Via ${scope} key` } }), 403, "FORBIDDEN");
    }
    expect(await orgSlugs(u)).toEqual([u.orgSlug]);
    const full = await api("/api-keys", { token: u.token, body: { name: "full", scope: "full" } });
    const viaFull = await api("/org", { token: full.body.key, body: { name: `Via full key ${tag()}` } });
    expect(viaFull.status, viaFull.text).toBe(201);
    expect(await orgSlugs(u)).toContain(viaFull.body.org.slug);
  });
});

describe("GET /org/{slug}/overview", () => {
  it("shows every member the org, their own role and the org's projects", async () => {
    const t = await orgWithEveryRole();
    const proj = await api(`/org/${t.slug}/projects`, { token: t.owner.token, body: { name: "Storefront" } });
    expect(proj.status, proj.text).toBe(201);
    for (const [who, role] of [
      [t.owner, "owner"],
      [t.admin, "admin"],
      [t.developer, "developer"],
      [t.viewer, "viewer"],
    ] as const) {
      const res = await api(`/org/${t.slug}/overview`, { token: who.token });
      expect(res.status, res.text).toBe(200);
      expect(res.body.org).toMatchObject({ id: t.orgId, slug: t.slug, personal: false });
      expect(res.body.role).toBe(role);
      expect(res.body.projectCount).toBe(1);
      expect(res.body.projects.map((p: any) => [p.id, p.slug, p.name])).toEqual([[proj.body.project.id, "storefront", "Storefront"]]);
    }
  });

  it("counts live projects only", async () => {
    const u = await signUp();
    const personal = await api(`/org/${u.orgSlug}/overview`, { token: u.token });
    expect(personal.body).toMatchObject({ role: "owner", projectCount: 1 });
    expect(personal.body.projects.map((p: any) => p.name)).toEqual(["My Project"]);
    const extra = await api(`/org/${u.orgSlug}/projects`, { token: u.token, body: { name: "Second" } });
    expect((await api(`/org/${u.orgSlug}/overview`, { token: u.token })).body.projectCount).toBe(2);
    const del = await api(`/org/${u.orgSlug}/projects/${extra.body.project.slug}`, { token: u.token, method: "DELETE" });
    expect(del.status, del.text).toBe(200);
    const after = await api(`/org/${u.orgSlug}/overview`, { token: u.token });
    expect(after.body.projectCount).toBe(1);
    expect(after.body.projects.map((p: any) => p.id)).toEqual([u.projectId]);
  });

  it("answers 404 for an unknown slug", async () => {
    const u = await signUp();
    expectApiError(await api(`/org/no-such-org-${tag()}/overview`, { token: u.token }), 404, "NOT_FOUND");
  });
});

describe("PATCH /org/{slug}", () => {
  it("lets the owner change name, region, allow-list and webhook; the slug stays", async () => {
    const t = await orgWithEveryRole();
    const res = await api(`/org/${t.slug}`, {
      token: t.owner.token,
      method: "PATCH",
      body: { name: "Renamed Team", defaultRegion: "sin", ipAllowlist: ["10.0.0.0/8", "192.0.2.1"], webhookUrl: "https://hooks.example.com/berth" },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body.org).toMatchObject({
      id: t.orgId,
      slug: t.slug,
      name: "Renamed Team",
      defaultRegion: "sin",
      ipAllowlist: ["10.0.0.0/8", "192.0.2.1"],
      webhookUrl: "https://hooks.example.com/berth",
    });
    const overview = await api(`/org/${t.slug}/overview`, { token: t.viewer.token });
    expect(overview.body.org).toMatchObject({ name: "Renamed Team", defaultRegion: "sin", webhookUrl: "https://hooks.example.com/berth" });
    // Fields left out stay; null clears the webhook.
    const cleared = await api(`/org/${t.slug}`, { token: t.owner.token, method: "PATCH", body: { webhookUrl: null } });
    expect(cleared.status, cleared.text).toBe(200);
    expect(cleared.body.org).toMatchObject({ name: "Renamed Team", defaultRegion: "sin", ipAllowlist: ["10.0.0.0/8", "192.0.2.1"], webhookUrl: null });
  });

  it("lets an admin change settings", async () => {
    const t = await orgWithEveryRole();
    const res = await api(`/org/${t.slug}`, { token: t.admin.token, method: "PATCH", body: { name: "Admin Was Here" } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.org.name).toBe("Admin Was Here");
    expect((await api(`/org/${t.slug}/overview`, { token: t.owner.token })).body.org.name).toBe("Admin Was Here");
  });

  it("refuses developers and viewers with 403 and changes nothing", async () => {
    const t = await orgWithEveryRole();
    const before = (await api(`/org/${t.slug}/overview`, { token: t.owner.token })).body.org;
    for (const who of [t.developer, t.viewer]) {
      expectApiError(await api(`/org/${t.slug}`, { token: who.token, method: "PATCH", body: { name: "Hijacked" } }), 403, "FORBIDDEN");
    }
    expect((await api(`/org/${t.slug}/overview`, { token: t.owner.token })).body.org).toEqual(before);
  });

  it("validates the fields", async () => {
    const t = await orgWithEveryRole();
    for (const [body, field] of [
      [{ name: "" }, "name"],
      [{ defaultRegion: "mars" }, "defaultRegion"],
      [{ webhookUrl: "not a url" }, "webhookUrl"],
      [{ ipAllowlist: "10.0.0.1" }, "ipAllowlist"],
    ] as const) {
      const res = await api(`/org/${t.slug}`, { token: t.owner.token, method: "PATCH", body });
      expectApiError(res, 422, "VALIDATION");
      expect(res.body.error.details.issues.map((i: any) => i.path)).toContain(field);
    }
  });
});

describe("DELETE /org/{slug}", () => {
  it("lets only the owner delete: admin, developer and viewer get 403 and the org stays", async () => {
    const t = await orgWithEveryRole();
    for (const who of [t.admin, t.developer, t.viewer]) {
      expectApiError(await api(`/org/${t.slug}`, { token: who.token, method: "DELETE" }), 403, "FORBIDDEN");
    }
    expect((await api(`/org/${t.slug}/overview`, { token: t.viewer.token })).status).toBe(200);
    const members = await api(`/org/${t.slug}/members`, { token: t.owner.token });
    expect(members.body.members).toHaveLength(4);
  });

  it("deletes the org with its projects, memberships and keys", async () => {
    const t = await orgWithEveryRole();
    const proj = await api(`/org/${t.slug}/projects`, { token: t.owner.token, body: { name: "Doomed" } });
    expect(proj.status, proj.text).toBe(201);
    const key = await createOrgKey(t.owner, t.slug, "read-only");
    expect((await api(`/org/${t.slug}/overview`, { token: key.key })).status).toBe(200);

    const res = await api(`/org/${t.slug}`, { token: t.owner.token, method: "DELETE" });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ ok: true });

    for (const who of [t.owner, t.admin, t.developer, t.viewer]) {
      expectApiError(await api(`/org/${t.slug}/overview`, { token: who.token }), 404, "NOT_FOUND");
      expect(await orgSlugs(who)).toEqual([who.orgSlug]);
    }
    expectApiError(await api(`/projects/${proj.body.project.id}`, { token: t.owner.token }), 404, "not_found");
    expectApiError(await api(`/org/${t.slug}/overview`, { token: key.key }), 401, "UNAUTHORIZED");
    // Deleting again finds nothing; the slug is free for a new org.
    expectApiError(await api(`/org/${t.slug}`, { token: t.owner.token, method: "DELETE" }), 404, "NOT_FOUND");
  });

  it("frees the slug for the next org of that name", async () => {
    const u = await signUp();
    const name = `Phoenix ${tag()}`;
    const first = await createOrg(u, { name });
    expect((await api(`/org/${first.slug}`, { token: u.token, method: "DELETE" })).status).toBe(200);
    const again = await createOrg(u, { name });
    expect(again.slug).toBe(first.slug);
    expect(again.id).not.toBe(first.id);
  });

  it("refuses to delete a personal org with 409 personal_org", async () => {
    const u = await signUp();
    expectApiError(await api(`/org/${u.orgSlug}`, { token: u.token, method: "DELETE" }), 409, "PERSONAL_ORG");
    expect(await orgSlugs(u)).toEqual([u.orgSlug]);
    expect((await api(`/projects/${u.projectId}`, { token: u.token })).status).toBe(200);
  });

  it("refuses org keys of any scope (a leaked key cannot delete the org)", async () => {
    const u = await signUp();
    const org = await createOrg(u, { name: `Keyed ${tag()}` });
    for (const scope of ["full", "deploy", "read-only"] as const) {
      const key = await createOrgKey(u, org.slug, scope);
      expectApiError(await api(`/org/${org.slug}`, { token: key.key, method: "DELETE" }), 403, "FORBIDDEN");
    }
    expect(await orgSlugs(u)).toContain(org.slug);
  });
});

/** Every org-scoped route, as [method, path, body]. */
function orgRoutes(slug: string, ids: { member: string; invitation: string; project: string; key: string }) {
  return [
    ["GET", `/org/${slug}/overview`],
    ["PATCH", `/org/${slug}`, { name: "Taken Over" }],
    ["DELETE", `/org/${slug}`],
    ["GET", `/org/${slug}/members`],
    ["PATCH", `/org/${slug}/members/${ids.member}`, { role: "viewer" }],
    ["DELETE", `/org/${slug}/members/${ids.member}`],
    ["POST", `/org/${slug}/members/${ids.invitation}/resend`],
    ["POST", `/org/${slug}/invitations`, { email: "intruder@example.com", role: "admin" }],
    ["GET", `/org/${slug}/audit`],
    ["GET", `/org/${slug}/projects`],
    ["POST", `/org/${slug}/projects`, { name: "Intruder" }],
    ["GET", `/org/${slug}/projects/${ids.project}`],
    ["PATCH", `/org/${slug}/projects/${ids.project}`, { name: "Intruded" }],
    ["DELETE", `/org/${slug}/projects/${ids.project}`],
    ["POST", `/org/${slug}/projects/${ids.project}/pause`],
    ["POST", `/org/${slug}/projects/${ids.project}/resume`],
    ["GET", `/org/${slug}/api-keys`],
    ["POST", `/org/${slug}/api-keys`, { name: "intruder", scope: "full" }],
    ["DELETE", `/org/${slug}/api-keys/${ids.key}`],
  ] as Array<[string, string, unknown?]>;
}

describe("tenancy: org routes", () => {
  it("answer 401 without credentials", async () => {
    const t = await orgWithEveryRole();
    const members = await api(`/org/${t.slug}/members`, { token: t.owner.token });
    const ids = { member: members.body.members[1].id, invitation: "inv_0000000000000000", project: "my-project", key: "apk_0000000000000000" };
    for (const [method, path, body] of orgRoutes(t.slug, ids)) {
      const res = await api(path, { method, body });
      expect(`${method} ${path} → ${res.status}`).toBe(`${method} ${path} → 401`);
      expectApiError(res, 401, "UNAUTHORIZED");
    }
  });

  it("answer 404 to a user of another org, exactly as for an org that does not exist, and change nothing", async () => {
    const t = await orgWithEveryRole();
    const proj = await api(`/org/${t.slug}/projects`, { token: t.owner.token, body: { name: "Secret Plans" } });
    const invite = await api(`/org/${t.slug}/invitations`, { token: t.owner.token, body: { email: `pending-${tag()}@example.com`, role: "viewer" } });
    const key = await createOrgKey(t.owner, t.slug, "full");
    const members = await api(`/org/${t.slug}/members`, { token: t.owner.token });
    const adminSeat = members.body.members.find((m: any) => m.role === "admin");
    const ids = { member: adminSeat.id, invitation: invite.body.invite.id, project: proj.body.project.slug, key: key.id };
    const ghost = `ghost-${tag()}`;
    const before = (await api(`/org/${t.slug}/overview`, { token: t.owner.token })).body;

    const outsider = await signUp();
    const outsiderKey = await createOrgKey(outsider, outsider.orgSlug, "full");
    const real = orgRoutes(t.slug, ids);
    const missing = orgRoutes(ghost, ids);
    for (const [i, [method, path, body]] of real.entries()) {
      for (const token of [outsider.token, outsiderKey.key]) {
        const res = await api(path, { method, body, token });
        expect(`${method} ${path} → ${res.status}`).toBe(`${method} ${path} → 404`);
        expectApiError(res, 404, path.includes("/projects/") ? "PROJECT_NOT_FOUND" : "NOT_FOUND");
        const none = await api(missing[i]![1], { method, body, token });
        expect(answerOf(res), `${method} ${path}`).toEqual(answerOf(none));
      }
    }

    // Nothing moved: same name, same members, the project live and unpaused, the key alive.
    const overview = await api(`/org/${t.slug}/overview`, { token: t.owner.token });
    expect(overview.body).toEqual(before);
    expect(overview.body.projects.map((p: any) => [p.name, p.status])).toEqual([["Secret Plans", "active"]]);
    const after = await api(`/org/${t.slug}/members`, { token: t.owner.token });
    expect(after.body).toEqual(members.body);
    expect((await api(`/org/${t.slug}/overview`, { token: key.key })).status).toBe(200);
    const keys = await api(`/org/${t.slug}/api-keys`, { token: t.owner.token });
    expect(keys.body.keys.map((k: any) => k.name)).toEqual(["full key"]);
  });
});
