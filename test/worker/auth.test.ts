/**
 * Identity: the seeds' sign-up and sign-in endpoints (Dockup, Suble, DevPocket),
 * token pairs and refresh rotation, password reset through the outbox, cookie
 * and bearer sessions, better-auth's own endpoints, and sign-in rate limiting.
 */
import { describe, expect, it } from "vitest";
import { api, createOrgKey, fetchWorker, inOneLimitWindow, lastMailTo, signUp, uniqueEmail, uniqueIp } from "./helpers";

const PASSWORD = "correct horse battery";

/** The `name=value` of better-auth's session cookie from a response, for a `Cookie` header. */
function sessionCookie(headers: Headers): string {
  const set = headers.getSetCookie().find((c) => c.startsWith("better-auth.session_token="));
  expect(set, `no session cookie in ${JSON.stringify(headers.getSetCookie())}`).toBeDefined();
  return set!.split(";")[0]!;
}

/** The reset token a password-reset mail carries. */
function resetTokenIn(text: string): string {
  const match = text.match(/reset-password\?token=([A-Za-z0-9_-]+)/);
  if (!match) throw new Error(`no reset token in mail: ${text}`);
  return match[1]!;
}

function expectError(res: { status: number; body: any; text: string }, status: number, code: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.body).toMatchObject({ error: { code, message: expect.any(String) } });
  expect(res.body.error.message.length).toBeGreaterThan(0);
}

function expectUserShape(u: any, email: string) {
  expect(u).toMatchObject({
    id: expect.stringMatching(/^usr_/),
    email,
    emailVerified: false,
    mfaEnabled: false,
    createdAt: expect.any(String),
  });
  expect(u.uid).toBe(u.id);
  expect(new Date(u.createdAt).toString()).not.toBe("Invalid Date");
  expect(JSON.stringify(u)).not.toMatch(/password|hash/i);
}

describe("Dockup: register, login, me", () => {
  it("registers with 201 {user, token}, and the token reads /auth/me", async () => {
    const email = uniqueEmail("dockup");
    const res = await api("/auth/register", { body: { email, password: PASSWORD, name: "Ada Lovelace" } });
    expect(res.status, res.text).toBe(201);
    expectUserShape(res.body.user, email);
    expect(res.body.user.name).toBe("Ada Lovelace");
    expect(res.body.token).toEqual(expect.any(String));
    expect(res.body.token.length).toBeGreaterThan(10);
    expect(res.body.user_id).toBe(res.body.user.id);
    expect(res.body.token_type).toBe("Bearer");
    expect(res.body.expires_in).toBeGreaterThan(0);
    expect(res.text).not.toContain(PASSWORD);

    const me = await api("/auth/me", { token: res.body.token });
    expect(me.status, me.text).toBe(200);
    expect(me.body.id).toBe(res.body.user.id);
    expect(me.body.email).toBe(email);
    expect(me.body.name).toBe("Ada Lovelace");
  });

  it("stores the email lowercased and signs in whatever its case", async () => {
    const email = uniqueEmail("MixedCase");
    const res = await api("/auth/register", { body: { email: `  ${email.toUpperCase()} `, password: PASSWORD, name: "Case" } });
    expect(res.status, res.text).toBe(201);
    expect(res.body.user.email).toBe(email.toLowerCase());
    const login = await api("/auth/login", { body: { email: email.toUpperCase(), password: PASSWORD } });
    expect(login.status, login.text).toBe(200);
    expect(login.body.user.id).toBe(res.body.user.id);
  });

  it("logs in with 200 {user, token}; the new token works and differs from the first", async () => {
    const u = await signUp();
    const login = await api("/auth/login", { body: { email: u.email, password: u.password } });
    expect(login.status, login.text).toBe(200);
    expectUserShape(login.body.user, u.email);
    expect(login.body.user.id).toBe(u.id);
    expect(login.body.token).not.toBe(u.token);
    const me = await api("/auth/me", { token: login.body.token });
    expect(me.status, me.text).toBe(200);
    expect(me.body.id).toBe(u.id);
    // The sign-up session is still good: signing in again does not sign out other devices.
    expect((await api("/auth/me", { token: u.token })).status).toBe(200);
  });

  it("answers a duplicate email with 409 email_taken, whatever its case", async () => {
    const u = await signUp();
    expectError(await api("/auth/register", { body: { email: u.email, password: PASSWORD, name: "Again" } }), 409, "email_taken");
    expectError(await api("/auth/register", { body: { email: u.email.toUpperCase(), password: PASSWORD, name: "Again" } }), 409, "email_taken");
    // The original account is untouched.
    const login = await api("/auth/login", { body: { email: u.email, password: u.password } });
    expect(login.status, login.text).toBe(200);
    expect(login.body.user.name).toBe("Test User");
  });

  it("answers a wrong password and an unknown email alike with 401 invalid_credentials", async () => {
    const u = await signUp();
    const wrong = await api("/auth/login", { body: { email: u.email, password: "not the password" } });
    expectError(wrong, 401, "invalid_credentials");
    expect(wrong.body.token).toBeUndefined();
    expect(wrong.headers.getSetCookie().some((c) => c.startsWith("better-auth.session_token=") && !/max-age=0/i.test(c))).toBe(false);
    const unknown = await api("/auth/login", { body: { email: uniqueEmail("nobody"), password: "not the password" } });
    expectError(unknown, 401, "invalid_credentials");
    // No account discovery: both refusals read the same.
    expect(unknown.body.error.message).toBe(wrong.body.error.message);
  });

  it("rejects a register body that fails validation with 400 invalid_request", async () => {
    expectError(await api("/auth/register", { body: { email: "not-an-email", password: PASSWORD, name: "X" } }), 400, "invalid_request");
    const short = await api("/auth/register", { body: { email: uniqueEmail(), password: "short", name: "X" } });
    expectError(short, 400, "invalid_request");
    expect(short.body.error.details.issues.map((i: any) => i.path)).toContain("password");
    // Nothing was created for the refused address.
    const email = uniqueEmail("refused");
    await api("/auth/register", { body: { email, password: "short", name: "X" } });
    expectError(await api("/auth/login", { body: { email, password: "short" } }), 401, "invalid_credentials");
  });

  it("makes a personal org the user owns and a default project", async () => {
    const res = await api("/auth/register", { body: { email: uniqueEmail(), password: PASSWORD, name: "Org Maker" } });
    expect(res.status, res.text).toBe(201);
    const orgs = await api("/orgs", { token: res.body.token });
    expect(orgs.status, orgs.text).toBe(200);
    expect(orgs.body.orgs).toHaveLength(1);
    expect(orgs.body.orgs[0]).toMatchObject({ personal: true, role: "owner" });
    const projects = await api("/projects", { token: res.body.token });
    expect(projects.status, projects.text).toBe(200);
    expect(projects.body).toHaveLength(1);
    expect(projects.body[0]).toMatchObject({ name: "My Project", orgId: orgs.body.orgs[0].id });
  });
});

describe("Suble: signup, login, refresh, password reset, /me", { timeout: 30_000 }, () => {
  it("signs up with fullname, country and language, creating a personal org and a default project", async () => {
    const email = uniqueEmail("suble");
    const res = await api("/auth/signup", { body: { email, password: PASSWORD, fullname: "Grace Hopper", country: "us", language: "en", isCompany: true } });
    expect(res.status, res.text).toBe(201);
    expectUserShape(res.body.user, email);
    expect(res.body.user).toMatchObject({ fullname: "Grace Hopper", name: "Grace Hopper", country: "US", language: "en" });
    expect(res.body.access_token).toBe(res.body.token);
    expect(res.body.refresh_token).toMatch(/^rft_/);
    expect(res.body.refresh_token).not.toBe(res.body.access_token);

    const me = await api("/me", { token: res.body.access_token });
    expect(me.status, me.text).toBe(200);
    expect(me.body).toMatchObject({ id: res.body.user.id, email, fullname: "Grace Hopper", country: "US", language: "en" });

    const orgs = await api("/orgs", { token: res.body.access_token });
    expect(orgs.body.orgs).toHaveLength(1);
    expect(orgs.body.orgs[0]).toMatchObject({ personal: true, role: "owner" });
    const projects = await api("/projects", { token: res.body.access_token });
    expect(projects.body.map((p: any) => p.name)).toEqual(["My Project"]);
  });

  it("defaults country to DK and language to da", async () => {
    const res = await api("/auth/signup", { body: { email: uniqueEmail("dk"), password: PASSWORD, fullname: "Søren" } });
    expect(res.status, res.text).toBe(201);
    expect(res.body.user).toMatchObject({ country: "DK", language: "da", fullname: "Søren" });
  });

  it("refuses a taken email with 409 email_taken and bad fields with 400 invalid_request", async () => {
    const u = await signUp();
    expectError(await api("/auth/signup", { body: { email: u.email, password: PASSWORD, fullname: "Dup" } }), 409, "email_taken");
    expectError(await api("/auth/signup", { body: { email: uniqueEmail(), password: PASSWORD, fullname: "X", country: "DNK" } }), 400, "invalid_request");
    expectError(await api("/auth/signup", { body: { email: uniqueEmail(), password: PASSWORD, fullname: "X", language: "de" } }), 400, "invalid_request");
    expectError(await api("/auth/signup", { body: { email: uniqueEmail(), password: PASSWORD, fullname: "" } }), 400, "invalid_request");
    expectError(await api("/auth/signup", { body: { email: uniqueEmail(), password: PASSWORD, fullname: "x".repeat(121) } }), 400, "invalid_request");
  });

  it("logs in with a token pair whose refresh token rotates", async () => {
    const u = await signUp();
    const login = await api("/auth/login", { body: { email: u.email, password: u.password } });
    expect(login.status, login.text).toBe(200);
    expect(login.body.refresh_token).toMatch(/^rft_/);

    const first = await api("/auth/refresh", { body: { refresh_token: login.body.refresh_token } });
    expect(first.status, first.text).toBe(200);
    expect(first.body.token_type).toBe("Bearer");
    expect(first.body.expires_in).toBeGreaterThan(0);
    expect(first.body.access_token).toBe(first.body.token);
    expect(first.body.refresh_token).toMatch(/^rft_/);
    expect(first.body.refresh_token).not.toBe(login.body.refresh_token);
    expect(first.body.access_token).not.toBe(login.body.access_token);
    const me = await api("/me", { token: first.body.access_token });
    expect(me.status, me.text).toBe(200);
    expect(me.body.id).toBe(u.id);

    // The rotated token works in turn.
    const second = await api("/auth/refresh", { body: { refresh_token: first.body.refresh_token } });
    expect(second.status, second.text).toBe(200);
    expect((await api("/me", { token: second.body.access_token })).status).toBe(200);
  });

  it("revokes the whole family when a refresh token is presented twice", async () => {
    const u = await signUp();
    const rotated = await api("/auth/refresh", { body: { refresh_token: u.refreshToken } });
    expect(rotated.status, rotated.text).toBe(200);

    // The same token again: it leaked.
    expectError(await api("/auth/refresh", { body: { refresh_token: u.refreshToken } }), 401, "invalid_refresh");
    // The token issued in its place is dead too, although it was never used.
    expectError(await api("/auth/refresh", { body: { refresh_token: rotated.body.refresh_token } }), 401, "invalid_refresh");
    // A fresh sign-in starts a new family that works.
    const login = await api("/auth/login", { body: { email: u.email, password: u.password } });
    expect(login.status, login.text).toBe(200);
    const again = await api("/auth/refresh", { body: { refresh_token: login.body.refresh_token } });
    expect(again.status, again.text).toBe(200);
  });

  it("leaves no working refresh token after two simultaneous refreshes with the same token", async () => {
    const u = await signUp();
    const results = await Promise.all([0, 1].map(() => api("/auth/refresh", { body: { refresh_token: u.refreshToken } })));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200).length, JSON.stringify(statuses)).toBeLessThanOrEqual(1);
    expect(statuses).toContain(401);
    for (const r of results) {
      if (r.status === 401) {
        expect(r.body.error.code).toBe("invalid_refresh");
      } else {
        // The race looks like a replay, so the refresh token the winner got is revoked with the family.
        expect(r.status, r.text).toBe(200);
        expectError(await api("/auth/refresh", { body: { refresh_token: r.body.refresh_token } }), 401, "invalid_refresh");
      }
    }
  });

  it("does not let one user's refresh reuse revoke another user's tokens", async () => {
    const a = await signUp();
    const b = await signUp();
    expect((await api("/auth/refresh", { body: { refresh_token: a.refreshToken } })).status).toBe(200);
    expect((await api("/auth/refresh", { body: { refresh_token: a.refreshToken } })).status).toBe(401);
    const bRefresh = await api("/auth/refresh", { body: { refresh_token: b.refreshToken } });
    expect(bRefresh.status, bRefresh.text).toBe(200);
  });

  it("rejects unknown, malformed and missing refresh tokens", async () => {
    expectError(await api("/auth/refresh", { body: { refresh_token: `rft_${"0".repeat(64)}` } }), 401, "invalid_refresh");
    expectError(await api("/auth/refresh", { body: { refresh_token: "garbage" } }), 401, "invalid_refresh");
    // An access token is not a refresh token.
    const u = await signUp();
    expectError(await api("/auth/refresh", { body: { refresh_token: u.token } }), 401, "invalid_refresh");
    expectError(await api("/auth/refresh", { body: { refresh_token: "" } }), 400, "invalid_request");
    // Suble: a body without refresh_token (and no bearer session to renew) is a malformed request.
    expectError(await api("/auth/refresh", { body: {} }), 400, "invalid_request");
  });

  it("resets a forgotten password through the mailed link", async () => {
    const u = await signUp();
    const forgot = await api("/auth/password/forgot", { body: { email: u.email.toUpperCase() } });
    expect(forgot.status, forgot.text).toBe(204);
    expect(forgot.text).toBe("");

    const mail = await lastMailTo(u.email);
    expect(mail.subject).toMatch(/reset/i);
    const token = resetTokenIn(mail.text);
    expect(mail.text).toContain(`/reset-password?token=${token}`);

    const newPassword = "a brand new passphrase";
    const reset = await api("/auth/password/reset", { body: { token, password: newPassword } });
    expect(reset.status, reset.text).toBe(204);

    expectError(await api("/auth/login", { body: { email: u.email, password: u.password } }), 401, "invalid_credentials");
    const login = await api("/auth/login", { body: { email: u.email, password: newPassword } });
    expect(login.status, login.text).toBe(200);
    expect(login.body.user.id).toBe(u.id);
    // Resetting signs out every earlier session.
    expectError(await api("/me", { token: u.token }), 401, "unauthorized");

    // The token is single-use.
    expectError(await api("/auth/password/reset", { body: { token, password: "yet another passphrase" } }), 400, "invalid_token");
    expect((await api("/auth/login", { body: { email: u.email, password: newPassword } })).status).toBe(200);
    expectError(await api("/auth/login", { body: { email: u.email, password: "yet another passphrase" } }), 401, "invalid_credentials");
  });

  it("kills earlier refresh tokens when the password is reset", async () => {
    const u = await signUp();
    const login = await api("/auth/login", { body: { email: u.email, password: u.password } });
    expect(login.status, login.text).toBe(200);
    const rotated = await api("/auth/refresh", { body: { refresh_token: login.body.refresh_token } });
    expect(rotated.status, rotated.text).toBe(200);
    await api("/auth/password/forgot", { body: { email: u.email } });
    const token = resetTokenIn((await lastMailTo(u.email)).text);
    expect((await api("/auth/password/reset", { body: { token, password: "after the breach" } })).status).toBe(204);
    // Whoever held a session before the reset cannot mint a new one from its refresh token.
    expectError(await api("/me", { token: rotated.body.access_token }), 401, "unauthorized");
    expectError(await api("/auth/refresh", { body: { refresh_token: u.refreshToken } }), 401, "invalid_refresh");
    expectError(await api("/auth/refresh", { body: { refresh_token: rotated.body.refresh_token } }), 401, "invalid_refresh");
    // A sign-in with the new password gets a working pair, and replaying pre-reset tokens
    // (even one already used) afterwards does not revoke it.
    const fresh = await api("/auth/login", { body: { email: u.email, password: "after the breach" } });
    expect(fresh.status, fresh.text).toBe(200);
    expectError(await api("/auth/refresh", { body: { refresh_token: login.body.refresh_token } }), 401, "invalid_refresh");
    expectError(await api("/auth/refresh", { body: { refresh_token: u.refreshToken } }), 401, "invalid_refresh");
    expect((await api("/auth/refresh", { body: { refresh_token: fresh.body.refresh_token } })).status).toBe(200);
  });

  it("rejects an unknown reset token and a too-short new password", async () => {
    expectError(await api("/auth/password/reset", { body: { token: "x".repeat(24), password: "whatever password" } }), 400, "invalid_token");
    const u = await signUp();
    await api("/auth/password/forgot", { body: { email: u.email } });
    const token = resetTokenIn((await lastMailTo(u.email)).text);
    expectError(await api("/auth/password/reset", { body: { token, password: "short" } }), 400, "invalid_request");
    // The refused attempt did not spend the token nor change the password.
    expect((await api("/auth/login", { body: { email: u.email, password: u.password } })).status).toBe(200);
    expect((await api("/auth/password/reset", { body: { token, password: "long enough now" } })).status).toBe(204);
    expect((await api("/auth/login", { body: { email: u.email, password: "long enough now" } })).status).toBe(200);
  });

  it("answers forgot for an unknown address with 204 and sends nothing", async () => {
    const email = uniqueEmail("ghost");
    const res = await api("/auth/password/forgot", { body: { email } });
    expect(res.status, res.text).toBe(204);
    const outbox = await api(`/dev/outbox?to=${encodeURIComponent(email)}`);
    expect(outbox.status).toBe(200);
    expect(outbox.body.messages).toEqual([]);
    expectError(await api("/auth/password/forgot", { body: { email: "nope" } }), 400, "invalid_request");
    expectError(await api("/auth/password/forgot", { body: {} }), 400, "invalid_request");
  });

  it("serves /me to sessions and to API keys, and /auth/me to users only", async () => {
    const u = await signUp();
    const me = await api("/me", { token: u.token });
    expect(me.status, me.text).toBe(200);
    expectUserShape(me.body, u.email);
    const key = await createOrgKey(u, u.orgSlug, "read-only");
    const byKey = await api("/me", { token: key.key });
    expect(byKey.status, byKey.text).toBe(200);
    expect(byKey.body.id).toBe(u.id);
    expectError(await api("/auth/me", { token: key.key }), 403, "forbidden");
    expectError(await api("/me"), 401, "unauthorized");
  });
});

describe("DevPocket: username register and login, refresh, logout", () => {
  const username = () => `dp_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

  it("registers with a username and logs in with the username or the email", async () => {
    const email = uniqueEmail("devpocket");
    const name = username();
    const reg = await api("/auth/register", { body: { email, username: name, password: PASSWORD, device_id: "phone-1", device_type: "ios" } });
    expect(reg.status, reg.text).toBe(201);
    expect(reg.body.user.username).toBe(name.toLowerCase());
    expect(reg.body.user.name).toBe(name);
    expect(reg.body).toMatchObject({ user_id: reg.body.user.id, token_type: "Bearer", token: expect.any(String) });
    expect(reg.body.expires_in).toBe(7 * 24 * 3600);

    const byName = await api("/auth/login", { body: { username: name, password: PASSWORD, device_type: "android" } });
    expect(byName.status, byName.text).toBe(200);
    expect(byName.body.user_id).toBe(reg.body.user_id);
    const byEmailInUsername = await api("/auth/login", { body: { username: email, password: PASSWORD } });
    expect(byEmailInUsername.status, byEmailInUsername.text).toBe(200);
    expect(byEmailInUsername.body.user_id).toBe(reg.body.user_id);
    const me = await api("/auth/me", { token: byName.body.token });
    expect(me.status, me.text).toBe(200);
    expect(me.body.username).toBe(name.toLowerCase());

    const upper = await api("/auth/login", { body: { username: name.toUpperCase(), password: PASSWORD } });
    expect(upper.status, upper.text).toBe(200);
    expect(upper.body.user_id).toBe(reg.body.user_id);

    expectError(await api("/auth/login", { body: { username: name, password: "wrong password" } }), 401, "invalid_credentials");
    expectError(await api("/auth/login", { body: { username: username(), password: PASSWORD } }), 401, "invalid_credentials");
  });

  it("names an account registered with neither name nor username after its email", async () => {
    const email = uniqueEmail("plain");
    const reg = await api("/auth/register", { body: { email, password: PASSWORD } });
    expect(reg.status, reg.text).toBe(201);
    expect(reg.body.user.name).toBe(email.split("@")[0]);
    expect(reg.body.user.username).toBeNull();
  });

  it("refuses a taken username with 409 username_taken and a bad one with 400", async () => {
    const name = username();
    expect((await api("/auth/register", { body: { email: uniqueEmail(), username: name, password: PASSWORD } })).status).toBe(201);
    expectError(await api("/auth/register", { body: { email: uniqueEmail(), username: name, password: PASSWORD } }), 409, "username_taken");
    expectError(await api("/auth/register", { body: { email: uniqueEmail(), username: "ab", password: PASSWORD } }), 400, "invalid_request");
    expectError(await api("/auth/register", { body: { email: uniqueEmail(), username: "has space", password: PASSWORD } }), 400, "invalid_request");
    expectError(await api("/auth/register", { body: { email: uniqueEmail(), username: "x".repeat(31), password: PASSWORD } }), 400, "invalid_request");
    expectError(await api("/auth/login", { body: { password: PASSWORD } }), 400, "invalid_request");
  });

  it("renews the bearer session on /auth/refresh without a body; the old token stops working", async () => {
    const u = await signUp();
    const res = await api("/auth/refresh", { token: u.token, method: "POST" });
    expect(res.status, res.text).toBe(200);
    expect(res.body.token).not.toBe(u.token);
    expect(res.body.expires_in).toBeGreaterThan(0);
    const me = await api("/auth/me", { token: res.body.token });
    expect(me.status, me.text).toBe(200);
    expect(me.body.id).toBe(u.id);
    expectError(await api("/auth/me", { token: u.token }), 401, "unauthorized");
    // No credential at all, no body: nothing to renew.
    expectError(await api("/auth/refresh", { method: "POST" }), 400, "invalid_request");
    expectError(await api("/auth/refresh", { method: "POST", token: u.token }), 401, "unauthorized");
  });

  it("logs out: the token no longer works, other sessions do", async () => {
    const u = await signUp();
    const other = await api("/auth/login", { body: { email: u.email, password: u.password } });
    const out = await api("/auth/logout", { token: u.token, method: "POST" });
    expect(out.status, out.text).toBe(200);
    expect(out.body).toEqual({ ok: true });
    expect(out.headers.getSetCookie().some((c) => c.startsWith("better-auth.session_token=;") && /max-age=0/i.test(c))).toBe(true);
    expectError(await api("/auth/me", { token: u.token }), 401, "unauthorized");
    expectError(await api("/projects", { token: u.token }), 401, "unauthorized");
    expect((await api("/auth/me", { token: other.body.token })).status).toBe(200);
    // Logging out again with the dead token is refused.
    expectError(await api("/auth/logout", { token: u.token, method: "POST" }), 401, "unauthorized");
    expectError(await api("/auth/logout", { method: "POST" }), 401, "unauthorized");
  });

  it("logs out the refresh token issued with the session, not the other sessions' ones", async () => {
    const u = await signUp();
    const other = await api("/auth/login", { body: { email: u.email, password: u.password } });
    expect((await api("/auth/logout", { token: u.token, method: "POST" })).status).toBe(200);
    expectError(await api("/auth/refresh", { body: { refresh_token: u.refreshToken } }), 401, "invalid_refresh");
    const renewed = await api("/auth/refresh", { body: { refresh_token: other.body.refresh_token } });
    expect(renewed.status, renewed.text).toBe(200);
  });
});

describe("sessions: cookie and bearer", { timeout: 30_000 }, () => {
  it("sets the better-auth.session_token cookie on sign-in, and it works on /api/v1", async () => {
    const u = await signUp();
    const login = await api("/auth/login", { body: { email: u.email, password: u.password } });
    expect(login.status, login.text).toBe(200);
    const set = login.headers.getSetCookie().find((c) => c.startsWith("better-auth.session_token="))!;
    expect(set).toMatch(/HttpOnly/i);
    const cookie = sessionCookie(login.headers);

    const me = await api("/auth/me", { cookie });
    expect(me.status, me.text).toBe(200);
    expect(me.body.id).toBe(u.id);
    const account = await api("/account", { cookie });
    expect(account.status, account.text).toBe(200);
    expect(account.body.account.email).toBe(u.email);
    const projects = await api("/projects", { cookie });
    expect(projects.status, projects.text).toBe(200);
    expect(projects.body.map((p: any) => p.id)).toContain(u.projectId);
    // A browser sends its page's Origin with every write; the cookie then works for writes too.
    const created = await api("/projects", { cookie, headers: { origin: "http://berth.test" }, body: { name: "Via cookie" } });
    expect(created.status, created.text).toBe(201);

    // Signing out through the cookie ends that session.
    const out = await api("/auth/logout", { cookie, headers: { origin: "http://berth.test" }, method: "POST" });
    expect(out.status, out.text).toBe(200);
    expectError(await api("/auth/me", { cookie }), 401, "unauthorized");
  });

  it("sets the cookie on sign-up too", async () => {
    const res = await api("/auth/register", { body: { email: uniqueEmail("cookie"), password: PASSWORD, name: "Cookie" } });
    expect(res.status, res.text).toBe(201);
    const me = await api("/auth/me", { cookie: sessionCookie(res.headers) });
    expect(me.status, me.text).toBe(200);
    expect(me.body.id).toBe(res.body.user.id);
  });

  it("refuses a forged or tampered cookie with 401", async () => {
    const u = await signUp();
    expectError(await api("/auth/me", { cookie: "better-auth.session_token=forged.value" }), 401, "unauthorized");
    // The raw session token without better-auth's signature is not a valid cookie.
    expectError(await api("/auth/me", { cookie: `better-auth.session_token=${u.token}` }), 401, "unauthorized");
    const login = await api("/auth/login", { body: { email: u.email, password: u.password } });
    const cookie = sessionCookie(login.headers);
    const tampered = cookie.replace(/=(.)/, (_m, ch: string) => `=${ch === "a" ? "b" : "a"}`);
    expectError(await api("/auth/me", { cookie: tampered }), 401, "unauthorized");
  });

  it("better-auth's own /api/auth/sign-up/email and /api/auth/sign-in/email work with /api/v1", async () => {
    const email = uniqueEmail("spa");
    const ip = uniqueIp();
    const headers = { "content-type": "application/json", "cf-connecting-ip": ip, origin: "http://berth.test" };
    const up = await fetchWorker("/api/auth/sign-up/email", { method: "POST", headers, body: JSON.stringify({ email, password: PASSWORD, name: "Spa User" }) });
    const upText = await up.text();
    expect(up.status, upText).toBe(200);
    const upBody = JSON.parse(upText);
    expect(upBody.user.email).toBe(email);
    expect(upText).not.toContain(PASSWORD);
    const upCookie = sessionCookie(up.headers);
    const me = await api("/auth/me", { cookie: upCookie });
    expect(me.status, me.text).toBe(200);
    expect(me.body.email).toBe(email);
    // better-auth's sign-up gets the same personal org and default project.
    const orgs = await api("/orgs", { cookie: upCookie });
    expect(orgs.body.orgs).toHaveLength(1);
    expect(orgs.body.orgs[0].personal).toBe(true);
    const projects = await api("/projects", { cookie: upCookie });
    expect(projects.body.map((p: any) => p.name)).toEqual(["My Project"]);

    const inRes = await fetchWorker("/api/auth/sign-in/email", { method: "POST", headers, body: JSON.stringify({ email, password: PASSWORD }) });
    const inText = await inRes.text();
    expect(inRes.status, inText).toBe(200);
    const inCookie = sessionCookie(inRes.headers);
    const account = await api("/account", { cookie: inCookie });
    expect(account.status, account.text).toBe(200);
    expect(account.body.account.id).toBe(upBody.user.id);
    // Its token works as a bearer too.
    const token = JSON.parse(inText).token;
    expect((await api("/auth/me", { token })).status).toBe(200);
    // And the seed sign-in accepts the password set through better-auth.
    expect((await api("/auth/login", { body: { email, password: PASSWORD } })).status).toBe(200);

    const bad = await fetchWorker("/api/auth/sign-in/email", { method: "POST", headers, body: JSON.stringify({ email, password: "wrong password" }) });
    expect(bad.status).toBe(401);
    expect(bad.headers.getSetCookie().filter((c) => c.startsWith("better-auth.session_token=") && !/max-age=0/i.test(c))).toEqual([]);
  });

  it("accepts the session token as a bearer, case-insensitively, but not as ?token= on a plain GET", async () => {
    const u = await signUp();
    expect((await api("/auth/me", { headers: { authorization: `bearer ${u.token}` } })).status).toBe(200);
    expect((await api("/auth/me", { headers: { authorization: `BEARER   ${u.token}` } })).status).toBe(200);
    expectError(await api(`/auth/me?token=${encodeURIComponent(u.token)}`), 401, "unauthorized");
  });

  it("answers missing or garbage credentials with the 401 envelope, in each seed's dialect", async () => {
    // backlex's routes say UNAUTHORIZED; Dockup's, Suble's and DevPocket's unauthorized.
    for (const [route, code] of [["/auth/me", "unauthorized"], ["/me", "unauthorized"], ["/account", "UNAUTHORIZED"], ["/projects", "unauthorized"], ["/orgs", "UNAUTHORIZED"], ["/api-keys", "unauthorized"]] as const) {
      expectError(await api(route), 401, code);
      expectError(await api(route, { token: "garbage" }), 401, code);
      expectError(await api(route, { token: `pak_${"f".repeat(64)}` }), 401, code);
      expectError(await api(route, { token: `dkp_${"0".repeat(64)}` }), 401, code);
      expectError(await api(route, { headers: { authorization: "Basic dXNlcjpwYXNz" } }), 401, code);
      expectError(await api(route, { headers: { authorization: "Bearer " } }), 401, code);
    }
    // ?token= is for GETs (WebSockets) only.
    const u = await signUp();
    expectError(await api(`/projects?token=${encodeURIComponent(u.token)}`, { body: { name: "query token" } }), 401, "unauthorized");
  });
});

describe("sign-in rate limiting", { timeout: 60_000 }, () => {
  it("answers the 11th login for one account within a minute with 429 rate_limited, even with the right password", async () => {
    await inOneLimitWindow();
    const u = await signUp();
    const ip = uniqueIp();
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await api("/auth/login", { body: { email: u.email, password: "wrong password" }, headers: { "cf-connecting-ip": ip } });
      statuses.push(res.status);
    }
    expect(statuses).toEqual(Array(10).fill(401));
    const limited = await api("/auth/login", { body: { email: u.email, password: u.password }, headers: { "cf-connecting-ip": ip } });
    expectError(limited, 429, "rate_limited");
    expect(limited.body.token).toBeUndefined();

    // A new address per guess buys no more guesses: the account itself is limited.
    expectError(await api("/auth/login", { body: { email: u.email, password: u.password }, headers: { "cf-connecting-ip": uniqueIp() } }), 429, "rate_limited");
    // Another account from the same address still gets in.
    const other = await signUp();
    expect((await api("/auth/login", { body: { email: other.email, password: other.password }, headers: { "cf-connecting-ip": ip } })).status).toBe(200);
  });

  it("counts the account name case-insensitively and username logins too", async () => {
    await inOneLimitWindow();
    const name = `rl_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const email = uniqueEmail("rl");
    expect((await api("/auth/register", { body: { email, username: name, password: PASSWORD } })).status).toBe(201);
    const ip = uniqueIp();
    for (let i = 0; i < 10; i++) {
      const login = i % 2 ? name.toUpperCase() : name;
      const res = await api("/auth/login", { body: { username: login, password: "wrong password" }, headers: { "cf-connecting-ip": ip } });
      expect(res.status, res.text).toBe(401);
    }
    expectError(await api("/auth/login", { body: { username: name, password: PASSWORD }, headers: { "cf-connecting-ip": ip } }), 429, "rate_limited");
  });

  it("limits password-reset requests per address and account", async () => {
    await inOneLimitWindow();
    const u = await signUp();
    const ip = uniqueIp();
    for (let i = 0; i < 10; i++) {
      expect((await api("/auth/password/forgot", { body: { email: u.email }, headers: { "cf-connecting-ip": ip } })).status).toBe(204);
    }
    expectError(await api("/auth/password/forgot", { body: { email: u.email }, headers: { "cf-connecting-ip": ip } }), 429, "rate_limited");
  });
});
