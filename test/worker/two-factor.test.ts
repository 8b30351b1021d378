/**
 * Two-factor sign-in (TOTP): Suble's /account/mfa/enable, /confirm and /disable, the
 * shared /auth/login's second step, and better-auth's own sign-in held back by its
 * twoFactor plugin until /two-factor/verify-totp. Codes are computed with the library the
 * plugin uses (@better-auth/utils/otp) from the secret the enable answer shows.
 */
import { base32 } from "@better-auth/utils/base32";
import { createOTP } from "@better-auth/utils/otp";
import { describe, expect, it } from "vitest";
import { api, type CallResult, env, expectApiError, fetchWorker, inOneLimitWindow, signUp, type TestUser, uniqueIp } from "./helpers";

const ORIGIN = "http://berth.test";

/** The current code of a base32 secret, as an authenticator app would show it. */
const codeOf = (secret: string) => createOTP(base32.decode(secret), { digits: 6, period: 30 }).totp();

/** A code that is not the current one (nor the neighbouring windows'). */
async function wrongCodeOf(secret: string) {
  const otp = createOTP(base32.decode(secret), { digits: 6, period: 30 });
  const near = new Set<string>();
  const step = Math.floor(Date.now() / 30_000);
  for (const n of [step - 1, step, step + 1]) near.add(await otp.hotp(n));
  for (let i = 0; ; i++) {
    const candidate = String((Number(await otp.totp()) + 1 + i) % 1_000_000).padStart(6, "0");
    if (!near.has(candidate)) return candidate;
  }
}

function expectError(res: CallResult, status: number, code: string) {
  expectApiError(res, status, code);
}

/** Enrols and confirms: answers the base32 secret. */
async function turnOn(u: TestUser): Promise<string> {
  const enable = await api("/account/mfa/enable", { token: u.token, method: "POST" });
  expect(enable.status, enable.text).toBe(200);
  const confirm = await api("/account/mfa/confirm", { token: u.token, body: { code: await codeOf(enable.body.secret) } });
  expect(confirm.status, confirm.text).toBe(204);
  return enable.body.secret;
}

const betterAuth = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetchWorker(`/api/auth${path}`, { method: "POST", headers: { "content-type": "application/json", origin: ORIGIN, ...headers }, body: JSON.stringify(body) });

const liveCookie = (headers: Headers, name: string) =>
  headers
    .getSetCookie()
    .filter((c) => c.startsWith(`${name}=`) && !/max-age=0/i.test(c) && !c.startsWith(`${name}=;`))
    .map((c) => c.split(";")[0]!);

describe("two-factor enrolment (Suble's /account/mfa/*)", () => {
  it("enrol, confirm, then sign-in needs the code; a wrong code is refused, the right one signs in; disable and the password alone signs in again", async () => {
    await inOneLimitWindow();
    const u = await signUp();
    expect((await api("/me", { token: u.token })).body.mfaEnabled).toBe(false);

    const enable = await api("/account/mfa/enable", { token: u.token, method: "POST" });
    expect(enable.status, enable.text).toBe(200);
    const { secret, otpauthUrl } = enable.body;
    expect(secret).toMatch(/^[A-Z2-7]+=*$/);
    expect(otpauthUrl).toMatch(/^otpauth:\/\/totp\/Berth:/);
    expect(new URL(otpauthUrl).searchParams.get("secret")).toBe(secret);
    expect(new URL(otpauthUrl).searchParams.get("issuer")).toBe("Berth");
    expect(enable.body.backupCodes).toHaveLength(10);
    // Pending: not on until confirmed, and the password alone still signs in.
    expect((await api("/me", { token: u.token })).body.mfaEnabled).toBe(false);
    const pendingLogin = await api("/auth/login", { body: { email: u.email, password: u.password } });
    expect(pendingLogin.status).toBe(200);
    expect(pendingLogin.body.access_token).toBeTruthy();

    // A wrong code does not confirm.
    expectError(await api("/account/mfa/confirm", { token: u.token, body: { code: await wrongCodeOf(secret) } }), 400, "invalid_code");
    expect((await api("/me", { token: u.token })).body.mfaEnabled).toBe(false);

    const confirm = await api("/account/mfa/confirm", { token: u.token, body: { code: await codeOf(secret) } });
    expect(confirm.status, confirm.text).toBe(204);
    // The caller's access token and refresh token keep working after confirming.
    const me = await api("/me", { token: u.token });
    expect(me.status).toBe(200);
    expect(me.body.mfaEnabled).toBe(true);
    const refreshed = await api("/auth/refresh", { body: { refresh_token: u.refreshToken } });
    expect(refreshed.status, refreshed.text).toBe(200);
    // (A refresh ends the pair it replaces: go on with the new access token.)
    u.token = refreshed.body.access_token;

    // Step one: the password alone answers mfa_required, with no tokens and no new session.
    const sessionsBefore = await env.DB.prepare("SELECT count(*) AS n FROM session WHERE user_id = ?").bind(u.id).first<{ n: number }>();
    const first = await api("/auth/login", { body: { email: u.email, password: u.password } });
    expect(first.status, first.text).toBe(200);
    expect(first.body).toEqual({ mfa_required: true });
    expect(first.headers.getSetCookie().filter((c) => c.startsWith("better-auth.session_token=") && !/max-age=0/i.test(c))).toEqual([]);
    const sessionsAfter = await env.DB.prepare("SELECT count(*) AS n FROM session WHERE user_id = ?").bind(u.id).first<{ n: number }>();
    expect(sessionsAfter!.n).toBe(sessionsBefore!.n);
    // A wrong password with a right code is still a wrong password.
    expectError(await api("/auth/login", { body: { email: u.email, password: "wrong password", code: await codeOf(secret) } }), 401, "invalid_credentials");
    // A wrong code is refused.
    const wrong = await api("/auth/login", { body: { email: u.email, password: u.password, code: await wrongCodeOf(secret) } });
    expectError(wrong, 401, "invalid_mfa_code");
    expect(wrong.text).not.toContain("access_token");
    // The right code signs in, as DevPocket's path too.
    const second = await api("/auth/login", { body: { email: u.email, password: u.password, code: await codeOf(secret) } });
    expect(second.status, second.text).toBe(200);
    expect(second.body.access_token).toBeTruthy();
    expect(second.body.refresh_token).toBeTruthy();
    expect((await api("/me", { token: second.body.access_token })).body.id).toBe(u.id);
    const devpocket = await api("/api/auth/login", { body: { username: u.email, password: u.password, code: await codeOf(secret) } });
    expect(devpocket.status, devpocket.text).toBe(200);
    expect(devpocket.body.token_type).toBe("Bearer");

    // Disable needs a current code.
    expectError(await api("/account/mfa/disable", { token: u.token, body: { code: await wrongCodeOf(secret) } }), 400, "invalid_code");
    expect((await api("/me", { token: u.token })).body.mfaEnabled).toBe(true);
    const disable = await api("/account/mfa/disable", { token: u.token, body: { code: await codeOf(secret) } });
    expect(disable.status, disable.text).toBe(204);
    expect((await api("/me", { token: u.token })).body.mfaEnabled).toBe(false);
    const plain = await api("/auth/login", { body: { email: u.email, password: u.password } });
    expect(plain.status).toBe(200);
    expect(plain.body.access_token).toBeTruthy();
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM two_factor WHERE user_id = ?").bind(u.id).first<{ n: number }>();
    expect(rows!.n).toBe(0);
    expectError(await api("/account/mfa/disable", { token: u.token, body: { code: await codeOf(secret) } }), 409, "mfa_not_enabled");

    // Enable and disable are in the audit log, without the secret.
    const audit = await env.DB.prepare("SELECT action, metadata FROM audit_event WHERE actor_user_id = ? AND action LIKE 'account.mfa.%' ORDER BY created_at, rowid").bind(u.id).all<{ action: string; metadata: string | null }>();
    expect(audit.results.map((r) => r.action)).toEqual(["account.mfa.enrol", "account.mfa.enable", "account.mfa.disable"]);
    expect(JSON.stringify(audit.results)).not.toContain(secret);
  });

  it("a second enable is 409 mfa_already_enabled; enabling again before confirming replaces the pending secret", async () => {
    const u = await signUp();
    const a = await api("/account/mfa/enable", { token: u.token, method: "POST" });
    const b = await api("/account/mfa/enable", { token: u.token, method: "POST" });
    expect(b.status).toBe(200);
    expect(b.body.secret).not.toBe(a.body.secret);
    // The first secret no longer confirms.
    expectError(await api("/account/mfa/confirm", { token: u.token, body: { code: await codeOf(a.body.secret) } }), 400, "invalid_code");
    expect((await api("/account/mfa/confirm", { token: u.token, body: { code: await codeOf(b.body.secret) } })).status).toBe(204);
    expectError(await api("/account/mfa/enable", { token: u.token, method: "POST" }), 409, "mfa_already_enabled");
    expectError(await api("/account/mfa/confirm", { token: u.token, body: { code: await codeOf(b.body.secret) } }), 409, "mfa_already_enabled");
  });

  it("a code that is not 6 digits is 400 invalid_request; confirming with nothing pending is 409", async () => {
    const u = await signUp();
    for (const code of ["12345", "1234567", "abcdef", 123456, ""]) {
      expectError(await api("/account/mfa/confirm", { token: u.token, body: { code } }), 400, "invalid_request");
      expectError(await api("/account/mfa/disable", { token: u.token, body: { code } }), 400, "invalid_request");
    }
    expectError(await api("/account/mfa/confirm", { token: u.token, body: {} }), 400, "invalid_request");
    expectError(await api("/account/mfa/confirm", { token: u.token, body: { code: "123456" } }), 409, "mfa_not_pending");
  });

  it("needs a signed-in person: 401 without a credential, 403 for an API key", async () => {
    expectError(await api("/account/mfa/enable", { method: "POST" }), 401, "unauthorized");
    expectError(await api("/account/mfa/confirm", { body: { code: "123456" } }), 401, "unauthorized");
    expectError(await api("/account/mfa/disable", { body: { code: "123456" } }), 401, "unauthorized");
    const u = await signUp();
    const key = await api("/api-keys", { token: u.token, body: { name: "ci", scope: "full" } });
    expect(key.status, key.text).toBe(201);
    expectError(await api("/account/mfa/enable", { token: key.body.key, method: "POST" }), 403, "forbidden");
    expect((await api("/me", { token: u.token })).body.mfaEnabled).toBe(false);
  });

  it("another user's session touches only its own two-factor", async () => {
    const alice = await signUp();
    const mallory = await signUp();
    const secret = await turnOn(alice);
    // Mallory's calls, even with Alice's current code, concern Mallory's account only.
    expectError(await api("/account/mfa/disable", { token: mallory.token, body: { code: await codeOf(secret) } }), 409, "mfa_not_enabled");
    expectError(await api("/account/mfa/confirm", { token: mallory.token, body: { code: await codeOf(secret) } }), 409, "mfa_not_pending");
    const mine = await api("/account/mfa/enable", { token: mallory.token, method: "POST" });
    expect(mine.status).toBe(200);
    expect(mine.body.secret).not.toBe(secret);
    expect((await api("/me", { token: alice.token })).body.mfaEnabled).toBe(true);
    expect((await api("/me", { token: mallory.token })).body.mfaEnabled).toBe(false);
    expect((await api("/auth/login", { body: { email: alice.email, password: alice.password } })).body).toEqual({ mfa_required: true });
    // Knowing Alice's password is not enough with Mallory's own second factor and session.
    const malloryCode = await codeOf(mine.body.secret);
    expect((await api("/account/mfa/confirm", { token: mallory.token, body: { code: malloryCode } })).status).toBe(204);
    const mixed = await api("/auth/login", { token: mallory.token, cookie: `better-auth.session_token=${mallory.token}`, body: { email: alice.email, password: alice.password, code: malloryCode } });
    expect(mixed.status, mixed.text).toBe(401);
    expect(mixed.text).not.toContain("access_token");
  });

  it("the secret never appears after the enable answer: not in /me, /account, the audit log, sessions or sign-in answers", async () => {
    const u = await signUp();
    const enable = await api("/account/mfa/enable", { token: u.token, method: "POST" });
    const secret: string = enable.body.secret;
    const backup: string = enable.body.backupCodes[0];
    await api("/account/mfa/confirm", { token: u.token, body: { code: await codeOf(secret) } });
    const login = await api("/auth/login", { body: { email: u.email, password: u.password, code: await codeOf(secret) } });
    const answers = [
      await api("/me", { token: u.token }),
      await api("/auth/me", { token: u.token }),
      await api("/account", { token: u.token }),
      await api(`/org/${u.orgSlug}/audit`, { token: u.token }),
      await api("/user/profile", { token: u.token }),
      login,
      await api("/auth/login", { body: { email: u.email, password: u.password } }),
    ];
    // better-auth's route that would show the secret again (for the password) is not served.
    const again = await betterAuth("/two-factor/get-totp-uri", { password: u.password }, { authorization: `Bearer ${u.token}` });
    expect(again.status).toBe(404);
    const session = await fetchWorker("/api/auth/get-session", { headers: { authorization: `Bearer ${u.token}` } });
    const texts = [...answers.map((a) => a.text), await session.text(), await again.text()];
    for (const text of texts) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(backup);
    }
    // At rest it is encrypted: neither the base32 secret nor the backup codes are in the row.
    const row = await env.DB.prepare("SELECT secret, backup_codes FROM two_factor WHERE user_id = ?").bind(u.id).first<{ secret: string; backup_codes: string }>();
    expect(row!.secret).not.toContain(secret);
    expect(row!.backup_codes).not.toContain(backup);
  });
});

describe("the second factor cannot be guessed", () => {
  it("wrong codes at /auth/login spend the account's sign-in attempts: 429, and then even the right code waits", async () => {
    await inOneLimitWindow(30_000);
    const u = await signUp();
    const secret = await turnOn(u);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await api("/auth/login", { body: { email: u.email, password: u.password, code: await wrongCodeOf(secret) }, headers: { "cf-connecting-ip": uniqueIp() } });
      statuses.push(res.status);
      if (res.status === 429) break;
    }
    // Each wrong code costs two of the ten a minute (the password check and the code).
    expect(statuses).toContain(429);
    expect(statuses.indexOf(429)).toBeLessThanOrEqual(5);
    expectError(await api("/auth/login", { body: { email: u.email, password: u.password, code: await codeOf(secret) } }), 429, "rate_limited");
  });
});

describe("better-auth's own sign-in for a two-factor account", () => {
  it("/sign-in/email gives no session without the code; /two-factor/verify-totp with the challenge cookie does", async () => {
    await inOneLimitWindow();
    const u = await signUp();
    const secret = await turnOn(u);
    const ip = uniqueIp();
    const signIn = await betterAuth("/sign-in/email", { email: u.email, password: u.password }, { "cf-connecting-ip": ip });
    const text = await signIn.text();
    expect(signIn.status, text).toBe(200);
    const body = JSON.parse(text);
    expect(body.twoFactorRedirect).toBe(true);
    expect(body.token).toBeUndefined();
    expect(liveCookie(signIn.headers, "better-auth.session_token")).toEqual([]);
    const challenge = liveCookie(signIn.headers, "better-auth.two_factor");
    expect(challenge).toHaveLength(1);

    // A wrong code: no session.
    const bad = await betterAuth("/two-factor/verify-totp", { code: await wrongCodeOf(secret) }, { cookie: challenge[0]! });
    expect(bad.status).toBe(401);
    expect(liveCookie(bad.headers, "better-auth.session_token")).toEqual([]);
    // The right code: a session, by cookie and as a bearer token.
    const good = await betterAuth("/two-factor/verify-totp", { code: await codeOf(secret) }, { cookie: challenge[0]! });
    const goodText = await good.text();
    expect(good.status, goodText).toBe(200);
    const cookie = liveCookie(good.headers, "better-auth.session_token");
    expect(cookie).toHaveLength(1);
    expect((await api("/me", { cookie: cookie[0]! })).body.id).toBe(u.id);
    expect((await api("/me", { token: JSON.parse(goodText).token })).body.id).toBe(u.id);
    // The challenge is used up.
    expect((await betterAuth("/two-factor/verify-totp", { code: await codeOf(secret) }, { cookie: challenge[0]! })).status).toBe(401);
  });

  it("a backup code from the enable answer signs in instead of a TOTP code, once", async () => {
    const u = await signUp();
    const enable = await api("/account/mfa/enable", { token: u.token, method: "POST" });
    await api("/account/mfa/confirm", { token: u.token, body: { code: await codeOf(enable.body.secret) } });
    const backup: string = enable.body.backupCodes[0];
    const first = await betterAuth("/sign-in/email", { email: u.email, password: u.password });
    const challenge = liveCookie(first.headers, "better-auth.two_factor")[0]!;
    const used = await betterAuth("/two-factor/verify-backup-code", { code: backup }, { cookie: challenge });
    expect(used.status, await used.clone().text()).toBe(200);
    expect(liveCookie(used.headers, "better-auth.session_token")).toHaveLength(1);
    const again = await betterAuth("/sign-in/email", { email: u.email, password: u.password });
    const challenge2 = liveCookie(again.headers, "better-auth.two_factor")[0]!;
    expect((await betterAuth("/two-factor/verify-backup-code", { code: backup }, { cookie: challenge2 })).status).toBe(401);
  });

  it("/sign-in/username is held back the same way", async () => {
    const username = `tfa_${Math.random().toString(36).slice(2, 10)}`;
    const reg = await api("/auth/register", { body: { email: `${username}@example.com`, password: "correct horse battery", username } });
    expect(reg.status, reg.text).toBe(201);
    const secret = await turnOn({ token: reg.body.token } as TestUser);
    const signIn = await betterAuth("/sign-in/username", { username, password: "correct horse battery" });
    const body = await signIn.json<Record<string, unknown>>();
    expect(body.twoFactorRedirect).toBe(true);
    expect(body.token).toBeUndefined();
    expect(liveCookie(signIn.headers, "better-auth.session_token")).toEqual([]);
    // Berth's login by username (DevPocket) asks for the code too.
    expect((await api("/auth/login", { body: { username, password: "correct horse battery" } })).body).toEqual({ mfa_required: true });
    const ok = await api("/auth/login", { body: { username, password: "correct horse battery", code: await codeOf(secret) } });
    expect(ok.status, ok.text).toBe(200);
  });

  it("enrolling through better-auth's /two-factor/enable (with the password) and verify-totp turns it on for Berth too, audited", async () => {
    const u = await signUp();
    const auth = { authorization: `Bearer ${u.token}` };
    expect((await betterAuth("/two-factor/enable", { password: "wrong password" }, auth)).status).toBe(400);
    const enable = await betterAuth("/two-factor/enable", { password: u.password }, auth);
    const enabled = await enable.json<{ totpURI: string; backupCodes: string[] }>();
    expect(enable.status, JSON.stringify(enabled)).toBe(200);
    const secret = new URL(enabled.totpURI).searchParams.get("secret")!;
    expect(new URL(enabled.totpURI).searchParams.get("issuer")).toBe("Berth");
    expect((await api("/me", { token: u.token })).body.mfaEnabled).toBe(false);
    const verify = await betterAuth("/two-factor/verify-totp", { code: await codeOf(secret) }, auth);
    expect(verify.status, await verify.clone().text()).toBe(200);
    // The plugin replaces the session when it turns two-factor on: the new token is in set-auth-token.
    const token = verify.headers.get("set-auth-token") ?? u.token;
    expect((await api("/me", { token })).body.mfaEnabled).toBe(true);
    expect((await api("/auth/login", { body: { email: u.email, password: u.password } })).body).toEqual({ mfa_required: true });
    // Berth's disable takes a code from a secret enrolled by the plugin.
    expect((await api("/account/mfa/disable", { token, body: { code: await codeOf(secret) } })).status).toBe(204);
    const audit = await env.DB.prepare("SELECT action FROM audit_event WHERE actor_user_id = ? AND action LIKE 'account.mfa.%' ORDER BY created_at, rowid").bind(u.id).all<{ action: string }>();
    expect(audit.results.map((r) => r.action)).toEqual(["account.mfa.enrol", "account.mfa.enable", "account.mfa.disable"]);
  });
});
