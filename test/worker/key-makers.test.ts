/**
 * Keys and the people who made them: an org or project key never has more access than its
 * maker has now. Removing or demoting the maker, or taking away the project grant the key
 * was made through, takes the key's access with it, until an owner adopts the key.
 * Personal keys keep to their scope on every route, the account's own included.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { api, createOrgKey, expectApiError, lastMailTo, orgWithEveryRole, signUp, type TestUser, tokenIn } from "./helpers";

type Team = Awaited<ReturnType<typeof orgWithEveryRole>>;

async function seatOf(t: Team, who: TestUser): Promise<string> {
  const res = await api(`/org/${t.slug}/members`, { token: t.owner.token });
  const seat = (res.body.members as { id: string; userId: string }[]).find((m) => m.userId === who.id);
  expect(seat, res.text).toBeTruthy();
  return seat!.id;
}

async function newProject(t: Team, name: string) {
  const res = await api(`/org/${t.slug}/projects`, { token: t.owner.token, body: { name } });
  expect(res.status, res.text).toBe(201);
  return res.body.project as { id: string; slug: string };
}

const keyMadeBy = async (maker: TestUser, t: Team, scope: "full" | "deploy" | "read-only" = "full") => {
  const res = await api(`/org/${t.slug}/api-keys`, { token: maker.token, body: { name: `${scope} by maker`, scope } });
  expect(res.status, res.text).toBe(201);
  return res.body.key as { id: string; key: string; created_by: string };
};

describe("an org key answers to its maker", { timeout: 60_000 }, () => {
  let t: Team;
  beforeAll(async () => {
    t = await orgWithEveryRole();
  });

  it("names its maker, and stops working when the maker is removed from the org", async () => {
    const admin = await signUp({ name: "Leaving admin" });
    const invited = await api(`/org/${t.slug}/invitations`, { token: t.owner.token, body: { email: admin.email, role: "admin" } });
    expect(invited.status).toBe(201);
    const inv = tokenIn((await lastMailTo(admin.email)).text, "inv_");
    expect((await api("/invitations/accept", { token: admin.token, body: { token: inv } })).status).toBe(200);

    const key = await keyMadeBy(admin, t);
    expect(key.created_by).toBe(admin.id);
    expect((await api(`/org/${t.slug}/projects`, { token: key.key })).status).toBe(200);

    const removed = await api(`/org/${t.slug}/members/${await seatOf(t, admin)}`, { token: t.owner.token, method: "DELETE" });
    expect(removed.status, removed.text).toBe(204);
    const refused = await api(`/org/${t.slug}/projects`, { token: key.key });
    expectApiError(refused, 401, "UNAUTHORIZED");
    expect(refused.body.error.message).toMatch(/adopt/);
    expectApiError(await api(`/org/${t.slug}/projects`, { token: key.key, body: { name: "After leaving" } }), 401, "UNAUTHORIZED");

    // Only an owner adopts; an admin, a developer and another org's owner cannot.
    expectApiError(await api(`/org/${t.slug}/api-keys/${key.id}/adopt`, { token: t.admin.token, method: "POST" }), 403, "FORBIDDEN");
    expectApiError(await api(`/org/${t.slug}/api-keys/${key.id}/adopt`, { token: t.developer.token, method: "POST" }), 403, "FORBIDDEN");
    const stranger = await signUp();
    expectApiError(await api(`/org/${t.slug}/api-keys/${key.id}/adopt`, { token: stranger.token, method: "POST" }), 404, "NOT_FOUND");
    expectApiError(await api(`/org/${stranger.orgSlug}/api-keys/${key.id}/adopt`, { token: stranger.token, method: "POST" }), 404, "API_KEY_NOT_FOUND");
    expectApiError(await api(`/org/${t.slug}/api-keys/apk_nope/adopt`, { token: t.owner.token, method: "POST" }), 404, "API_KEY_NOT_FOUND");
    // A key cannot adopt a key, not even a full one of the owner's.
    const ownerKey = await createOrgKey(t.owner, t.slug, "full");
    expectApiError(await api(`/org/${t.slug}/api-keys/${key.id}/adopt`, { token: ownerKey.key, method: "POST" }), 403, "FORBIDDEN");

    const adopted = await api(`/org/${t.slug}/api-keys/${key.id}/adopt`, { token: t.owner.token, method: "POST" });
    expect(adopted.status, adopted.text).toBe(200);
    expect(adopted.body.key).toMatchObject({ id: key.id, created_by: t.owner.id });
    expect(adopted.body.key.key).toBeUndefined();
    expect((await api(`/org/${t.slug}/projects`, { token: key.key })).status).toBe(200);
    const audit = await api(`/org/${t.slug}/audit?action=api_key.adopt`, { token: t.owner.token });
    expect(audit.text).toContain(key.id);
  });

  it("does no more than its maker's current role allows", async () => {
    const p = await newProject(t, "Demotion target");
    const dev = await signUp({ name: "Soon developer" });
    await api(`/org/${t.slug}/invitations`, { token: t.owner.token, body: { email: dev.email, role: "admin" } });
    await api("/invitations/accept", { token: dev.token, body: { token: tokenIn((await lastMailTo(dev.email)).text, "inv_") } });
    const key = await keyMadeBy(dev, t);

    const demoted = await api(`/org/${t.slug}/members/${await seatOf(t, dev)}`, { token: t.owner.token, method: "PATCH", body: { role: "viewer" } });
    expect(demoted.status, demoted.text).toBe(200);
    // A viewer may read but not change, pause or delete.
    expect((await api(`/org/${t.slug}/projects/${p.slug}`, { token: key.key })).status).toBe(200);
    expectApiError(await api(`/org/${t.slug}/projects/${p.slug}/pause`, { token: key.key, method: "POST" }), 403, "FORBIDDEN");
    expectApiError(await api(`/org/${t.slug}/projects/${p.slug}`, { token: key.key, method: "PATCH", body: { name: "Renamed" } }), 403, "FORBIDDEN");
    expectApiError(await api(`/org/${t.slug}/projects`, { token: key.key, body: { name: "Made by demoted key" } }), 403, "FORBIDDEN");
    expect((await api(`/org/${t.slug}/projects/${p.slug}`, { token: t.owner.token })).body.project.status).toBe("active");

    // Promoted back to admin, the key's own cap (admin, scope full) applies again.
    await api(`/org/${t.slug}/members/${await seatOf(t, dev)}`, { token: t.owner.token, method: "PATCH", body: { role: "admin" } });
    expect((await api(`/org/${t.slug}/projects/${p.slug}/pause`, { token: key.key, method: "POST" })).status).toBe(200);
  });

  it("a key made by an owner is capped at admin: it cannot delete the org or manage keys", async () => {
    const key = await keyMadeBy(t.owner, t);
    expectApiError(await api(`/org/${t.slug}`, { token: key.key, method: "DELETE" }), 403, "FORBIDDEN");
    expectApiError(await api(`/org/${t.slug}/api-keys`, { token: key.key, body: { name: "minted", scope: "full" } }), 403, "FORBIDDEN");
  });
});

describe("a project key answers to the grant it was made through", { timeout: 60_000 }, () => {
  it("stops working when the grant is removed, and works again once an owner adopts it", async () => {
    const t = await orgWithEveryRole();
    const p = await newProject(t, "Granted");
    const guest = await signUp({ name: "Guest admin" });
    const granted = await api(`/projects/${p.id}/members`, { token: t.owner.token, body: { email: guest.email, role: "admin" } });
    expect(granted.status, granted.text).toBe(204);
    const invite = tokenIn((await lastMailTo(guest.email)).text, "inv_");
    expect((await api("/invitations/accept", { token: guest.token, body: { token: invite } })).status).toBe(200);
    const made = await api(`/projects/${p.id}/api-keys`, { token: guest.token, body: { name: "guest ci", scope: "deploy" } });
    expect(made.status, made.text).toBe(201);
    const key = made.body as { id: string; key: string };
    expect((await api(`/projects/${p.id}/jobs`, { token: key.key })).status).toBe(200);

    const revoked = await api(`/projects/${p.id}/members/${encodeURIComponent(guest.email)}`, { token: t.owner.token, method: "DELETE" });
    expect(revoked.status, revoked.text).toBe(204);
    expectApiError(await api(`/projects/${p.id}/jobs`, { token: key.key }), 401, "unauthorized");

    const adopted = await api(`/org/${t.slug}/api-keys/${key.id}/adopt`, { token: t.owner.token, method: "POST" });
    expect(adopted.status, adopted.text).toBe(200);
    expect((await api(`/projects/${p.id}/jobs`, { token: key.key })).status).toBe(200);
    // Still bound to its one project, and still within its scope.
    const other = await newProject(t, "Not granted");
    expectApiError(await api(`/projects/${other.id}/jobs`, { token: key.key }), 403, "forbidden");
  });
});

describe("personal keys keep to their scope on account routes", { timeout: 60_000 }, () => {
  it("read-only and deploy keys read the account but cannot change it or create orgs; full keys can", async () => {
    const u = await signUp({ name: "Scoped" });
    for (const scope of ["read-only", "deploy"] as const) {
      const made = await api("/api-keys", { token: u.token, body: { name: scope, scope } });
      expect(made.status, made.text).toBe(201);
      const key = made.body.key as string;
      expect((await api("/account", { token: key })).status).toBe(200);
      expect((await api("/auth/me", { token: key })).status).toBe(200);
      expect((await api("/orgs", { token: key })).status).toBe(200);
      expectApiError(await api("/account", { token: key, method: "PATCH", body: { name: "Hijacked" } }), 403, "FORBIDDEN");
      expectApiError(await api("/org", { token: key, body: { name: "Made by key" } }), 403, "FORBIDDEN");
      expectApiError(await api("/api-keys", { token: key, body: { name: "minted" } }), 403, "forbidden");
    }
    expect((await api("/account", { token: u.token })).body.account.name).toBe("Scoped");

    const full = await api("/api-keys", { token: u.token, body: { name: "full" } });
    expect((await api("/account", { token: full.body.key, method: "PATCH", body: { title: "CI-set title" } })).status).toBe(200);
    expect((await api("/account", { token: u.token })).body.account.title).toBe("CI-set title");
    // Even a full key cannot mint keys.
    expectApiError(await api("/api-keys", { token: full.body.key, body: { name: "minted" } }), 403, "forbidden");
  });
});
