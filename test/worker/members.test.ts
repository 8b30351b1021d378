/** backlex members and invitations: list, invite, resend, revoke, accept, change role, remove, leave. */
import { describe, expect, it, vi } from "vitest";
import {
  api,
  createOrgKey,
  expectApiError,
  lastMailTo,
  orgWithEveryRole,
  seatExisting,
  signUp,
  tokenIn,
  uniqueEmail,
  type TestUser,
} from "./helpers";

// Every sign-up hashes a password; fixtures of several users take a few seconds under load.
vi.setConfig({ testTimeout: 60_000 });

type Team = Awaited<ReturnType<typeof orgWithEveryRole>>;

async function members(t: { slug: string }, who: TestUser) {
  const res = await api(`/org/${t.slug}/members`, { token: who.token });
  expect(res.status, res.text).toBe(200);
  return res.body.members as Array<{ id: string; userId: string | null; email: string; role: string; status: string }>;
}

async function roleOf(t: Team, user: TestUser, asker: TestUser = t.owner): Promise<string | undefined> {
  return (await members(t, asker)).find((m) => m.userId === user.id)?.role;
}

async function seatId(t: Team, user: TestUser): Promise<string> {
  const seat = (await members(t, t.owner)).find((m) => m.userId === user.id);
  expect(seat, `no seat for ${user.email}`).toBeTruthy();
  return seat!.id;
}

async function invite(t: Team, by: TestUser, email: string, role = "viewer") {
  const res = await api(`/org/${t.slug}/invitations`, { token: by.token, body: { email, role } });
  expect(res.status, res.text).toBe(201);
  return { id: res.body.invite.id as string, token: tokenIn((await lastMailTo(email.toLowerCase())).text, "inv_") };
}

const patchRole = (t: Team, by: TestUser, id: string, role: string) =>
  api(`/org/${t.slug}/members/${id}`, { token: by.token, method: "PATCH", body: { role } });
const remove = (t: Team, by: TestUser, id: string) => api(`/org/${t.slug}/members/${id}`, { token: by.token, method: "DELETE" });
const accept = (who: TestUser, token: string) => api("/invitations/accept", { token: who.token, body: { token } });

describe("GET /org/{slug}/members", () => {
  it("lists active members with their roles to every role", async () => {
    const t = await orgWithEveryRole();
    for (const who of [t.owner, t.admin, t.developer, t.viewer]) {
      const list = await members(t, who);
      expect(list.map((m) => [m.userId, m.email, m.role, m.status])).toEqual([
        [t.owner.id, t.owner.email, "owner", "active"],
        [t.admin.id, t.admin.email, "admin", "active"],
        [t.developer.id, t.developer.email, "developer", "active"],
        [t.viewer.id, t.viewer.email, "viewer", "active"],
      ]);
    }
    const [owner] = await members(t, t.viewer);
    expect(owner).toEqual({
      id: expect.stringMatching(/^mem_/),
      userId: t.owner.id,
      email: t.owner.email,
      name: "Owner",
      role: "owner",
      status: "active",
      joinedAt: expect.any(String),
      invitedAt: null,
      expiresAt: null,
    });
  });

  it("shows pending invitations until they are accepted", async () => {
    const t = await orgWithEveryRole();
    const email = uniqueEmail("pending");
    const before = Date.now();
    const inv = await invite(t, t.owner, email, "developer");
    const pending = (await members(t, t.viewer)).filter((m) => m.status === "pending");
    expect(pending).toEqual([
      {
        id: inv.id,
        userId: null,
        email,
        name: null,
        role: "developer",
        status: "pending",
        joinedAt: null,
        invitedAt: expect.any(String),
        expiresAt: expect.any(String),
      },
    ]);
    const expiresIn = Date.parse((pending[0] as any).expiresAt) - before;
    expect(expiresIn).toBeGreaterThan(6.9 * 24 * 3600 * 1000);
    expect(expiresIn).toBeLessThan(7.1 * 24 * 3600 * 1000);

    const joiner = await signUp({ email });
    expect((await accept(joiner, inv.token)).status).toBe(200);
    const after = await members(t, t.owner);
    expect(after.filter((m) => m.status === "pending")).toEqual([]);
    expect(after.find((m) => m.email === email)).toMatchObject({ userId: joiner.id, role: "developer", status: "active" });
  });

  it("answers 401 without a credential", async () => {
    const t = await orgWithEveryRole();
    expectApiError(await api(`/org/${t.slug}/members`), 401, "UNAUTHORIZED");
  });
});

describe("POST /org/{slug}/invitations", () => {
  it("mails a single-use token to the invitee; owner and admin may invite", async () => {
    const t = await orgWithEveryRole();
    for (const [by, role] of [
      [t.owner, "admin"],
      [t.admin, "admin"],
      [t.admin, "developer"],
      [t.owner, "viewer"],
    ] as const) {
      const email = uniqueEmail("invitee");
      const res = await api(`/org/${t.slug}/invitations`, { token: by.token, body: { email, role } });
      expect(res.status, res.text).toBe(201);
      expect(res.body).toEqual({ invite: { id: expect.stringMatching(/^inv_/), email, role, expiresAt: expect.any(String) } });
      const mail = await lastMailTo(email);
      expect(mail.text).toContain(role);
      expect(mail.text).toMatch(/inv_[0-9a-f]{64}/);
      expect(mail.subject).toContain((await api(`/org/${t.slug}/overview`, { token: t.owner.token })).body.org.name);
    }
  });

  it("normalises the address, so a mixed-case invite reaches the lowercase account", async () => {
    const t = await orgWithEveryRole();
    const email = uniqueEmail("mixed");
    const res = await api(`/org/${t.slug}/invitations`, { token: t.owner.token, body: { email: `  ${email.toUpperCase()} `, role: "viewer" } });
    expect(res.status, res.text).toBe(201);
    expect(res.body.invite.email).toBe(email);
    const joiner = await signUp({ email });
    const accepted = await accept(joiner, tokenIn((await lastMailTo(email)).text, "inv_"));
    expect(accepted.status, accepted.text).toBe(200);
    expect(await roleOf(t, joiner)).toBe("viewer");
  });

  it("cannot invite an owner, and validates the body", async () => {
    const t = await orgWithEveryRole();
    for (const body of [{ email: uniqueEmail(), role: "owner" }, { email: "not-an-email", role: "viewer" }, { email: uniqueEmail() }, {}]) {
      expectApiError(await api(`/org/${t.slug}/invitations`, { token: t.owner.token, body }), 422, "VALIDATION");
    }
    expect((await members(t, t.owner)).filter((m) => m.status === "pending")).toEqual([]);
  });

  it("answers 409 already_member for someone already seated", async () => {
    const t = await orgWithEveryRole();
    for (const who of [t.owner, t.viewer]) {
      expectApiError(await api(`/org/${t.slug}/invitations`, { token: t.admin.token, body: { email: who.email, role: "admin" } }), 409, "ALREADY_MEMBER");
    }
    expect(await roleOf(t, t.viewer)).toBe("viewer");
    expect((await members(t, t.owner)).filter((m) => m.status === "pending")).toEqual([]);
  });

  it("replaces an earlier invitation to the same address: one pending entry, the old token stops working", async () => {
    const t = await orgWithEveryRole();
    const email = uniqueEmail("twice");
    const first = await invite(t, t.owner, email, "viewer");
    const second = await invite(t, t.owner, email, "developer");
    expect(second.token).not.toBe(first.token);
    const pending = (await members(t, t.owner)).filter((m) => m.status === "pending");
    expect(pending.map((m) => [m.id, m.email, m.role])).toEqual([[second.id, email, "developer"]]);
    const joiner = await signUp({ email });
    expectApiError(await accept(joiner, first.token), 404, "INVITATION_NOT_FOUND");
    const ok = await accept(joiner, second.token);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.role).toBe("developer");
  });

  it("leaves one pending invitation when invites to one address race", async () => {
    const t = await orgWithEveryRole();
    const email = uniqueEmail("racing");
    const results = await Promise.all([t.owner, t.admin, t.owner].map((by) => api(`/org/${t.slug}/invitations`, { token: by.token, body: { email, role: "viewer" } })));
    expect(results.map((r) => r.status)).toEqual([201, 201, 201]);
    const pending = (await members(t, t.owner)).filter((m) => m.email === email);
    expect(pending).toHaveLength(1);
    expect(results.map((r) => r.body.invite.id)).toContain(pending[0]!.id);
  });

  it("refuses developers, viewers and org keys (a leaked key cannot seat anyone)", async () => {
    const t = await orgWithEveryRole();
    for (const who of [t.developer, t.viewer]) {
      expectApiError(await api(`/org/${t.slug}/invitations`, { token: who.token, body: { email: uniqueEmail(), role: "viewer" } }), 403, "FORBIDDEN");
    }
    const key = await createOrgKey(t.owner, t.slug, "full");
    expectApiError(await api(`/org/${t.slug}/invitations`, { token: key.key, body: { email: uniqueEmail(), role: "viewer" } }), 403, "FORBIDDEN");
    expect((await members(t, t.owner)).filter((m) => m.status === "pending")).toEqual([]);
  });
});

describe("POST /org/{slug}/members/{id}/resend", () => {
  it("mails a new token; the old one stops working, the new one seats the invitee", async () => {
    const t = await orgWithEveryRole();
    const email = uniqueEmail("resend");
    const inv = await invite(t, t.owner, email, "developer");
    const res = await api(`/org/${t.slug}/members/${inv.id}/resend`, { token: t.admin.token, method: "POST" });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ ok: true });
    const fresh = tokenIn((await lastMailTo(email)).text, "inv_");
    expect(fresh).not.toBe(inv.token);
    // Still one pending invitation, with the same id.
    expect((await members(t, t.owner)).filter((m) => m.status === "pending").map((m) => m.id)).toEqual([inv.id]);
    const joiner = await signUp({ email });
    expectApiError(await accept(joiner, inv.token), 404, "INVITATION_NOT_FOUND");
    const ok = await accept(joiner, fresh);
    expect(ok.status, ok.text).toBe(200);
    expect(await roleOf(t, joiner)).toBe("developer");
    // Once accepted there is nothing left to resend.
    expectApiError(await api(`/org/${t.slug}/members/${inv.id}/resend`, { token: t.owner.token, method: "POST" }), 404, "NOT_FOUND");
  });

  it("answers 404 for a member id or an unknown id, 403 to developers and viewers", async () => {
    const t = await orgWithEveryRole();
    const inv = await invite(t, t.owner, uniqueEmail("resend"));
    expectApiError(await api(`/org/${t.slug}/members/${await seatId(t, t.viewer)}/resend`, { token: t.owner.token, method: "POST" }), 404, "NOT_FOUND");
    expectApiError(await api(`/org/${t.slug}/members/inv_nope/resend`, { token: t.owner.token, method: "POST" }), 404, "NOT_FOUND");
    for (const who of [t.developer, t.viewer]) {
      expectApiError(await api(`/org/${t.slug}/members/${inv.id}/resend`, { token: who.token, method: "POST" }), 403, "FORBIDDEN");
    }
  });
});

describe("DELETE /org/{slug}/members/{invitationId}", () => {
  it("revokes a pending invitation: gone from the list, its token dead", async () => {
    const t = await orgWithEveryRole();
    const email = uniqueEmail("revoked");
    const inv = await invite(t, t.owner, email);
    for (const who of [t.developer, t.viewer]) expectApiError(await remove(t, who, inv.id), 403, "FORBIDDEN");
    const res = await remove(t, t.admin, inv.id);
    expect(res.status, res.text).toBe(204);
    expect(res.text).toBe("");
    expect((await members(t, t.owner)).filter((m) => m.status === "pending")).toEqual([]);
    const joiner = await signUp({ email });
    expectApiError(await accept(joiner, inv.token), 404, "INVITATION_NOT_FOUND");
    expectApiError(await remove(t, t.admin, inv.id), 404, "NOT_FOUND");
  });
});

describe("POST /invitations/accept", () => {
  it("seats the invitee with the invited role and answers the org slug", async () => {
    const t = await orgWithEveryRole();
    const email = uniqueEmail("joiner");
    const inv = await invite(t, t.admin, email, "admin");
    const joiner = await signUp({ email });
    const res = await accept(joiner, inv.token);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ orgSlug: t.slug, role: "admin" });
    const orgs = await api("/orgs", { token: joiner.token });
    expect(orgs.body.orgs.find((o: any) => o.slug === t.slug)).toMatchObject({ role: "admin" });
    expect((await api(`/org/${t.slug}/overview`, { token: joiner.token })).body.role).toBe("admin");
    // The token is single-use.
    expectApiError(await accept(joiner, inv.token), 404, "INVITATION_NOT_FOUND");
  });

  it("refuses another user with 403 invitation_email_mismatch, and the invitee can still accept", async () => {
    const t = await orgWithEveryRole();
    const email = uniqueEmail("intended");
    const inv = await invite(t, t.owner, email, "developer");
    const other = await signUp();
    expectApiError(await accept(other, inv.token), 403, "INVITATION_EMAIL_MISMATCH");
    // A member of the org holding someone else's token is refused too.
    expectApiError(await accept(t.viewer, inv.token), 403, "INVITATION_EMAIL_MISMATCH");
    expect((await api(`/org/${t.slug}/overview`, { token: other.token })).status).toBe(404);
    expect(await roleOf(t, t.viewer)).toBe("viewer");
    const intended = await signUp({ email });
    expect((await accept(intended, inv.token)).status).toBe(200);
    expect(await roleOf(t, intended)).toBe("developer");
  });

  it("answers 404 invitation_not_found for an unknown token", async () => {
    const u = await signUp();
    expectApiError(await accept(u, `inv_${"0".repeat(64)}`), 404, "INVITATION_NOT_FOUND");
    expectApiError(await accept(u, "garbage"), 404, "INVITATION_NOT_FOUND");
    expectApiError(await api("/invitations/accept", { token: u.token, body: {} }), 422, "VALIDATION");
  });

  it("lets someone who left be invited again; a seated member cannot be (409 already_member)", async () => {
    const t = await orgWithEveryRole();
    const email = uniqueEmail("rejoiner");
    const joiner = await signUp({ email });
    const first = await invite(t, t.owner, email, "viewer");
    expect((await accept(joiner, first.token)).status).toBe(200);
    expectApiError(await api(`/org/${t.slug}/invitations`, { token: t.owner.token, body: { email, role: "admin" } }), 409, "ALREADY_MEMBER");
    expect((await remove(t, joiner, joiner.id)).status).toBe(204);
    const second = await invite(t, t.owner, email, "developer");
    expectApiError(await accept(joiner, first.token), 404, "INVITATION_NOT_FOUND");
    expect((await accept(joiner, second.token)).status).toBe(200);
    expectApiError(await accept(joiner, second.token), 404, "INVITATION_NOT_FOUND");
    expect(await roleOf(t, joiner)).toBe("developer");
  });

  it("needs the invitee signed in: 401 anonymous, 403 for API keys", async () => {
    const t = await orgWithEveryRole();
    const email = uniqueEmail("keyed");
    const inv = await invite(t, t.owner, email, "admin");
    expectApiError(await api("/invitations/accept", { body: { token: inv.token } }), 401, "UNAUTHORIZED");
    const joiner = await signUp({ email });
    const personal = await api("/api-keys", { token: joiner.token, body: { name: "ro", scope: "read-only" } });
    expectApiError(await api("/invitations/accept", { token: personal.body.key, body: { token: inv.token } }), 403, "FORBIDDEN");
    const orgKey = await createOrgKey(joiner, joiner.orgSlug, "full");
    expectApiError(await api("/invitations/accept", { token: orgKey.key, body: { token: inv.token } }), 403, "FORBIDDEN");
    expect(await roleOf(t, joiner)).toBeUndefined();
    expect((await accept(joiner, inv.token)).status).toBe(200);
  });
});

describe("PATCH /org/{slug}/members/{id}", () => {
  it("lets the owner change a role, by membership id or user id; the new role takes effect", async () => {
    const t = await orgWithEveryRole();
    expectApiError(await api(`/org/${t.slug}/api-keys`, { token: t.developer.token }), 403, "FORBIDDEN");
    const res = await patchRole(t, t.owner, await seatId(t, t.developer), "admin");
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ ok: true });
    expect(await roleOf(t, t.developer)).toBe("admin");
    expect((await api(`/org/${t.slug}/api-keys`, { token: t.developer.token })).status).toBe(200);
    const byUser = await patchRole(t, t.owner, t.developer.id, "viewer");
    expect(byUser.status, byUser.text).toBe(200);
    expect(await roleOf(t, t.developer)).toBe("viewer");
    expectApiError(await api(`/org/${t.slug}/projects`, { token: t.developer.token, body: { name: "Nope" } }), 403, "FORBIDDEN");
  });

  it("lets an admin manage roles below owner", async () => {
    const t = await orgWithEveryRole();
    expect((await patchRole(t, t.admin, t.viewer.id, "developer")).status).toBe(200);
    expect((await patchRole(t, t.admin, t.developer.id, "admin")).status).toBe(200);
    expect(await roleOf(t, t.viewer)).toBe("developer");
    expect(await roleOf(t, t.developer)).toBe("admin");
  });

  it("forbids an admin to change an owner or make anyone owner", async () => {
    const t = await orgWithEveryRole();
    expectApiError(await patchRole(t, t.admin, t.owner.id, "viewer"), 403, "FORBIDDEN");
    expectApiError(await patchRole(t, t.admin, t.owner.id, "admin"), 403, "FORBIDDEN");
    expectApiError(await patchRole(t, t.admin, t.viewer.id, "owner"), 403, "FORBIDDEN");
    expectApiError(await patchRole(t, t.admin, t.admin.id, "owner"), 403, "FORBIDDEN");
    expect((await members(t, t.owner)).map((m) => m.role)).toEqual(["owner", "admin", "developer", "viewer"]);
  });

  it("lets an owner make another owner, who may then demote the first", async () => {
    const t = await orgWithEveryRole();
    expect((await patchRole(t, t.owner, t.admin.id, "owner")).status).toBe(200);
    expect(await roleOf(t, t.admin)).toBe("owner");
    expect((await patchRole(t, t.admin, t.owner.id, "developer")).status).toBe(200);
    expect(await roleOf(t, t.owner)).toBe("developer");
    expectApiError(await api(`/org/${t.slug}`, { token: t.owner.token, method: "DELETE" }), 403, "FORBIDDEN");
  });

  it("never demotes the last owner (409 last_owner)", async () => {
    const t = await orgWithEveryRole();
    const res = await patchRole(t, t.owner, t.owner.id, "admin");
    expectApiError(res, 409, "LAST_OWNER");
    expect(await roleOf(t, t.owner)).toBe("owner");
    // Same seat addressed by membership id.
    expectApiError(await patchRole(t, t.owner, await seatId(t, t.owner), "viewer"), 409, "LAST_OWNER");
    // Setting the same role is no demotion.
    expect((await patchRole(t, t.owner, t.owner.id, "owner")).status).toBe(200);
    expect(await roleOf(t, t.owner)).toBe("owner");
  });

  it("refuses developers and viewers with 403", async () => {
    const t = await orgWithEveryRole();
    for (const who of [t.developer, t.viewer]) {
      expectApiError(await patchRole(t, who, t.viewer.id, "admin"), 403, "FORBIDDEN");
      expectApiError(await patchRole(t, who, who.id, "admin"), 403, "FORBIDDEN");
    }
    expect((await members(t, t.owner)).map((m) => m.role)).toEqual(["owner", "admin", "developer", "viewer"]);
  });

  it("answers 404 for an unknown member, a pending invitation or someone of another org; 400 for a bad role", async () => {
    const t = await orgWithEveryRole();
    const other = await signUp();
    const [otherSeat] = await members({ slug: other.orgSlug }, other);
    const inv = await invite(t, t.owner, uniqueEmail());
    expectApiError(await patchRole(t, t.owner, "mem_doesnotexist", "viewer"), 404, "NOT_FOUND");
    expectApiError(await patchRole(t, t.owner, inv.id, "admin"), 404, "NOT_FOUND");
    expectApiError(await patchRole(t, t.owner, otherSeat!.id, "viewer"), 404, "NOT_FOUND");
    expectApiError(await patchRole(t, t.owner, other.id, "viewer"), 404, "NOT_FOUND");
    expect(await members({ slug: other.orgSlug }, other)).toEqual([otherSeat]);
    expectApiError(await patchRole(t, t.owner, t.viewer.id, "superuser"), 422, "VALIDATION");
  });
});

describe("DELETE /org/{slug}/members/{id}", () => {
  it("lets owner and admin remove members; the removed lose access at once", async () => {
    const t = await orgWithEveryRole();
    const res = await remove(t, t.admin, await seatId(t, t.viewer));
    expect(res.status, res.text).toBe(204);
    expect(await roleOf(t, t.viewer)).toBeUndefined();
    expectApiError(await api(`/org/${t.slug}/overview`, { token: t.viewer.token }), 404, "NOT_FOUND");
    expect((await remove(t, t.owner, t.admin.id)).status).toBe(204);
    expectApiError(await api(`/org/${t.slug}/members`, { token: t.admin.token }), 404, "NOT_FOUND");
    expect((await members(t, t.owner)).map((m) => m.userId)).toEqual([t.owner.id, t.developer.id]);
    expectApiError(await remove(t, t.owner, t.admin.id), 404, "NOT_FOUND");
  });

  it("forbids an admin to remove an owner", async () => {
    const t = await orgWithEveryRole();
    expectApiError(await remove(t, t.admin, t.owner.id), 403, "FORBIDDEN");
    expectApiError(await remove(t, t.admin, await seatId(t, t.owner)), 403, "FORBIDDEN");
    expect(await roleOf(t, t.owner)).toBe("owner");
  });

  it("refuses developers and viewers with 403", async () => {
    const t = await orgWithEveryRole();
    for (const who of [t.developer, t.viewer]) {
      for (const target of [t.owner, t.admin, t.developer, t.viewer].filter((u) => u !== who)) {
        expectApiError(await remove(t, who, target.id), 403, "FORBIDDEN");
      }
    }
    expect((await members(t, t.owner))).toHaveLength(4);
  });

  it("lets any member leave, by user id or membership id", async () => {
    const t = await orgWithEveryRole();
    expect((await remove(t, t.viewer, t.viewer.id)).status).toBe(204);
    expect((await remove(t, t.developer, await seatId(t, t.developer))).status).toBe(204);
    expect((await remove(t, t.admin, t.admin.id)).status).toBe(204);
    for (const who of [t.viewer, t.developer, t.admin]) {
      expectApiError(await api(`/org/${t.slug}/overview`, { token: who.token }), 404, "NOT_FOUND");
      expect((await api("/orgs", { token: who.token })).body.orgs.map((o: any) => o.slug)).toEqual([who.orgSlug]);
    }
    expect((await members(t, t.owner)).map((m) => m.userId)).toEqual([t.owner.id]);
  });

  it("never removes the last owner, even when they leave (409 last_owner); a co-owned org lets one go", async () => {
    const t = await orgWithEveryRole();
    expectApiError(await remove(t, t.owner, t.owner.id), 409, "LAST_OWNER");
    expect(await roleOf(t, t.owner)).toBe("owner");
    expect((await patchRole(t, t.owner, t.admin.id, "owner")).status).toBe(200);
    expect((await remove(t, t.owner, t.owner.id)).status).toBe(204);
    expectApiError(await api(`/org/${t.slug}/overview`, { token: t.owner.token }), 404, "NOT_FOUND");
    expectApiError(await remove(t, t.admin, t.admin.id), 409, "LAST_OWNER");
    expect(await roleOf(t, t.admin, t.admin)).toBe("owner");
  });

  it("does not let an API key leave for its user, nor remove anyone", async () => {
    const t = await orgWithEveryRole();
    const personal = await api("/api-keys", { token: t.viewer.token, body: { name: "full", scope: "full" } });
    expect(personal.status, personal.text).toBe(201);
    expectApiError(await api(`/org/${t.slug}/members/${t.viewer.id}`, { token: personal.body.key, method: "DELETE" }), 403, "FORBIDDEN");
    const orgKey = await createOrgKey(t.owner, t.slug, "full");
    expectApiError(await api(`/org/${t.slug}/members/${t.developer.id}`, { token: orgKey.key, method: "DELETE" }), 403, "FORBIDDEN");
    expect((await members(t, t.owner))).toHaveLength(4);
  });

  it("answers 404 for a seat of another org, leaving it untouched", async () => {
    const t = await orgWithEveryRole();
    const other = await signUp();
    const [otherSeat] = await members({ slug: other.orgSlug }, other);
    expectApiError(await remove(t, t.owner, otherSeat!.id), 404, "NOT_FOUND");
    expectApiError(await remove(t, t.owner, other.id), 404, "NOT_FOUND");
    expect(await members({ slug: other.orgSlug }, other)).toEqual([otherSeat]);
  });
});

describe("members of another org", () => {
  it("get 404 on every member route, and nothing changes", async () => {
    const t = await orgWithEveryRole();
    const inv = await invite(t, t.owner, uniqueEmail("pending"));
    const outsider = await signUp();
    const before = await members(t, t.owner);
    for (const [method, path, body] of [
      ["GET", `/org/${t.slug}/members`],
      ["PATCH", `/org/${t.slug}/members/${t.viewer.id}`, { role: "admin" }],
      ["DELETE", `/org/${t.slug}/members/${t.viewer.id}`],
      ["DELETE", `/org/${t.slug}/members/${inv.id}`],
      ["POST", `/org/${t.slug}/members/${inv.id}/resend`],
      ["POST", `/org/${t.slug}/invitations`, { email: outsider.email, role: "admin" }],
    ] as Array<[string, string, unknown?]>) {
      const res = await api(path, { method, body, token: outsider.token });
      expect(`${method} ${path} → ${res.status}`).toBe(`${method} ${path} → 404`);
      expectApiError(res, 404, "NOT_FOUND");
    }
    expect(await members(t, t.owner)).toEqual(before);
    // Their own pending token still works for the intended person only.
    expectApiError(await accept(outsider, inv.token), 403, "INVITATION_EMAIL_MISMATCH");
  });

  it("a second org's admin cannot touch the first even when seated in both", async () => {
    const a = await orgWithEveryRole();
    const b = await orgWithEveryRole();
    // a's viewer becomes admin in b: still only a viewer in a.
    await seatExisting(b.owner, a.viewer, "admin", b.slug);
    expectApiError(await patchRole(a, a.viewer, a.developer.id, "viewer"), 403, "FORBIDDEN");
    expect((await patchRole(b, a.viewer, b.developer.id, "viewer")).status).toBe(200);
    expect(await roleOf(a, a.developer)).toBe("developer");
  });
});
