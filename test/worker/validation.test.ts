/**
 * Input handling across routes: malformed JSON, wrong types, missing and oversized
 * fields all answer the one 400 envelope and never a 500; passwords appear in no
 * response and no log line; unknown routes answer the 404 envelope.
 */
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from "vitest";
import { api, fetchWorker, lastMailTo, signUp, uniqueEmail, type CallResult, type TestUser } from "./helpers";

function expectEnvelope(res: CallResult, status: number, code: string) {
  expect(res.status, res.text.slice(0, 500)).toBe(status);
  expect(res.headers.get("content-type") ?? "").toMatch(/application\/json/);
  expect(Object.keys(res.body)).toEqual(["error"]);
  expect(res.body.error.code).toBe(code);
  expect(typeof res.body.error.message).toBe("string");
  expect(res.body.error.message.length).toBeGreaterThan(0);
}

/** How a seed says "this request is invalid": backlex `422 VALIDATION`, Suble its field codes (`invalid_name`), the others `400 invalid_request`. */
type Invalid = { status: number; code: string };
const INVALID: Invalid = { status: 400, code: "invalid_request" };
const BACKLEX_INVALID: Invalid = { status: 422, code: "VALIDATION" };
const SUBLE_INVALID_NAME: Invalid = { status: 400, code: "invalid_name" };

function expectInvalid(res: CallResult, ...fields: string[]) {
  expectInvalidAs(INVALID, res, ...fields);
}

function expectInvalidAs(as: Invalid, res: CallResult, ...fields: string[]) {
  expectEnvelope(res, as.status, as.code);
  const issues = res.body.error.details?.issues;
  expect(Array.isArray(issues), res.text.slice(0, 500)).toBe(true);
  expect(issues.length).toBeGreaterThan(0);
  for (const issue of issues) expect(issue).toEqual({ path: expect.any(String), message: expect.any(String), code: expect.any(String) });
  const paths = issues.map((i: { path: string }) => i.path);
  for (const f of fields) expect(paths.some((p: string) => p === f || p.startsWith(`${f}.`)), `${f} not in ${JSON.stringify(paths)}`).toBe(true);
  // An error message is bounded: a 100 kB field does not come back in it.
  expect(res.text.length).toBeLessThan(4_000);
}

const HUGE = "x".repeat(10_000);
const HUGE_EMAIL = `${"a".repeat(100_000)}@example.com`;

/** Every body-taking route worth probing, with a credential that may use it. */
async function routes(owner: TestUser) {
  const projects = await api("/projects", { token: owner.token });
  const projectId: string = projects.body[0].id;
  // Each with the seed whose error dialect its family speaks (src/lib/dialects.ts).
  return [
    { method: "POST", path: "/auth/register", token: undefined, seed: "berth" },
    { method: "POST", path: "/auth/signup", token: undefined, seed: "berth" },
    { method: "POST", path: "/auth/login", token: undefined, seed: "berth" },
    { method: "POST", path: "/auth/refresh", token: undefined, seed: "berth" },
    { method: "POST", path: "/auth/password/forgot", token: undefined, seed: "berth" },
    { method: "POST", path: "/auth/password/reset", token: undefined, seed: "berth" },
    { method: "POST", path: "/org", token: owner.token, seed: "backlex" },
    { method: "PATCH", path: `/org/${owner.orgSlug}`, token: owner.token, seed: "backlex" },
    { method: "POST", path: "/projects", token: owner.token, seed: "suble" },
    { method: "PATCH", path: `/projects/${projectId}`, token: owner.token, seed: "suble" },
    { method: "POST", path: `/org/${owner.orgSlug}/projects`, token: owner.token, seed: "backlex" },
    { method: "POST", path: "/api-keys", token: owner.token, seed: "berth" },
    { method: "POST", path: `/org/${owner.orgSlug}/api-keys`, token: owner.token, seed: "backlex" },
    { method: "POST", path: `/projects/${projectId}/api-keys`, token: owner.token, seed: "suble" },
    { method: "POST", path: `/org/${owner.orgSlug}/invitations`, token: owner.token, seed: "backlex" },
    { method: "PATCH", path: "/account", token: owner.token, seed: "backlex" },
  ] as const;
}

const invalidJson = (seed: string) => (seed === "backlex" ? "INVALID_JSON" : "invalid_json");

describe("malformed JSON", { timeout: 30_000 }, () => {
  it("answers 400 invalid_json on every route that takes a body", async () => {
    const owner = await signUp();
    const bodies = ["{", '{"email":', "not json", "{'single':'quotes'}", '{"a":1,}', "\u0000\u0001"];
    for (const r of await routes(owner)) {
      for (const raw of bodies) {
        const res = await api(r.path, { method: r.method, token: r.token, raw });
        expectEnvelope(res, 400, invalidJson(r.seed));
      }
    }
  });

  it("answers a non-object JSON body with 400 invalid_request, never 500", async () => {
    const owner = await signUp();
    for (const r of await routes(owner)) {
      for (const raw of ["[]", "null", '"a string"', "42", "true"]) {
        const res = await api(r.path, { method: r.method, token: r.token, raw });
        // Even the routes whose body is optional (/auth/refresh, /api-keys, PATCH /account) want an object.
        const as = r.seed === "backlex" ? BACKLEX_INVALID : INVALID;
        expect(res.status, `${r.method} ${r.path} ${raw} → ${res.text.slice(0, 300)}`).toBe(as.status);
        expect(res.body.error.code).toBe(as.code);
      }
    }
  });

  it("answers an empty JSON body, or a body not declared as JSON, with 400 invalid_json", async () => {
    const owner = await signUp();
    for (const r of await routes(owner)) {
      const empty = await api(r.path, { method: r.method, token: r.token, raw: "" });
      expectEnvelope(empty, 400, invalidJson(r.seed));
      for (const type of ["text/plain", "application/x-www-form-urlencoded"]) {
        const res = await api(r.path, {
          method: r.method,
          token: r.token,
          raw: JSON.stringify({ name: "n", email: uniqueEmail(), password: "correct horse battery" }),
          headers: { "content-type": type },
        });
        expectEnvelope(res, 400, invalidJson(r.seed));
      }
    }
  });

  it("does not sign anyone up from a body sent as text/plain", async () => {
    const email = uniqueEmail("plain");
    const res = await api("/auth/register", {
      raw: JSON.stringify({ email, password: "correct horse battery", name: "Plain" }),
      headers: { "content-type": "text/plain" },
    });
    expectEnvelope(res, 400, "invalid_json");
    expect((await api("/auth/login", { body: { email, password: "correct horse battery" } })).status).toBe(401);
  });
});

describe("field validation", { timeout: 30_000 }, () => {
  it("auth: wrong types, missing fields and oversized fields are 400 invalid_request", async () => {
    expectInvalid(await api("/auth/register", { body: {} }), "email", "password");
    expectInvalid(await api("/auth/register", { body: { email: 123, password: true, name: {} } }), "email", "password", "name");
    expectInvalid(await api("/auth/register", { body: { email: uniqueEmail(), password: "correct horse battery", name: HUGE } }), "name");
    expectInvalid(await api("/auth/register", { body: { email: HUGE_EMAIL, password: "correct horse battery", name: "Big" } }), "email");
    expectInvalid(await api("/auth/register", { body: { email: uniqueEmail(), password: "p".repeat(129), name: "Long" } }), "password");
    expectInvalid(await api("/auth/register", { body: { email: uniqueEmail(), password: "correct horse battery", device_type: "toaster" } }), "device_type");
    expectInvalid(await api("/auth/signup", { body: { email: uniqueEmail(), password: "correct horse battery" } }), "fullname");
    expectInvalid(await api("/auth/signup", { body: { email: uniqueEmail(), password: "correct horse battery", fullname: HUGE } }), "fullname");
    expectInvalid(await api("/auth/signup", { body: { email: uniqueEmail(), password: "correct horse battery", fullname: "F", isCompany: "yes" } }), "isCompany");
    expectInvalid(await api("/auth/login", { body: { email: uniqueEmail() } }), "password");
    expectInvalid(await api("/auth/login", { body: { email: HUGE_EMAIL, password: "x" } }), "email");
    expectInvalid(await api("/auth/login", { body: { email: ["a@b.c"], password: 12345678 } }), "email", "password");
    expectInvalid(await api("/auth/login", { body: { email: uniqueEmail(), password: "p".repeat(100_000) } }), "password");
    expectInvalid(await api("/auth/refresh", { body: { refresh_token: 42 } }), "refresh_token");
    expectInvalid(await api("/auth/refresh", { body: { refresh_token: HUGE } }), "refresh_token");
    expectInvalid(await api("/auth/password/forgot", { body: { email: HUGE_EMAIL } }), "email");
    expectInvalid(await api("/auth/password/reset", { body: { token: HUGE, password: "correct horse battery" } }), "token");
    expectInvalid(await api("/auth/password/reset", { body: { password: "correct horse battery" } }), "token");
  });

  it("org, project and API key creation: wrong types, missing and oversized fields are 400 invalid_request", async () => {
    const owner = await signUp();
    const t = owner.token;
    expectInvalidAs(BACKLEX_INVALID, await api("/org", { token: t, body: {} }), "name");
    expectInvalidAs(BACKLEX_INVALID, await api("/org", { token: t, body: { name: HUGE } }), "name");
    expectInvalidAs(BACKLEX_INVALID, await api("/org", { token: t, body: { name: 7 } }), "name");
    expectInvalidAs(BACKLEX_INVALID, await api("/org", { token: t, body: { name: "Good Name", residency: "mars" } }), "residency");

    expectInvalidAs(SUBLE_INVALID_NAME, await api("/projects", { token: t, body: {} }), "name");
    expectInvalidAs(SUBLE_INVALID_NAME, await api("/projects", { token: t, body: { name: HUGE } }), "name");
    expectInvalid(await api("/projects", { token: t, body: { name: "ok", slug: "Not A Slug!" } }), "slug");
    expectInvalid(await api("/projects", { token: t, body: { name: "ok", environment: "moon" } }), "environment");
    expectInvalidAs(SUBLE_INVALID_NAME, await api("/projects", { token: t, body: { name: ["array"] } }), "name");
    expectInvalidAs(BACKLEX_INVALID, await api(`/org/${owner.orgSlug}/projects`, { token: t, body: { name: HUGE } }), "name");

    expectInvalid(await api("/api-keys", { token: t, body: { name: HUGE } }), "name");
    expectInvalid(await api("/api-keys", { token: t, body: { name: "k", scope: "god-mode" } }), "scope");
    expectInvalid(await api("/api-keys", { token: t, body: { name: "k", expiresInDays: -1 } }), "expiresInDays");
    expectInvalid(await api("/api-keys", { token: t, body: { name: "k", expiresInDays: 1.5 } }), "expiresInDays");
    expectInvalid(await api("/api-keys", { token: t, body: { name: "k", expiresInDays: "30" } }), "expiresInDays");
    expectInvalidAs(BACKLEX_INVALID, await api(`/org/${owner.orgSlug}/api-keys`, { token: t, body: { name: "k" } }), "scope");
    expectInvalidAs(BACKLEX_INVALID, await api(`/org/${owner.orgSlug}/api-keys`, { token: t, body: { name: HUGE, scope: "full" } }), "name");
    expectInvalidAs(BACKLEX_INVALID, await api(`/org/${owner.orgSlug}/api-keys`, { token: t, body: { name: "k", scope: "full", expiresInDays: 1e9 } }), "expiresInDays");
    expectInvalidAs(BACKLEX_INVALID, await api(`/org/${owner.orgSlug}/api-keys`, { token: t, body: { name: "k", scope: "full", mcpTools: Array(65).fill("t") } }), "mcpTools");

    // None of the refused requests created anything.
    const orgs = await api("/orgs", { token: t });
    expect(orgs.body.orgs).toHaveLength(1);
    const projects = await api("/projects", { token: t });
    expect(projects.body.map((p: any) => p.name)).toEqual(["My Project"]);
    const keys = await api("/api-keys", { token: t });
    expect(keys.body).toEqual([]);
    const orgKeys = await api(`/org/${owner.orgSlug}/api-keys`, { token: t });
    expect(orgKeys.body.keys).toEqual([]);
  });

  it("validates query strings and path parameters too", async () => {
    const owner = await signUp();
    expectInvalid(await api("/dev/outbox?limit=abc"), "limit");
    expectInvalid(await api("/dev/outbox?limit=0"), "limit");
    expectInvalid(await api(`/projects?org=${"o".repeat(200)}`, { token: owner.token }), "org");
    expectInvalid(await api(`/projects/${"p".repeat(200)}`, { token: owner.token }), "project");
  });
});

describe("passwords stay secret", { timeout: 30_000 }, () => {
  const methods = ["log", "info", "warn", "error", "debug"] as const;
  let spies: MockInstance[] = [];
  const logged = () => spies.flatMap((s) => s.mock.calls.flat()).map((arg) => (typeof arg === "string" ? arg : safeStringify(arg)));

  beforeEach(() => {
    spies = methods.map((m) => vi.spyOn(console, m).mockImplementation(() => undefined));
  });
  afterEach(() => {
    for (const s of spies) s.mockRestore();
  });

  it("appears in no response body and no log line through sign-up, sign-in, reset and failed validation", async () => {
    const secret = `Pw-${crypto.randomUUID()}`;
    const newSecret = `Np-${crypto.randomUUID()}`;
    const tooLong = `${secret}${"z".repeat(130)}`;
    const email = uniqueEmail("secret");
    const username = `sec_${Date.now().toString(36)}`;
    const texts: string[] = [];
    const call = async (path: string, opts: Parameters<typeof api>[1]) => {
      const res = await api(path, opts);
      texts.push(res.text, JSON.stringify([...res.headers]));
      return res;
    };
    const raw = async (path: string, body: string) => {
      const res = await fetchWorker(path, { method: "POST", headers: { "content-type": "application/json", "cf-connecting-ip": "10.99.0.1", origin: "http://berth.test" }, body });
      const text = await res.text();
      texts.push(text, JSON.stringify([...res.headers]));
      return { status: res.status, text };
    };

    // Sign-up through each door.
    expect((await call("/auth/register", { body: { email, username, password: secret, name: "Secret Keeper" } })).status).toBe(201);
    expect((await call("/auth/signup", { body: { email: uniqueEmail("secret2"), password: secret, fullname: "Secret Two" } })).status).toBe(201);
    expect((await raw("/api/auth/sign-up/email", JSON.stringify({ email: uniqueEmail("secret3"), password: secret, name: "Secret Three" }))).status).toBe(200);
    // A taken email, with the password in the body.
    expect((await call("/auth/register", { body: { email, password: secret, name: "Dup" } })).status).toBe(409);

    // Sign-in: right, wrong, by username, unknown account, better-auth's own.
    expect((await call("/auth/login", { body: { email, password: secret } })).status).toBe(200);
    expect((await call("/auth/login", { body: { email, password: `${secret}-wrong` } })).status).toBe(401);
    expect((await call("/auth/login", { body: { username, password: `${secret}-wrong` } })).status).toBe(401);
    expect((await call("/auth/login", { body: { email: uniqueEmail("none"), password: secret } })).status).toBe(401);
    expect((await raw("/api/auth/sign-in/email", JSON.stringify({ email, password: `${secret}-wrong` }))).status).toBe(401);
    expect((await raw("/api/auth/sign-in/email", JSON.stringify({ email, password: secret }))).status).toBe(200);

    // Password reset.
    expect((await call("/auth/password/forgot", { body: { email } })).status).toBe(204);
    const mail = await lastMailTo(email);
    const token = mail.text.match(/reset-password\?token=([A-Za-z0-9_-]+)/)![1]!;
    expect(mail.text).not.toContain(secret);
    expect((await call("/auth/password/reset", { body: { token, password: newSecret } })).status).toBe(204);
    expect((await call("/auth/password/reset", { body: { token, password: newSecret } })).status).toBe(400);
    expect((await call("/auth/login", { body: { email, password: newSecret } })).status).toBe(200);
    expect((await call("/auth/login", { body: { email, password: secret } })).status).toBe(401);

    // Failed validation with the password in the body, or in the wrong field.
    expect((await call("/auth/register", { body: { email: "not-an-email", password: secret, name: "Bad" } })).status).toBe(400);
    expect((await call("/auth/register", { body: { email: uniqueEmail(), password: tooLong, name: "Long" } })).status).toBe(400);
    expect((await call("/auth/register", { body: { email: secret, password: secret } })).status).toBe(400);
    expect((await call("/auth/register", { body: { email: uniqueEmail(), username: secret, password: secret } })).status).toBe(400);
    expect((await call("/auth/login", { body: { email, password: secret, device_type: secret } })).status).toBe(400);
    expect((await call("/auth/signup", { body: { email: uniqueEmail(), password: secret, fullname: "F", language: secret } })).status).toBe(400);
    expect((await call("/auth/password/reset", { body: { token, password: "short" } })).status).toBe(400);
    expect((await call("/auth/password/reset", { body: { token: secret, password: newSecret } })).status).toBe(400);
    expect((await call("/auth/login", { raw: `{"email":"${email}","password":"${secret}"` })).status).toBe(400);
    expect((await raw("/api/auth/sign-in/email", `{"email":"${email}","password":"${secret}"`)).status).toBeLessThan(500);
    expect((await raw("/api/auth/sign-up/email", JSON.stringify({ email: "nope", password: secret, name: "X" }))).status).toBe(400);

    // The spies do see the Worker's logging (better-auth warns on a wrong password), so silence below means something.
    const lines = logged();
    expect(lines.some((l) => /Better Auth/i.test(l)), `no worker log captured: ${JSON.stringify(lines).slice(0, 500)}`).toBe(true);

    for (const pw of [secret, newSecret]) {
      const inResponse = texts.filter((t) => t.includes(pw));
      expect(inResponse, `password in a response: ${inResponse.join("\n").slice(0, 500)}`).toEqual([]);
      const inLog = lines.filter((l) => l.includes(pw));
      expect(inLog, `password in a log line: ${inLog.join("\n").slice(0, 500)}`).toEqual([]);
    }
  });
});

describe("unknown routes", () => {
  it("answer the 404 envelope", async () => {
    const owner = await signUp();
    for (const [method, path, code] of [
      ["GET", "/nope", "not_found"],
      ["GET", "/auth/nope", "not_found"],
      ["POST", "/auth/login/extra", "not_found"],
      ["DELETE", "/auth/login", "not_found"],
      ["PUT", "/account", "NOT_FOUND"],
      ["GET", "/org", "NOT_FOUND"],
    ] as const) {
      const anonymous = await api(path, { method });
      expectEnvelope(anonymous, 404, code);
      expect(anonymous.body.error.message).toContain(path);
      expectEnvelope(await api(path, { method, token: owner.token }), 404, code);
    }
    const outside = await fetchWorker("/definitely/not/here");
    expect(outside.status).toBe(404);
    const body = (await outside.json()) as any;
    expect(body.error.code).toBe("not_found");
  });
});

function safeStringify(v: unknown): string {
  if (v instanceof Error) return `${v.name}: ${v.message} ${v.stack ?? ""} ${safeStringify((v as { cause?: unknown }).cause ?? "")}`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
