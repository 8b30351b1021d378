/**
 * Tenancy: everything org A holds (its people, its org key, a personal key, a
 * project key) gets 404, never 403, for every resource of org B, answers
 * exactly as it would for something that does not exist, and changes nothing.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { answerOf, api, createOrgKey, env, orgWithEveryRole, signUp, type TestUser } from "./helpers";

type Team = Awaited<ReturnType<typeof orgWithEveryRole>>;

/** What a route needs to name a resource of an org. */
interface Target {
  slug: string;
  projectId: string;
  projectSlug: string;
  /** An active membership id (mem_…). */
  memberId: string;
  /** A pending invitation id (inv_…). */
  invitationId: string;
  /** The email of someone granted on the project. */
  grantEmail: string;
  orgKeyId: string;
  projectKeyId: string;
}

type Route = [method: string, path: (t: Target) => string, body?: unknown | ((t: Target) => unknown)];
const bodyFor = (body: Route[2], t: Target) => (typeof body === "function" ? body(t) : body);

const enc = encodeURIComponent;

/** Every org-B-scoped route we serve, with a body that would succeed for B's owner. */
const ROUTES: Route[] = [
  ["GET", (t) => `/org/${t.slug}/overview`],
  ["PATCH", (t) => `/org/${t.slug}`, { name: "Taken over" }],
  ["DELETE", (t) => `/org/${t.slug}`],
  ["GET", (t) => `/org/${t.slug}/members`],
  ["PATCH", (t) => `/org/${t.slug}/members/${t.memberId}`, { role: "admin" }],
  ["DELETE", (t) => `/org/${t.slug}/members/${t.memberId}`],
  ["POST", (t) => `/org/${t.slug}/members/${t.invitationId}/resend`],
  ["DELETE", (t) => `/org/${t.slug}/members/${t.invitationId}`],
  ["POST", (t) => `/org/${t.slug}/invitations`, { email: "planted@example.com", role: "admin" }],
  ["GET", (t) => `/org/${t.slug}/projects`],
  ["POST", (t) => `/org/${t.slug}/projects`, { name: "Planted project" }],
  ["GET", (t) => `/org/${t.slug}/projects/${t.projectSlug}`],
  ["PATCH", (t) => `/org/${t.slug}/projects/${t.projectSlug}`, { name: "Renamed by A" }],
  ["DELETE", (t) => `/org/${t.slug}/projects/${t.projectSlug}`],
  ["POST", (t) => `/org/${t.slug}/projects/${t.projectSlug}/pause`],
  ["POST", (t) => `/org/${t.slug}/projects/${t.projectSlug}/resume`],
  ["GET", (t) => `/projects/${t.projectId}`],
  ["PATCH", (t) => `/projects/${t.projectId}`, { name: "Renamed by A" }],
  ["DELETE", (t) => `/projects/${t.projectId}`],
  ["GET", (t) => `/projects?org=${t.slug}`],
  ["POST", () => "/projects", (t: Target) => ({ name: "Planted project", org: t.slug })],
  ["GET", (t) => `/projects/${t.projectId}/members`],
  ["POST", (t) => `/projects/${t.projectId}/members`, { email: "planted@example.com", role: "admin" }],
  ["PATCH", (t) => `/projects/${t.projectId}/members/${enc(t.grantEmail)}`, { role: "admin" }],
  ["DELETE", (t) => `/projects/${t.projectId}/members/${enc(t.grantEmail)}`],
  ["GET", (t) => `/projects/${t.projectId}/api-keys`],
  ["POST", (t) => `/projects/${t.projectId}/api-keys`, { name: "planted" }],
  ["DELETE", (t) => `/projects/${t.projectId}/api-keys/${t.projectKeyId}`],
  ["GET", (t) => `/org/${t.slug}/api-keys`],
  ["POST", (t) => `/org/${t.slug}/api-keys`, { name: "planted", scope: "full" }],
  ["DELETE", (t) => `/org/${t.slug}/api-keys/${t.orgKeyId}`],
  ["DELETE", (t) => `/org/${t.slug}/api-keys/${t.projectKeyId}`],
  ["GET", (t) => `/org/${t.slug}/audit`],
];

/** The same shape of request about things that do not exist anywhere. */
const GHOST: Target = {
  slug: "ghost-org-0000",
  projectId: "prj_ghost00000000000",
  projectSlug: "ghost-project",
  memberId: "mem_ghost00000000000",
  invitationId: "inv_ghost00000000000",
  grantEmail: "ghost@example.com",
  orgKeyId: "apk_ghost00000000000",
  projectKeyId: "apk_ghost00000000001",
};

describe("tenancy: org A cannot reach org B", () => {
  let a: { owner: TestUser; slug: string; projectId: string; orgKey: string; personalKey: string; projectKey: string };
  let b: Team;
  let target: Target;
  let bGuest: TestUser;
  let bOrgKey: { id: string; key: string };
  let bProjectKey: { id: string; key: string };
  let bPersonalKey: { id: string; key: string };
  let bProjectSlug: string;

  beforeAll(async () => {
    // Org B, fully furnished.
    b = await orgWithEveryRole();
    const project = await api(`/org/${b.slug}/projects`, { token: b.owner.token, body: { name: "Crown jewels" } });
    expect(project.status, project.text).toBe(201);
    bProjectSlug = project.body.project.slug;
    const invite = await api(`/org/${b.slug}/invitations`, { token: b.owner.token, body: { email: "pending-b@example.com", role: "developer" } });
    expect(invite.status, invite.text).toBe(201);
    bGuest = await signUp({ name: "B guest" });
    const grant = await api(`/projects/${project.body.project.id}/members`, { token: b.owner.token, body: { email: bGuest.email, role: "viewer" } });
    expect(grant.status, grant.text).toBe(204);
    const pk = await api(`/projects/${project.body.project.id}/api-keys`, { token: b.owner.token, body: { name: "b ci" } });
    expect(pk.status, pk.text).toBe(201);
    bProjectKey = pk.body;
    bOrgKey = await createOrgKey(b.owner, b.slug, "full");
    const dk = await api("/api-keys", { token: b.owner.token, body: { name: "b laptop" } });
    expect(dk.status, dk.text).toBe(201);
    bPersonalKey = dk.body;
    const members = await api(`/org/${b.slug}/members`, { token: b.owner.token });
    target = {
      slug: b.slug,
      projectId: project.body.project.id,
      projectSlug: bProjectSlug,
      memberId: members.body.members.find((m: any) => m.userId === b.developer.id).id,
      invitationId: members.body.members.find((m: any) => m.status === "pending").id,
      grantEmail: bGuest.email,
      orgKeyId: bOrgKey.id,
      projectKeyId: bProjectKey.id,
    };
    expect(target.invitationId).toMatch(/^inv_/);

    // Org A: an owner with every kind of credential.
    const owner = await signUp({ name: "A owner" });
    const org = await api("/org", { token: owner.token, body: { name: `Tenant A ${Math.random().toString(36).slice(2, 8)}` } });
    expect(org.status, org.text).toBe(201);
    const slug = org.body.org.slug;
    const aProject = await api(`/org/${slug}/projects`, { token: owner.token, body: { name: "A project" } });
    const orgKey = await createOrgKey(owner, slug, "full");
    const personal = await api("/api-keys", { token: owner.token, body: { name: "a laptop" } });
    const projectKey = await api(`/projects/${aProject.body.project.id}/api-keys`, { token: owner.token, body: { name: "a ci" } });
    expect(projectKey.status, projectKey.text).toBe(201);
    a = { owner, slug, projectId: aProject.body.project.id, orgKey: orgKey.key, personalKey: personal.body.key, projectKey: projectKey.body.key };
  });

  const ACTORS = [
    ["A's owner (session)", () => a.owner.token],
    ["A's full org key (pak_)", () => a.orgKey],
    ["A's owner's personal key (dkp_)", () => a.personalKey],
    ["A's project key (pak_)", () => a.projectKey],
  ] as const;
  const actors = () => ACTORS.map(([who, token]) => [who, token()] as const);

  for (const [who, tokenOf] of ACTORS) {
    it(`${who} gets 404 on every route of B, exactly as for a resource that does not exist`, { timeout: 30_000 }, async () => {
      const token = tokenOf();
      const failures: string[] = [];
      for (const [method, path, body] of ROUTES) {
        const res = await api(path(target), { method, body: bodyFor(body, target), token });
        const ghost = await api(path(GHOST), { method, body: bodyFor(body, GHOST), token });
        const label = `${method} ${path(target)} → ${res.status} ${res.text}`;
        if (res.status !== 404) failures.push(label);
        else if (!/not_found$/i.test(res.body?.error?.code ?? "")) failures.push(`${label} (code)`);
        else if (JSON.stringify(answerOf(res)) !== JSON.stringify(answerOf(ghost))) failures.push(`${label} differs from ghost: ${ghost.text}`);
      }
      expect(failures).toEqual([]);
    });
  }

  it("…and nothing in B changed", async () => {
    const overview = await api(`/org/${b.slug}/overview`, { token: b.owner.token });
    expect(overview.status, overview.text).toBe(200);
    expect(overview.body.org.name).not.toBe("Taken over");
    expect(overview.body.projects.map((p: any) => p.name)).toEqual(["Crown jewels"]);

    const project = await api(`/org/${b.slug}/projects/${bProjectSlug}`, { token: b.owner.token });
    expect(project.body.project).toMatchObject({ name: "Crown jewels", status: "active" });

    const members = await api(`/org/${b.slug}/members`, { token: b.owner.token });
    const active = members.body.members.filter((m: any) => m.status === "active");
    expect(active.map((m: any) => m.role).sort()).toEqual(["admin", "developer", "owner", "viewer"]);
    expect(active.find((m: any) => m.userId === b.developer.id).role).toBe("developer");
    expect(members.body.members.filter((m: any) => m.status === "pending").map((m: any) => m.email)).toEqual(["pending-b@example.com"]);

    const projectMembers = await api(`/projects/${target.projectId}/members`, { token: b.owner.token });
    expect(projectMembers.body.find((m: any) => m.email === bGuest.email)).toMatchObject({ berthRole: "viewer", source: "project" });
    expect(projectMembers.body.map((m: any) => m.email)).not.toContain("planted@example.com");

    // B's keys still work, and none were planted.
    expect((await api(`/org/${b.slug}/projects`, { token: bOrgKey.key })).status).toBe(200);
    expect((await api(`/projects/${target.projectId}`, { token: bProjectKey.key })).status).toBe(200);
    expect((await api("/auth/me", { token: bPersonalKey.key })).status).toBe(200);
    const keys = await api(`/org/${b.slug}/api-keys`, { token: b.owner.token });
    expect(keys.body.keys.map((k: any) => k.name).sort()).toEqual(["b ci", "full key"]);

    // B's audit trail shows nobody from A.
    const audit = await api(`/org/${b.slug}/audit?limit=100`, { token: b.owner.token });
    expect(audit.status, audit.text).toBe(200);
    expect(audit.body.events.filter((e: any) => e.actor.userId === a.owner.id)).toEqual([]);
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM audit_event WHERE org_id = ? AND actor_user_id = ?").bind(b.orgId, a.owner.id).first<{ n: number }>();
    expect(rows!.n).toBe(0);
  });

  it("B's ids addressed through A's own org or project are not found either", async () => {
    const aProjectTarget: Target = { ...target, slug: a.slug, projectId: a.projectId, projectSlug: bProjectSlug };
    const cross: [string, string, unknown?][] = [
      ["DELETE", `/org/${a.slug}/api-keys/${bOrgKey.id}`],
      ["DELETE", `/org/${a.slug}/api-keys/${bProjectKey.id}`],
      ["DELETE", `/projects/${a.projectId}/api-keys/${bProjectKey.id}`],
      ["DELETE", `/api-keys/${bPersonalKey.id}`],
      ["PATCH", `/org/${a.slug}/members/${target.memberId}`, { role: "viewer" }],
      ["DELETE", `/org/${a.slug}/members/${target.memberId}`],
      ["POST", `/org/${a.slug}/members/${target.invitationId}/resend`],
      ["DELETE", `/org/${a.slug}/members/${target.invitationId}`],
      ["GET", `/org/${a.slug}/projects/${aProjectTarget.projectSlug}`],
      ["PATCH", `/projects/${a.projectId}/members/${enc(bGuest.email)}`, { role: "admin" }],
      ["DELETE", `/projects/${a.projectId}/members/${enc(bGuest.email)}`],
    ];
    for (const [method, path, body] of cross) {
      const res = await api(path, { method, body, token: a.owner.token });
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(404);
      expect(res.body.error.code).toMatch(/not_found$/i);
    }
    // Still alive.
    expect((await api(`/org/${b.slug}/projects`, { token: bOrgKey.key })).status).toBe(200);
    expect((await api(`/projects/${target.projectId}`, { token: bProjectKey.key })).status).toBe(200);
    expect((await api("/auth/me", { token: bPersonalKey.key })).status).toBe(200);
    const members = await api(`/org/${b.slug}/members`, { token: b.owner.token });
    expect(members.body.members.find((m: any) => m.userId === b.developer.id).role).toBe("developer");
    expect(members.body.members.filter((m: any) => m.status === "pending")).toHaveLength(1);
  });

  it("lists never mix tenants", async () => {
    for (const [, token] of actors()) {
      const list = await api("/projects", { token });
      expect(list.status, list.text).toBe(200);
      expect(list.body.map((p: any) => p.id)).not.toContain(target.projectId);
      expect(list.body.every((p: any) => p.org_id !== b.orgId)).toBe(true);
    }
    const orgs = await api("/orgs", { token: a.owner.token });
    expect(orgs.body.orgs.map((o: any) => o.slug)).not.toContain(b.slug);
    const keys = await api(`/org/${a.slug}/api-keys`, { token: a.owner.token });
    expect(keys.body.keys.map((k: any) => k.id)).not.toContain(bOrgKey.id);
    expect(keys.body.keys.every((k: any) => k.org_id !== b.orgId)).toBe(true);
    const personal = await api("/api-keys", { token: a.owner.token });
    expect(personal.body.map((k: any) => k.id)).not.toContain(bPersonalKey.id);
    const audit = await api(`/org/${a.slug}/audit?limit=100`, { token: a.owner.token });
    expect(audit.body.events.every((e: any) => e.actor.userId !== b.owner.id)).toBe(true);
  });

  it("a member of both orgs still reaches both (the 404s above are about tenancy, not the routes)", async () => {
    // B's admin, who has their own personal org, sees B's project and B's keys list.
    expect((await api(`/projects/${target.projectId}`, { token: b.admin.token })).status).toBe(200);
    expect((await api(`/org/${b.slug}/api-keys`, { token: b.admin.token })).status).toBe(200);
    expect((await api(`/org/${b.slug}/audit`, { token: b.admin.token })).status).toBe(200);
    expect((await api(`/projects/${b.admin.projectId}`, { token: b.admin.token })).status).toBe(200);
  });
});
