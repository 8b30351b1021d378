/**
 * Sessions and their refresh tokens across every route that ends a session, better-auth's
 * own included: an ended session never mints a new one, a replayed refresh token ends its
 * whole family (access tokens too), and session lists carry no other session's secret.
 */
import { describe, expect, it } from "vitest";
import { forgetCredentials, CREDENTIAL_CACHE_MS } from "../../src/auth/credential-cache";
import { api, env, expectApiError, fetchWorker, inOneLimitWindow, signUp, type TestUser } from "./helpers";

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
    // Eight days on: the session has run out its week, the refresh token (30 days) has not.
    await env.DB.prepare("UPDATE session SET expires_at = ?, created_at = ? WHERE token = ?").bind(Date.now() - 1_000, Date.now() - 8 * 86_400_000, u.token).run();
    await env.DB.prepare("UPDATE refresh_token SET created_at = ? WHERE user_id = ?").bind(Date.now() - 8 * 86_400_000, u.id).run();
    // Eight days have passed for this isolate too: no session it validated then is still cached.
    forgetCredentials();
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

  it("a rotation replaces the pair: the old access token ends with it", async () => {
    const u = await signUp();
    const rotated = await refresh(u.refreshToken);
    expect(rotated.status).toBe(200);
    expectApiError(await api("/me", { token: u.token }), 401, "unauthorized");
    expect((await api("/me", { token: rotated.body.access_token })).status).toBe(200);
  });

  it("presenting a refresh token whose session was signed out is refused, not taken for a replay", async () => {
    const u = await signUp();
    const elsewhere = await signInAgain(u);
    const rotated = await refresh(u.refreshToken);
    expect((await api("/auth/logout", { token: rotated.body.access_token, method: "POST" })).status).toBe(200);
    await expectRefreshRefused(rotated.body.refresh_token);
    expect((await api("/me", { token: elsewhere.token })).status).toBe(200);
    expect((await refresh(elsewhere.refreshToken)).status).toBe(200);
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

describe("findings of a security review", { timeout: 120_000 }, () => {
  it("revoke-sessions ends every refresh token, with more sessions than better-auth notifies one by one (100)", async () => {
    const u = await signUp();
    // 105 sessions of one person, each with a live refresh token.
    const pairs: Array<{ token: string; refreshToken: string }> = [];
    for (let i = 0; i < 105; i++) {
      const token = `bulk${i}${crypto.randomUUID().replaceAll("-", "")}`;
      const sessionId = `ses_bulk${i}${Date.now().toString(36)}`;
      await env.DB.prepare("INSERT INTO session (id, expires_at, token, user_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(sessionId, Date.now() + 86_400_000, token, u.id, Date.now(), Date.now())
        .run();
      const refreshToken = `rft_${crypto.randomUUID().replaceAll("-", "")}${crypto.randomUUID().replaceAll("-", "")}`;
      const hash = [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(refreshToken)))].map((b) => b.toString(16).padStart(2, "0")).join("");
      await env.DB.prepare("INSERT INTO refresh_token (id, user_id, hash, session_id, family_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .bind(`rft_bulk${i}${Date.now().toString(36)}`, u.id, hash, sessionId, `fam_${i}`, Date.now() + 86_400_000, Date.now())
        .run();
      pairs.push({ token, refreshToken });
    }
    const all = await betterAuth("/revoke-sessions", u.token, {});
    expect(all.status, all.text).toBe(200);
    for (const p of [pairs[0]!, pairs[50]!, pairs[104]!]) {
      expectApiError(await api("/me", { token: p.token }), 401, "unauthorized");
      await expectRefreshRefused(p.refreshToken);
    }
    await expectRefreshRefused(u.refreshToken);
  });

  it("a bad bearer or ?token= is checked alone: the session cookie is not used in its place", async () => {
    const u = await signUp();
    const login = await api("/auth/login", { body: { email: u.email, password: u.password } });
    const cookie = login.headers.getSetCookie().find((c) => c.startsWith("better-auth.session_token="))!.split(";")[0]!;
    const evil = "https://evil.example";
    const upgrade = await fetchWorker(`/api/v1/projects/${u.projectId}/events?token=x.y`, { headers: { upgrade: "websocket", cookie, origin: evil } });
    expect(upgrade.status).toBe(401);
    const write = await api(`/org/${u.orgSlug}/projects`, { cookie, headers: { origin: evil, authorization: "Bearer x.y" }, body: { name: "Planted" } });
    expectApiError(write, 401, "UNAUTHORIZED");
    expect((await api(`/org/${u.orgSlug}/projects`, { token: u.token })).text).not.toContain("Planted");
  });

  it("?token= counts only on the WebSocket endpoints, even with an upgrade header", async () => {
    const u = await signUp();
    const res = await fetchWorker(`/api/v1/projects?token=${encodeURIComponent(u.token)}`, { headers: { upgrade: "websocket" } });
    expect(res.status).toBe(401);
  });

  it("setting a username through update-user is limited like is-username-available", async () => {
    await inOneLimitWindow();
    const u = await signUp();
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      statuses.push((await betterAuth("/update-user", u.token, { username: `probe_${i}_${Date.now().toString(36)}` })).status);
    }
    expect(statuses.slice(0, 10).every((s) => s === 200), JSON.stringify(statuses)).toBe(true);
    expect(statuses[10]).toBe(429);
    // Other profile changes are not counted.
    expect((await betterAuth("/update-user", u.token, { name: "Still me" })).status).toBe(200);
  });
});

describe("validated sessions are cached briefly in the isolate", { timeout: 30_000 }, () => {
  it("a session ended where this isolate cannot see it is refused within the cache's bound", async () => {
    const u = await signUp();
    expect((await api("/me", { token: u.token })).status).toBe(200);
    // Another isolate signs the session out: its row goes, and nothing here hears of it.
    await env.DB.prepare("DELETE FROM session WHERE token = ?").bind(u.token).run();
    const ended = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - ended < CREDENTIAL_CACHE_MS + 3_000) {
      status = (await api("/me", { token: u.token })).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 250));
    }
    expect(status).toBe(401);
    expect(Date.now() - ended).toBeLessThan(CREDENTIAL_CACHE_MS + 1_500);
  });

  it("a session ended through this isolate is refused on the very next request, by token and by cookie", async () => {
    const u = await signUp();
    expect((await api("/me", { token: u.token })).status).toBe(200);
    const out = await fetchWorker("/api/auth/sign-out", { method: "POST", headers: { authorization: `Bearer ${u.token}` } });
    expect(out.status).toBe(200);
    expectApiError(await api("/me", { token: u.token }), 401, "unauthorized");

    // Revoking every session of the user at once (better-auth deletes them in bulk, without a hook per row).
    const login = await api("/auth/login", { body: { email: u.email, password: u.password } });
    const cookie = login.headers.getSetCookie().find((c) => c.startsWith("better-auth.session_token="))!.split(";")[0]!;
    const other = await api("/auth/login", { body: { email: u.email, password: u.password } });
    expect((await api("/me", { cookie })).status).toBe(200);
    expect((await api("/me", { token: other.body.token })).status).toBe(200);
    const revoked = await fetchWorker("/api/auth/revoke-sessions", { method: "POST", headers: { authorization: `Bearer ${other.body.token}` } });
    expect(revoked.status).toBe(200);
    expectApiError(await api("/me", { cookie }), 401, "unauthorized");
    expectApiError(await api("/me", { token: other.body.token }), 401, "unauthorized");
  });
});
