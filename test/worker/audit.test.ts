/** The org audit log: every mutating call is recorded with actor, action, target, address and agent; GET /org/{slug}/audit reads it. */
import { env } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { api, type CallOptions, createOrgKey, expectApiError, lastMailTo, orgWithEveryRole, signUp, tokenIn, type TestUser, uniqueEmail } from "./helpers";

vi.setConfig({ testTimeout: 60_000 });

interface AuditEvent {
  id: string;
  action: string;
  actor: { type: "user" | "api_key"; id: string; userId: string | null };
  target: { type: string; id: string | null } | null;
  ip: string | null;
  userAgent: string | null;
  metadata: Record<string, unknown> | null;
  createdAt: string;
}

let hop = 0;
/** A call from its own address and agent, so its audit event can be found by them. */
async function from(path: string, opts: CallOptions) {
  const n = ++hop;
  const ip = `203.0.${Math.floor(n / 250)}.${(n % 250) + 1}`;
  const ua = `berth-audit-test/${n} (${Math.random().toString(36).slice(2, 8)})`;
  const res = await api(path, { ...opts, headers: { ...(opts.headers ?? {}), "cf-connecting-ip": ip, "user-agent": ua } });
  return { res, ip, ua };
}

async function audit(slug: string, who: TestUser | string, query = "limit=200"): Promise<AuditEvent[]> {
  const res = await api(`/org/${slug}/audit?${query}`, { token: typeof who === "string" ? who : who.token });
  expect(res.status, res.text).toBe(200);
  expect(Object.keys(res.body)).toEqual(["events"]);
  return res.body.events;
}

/** The one event a call made; fails when it made none or several. */
function eventOf(events: AuditEvent[], call: { ip: string }): AuditEvent {
  const mine = events.filter((e) => e.ip === call.ip);
  expect(mine.map((e) => e.action), `events from ${call.ip}`).toHaveLength(1);
  return mine[0]!;
}

const byUser = (u: TestUser) => ({ type: "user", id: u.id, userId: u.id });

function expectEvent(
  events: AuditEvent[],
  call: { ip: string; ua: string; res: { status: number; text: string } },
  want: { action: string; actor: object; target: object | null; metadata?: object | null },
) {
  expect(call.res.status, call.res.text).toBeLessThan(300);
  expect(eventOf(events, call)).toEqual({
    id: expect.stringMatching(/^aud_/),
    action: want.action,
    actor: want.actor,
    target: want.target,
    ip: call.ip,
    userAgent: call.ua,
    metadata: want.metadata === undefined ? null : want.metadata,
    createdAt: expect.any(String),
  });
}

describe("recording", () => {
  it("records who did what to which target, from which address and agent, for every mutating org call", async () => {
    const t = await orgWithEveryRole();
    const outsider = await signUp();

    // Orgs
    const created = await from("/org", { token: t.owner.token, body: { name: "Audited Newco" } });
    const renamed = await from(`/org/${t.slug}`, { token: t.owner.token, method: "PATCH", body: { name: "Audited Team", defaultRegion: "ams" } });

    // Invitations: create, resend, accept, revoke
    const email = uniqueEmail("audited");
    const invited = await from(`/org/${t.slug}/invitations`, { token: t.admin.token, body: { email, role: "developer" } });
    const invId = invited.res.body.invite.id;
    const resent = await from(`/org/${t.slug}/members/${invId}/resend`, { token: t.admin.token, method: "POST" });
    const joiner = await signUp({ email });
    const accepted = await from("/invitations/accept", { token: joiner.token, body: { token: tokenIn((await lastMailTo(email)).text, "inv_") } });
    const revokeEmail = uniqueEmail("revoked");
    const invited2 = await from(`/org/${t.slug}/invitations`, { token: t.owner.token, body: { email: revokeEmail, role: "viewer" } });
    const revoked = await from(`/org/${t.slug}/members/${invited2.res.body.invite.id}`, { token: t.owner.token, method: "DELETE" });

    // Members: role change, removal, leaving
    const demoted = await from(`/org/${t.slug}/members/${joiner.id}`, { token: t.owner.token, method: "PATCH", body: { role: "viewer" } });
    const removed = await from(`/org/${t.slug}/members/${t.developer.id}`, { token: t.admin.token, method: "DELETE" });
    const left = await from(`/org/${t.slug}/members/${t.viewer.id}`, { token: t.viewer.token, method: "DELETE" });

    // Projects and project grants
    const pCreated = await from(`/org/${t.slug}/projects`, { token: t.admin.token, body: { name: "Audited App" } });
    const p = pCreated.res.body.project;
    const pUpdated = await from(`/org/${t.slug}/projects/${p.slug}`, { token: t.admin.token, method: "PATCH", body: { environment: "staging" } });
    const paused = await from(`/org/${t.slug}/projects/${p.slug}/pause`, { token: t.owner.token, method: "POST" });
    const pausedAgain = await from(`/org/${t.slug}/projects/${p.slug}/pause`, { token: t.owner.token, method: "POST" });
    const resumed = await from(`/org/${t.slug}/projects/${p.slug}/resume`, { token: t.owner.token, method: "POST" });
    const granted = await from(`/projects/${p.id}/members`, { token: t.owner.token, body: { email: outsider.email, role: "viewer" } });
    const regranted = await from(`/projects/${p.id}/members/${encodeURIComponent(outsider.email)}`, { token: t.owner.token, method: "PATCH", body: { role: "developer" } });
    const ungranted = await from(`/projects/${p.id}/members/${encodeURIComponent(outsider.email)}`, { token: t.owner.token, method: "DELETE" });

    // API keys
    const keyMade = await from(`/org/${t.slug}/api-keys`, { token: t.owner.token, body: { name: "ci", scope: "deploy" } });
    const key = keyMade.res.body.key;
    const keyRevoked = await from(`/org/${t.slug}/api-keys/${key.id}`, { token: t.admin.token, method: "DELETE" });

    const pDeleted = await from(`/org/${t.slug}/projects/${p.slug}`, { token: t.admin.token, method: "DELETE" });

    const events = await audit(t.slug, t.owner);
    expectEvent(await audit(created.res.body.org.slug, t.owner), created, {
      action: "org.create",
      actor: byUser(t.owner),
      target: { type: "org", id: created.res.body.org.id },
      metadata: { name: "Audited Newco" },
    });
    expect(events.some((e) => e.ip === created.ip)).toBe(false);
    expectEvent(events, renamed, { action: "org.update", actor: byUser(t.owner), target: { type: "org", id: t.orgId }, metadata: { fields: ["name", "defaultRegion"] } });
    expectEvent(events, invited, { action: "invitation.create", actor: byUser(t.admin), target: { type: "invitation", id: invId }, metadata: { email, role: "developer" } });
    expectEvent(events, resent, { action: "invitation.resend", actor: byUser(t.admin), target: { type: "invitation", id: invId } });
    expectEvent(events, accepted, { action: "invitation.accept", actor: byUser(joiner), target: { type: "invitation", id: invId }, metadata: { role: "developer" } });
    expectEvent(events, revoked, {
      action: "invitation.revoke",
      actor: byUser(t.owner),
      target: { type: "invitation", id: invited2.res.body.invite.id },
      metadata: { email: revokeEmail },
    });
    expectEvent(events, demoted, { action: "member.role_change", actor: byUser(t.owner), target: { type: "user", id: joiner.id }, metadata: { from: "developer", to: "viewer" } });
    expectEvent(events, removed, { action: "member.remove", actor: byUser(t.admin), target: { type: "user", id: t.developer.id }, metadata: { role: "developer" } });
    expectEvent(events, left, { action: "member.leave", actor: byUser(t.viewer), target: { type: "user", id: t.viewer.id } });
    expectEvent(events, pCreated, { action: "project.create", actor: byUser(t.admin), target: { type: "project", id: p.id }, metadata: { name: "Audited App" } });
    expectEvent(events, pUpdated, { action: "project.update", actor: byUser(t.admin), target: { type: "project", id: p.id }, metadata: { fields: ["environment"] } });
    expectEvent(events, paused, { action: "project.pause", actor: byUser(t.owner), target: { type: "project", id: p.id } });
    expectEvent(events, resumed, { action: "project.resume", actor: byUser(t.owner), target: { type: "project", id: p.id } });
    expectEvent(events, granted, { action: "project.member_invite", actor: byUser(t.owner), target: { type: "invitation", id: expect.stringMatching(/^inv_/) }, metadata: { projectId: p.id, role: "viewer" } });
    expectEvent(events, regranted, { action: "project.member_update", actor: byUser(t.owner), target: { type: "project", id: p.id }, metadata: { email: outsider.email, role: "developer" } });
    expectEvent(events, ungranted, { action: "project.member_remove", actor: byUser(t.owner), target: { type: "project", id: p.id }, metadata: { email: outsider.email } });
    expectEvent(events, keyMade, { action: "api_key.create", actor: byUser(t.owner), target: { type: "api_key", id: key.id }, metadata: { name: "ci", scope: "deploy" } });
    expectEvent(events, keyRevoked, { action: "api_key.revoke", actor: byUser(t.admin), target: { type: "api_key", id: key.id } });
    expectEvent(events, pDeleted, { action: "project.delete", actor: byUser(t.admin), target: { type: "project", id: p.id }, metadata: { slug: p.slug } });

    // Pausing a paused project changes nothing and records nothing.
    expect(pausedAgain.res.status).toBe(200);
    expect(events.filter((e) => e.ip === pausedAgain.ip)).toEqual([]);
    // The key's secret is never in the log.
    expect(JSON.stringify(events)).not.toContain(key.key);
    // Newest first.
    const times = events.map((e) => Date.parse(e.createdAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(events[0]!.ip).toBe(pDeleted.ip);
  });

  it("records a key as the actor when a pak_ or dkp_ key mutates, with the key's owner behind it", async () => {
    const t = await orgWithEveryRole();
    const orgKey = await createOrgKey(t.owner, t.slug, "full");
    const personal = await api("/api-keys", { token: t.admin.token, body: { name: "laptop", scope: "full" } });
    expect(personal.status, personal.text).toBe(201);

    const viaOrgKey = await from(`/org/${t.slug}`, { token: orgKey.key, method: "PATCH", body: { name: "Key Renamed" } });
    const projViaOrgKey = await from(`/org/${t.slug}/projects`, { token: orgKey.key, body: { name: "Key Project" } });
    const projViaPersonal = await from(`/org/${t.slug}/projects`, { token: personal.body.key, body: { name: "Laptop Project" } });
    const events = await audit(t.slug, t.owner);
    const keyActor = { type: "api_key", id: orgKey.id, userId: t.owner.id };
    expectEvent(events, viaOrgKey, { action: "org.update", actor: keyActor, target: { type: "org", id: t.orgId }, metadata: { fields: ["name"] } });
    expectEvent(events, projViaOrgKey, {
      action: "project.create",
      actor: keyActor,
      target: { type: "project", id: projViaOrgKey.res.body.project.id },
      metadata: { name: "Key Project" },
    });
    expectEvent(events, projViaPersonal, {
      action: "project.create",
      actor: { type: "api_key", id: personal.body.id, userId: t.admin.id },
      target: { type: "project", id: projViaPersonal.res.body.project.id },
      metadata: { name: "Laptop Project" },
    });
    // The key can read the log it wrote to (full scope includes audit:read).
    expect((await audit(t.slug, orgKey.key)).map((e) => e.id)).toEqual(events.map((e) => e.id));
  });

  it("takes the first x-forwarded-for address without cf-connecting-ip, and stores null when neither is sent", async () => {
    const t = await orgWithEveryRole();
    const forwarded = await api(`/org/${t.slug}`, {
      token: t.owner.token,
      method: "PATCH",
      body: { name: "Forwarded" },
      headers: { "x-forwarded-for": "198.51.100.7, 10.0.0.1", "user-agent": "fwd-agent" },
    });
    expect(forwarded.status).toBe(200);
    const bare = await api(`/org/${t.slug}`, { token: t.owner.token, method: "PATCH", body: { name: "Bare" } });
    expect(bare.status).toBe(200);
    const [newest, previous] = await audit(t.slug, t.owner, "action=org.update");
    expect(previous).toMatchObject({ ip: "198.51.100.7", userAgent: "fwd-agent" });
    expect(newest).toMatchObject({ ip: null, userAgent: null });
  });

  it("records nothing for reads and for refused or failed calls", async () => {
    const t = await orgWithEveryRole();
    const before = await audit(t.slug, t.owner);
    const calls = [
      await from(`/org/${t.slug}/overview`, { token: t.viewer.token }),
      await from(`/org/${t.slug}/members`, { token: t.viewer.token }),
      await from(`/org/${t.slug}/audit`, { token: t.admin.token }),
      await from(`/org/${t.slug}`, { token: t.developer.token, method: "PATCH", body: { name: "Nope" } }),
      await from(`/org/${t.slug}/members/${t.owner.id}`, { token: t.owner.token, method: "DELETE" }),
      await from(`/org/${t.slug}/members/${t.owner.id}`, { token: t.admin.token, method: "PATCH", body: { role: "viewer" } }),
      await from(`/org/${t.slug}/invitations`, { token: t.owner.token, body: { email: t.viewer.email, role: "admin" } }),
      await from(`/org/${t.slug}`, { token: t.owner.token, method: "PATCH", body: { defaultRegion: "mars" } }),
    ];
    expect(calls.map((c) => c.res.status)).toEqual([200, 200, 200, 403, 409, 403, 409, 422]);
    expect(await audit(t.slug, t.owner)).toEqual(before);
  });
});

describe("GET /org/{slug}/audit", () => {
  /** An org with a known history: org.create, then 3 project.create, 2 org.update, 1 api_key.create. */
  async function history() {
    const owner = await signUp();
    const org = await api("/org", { token: owner.token, body: { name: `History ${Math.random().toString(36).slice(2, 8)}` } });
    expect(org.status, org.text).toBe(201);
    const slug: string = org.body.org.slug;
    for (const name of ["One", "Two", "Three"]) expect((await api(`/org/${slug}/projects`, { token: owner.token, body: { name } })).status).toBe(201);
    for (const name of ["First Name", "Second Name"]) expect((await api(`/org/${slug}`, { token: owner.token, method: "PATCH", body: { name } })).status).toBe(200);
    await createOrgKey(owner, slug, "read-only");
    const all = await audit(slug, owner);
    expect(all.map((e) => e.action)).toEqual(["api_key.create", "org.update", "org.update", "project.create", "project.create", "project.create", "org.create"]);
    return { owner, slug, all };
  }

  it("filters by action", async () => {
    const { owner, slug, all } = await history();
    const created = await audit(slug, owner, "action=project.create");
    expect(created.map((e) => e.id)).toEqual(all.filter((e) => e.action === "project.create").map((e) => e.id));
    expect(created.map((e) => e.metadata?.name)).toEqual(["Three", "Two", "One"]);
    expect(await audit(slug, owner, "action=org.delete")).toEqual([]);
    expect(await audit(slug, owner, "action=project")).toEqual([]);
  });

  it("pages with limit and offset, newest first", async () => {
    const { owner, slug, all } = await history();
    const ids = all.map((e) => e.id);
    expect((await audit(slug, owner, "limit=2")).map((e) => e.id)).toEqual(ids.slice(0, 2));
    expect((await audit(slug, owner, "limit=2&offset=2")).map((e) => e.id)).toEqual(ids.slice(2, 4));
    expect((await audit(slug, owner, "offset=5")).map((e) => e.id)).toEqual(ids.slice(5));
    expect(await audit(slug, owner, "offset=7")).toEqual([]);
    const pages = [];
    for (let offset = 0; offset < 9; offset += 3) pages.push(...(await audit(slug, owner, `limit=3&offset=${offset}`)).map((e) => e.id));
    expect(pages).toEqual(ids);
    expect((await audit(slug, owner, "action=project.create&limit=1&offset=1")).map((e) => e.metadata?.name)).toEqual(["Two"]);
  });

  it("filters by time with from and to, both inclusive", async () => {
    const { owner, slug, all } = await history();
    const pivot = all[3]!; // the newest project.create
    const at = (e: AuditEvent) => Date.parse(e.createdAt);
    const since = await audit(slug, owner, `from=${encodeURIComponent(pivot.createdAt)}`);
    expect(since.map((e) => e.id)).toEqual(all.filter((e) => at(e) >= at(pivot)).map((e) => e.id));
    expect(since.map((e) => e.id)).toContain(pivot.id);
    const until = await audit(slug, owner, `to=${encodeURIComponent(pivot.createdAt)}`);
    expect(until.map((e) => e.id)).toEqual(all.filter((e) => at(e) <= at(pivot)).map((e) => e.id));
    expect(until.map((e) => e.id)).toContain(pivot.id);
    const exactly = await audit(slug, owner, `from=${encodeURIComponent(pivot.createdAt)}&to=${encodeURIComponent(pivot.createdAt)}`);
    expect(exactly.map((e) => e.id)).toContain(pivot.id);
    expect(exactly.every((e) => at(e) === at(pivot))).toBe(true);
    const window = await audit(slug, owner, `from=${encodeURIComponent(all[5]!.createdAt)}&to=${encodeURIComponent(all[1]!.createdAt)}&action=project.create`);
    expect(window.map((e) => e.id)).toEqual(all.filter((e) => e.action === "project.create" && at(e) >= at(all[5]!) && at(e) <= at(all[1]!)).map((e) => e.id));
    expect(window.length).toBeGreaterThan(0);
    // Date-only bounds and empty windows.
    expect((await audit(slug, owner, "from=2000-01-01")).map((e) => e.id)).toEqual(all.map((e) => e.id));
    expect(await audit(slug, owner, "to=2000-01-01")).toEqual([]);
    expect(await audit(slug, owner, `from=${encodeURIComponent(new Date(Date.now() + 3600_000).toISOString())}`)).toEqual([]);
  });

  it("answers at most 50 events unless asked for more", async () => {
    const owner = await signUp();
    const org = await api("/org", { token: owner.token, body: { name: `Busy ${Math.random().toString(36).slice(2, 8)}` } });
    const slug = org.body.org.slug;
    for (let i = 0; i < 52; i++) expect((await api(`/org/${slug}`, { token: owner.token, method: "PATCH", body: { name: `Name ${i}` } })).status).toBe(200);
    expect(await audit(slug, owner, "")).toHaveLength(50);
    const all = await audit(slug, owner, "limit=200");
    expect(all).toHaveLength(53);
    expect(all[0]!.metadata).toEqual({ fields: ["name"] });
    expect(all.at(-1)!.action).toBe("org.create");
  });

  it("rejects malformed filters with 422 VALIDATION (backlex)", async () => {
    const t = await orgWithEveryRole();
    for (const query of ["from=not-a-date", "to=yesterday", "limit=0", "limit=201", "limit=abc", "offset=-1", "offset=1.5"]) {
      const res = await api(`/org/${t.slug}/audit?${query}`, { token: t.owner.token });
      expect(`${query} → ${res.status}`).toBe(`${query} → 422`);
      expectApiError(res, 422, "VALIDATION");
    }
  });

  it("is for owners and admins: developers, viewers and narrow keys get 403, other orgs 404, anonymous 401", async () => {
    const t = await orgWithEveryRole();
    expect(await audit(t.slug, t.owner)).not.toEqual([]);
    expect((await audit(t.slug, t.admin)).length).toBeGreaterThan(0);
    for (const who of [t.developer, t.viewer]) expectApiError(await api(`/org/${t.slug}/audit`, { token: who.token }), 403, "FORBIDDEN");
    for (const scope of ["read-only", "deploy"] as const) {
      const key = await createOrgKey(t.owner, t.slug, scope);
      expectApiError(await api(`/org/${t.slug}/audit`, { token: key.key }), 403, "FORBIDDEN");
    }
    expectApiError(await api(`/org/${t.slug}/audit`), 401, "UNAUTHORIZED");
    const outsider = await signUp();
    expectApiError(await api(`/org/${t.slug}/audit`, { token: outsider.token }), 404, "NOT_FOUND");
    const outsiderKey = await createOrgKey(outsider, outsider.orgSlug, "full");
    expectApiError(await api(`/org/${t.slug}/audit`, { token: outsiderKey.key }), 404, "NOT_FOUND");
    // A removed admin loses the log with the seat.
    expect((await api(`/org/${t.slug}/members/${t.admin.id}`, { token: t.owner.token, method: "DELETE" })).status).toBe(204);
    expectApiError(await api(`/org/${t.slug}/audit`, { token: t.admin.token }), 404, "NOT_FOUND");
  });

  it("keeps each org's log to itself", async () => {
    const t = await orgWithEveryRole();
    const outsider = await signUp();
    const mine = await from(`/org/${outsider.orgSlug}`, { token: outsider.token, method: "PATCH", body: { name: "Outsider Renamed" } });
    const theirs = await audit(t.slug, t.owner);
    const own = await audit(outsider.orgSlug, outsider);
    expect(own.map((e) => e.ip)).toEqual([mine.ip]);
    expect(theirs.some((e) => e.ip === mine.ip)).toBe(false);
    const ownIds = new Set(own.map((e) => e.id));
    expect(theirs.some((e) => ownIds.has(e.id))).toBe(false);
    // Nothing of t's members' activity (their sign-ups, their own orgs) leaks into t's log or theirs.
    expect(theirs.every((e) => [t.owner.id, t.admin.id, t.developer.id, t.viewer.id].includes(e.actor.userId!))).toBe(true);
  });

  it("goes with the org when it is deleted", async () => {
    const t = await orgWithEveryRole();
    expect((await audit(t.slug, t.owner)).length).toBeGreaterThan(0);
    expect((await api(`/org/${t.slug}`, { token: t.owner.token, method: "DELETE" })).status).toBe(200);
    expectApiError(await api(`/org/${t.slug}/audit`, { token: t.owner.token }), 404, "NOT_FOUND");
  });
});

describe("a mutation and its audit row commit together", () => {
  /**
   * A trigger refuses audit rows for one org: if a change were written apart from its
   * audit row, it would stay while the audit write failed.
   */
  async function refuseAuditFor(orgId: string, run: () => Promise<void>) {
    const name = `refuse_audit_${orgId.replace(/\W/g, "_")}`;
    await env.DB.prepare(`CREATE TRIGGER ${name} BEFORE INSERT ON audit_event WHEN NEW.org_id = '${orgId}' BEGIN SELECT RAISE(ABORT, 'audit refused'); END`).run();
    try {
      await run();
    } finally {
      await env.DB.prepare(`DROP TRIGGER ${name}`).run();
    }
  }

  it("changes nothing when the audit row cannot be written: org, project, key, member, host", async () => {
    const consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
    const t = await orgWithEveryRole();
    const overview = await api(`/org/${t.slug}/overview`, { token: t.owner.token });
    const orgId: string = overview.body.org.id;
    const project = await api(`/org/${t.slug}/projects`, { token: t.owner.token, body: { name: "Kept" } });
    expect(project.status).toBe(201);
    await refuseAuditFor(orgId, async () => {
      expect((await api(`/org/${t.slug}`, { token: t.owner.token, method: "PATCH", body: { name: "Renamed" } })).status).toBe(500);
      expect((await api(`/org/${t.slug}/projects`, { token: t.owner.token, body: { name: "Ghost" } })).status).toBe(500);
      expect((await api(`/org/${t.slug}/projects/${project.body.project.slug}`, { token: t.owner.token, method: "DELETE" })).status).toBe(500);
      expect((await api(`/org/${t.slug}/api-keys`, { token: t.owner.token, body: { name: "ghost", scope: "full" } })).status).toBe(500);
      expect((await api(`/org/${t.slug}/members/${t.viewer.id}`, { token: t.owner.token, method: "PATCH", body: { role: "admin" } })).status).toBe(500);
      expect((await api(`/org/${t.slug}/hosts`, { token: t.owner.token, body: { name: "ghost-box", kind: "docker" } })).status).toBe(500);
    });
    consoleError.mockRestore();
    // None of it happened.
    expect((await api(`/org/${t.slug}/overview`, { token: t.owner.token })).body.org.name).toBe(overview.body.org.name);
    const projects = await api(`/org/${t.slug}/projects`, { token: t.owner.token });
    expect(projects.body.projects.map((p: { name: string }) => p.name)).toContain("Kept");
    expect(projects.body.projects.map((p: { name: string }) => p.name)).not.toContain("Ghost");
    expect((await api(`/org/${t.slug}/api-keys`, { token: t.owner.token })).body.keys.map((k: { name: string }) => k.name)).not.toContain("ghost");
    const members = await api(`/org/${t.slug}/members`, { token: t.owner.token });
    expect(members.body.members.find((m: { userId: string }) => m.userId === t.viewer.id).role).toBe("viewer");
    expect((await api(`/org/${t.slug}/hosts`, { token: t.owner.token })).text).not.toContain("ghost-box");
    // With the audit log writable again, the same change goes through with its row.
    expect((await api(`/org/${t.slug}`, { token: t.owner.token, method: "PATCH", body: { name: "Renamed" } })).status).toBe(200);
    const events = await audit(t.slug, t.owner);
    expect(events.filter((e) => e.action === "org.update")).toHaveLength(1);
  });
});
