/**
 * Abuse limits: one per-account limiter whatever route or field names the account, one
 * per-address limiter; every password, mail and lookup route of better-auth's is limited;
 * the same text rules on every route that writes a visible name; and cookie-authenticated
 * writes only from trusted origins.
 */
import { describe, expect, it } from "vitest";
import { api, expectApiError, fetchWorker, inOneLimitWindow, signUp, uniqueEmail, uniqueIp } from "./helpers";

const ORIGIN = "http://berth.test";

async function betterAuth(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetchWorker(`/api/auth${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: ORIGIN, ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: any = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: res.status, text, body: parsed };
}

async function signUpWithUsername() {
  const username = `u_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const email = uniqueEmail("abuse");
  const res = await api("/auth/register", { body: { email, username, password: "correct horse battery" } });
  expect(res.status, res.text).toBe(201);
  return { email, username, password: "correct horse battery", token: res.body.token as string };
}

describe("one sign-in limit per account, whichever route or field names it", { timeout: 60_000 }, () => {
  it("counts Berth's login and better-auth's sign-in/email and sign-in/username together, decoy fields and new addresses included", async () => {
    await inOneLimitWindow();
    const u = await signUpWithUsername();
    const tries = [
      () => api("/auth/login", { body: { email: u.email, password: "wrong password" }, headers: { "cf-connecting-ip": uniqueIp() } }),
      () => api("/auth/login", { body: { username: u.username, password: "wrong password" }, headers: { "cf-connecting-ip": uniqueIp() } }),
      () => betterAuth("/sign-in/email", { email: u.email, password: "wrong password" }, { "cf-connecting-ip": uniqueIp() }),
      // better-auth signs in by username here; the decoy email must not give the guess its own counter.
      () => betterAuth("/sign-in/username", { username: u.username, email: uniqueEmail("decoy"), password: "wrong password" }, { "cf-connecting-ip": uniqueIp() }),
    ];
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await tries[i % tries.length]!()).status);
    expect(statuses.every((s) => s === 401), JSON.stringify(statuses)).toBe(true);
    // The eleventh guess is refused on every route, with the right password, from a new address.
    expectApiError(await api("/auth/login", { body: { email: u.email, password: u.password }, headers: { "cf-connecting-ip": uniqueIp() } }), 429, "rate_limited");
    const viaBetterAuth = await betterAuth("/sign-in/username", { username: u.username, email: uniqueEmail("decoy"), password: u.password }, { "cf-connecting-ip": uniqueIp() });
    expect(viaBetterAuth.status, viaBetterAuth.text).toBe(429);
  });

  it("limits an address across accounts", async () => {
    await inOneLimitWindow();
    const ip = uniqueIp();
    const statuses: number[] = [];
    for (let i = 0; i < 61; i++) {
      const res = await api("/auth/login", { body: { email: uniqueEmail("spray"), password: "wrong password" }, headers: { "cf-connecting-ip": ip } });
      statuses.push(res.status);
    }
    expect(statuses.slice(0, 60).every((s) => s === 401)).toBe(true);
    expect(statuses[60]).toBe(429);
  });
});

describe("better-auth's password, mail and lookup routes are limited", { timeout: 60_000 }, () => {
  it("request-password-reset, per account", async () => {
    await inOneLimitWindow();
    const u = await signUp();
    for (let i = 0; i < 10; i++) {
      const res = await betterAuth("/request-password-reset", { email: u.email }, { "cf-connecting-ip": uniqueIp() });
      expect(res.status, res.text).toBe(200);
    }
    expect((await betterAuth("/request-password-reset", { email: u.email }, { "cf-connecting-ip": uniqueIp() })).status).toBe(429);
    // Berth's own forgot route spends from the same account's mail counter.
    expectApiError(await api("/auth/password/forgot", { body: { email: u.email }, headers: { "cf-connecting-ip": uniqueIp() } }), 429, "rate_limited");
  });

  it("change-password, per account of the signed-in session", async () => {
    await inOneLimitWindow();
    const u = await signUp();
    for (let i = 0; i < 10; i++) {
      const res = await betterAuth("/change-password", { currentPassword: "not my password", newPassword: "whatever it is" }, { authorization: `Bearer ${u.token}` });
      expect(res.status, res.text).toBe(400);
    }
    const limited = await betterAuth("/change-password", { currentPassword: u.password, newPassword: "whatever it is" }, { authorization: `Bearer ${u.token}` });
    expect(limited.status, limited.text).toBe(429);
    // And the password was not changed by the refused try.
    expect((await api("/auth/login", { body: { email: u.email, password: "whatever it is" } })).status).not.toBe(200);
  });

  it("is-username-available, per address", async () => {
    await inOneLimitWindow();
    const ip = uniqueIp();
    for (let i = 0; i < 60; i++) {
      const res = await betterAuth("/is-username-available", { username: `probe_${i}_${Date.now().toString(36)}` }, { "cf-connecting-ip": ip });
      expect(res.status, res.text).toBe(200);
    }
    expect((await betterAuth("/is-username-available", { username: "probe_last" }, { "cf-connecting-ip": ip })).status).toBe(429);
  });
});

describe("the same text rules on every route that writes a visible name", { timeout: 60_000 }, () => {
  const bad = ["   ", "Ada\u202Egnp.exe", "tab\there", "new\nline", "x".repeat(121)];

  it("better-auth's sign-up refuses a 5 MB name without storing anything", async () => {
    const email = uniqueEmail("huge");
    const huge = await betterAuth("/sign-up/email", { email, password: "correct horse battery", name: "x".repeat(5 * 1024 * 1024) });
    expect(huge.status).toBe(413);
    expect((await api("/auth/login", { body: { email, password: "correct horse battery" } })).status).toBe(401);
  });

  it("better-auth's sign-up and update-user refuse blank, control, bidi-override and over-long names with a 400", async () => {
    for (const name of bad) {
      const email = uniqueEmail("name");
      const res = await betterAuth("/sign-up/email", { email, password: "correct horse battery", name });
      expect(res.status, `${JSON.stringify(name)}: ${res.text}`).toBe(400);
      expect((await api("/auth/login", { body: { email, password: "correct horse battery" } })).status).toBe(401);
    }
    const u = await signUp({ name: "Plain Name" });
    for (const name of bad) {
      const res = await betterAuth("/update-user", { name }, { authorization: `Bearer ${u.token}` });
      expect(res.status, `${JSON.stringify(name)}: ${res.text}`).toBe(400);
    }
    // A large update is a 4xx, not a 500 from the database.
    const large = await betterAuth("/update-user", { name: "y".repeat(60_000) }, { authorization: `Bearer ${u.token}` });
    expect(large.status).toBe(400);
    const larger = await betterAuth("/update-user", { name: "y".repeat(200_000) }, { authorization: `Bearer ${u.token}` });
    expect(larger.status).toBe(413);
    expect((await api("/account", { token: u.token })).body.account.name).toBe("Plain Name");
    // A good name still goes through.
    expect((await betterAuth("/update-user", { name: "Ada Lovelace" }, { authorization: `Bearer ${u.token}` })).status).toBe(200);
    expect((await api("/account", { token: u.token })).body.account.name).toBe("Ada Lovelace");
  });

  it("Berth's routes refuse the same names for people, orgs and projects", async () => {
    const u = await signUp();
    for (const name of bad) {
      expectApiError(await api("/account", { token: u.token, method: "PATCH", body: { name } }), 422, "VALIDATION");
      expectApiError(await api("/org", { token: u.token, body: { name } }), 422, "VALIDATION");
      // Suble's code for a bad project name.
      expectApiError(await api("/projects", { token: u.token, body: { name } }), 400, "invalid_name");
      expectApiError(await api(`/projects/${u.projectId}`, { token: u.token, method: "PATCH", body: { name } }), 400, "invalid_name");
    }
    expectApiError(await api("/auth/register", { body: { email: uniqueEmail("bidi"), password: "correct horse battery", name: "evil\u202Etxt" } }), 400, "invalid_request");
    expect((await api("/org", { token: u.token, body: { name: "Zoë's Café 東京" } })).status).toBe(201);
  });
});

describe("cookie-authenticated writes must come from a trusted origin", { timeout: 60_000 }, () => {
  async function cookieOf(email: string, password: string) {
    const login = await api("/auth/login", { body: { email, password } });
    return login.headers.getSetCookie().find((c) => c.startsWith("better-auth.session_token="))!.split(";")[0]!;
  }

  it("a form on another site cannot pause a project, create a host, rotate a join token or deploy", async () => {
    const u = await signUp();
    const cookie = await cookieOf(u.email, u.password);
    const evil = { origin: "https://evil.example" };
    const project = await api(`/org/${u.orgSlug}/projects`, { token: u.token, body: { name: "Target" } });
    const slug = project.body.project.slug;

    const pause = await api(`/org/${u.orgSlug}/projects/${slug}/pause`, { cookie, headers: evil, method: "POST" });
    expectApiError(pause, 403, "ORIGIN_NOT_ALLOWED");
    expect((await api(`/org/${u.orgSlug}/projects/${slug}`, { token: u.token })).body.project.status).toBe("active");

    // A form post without any Origin (old browsers, or a script replaying the cookie) is refused too.
    expectApiError(await api(`/org/${u.orgSlug}/projects/${slug}/pause`, { cookie, method: "POST" }), 403, "ORIGIN_NOT_ALLOWED");

    const host = await api(`/org/${u.orgSlug}/hosts`, { token: u.token, body: { name: "box", kind: "docker" } });
    expect(host.status, host.text).toBe(201);
    expectApiError(await api(`/org/${u.orgSlug}/hosts`, { cookie, headers: evil, body: { name: "evil box", kind: "docker" } }), 403, "origin_not_allowed");
    expectApiError(await api(`/org/${u.orgSlug}/hosts/${host.body.host.id}/join-token`, { cookie, headers: evil, method: "POST" }), 403, "origin_not_allowed");
    expect((await api(`/org/${u.orgSlug}/hosts`, { token: u.token })).body.hosts.length).toBe(1);

    const app = await api(`/projects/${u.projectId}/apps`, { token: u.token, body: { name: "Web", image: "127.0.0.1:5000/berth/hello:v1", internal_port: 8080 } });
    expect(app.status, app.text).toBe(201);
    expectApiError(await api(`/apps/${app.body.id ?? app.body.app?.id}/deploy`, { cookie, headers: evil, method: "POST" }), 403, "origin_not_allowed");

    // From the dashboard's own origin the same cookie works; reads need no Origin at all.
    expect((await api(`/org/${u.orgSlug}/projects/${slug}/pause`, { cookie, headers: { origin: ORIGIN }, method: "POST" })).status).toBe(200);
    expect((await api(`/org/${u.orgSlug}/projects/${slug}/resume`, { cookie, headers: { "sec-fetch-site": "same-origin" }, method: "POST" })).status).toBe(200);
    expect((await api(`/org/${u.orgSlug}/projects`, { cookie })).status).toBe(200);
    // Bearer credentials are never sent by a browser on its own: no Origin needed.
    expect((await api(`/org/${u.orgSlug}/projects/${slug}/pause`, { token: u.token, headers: evil, method: "POST" })).status).toBe(200);
  });

  it("another site cannot open a WebSocket with the cookie", async () => {
    const u = await signUp();
    const cookie = await cookieOf(u.email, u.password);
    const open = (origin: string) =>
      fetchWorker(`/api/v1/projects/${u.projectId}/events`, { headers: { upgrade: "websocket", cookie, origin } });
    const evil = await open("https://evil.example");
    expect(evil.status).toBe(403);
    const own = await open(ORIGIN);
    expect(own.status).toBe(101);
    own.webSocket!.accept();
    own.webSocket!.close();
  });
});
