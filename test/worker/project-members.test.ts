/** Suble's project members: grants on one project, on top of (or instead of) an org seat. */
import { beforeAll, describe, expect, it } from "vitest";
import { api, lastMailTo, orgWithEveryRole, signUp, type TestUser, tokenIn } from "./helpers";

type Team = Awaited<ReturnType<typeof orgWithEveryRole>>;

const ids = (list: any[]) => list.map((p: any) => p.id);

function expectError(res: { status: number; body: any; text: string }, status: number, code: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.body.error.code, res.text).toBe(code);
}

const memberPath = (projectId: string, email: string) => `/projects/${projectId}/members/${encodeURIComponent(email)}`;

describe("project members", () => {
  let t: Team;
  /** Two projects of the team org. */
  let p1: any;
  let p2: any;

  async function teamProject(name: string) {
    const res = await api(`/org/${t.slug}/projects`, { token: t.owner.token, body: { name } });
    expect(res.status, res.text).toBe(201);
    return res.body.project;
  }

  /** Invites `who` to the project and accepts as them with the mailed token: a grant needs their consent. */
  async function grant(projectId: string, who: TestUser, role?: string, by: TestUser = t.owner) {
    const res = await api(`/projects/${projectId}/members`, { token: by.token, body: { email: who.email, ...(role ? { role } : {}) } });
    expect(res.status, res.text).toBe(204);
    expect(res.text).toBe("");
    const token = tokenIn((await lastMailTo(who.email.toLowerCase())).text, "inv_");
    const accepted = await api("/invitations/accept", { token: who.token, body: { token } });
    expect(accepted.status, accepted.text).toBe(200);
    expect(accepted.body.projectId).toBe(projectId);
  }

  beforeAll(async () => {
    t = await orgWithEveryRole();
    p1 = await teamProject("Granted one");
    p2 = await teamProject("Other one");
  });

  it("lists org members with their org role and source org", async () => {
    const res = await api(`/projects/${p1.id}/members`, { token: t.viewer.token });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toHaveLength(4);
    const byEmail = Object.fromEntries(res.body.map((m: any) => [m.email, m]));
    expect(byEmail[t.owner.email]).toMatchObject({ userId: t.owner.id, role: "owner", berthRole: "owner", source: "org", status: "accepted", fullname: "Owner" });
    expect(byEmail[t.admin.email]).toMatchObject({ role: "member", berthRole: "admin", source: "org" });
    expect(byEmail[t.developer.email]).toMatchObject({ berthRole: "developer", source: "org" });
    expect(byEmail[t.viewer.email]).toMatchObject({ berthRole: "viewer", source: "org" });
  });

  it("a grant lets a non-member see exactly that project, and nothing else of the org", async () => {
    const guest = await signUp({ name: "Guest" });
    expectError(await api(`/projects/${p1.id}`, { token: guest.token }), 404, "not_found");

    await grant(p1.id, guest); // default role: developer

    const list = await api("/projects", { token: guest.token });
    expect(ids(list.body).sort()).toEqual([guest.projectId, p1.id].sort());
    expect(list.body.find((p: any) => p.id === p1.id).role).toBe("developer");

    const got = await api(`/projects/${p1.id}`, { token: guest.token });
    expect(got.status, got.text).toBe(200);
    expect(got.body).toMatchObject({ id: p1.id, role: "developer", memberCount: 5 });
    const bySlug = await api(`/org/${t.slug}/projects/${p1.slug}`, { token: guest.token });
    expect(bySlug.status, bySlug.text).toBe(200);
    expect(bySlug.body.project).toMatchObject({ id: p1.id, role: "developer" });

    // The org's other project, and the org itself, stay invisible.
    expectError(await api(`/projects/${p2.id}`, { token: guest.token }), 404, "not_found");
    expectError(await api(`/projects/${p2.id}/members`, { token: guest.token }), 404, "project_not_found");
    expectError(await api(`/org/${t.slug}/projects/${p2.slug}`, { token: guest.token }), 404, "PROJECT_NOT_FOUND");
    expectError(await api(`/org/${t.slug}/overview`, { token: guest.token }), 404, "NOT_FOUND");
    expectError(await api(`/org/${t.slug}/members`, { token: guest.token }), 404, "NOT_FOUND");
    const orgList = await api(`/org/${t.slug}/projects`, { token: guest.token });
    if (orgList.status === 200) expect(ids(orgList.body.projects)).toEqual([p1.id]);
    else expectError(orgList, 404, "NOT_FOUND");
    const orgs = await api("/orgs", { token: guest.token });
    expect(orgs.body.orgs.map((o: any) => o.slug)).not.toContain(t.slug);

    // The grant shows in the project's member list, as a project grant.
    const members = await api(`/projects/${p1.id}/members`, { token: t.owner.token });
    expect(members.body).toHaveLength(5);
    expect(members.body.find((m: any) => m.email === guest.email)).toMatchObject({ userId: guest.id, berthRole: "developer", source: "project", status: "accepted" });
    // ...and not in the other project's.
    const others = await api(`/projects/${p2.id}/members`, { token: t.owner.token });
    expect(others.body.map((m: any) => m.email)).not.toContain(guest.email);
  });

  it("the grant's role decides what the grantee may do there", async () => {
    const guest = await signUp({ name: "Viewer guest" });
    await grant(p1.id, guest, "viewer");
    expect((await api(`/projects/${p1.id}`, { token: guest.token })).body.role).toBe("viewer");
    expectError(await api(`/projects/${p1.id}`, { token: guest.token, method: "PATCH", body: { name: "Guest rename" } }), 403, "forbidden");
    expect((await api(`/projects/${p1.id}`, { token: t.owner.token })).body.name).toBe("Granted one");

    // Upgrade to developer: now PATCH works, DELETE does not.
    const up = await api(memberPath(p1.id, guest.email), { token: t.admin.token, method: "PATCH", body: { role: "developer" } });
    expect(up.status, up.text).toBe(204);
    expect((await api(`/projects/${p1.id}`, { token: guest.token })).body.role).toBe("developer");
    const renamed = await api(`/projects/${p1.id}`, { token: guest.token, method: "PATCH", body: { environment: "staging" } });
    expect(renamed.status, renamed.text).toBe(200);
    expect(renamed.body.environment).toBe("staging");
    expectError(await api(`/projects/${p1.id}`, { token: guest.token, method: "DELETE" }), 403, "forbidden");
    expectError(await api(`/org/${t.slug}/projects/${p1.slug}/pause`, { token: guest.token, method: "POST" }), 403, "FORBIDDEN");
    const members = await api(`/projects/${p1.id}/members`, { token: t.owner.token });
    expect(members.body.find((m: any) => m.email === guest.email).berthRole).toBe("developer");
  });

  it("an admin grant may pause the project and manage its grants, but only that project", async () => {
    const guest = await signUp({ name: "Admin guest" });
    const friend = await signUp({ name: "Friend" });
    await grant(p1.id, guest, "admin");
    const paused = await api(`/org/${t.slug}/projects/${p1.slug}/pause`, { token: guest.token, method: "POST" });
    expect(paused.status, paused.text).toBe(200);
    expect(paused.body.project.status).toBe("paused");
    const resumed = await api(`/org/${t.slug}/projects/${p1.slug}/resume`, { token: guest.token, method: "POST" });
    expect(resumed.body.project.status).toBe("active");

    await grant(p1.id, friend, "viewer", guest);
    expect((await api(`/projects/${p1.id}`, { token: friend.token })).body.role).toBe("viewer");
    expectError(await api(`/projects/${p2.id}/members`, { token: guest.token, body: { email: friend.email } }), 404, "not_found");
    expectError(await api(`/projects/${p2.id}`, { token: friend.token }), 404, "not_found");
  });

  it("the role is the stronger of org role and grant", async () => {
    // Org viewer granted developer on p1: developer there, still viewer on p2.
    await grant(p1.id, t.viewer, "developer");
    expect((await api(`/projects/${p1.id}`, { token: t.viewer.token })).body.role).toBe("developer");
    expect((await api(`/projects/${p2.id}`, { token: t.viewer.token })).body.role).toBe("viewer");
    const list = await api("/projects", { token: t.viewer.token });
    expect(list.body.find((p: any) => p.id === p1.id).role).toBe("developer");
    expect(list.body.find((p: any) => p.id === p2.id).role).toBe("viewer");
    const orgList = await api(`/org/${t.slug}/projects`, { token: t.viewer.token });
    expect(orgList.body.projects.find((p: any) => p.id === p1.id).role).toBe("developer");
    const edit = await api(`/projects/${p1.id}`, { token: t.viewer.token, method: "PATCH", body: { name: "Granted one" } });
    expect(edit.status, edit.text).toBe(200);
    expectError(await api(`/projects/${p2.id}`, { token: t.viewer.token, method: "PATCH", body: { name: "Nope" } }), 403, "forbidden");
    // The member list shows the role the person actually has on this project.
    const members = await api(`/projects/${p1.id}/members`, { token: t.owner.token });
    expect(members.body.filter((m: any) => m.email === t.viewer.email)).toHaveLength(1);
    expect(members.body.find((m: any) => m.email === t.viewer.email).berthRole).toBe("developer");
    const p2Members = await api(`/projects/${p2.id}/members`, { token: t.owner.token });
    expect(p2Members.body.find((m: any) => m.email === t.viewer.email).berthRole).toBe("viewer");

    // Org developer granted viewer: the weaker grant does not demote them.
    await grant(p2.id, t.developer, "viewer");
    expect((await api(`/projects/${p2.id}`, { token: t.developer.token })).body.role).toBe("developer");
    const devEdit = await api(`/projects/${p2.id}`, { token: t.developer.token, method: "PATCH", body: { name: "Other one" } });
    expect(devEdit.status, devEdit.text).toBe(200);
    const p2After = await api(`/projects/${p2.id}/members`, { token: t.owner.token });
    expect(p2After.body.find((m: any) => m.email === t.developer.email).berthRole).toBe("developer");

    // Removing the grant puts the org viewer back to viewer.
    const del = await api(memberPath(p1.id, t.viewer.email), { token: t.owner.token, method: "DELETE" });
    expect(del.status, del.text).toBe(204);
    expect((await api(`/projects/${p1.id}`, { token: t.viewer.token })).body.role).toBe("viewer");
  });

  it("only owner and admin manage grants (403 for developer, viewer and grantees)", async () => {
    const guest = await signUp({ name: "Hopeful" });
    const grantee = await signUp({ name: "Grantee" });
    await grant(p1.id, grantee, "developer");
    for (const who of [t.developer, t.viewer, grantee]) {
      expectError(await api(`/projects/${p1.id}/members`, { token: who.token, body: { email: guest.email, role: "viewer" } }), 403, "forbidden");
      expectError(await api(memberPath(p1.id, grantee.email), { token: who.token, method: "PATCH", body: { role: "admin" } }), 403, "forbidden");
      expectError(await api(memberPath(p1.id, grantee.email), { token: who.token, method: "DELETE" }), 403, "forbidden");
    }
    expectError(await api(`/projects/${p1.id}`, { token: guest.token }), 404, "not_found");
    expect((await api(`/projects/${p1.id}`, { token: grantee.token })).body.role).toBe("developer");

    await grant(p1.id, guest, "viewer", t.admin);
    expect((await api(`/projects/${p1.id}`, { token: guest.token })).body.role).toBe("viewer");
  });

  it("removing a grant takes the project away at once", async () => {
    const guest = await signUp({ name: "Temporary" });
    await grant(p1.id, guest);
    expect((await api(`/projects/${p1.id}`, { token: guest.token })).status).toBe(200);
    const del = await api(memberPath(p1.id, guest.email), { token: t.admin.token, method: "DELETE" });
    expect(del.status, del.text).toBe(204);
    expectError(await api(`/projects/${p1.id}`, { token: guest.token }), 404, "not_found");
    expect(ids((await api("/projects", { token: guest.token })).body)).toEqual([guest.projectId]);
    const members = await api(`/projects/${p1.id}/members`, { token: t.owner.token });
    expect(members.body.map((m: any) => m.email)).not.toContain(guest.email);
    expectError(await api(memberPath(p1.id, guest.email), { token: t.admin.token, method: "DELETE" }), 404, "not_found");
    expectError(await api(memberPath(p1.id, guest.email), { token: t.admin.token, method: "PATCH", body: { role: "viewer" } }), 404, "not_found");
  });

  it("validates grants: duplicates and org admins 409, bad role or email 400", async () => {
    const guest = await signUp({ name: "Twice" });
    await grant(p2.id, guest, "viewer");
    expectError(await api(`/projects/${p2.id}/members`, { token: t.owner.token, body: { email: guest.email } }), 409, "already_member");
    expectError(await api(`/projects/${p2.id}/members`, { token: t.owner.token, body: { email: t.admin.email } }), 409, "already_member");
    expectError(await api(`/projects/${p2.id}/members`, { token: t.owner.token, body: { email: t.owner.email } }), 409, "already_member");
    expectError(await api(`/projects/${p2.id}/members`, { token: t.owner.token, body: { email: "not-an-email" } }), 400, "invalid_email");
    expectError(await api(`/projects/${p2.id}/members`, { token: t.owner.token, body: { email: guest.email, role: "owner" } }), 400, "invalid_request");
    expectError(await api(memberPath(p2.id, guest.email), { token: t.owner.token, method: "PATCH", body: { role: "owner" } }), 400, "invalid_request");
    // The grant is unchanged by the failed attempts.
    expect((await api(`/projects/${p2.id}`, { token: guest.token })).body.role).toBe("viewer");
  });

  it("matches emails case-insensitively and survives odd path segments", async () => {
    const guest = await signUp({ name: "Casey" });
    await grant(p2.id, { ...guest, email: guest.email.toUpperCase() }, "viewer");
    expect((await api(`/projects/${p2.id}`, { token: guest.token })).body.role).toBe("viewer");
    const up = await api(memberPath(p2.id, guest.email.toUpperCase()), { token: t.owner.token, method: "PATCH", body: { role: "developer" } });
    expect(up.status, up.text).toBe(204);
    expect((await api(`/projects/${p2.id}`, { token: guest.token })).body.role).toBe("developer");
    // A percent sign in the path is a missing member, not a server error.
    expectError(await api(`/projects/${p2.id}/members/100%25`, { token: t.owner.token, method: "PATCH", body: { role: "viewer" } }), 404, "not_found");
    expectError(await api(`/projects/${p2.id}/members/100%25`, { token: t.owner.token, method: "DELETE" }), 404, "not_found");
  });

  it("seats nobody without consent, and answers the same for registered and unknown addresses", async () => {
    const guest = await signUp({ name: "Invitee" });
    const stranger = `nobody-${Date.now().toString(36)}@example.com`;
    const known = await api(`/projects/${p1.id}/members`, { token: t.owner.token, body: { email: guest.email, role: "viewer" } });
    const unknown = await api(`/projects/${p1.id}/members`, { token: t.owner.token, body: { email: stranger, role: "viewer" } });
    expect([known.status, known.text, [...known.headers.keys()].sort()]).toEqual([unknown.status, unknown.text, [...unknown.headers.keys()].sort()]);
    expect(known.status).toBe(204);

    // Invited is not seated: the project stays out of reach until they accept.
    expectError(await api(`/projects/${p1.id}`, { token: guest.token }), 404, "not_found");
    expect(ids((await api("/projects", { token: guest.token })).body)).toEqual([guest.projectId]);
    const listed = await api(`/projects/${p1.id}/members`, { token: t.owner.token });
    expect(listed.body.find((m: any) => m.email === guest.email)).toMatchObject({ userId: null, berthRole: "viewer", status: "pending", source: "project" });
    expect(listed.body.find((m: any) => m.email === stranger)).toMatchObject({ userId: null, status: "pending" });

    // A pending invitation's role can change before it is accepted; someone else cannot accept it.
    expect((await api(memberPath(p1.id, guest.email), { token: t.owner.token, method: "PATCH", body: { role: "developer" } })).status).toBe(204);
    const token = tokenIn((await lastMailTo(guest.email)).text, "inv_");
    const other = await signUp({ name: "Not invited" });
    expectError(await api("/invitations/accept", { token: other.token, body: { token } }), 403, "INVITATION_EMAIL_MISMATCH");
    const accepted = await api("/invitations/accept", { token: guest.token, body: { token } });
    expect(accepted.status, accepted.text).toBe(200);
    expect(accepted.body).toMatchObject({ orgSlug: t.slug, role: "developer", projectId: p1.id });
    expect((await api(`/projects/${p1.id}`, { token: guest.token })).body.role).toBe("developer");
    // The grant is one project's, not an org seat.
    expectError(await api(`/org/${t.slug}/overview`, { token: guest.token }), 404, "NOT_FOUND");
    expectError(await api("/invitations/accept", { token: guest.token, body: { token } }), 404, "INVITATION_NOT_FOUND");

    // Revoking a pending invitation kills its token.
    const late = await signUp({ name: "Too late" });
    await api(`/projects/${p1.id}/members`, { token: t.owner.token, body: { email: late.email } });
    const lateToken = tokenIn((await lastMailTo(late.email)).text, "inv_");
    expect((await api(memberPath(p1.id, late.email), { token: t.admin.token, method: "DELETE" })).status).toBe(204);
    expectError(await api("/invitations/accept", { token: late.token, body: { token: lateToken } }), 404, "INVITATION_NOT_FOUND");
    expectError(await api(`/projects/${p1.id}`, { token: late.token }), 404, "not_found");
    // Project invitations are not org invitations: the org's pending list does not show them.
    const orgPending = await api(`/org/${t.slug}/members`, { token: t.owner.token });
    expect(orgPending.text).not.toContain(stranger);
  });

  it("outsiders get 404 on every member route, and change nothing", async () => {
    const outsider = await signUp({ name: "Outsider" });
    // Suble's codes: adding a member says not_found, the other member routes project_not_found.
    const routes: [string, string, string, unknown?][] = [
      ["GET", `/projects/${p1.id}/members`, "project_not_found"],
      ["POST", `/projects/${p1.id}/members`, "not_found", { email: outsider.email, role: "admin" }],
      ["PATCH", memberPath(p1.id, t.developer.email), "project_not_found", { role: "viewer" }],
      ["DELETE", memberPath(p1.id, t.developer.email), "project_not_found"],
      ["GET", `/projects/prj_nonexistent00000/members`, "project_not_found"],
    ];
    for (const [method, path, code, body] of routes) {
      const res = await api(path, { method, body, token: outsider.token });
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(404);
      expect(res.body.error.code).toBe(code);
    }
    expectError(await api(`/projects/${p1.id}`, { token: outsider.token }), 404, "not_found");
    const members = await api(`/projects/${p1.id}/members`, { token: t.owner.token });
    expect(members.body.map((m: any) => m.email)).not.toContain(outsider.email);
  });

  it("answers 401 without a credential", async () => {
    for (const [method, path, body] of [
      ["GET", `/projects/${p1.id}/members`],
      ["POST", `/projects/${p1.id}/members`, { email: t.viewer.email }],
      ["PATCH", memberPath(p1.id, t.viewer.email), { role: "admin" }],
      ["DELETE", memberPath(p1.id, t.viewer.email)],
    ] as [string, string, unknown?][]) {
      expectError(await api(path, { method, body }), 401, "unauthorized");
    }
  });

  it("a deleted project's grants stop working", async () => {
    const p = await teamProject("Short lived");
    const guest = await signUp({ name: "Short guest" });
    await grant(p.id, guest);
    expect((await api(`/projects/${p.id}`, { token: guest.token })).status).toBe(200);
    expect((await api(`/projects/${p.id}`, { token: t.owner.token, method: "DELETE" })).status).toBe(200);
    expectError(await api(`/projects/${p.id}`, { token: guest.token }), 404, "not_found");
    expectError(await api(`/projects/${p.id}/members`, { token: t.owner.token }), 404, "project_not_found");
    expect(ids((await api("/projects", { token: guest.token })).body)).toEqual([guest.projectId]);
  });
});
