/**
 * Sessions and their refresh tokens across every route that ends a session, better-auth's
 * own included: an ended session never mints a new one, a replayed refresh token ends its
 * whole family (access tokens too), and session lists carry no other session's secret.
 */
import { describe, expect, it } from "vitest";
import { api, env, expectApiError, fetchWorker, signUp, type TestUser } from "./helpers";

const ORIGIN = "http://berth.test";

/** better-auth's own routes, called as its client library would with a bearer session. */
async function betterAuth(path: string, token: string, body?: unknown) {
  const res = await fetchWorker(`/api/auth${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", origin: ORIGIN },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : null };
}

/** A second sign-in of the same user: another session with its own refresh token. */
async function signInAgain(u: TestUser) {
  const res = await api("/auth/login", { body: { email: u.email, password: u.password } });
  expect(res.status, res.text).toBe(200);
  return { token: res.body.access_token as string, refreshToken: res.body.refresh_token as string };
}

const refresh = (refreshToken: string) => api("/auth/refresh", { body: { refresh_token: refreshToken } });

async function expectRefreshRefused(refreshToken: string) {
  expectApiError(await refresh(refreshToken), 401, "invalid_refresh");
}

describe("ending a session ends its refresh token, whichever route ends it", { timeout: 30_000 }, () => {
  it("better-auth's sign-out", async () => {
    const u = await signUp();
    const other = await signInAgain(u);
    const out = await betterAuth("/sign-out", u.token, {});
    expect(out.status, out.text).toBe(200);
    expectApiError(await api("/me", { token: u.token }), 401, "unauthorized");
    await expectRefreshRefused(u.refreshToken);
    // The user's other session and its refresh token are untouched.
    expect((await refresh(other.refreshToken)).status).toBe(200);
  });

  it("better-auth's revoke-session, revoke-sessions and revoke-other-sessions", async () => {
    const u = await signUp();
    const second = await signInAgain(u);
    const third = await signInAgain(u);
    const fourth = await signInAgain(u);

    // revoke-session: the first session ends another one by its token.
    const one = await betterAuth("/revoke-session", u.token, { token: second.token });
    expect(one.status, one.text).toBe(200);
    await expectRefreshRefused(second.refreshToken);

    // revoke-other-sessions: every session but the caller's.
    const others = await betterAuth("/revoke-other-sessions", u.token, {});
    expect(others.status, others.text).toBe(200);
    await expectRefreshRefused(third.refreshToken);
    await expectRefreshRefused(fourth.refreshToken);
    expectApiError(await api("/me", { token: fourth.token }), 401, "unauthorized");
    const kept = await refresh(u.refreshToken);
    expect(kept.status, kept.text).toBe(200);

    // revoke-sessions: all of them, including the one the refresh just made.
    const fifth = await signInAgain(u);
    const all = await betterAuth("/revoke-sessions", fifth.token, {});
    expect(all.status, all.text).toBe(200);
    await expectRefreshRefused(fifth.refreshToken);
    await expectRefreshRefused(kept.body.refresh_token);
    expectApiError(await api("/me", { token: kept.body.access_token }), 401, "unauthorized");
  });

  it("better-auth's change-password with revokeOtherSessions", async () => {
    const u = await signUp();
    const other = await signInAgain(u);
    const changed = await betterAuth("/change-password", u.token, {
      currentPassword: u.password,
      newPassword: "a brand new password",
      revokeOtherSessions: true,
    });
    expect(changed.status, changed.text).toBe(200);
    await expectRefreshRefused(other.refreshToken);
    await expectRefreshRefused(u.refreshToken);
    expectApiError(await api("/me", { token: other.token }), 401, "unauthorized");
    // The new password signs in and its refresh token works.
    const fresh = await api("/auth/login", { body: { email: u.email, password: "a brand new password" } });
    expect(fresh.status, fresh.text).toBe(200);
    expect((await refresh(fresh.body.refresh_token)).status).toBe(200);
  });

  it("a session that merely expired can still be renewed: that is what a refresh token is for", async () => {
    const u = await signUp();
    await env.DB.prepare("UPDATE session SET expires_at = ? WHERE token = ?").bind(Date.now() - 1_000, u.token).run();
    // better-auth drops the expired session when it is presented.
    expectApiError(await api("/me", { token: u.token }), 401, "unauthorized");
    const renewed = await refresh(u.refreshToken);
    expect(renewed.status, renewed.text).toBe(200);
    expect((await api("/me", { token: renewed.body.access_token })).status).toBe(200);
  });
});

describe("a replayed refresh token ends its whole family", { timeout: 30_000 }, () => {
  it("ends every session the family issued, access tokens included, and leaves other sign-ins alone", async () => {
    const u = await signUp();
    const elsewhere = await signInAgain(u);
    const rotated = await refresh(u.refreshToken);
    expect(rotated.status, rotated.text).toBe(200);
    expect((await api("/me", { token: rotated.body.access_token })).status).toBe(200);

    // The first token again: it leaked.
    await expectRefreshRefused(u.refreshToken);
    expectApiError(await api("/me", { token: rotated.body.access_token }), 401, "unauthorized");
    expectApiError(await api("/me", { token: u.token }), 401, "unauthorized");
    await expectRefreshRefused(rotated.body.refresh_token);

    // Another sign-in of the same person is another family.
    expect((await api("/me", { token: elsewhere.token })).status).toBe(200);
    expect((await refresh(elsewhere.refreshToken)).status).toBe(200);
  });

  it("presenting a refresh token whose session was signed out is not a replay: the family's other sessions live", async () => {
    const u = await signUp();
    const rotated = await refresh(u.refreshToken);
    expect(rotated.status).toBe(200);
    expect((await api("/auth/logout", { token: rotated.body.access_token, method: "POST" })).status).toBe(200);
    await expectRefreshRefused(rotated.body.refresh_token);
    // The first session of the family was not signed out and still works.
    expect((await api("/me", { token: u.token })).status).toBe(200);
  });
});

describe("session lists", { timeout: 30_000 }, () => {
  it("list-sessions shows no session's token, and a session can be revoked by its id", async () => {
    const u = await signUp();
    const other = await signInAgain(u);
    const listed = await betterAuth("/list-sessions", u.token);
    expect(listed.status, listed.text).toBe(200);
    expect(listed.body.length).toBeGreaterThanOrEqual(2);
    for (const s of listed.body) {
      expect(s).not.toHaveProperty("token");
      expect(s.id).toMatch(/^ses_/);
      expect(s.userId).toBe(u.id);
    }
    expect(listed.text).not.toContain(other.token);
    expect(listed.text).not.toContain(u.token);

    const otherId = listed.body.map((s: { id: string }) => s.id);
    // Revoke the other session by id.
    const rows = await env.DB.prepare("SELECT id FROM session WHERE token = ?").bind(other.token).all<{ id: string }>();
    const otherSessionId = rows.results[0]!.id;
    expect(otherId).toContain(otherSessionId);
    const revoked = await betterAuth("/revoke-session", u.token, { token: otherSessionId });
    expect(revoked.status, revoked.text).toBe(200);
    expectApiError(await api("/me", { token: other.token }), 401, "unauthorized");
    await expectRefreshRefused(other.refreshToken);
    expect((await api("/me", { token: u.token })).status).toBe(200);
  });

  it("one user cannot end another user's session by its id", async () => {
    const a = await signUp();
    const b = await signUp();
    const bSession = (await env.DB.prepare("SELECT id FROM session WHERE token = ?").bind(b.token).all<{ id: string }>()).results[0]!.id;
    await betterAuth("/revoke-session", a.token, { token: bSession });
    expect((await api("/me", { token: b.token })).status).toBe(200);
    expect((await refresh(b.refreshToken)).status).toBe(200);
  });
});
