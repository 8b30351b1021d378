/** backlex's account: GET/PATCH /account for the signed-in person. */
import { describe, expect, it } from "vitest";
import { api, createOrgKey, signUp } from "./helpers";

function expectError(res: { status: number; body: any; text: string }, status: number, code: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.body).toMatchObject({ error: { code, message: expect.any(String) } });
}

const issuePaths = (res: { body: any }) => (res.body.error.details.issues as Array<{ path: string }>).map((i) => i.path);

describe("GET /account", () => {
  it("returns the profile in backlex's shape", async () => {
    const u = await signUp({ name: "Barbara Liskov" });
    const res = await api("/account", { token: u.token });
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body)).toEqual(["account"]);
    expect(res.body.account).toEqual({
      id: u.id,
      email: u.email,
      name: "Barbara Liskov",
      username: null,
      emailVerified: false,
      title: null,
      timezone: null,
      preferences: null,
    });
    expect(res.text).not.toContain(u.password);
  });

  it("is refused without a credential, with a dead one, and to org API keys", async () => {
    expectError(await api("/account"), 401, "UNAUTHORIZED");
    expectError(await api("/account", { token: "not-a-session" }), 401, "UNAUTHORIZED");
    const u = await signUp();
    const key = await createOrgKey(u, u.orgSlug, "full");
    expectError(await api("/account", { token: key.key }), 403, "FORBIDDEN");
    expectError(await api("/account", { token: key.key, method: "PATCH", body: { name: "Key" } }), 403, "FORBIDDEN");
    await api("/auth/logout", { token: u.token, method: "POST" });
    expectError(await api("/account", { token: u.token }), 401, "UNAUTHORIZED");
  });

  it("serves a personal dkp_ key as its user", async () => {
    const u = await signUp();
    const created = await api("/api-keys", { token: u.token, body: { name: "laptop" } });
    expect(created.status, created.text).toBe(201);
    const res = await api("/account", { token: created.body.key });
    expect(res.status, res.text).toBe(200);
    expect(res.body.account.id).toBe(u.id);
  });
});

describe("PATCH /account", () => {
  it("updates name, title, timezone and preferences; GET and /me show them", async () => {
    const u = await signUp();
    const preferences = { theme: "dark", notifications: { email: false }, pinned: ["a", "b"], density: 2 };
    const res = await api("/account", { token: u.token, method: "PATCH", body: { name: "  New Name  ", title: "CTO", timezone: "Europe/Copenhagen", preferences } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ ok: true });

    const got = await api("/account", { token: u.token });
    expect(got.body.account).toMatchObject({ name: "New Name", title: "CTO", timezone: "Europe/Copenhagen", preferences, email: u.email });
    const me = await api("/me", { token: u.token });
    expect(me.body).toMatchObject({ name: "New Name", fullname: "New Name", title: "CTO", timezone: "Europe/Copenhagen", preferences });
  });

  it("changes only the fields sent", async () => {
    const u = await signUp({ name: "Keep Me" });
    expect((await api("/account", { token: u.token, method: "PATCH", body: { title: "Engineer", preferences: { a: 1 } } })).status).toBe(200);
    expect((await api("/account", { token: u.token, method: "PATCH", body: { timezone: "UTC" } })).status).toBe(200);
    const empty = await api("/account", { token: u.token, method: "PATCH", body: {} });
    expect(empty.status, empty.text).toBe(200);
    const got = await api("/account", { token: u.token });
    expect(got.body.account).toMatchObject({ name: "Keep Me", title: "Engineer", timezone: "UTC", preferences: { a: 1 } });
  });

  it("replaces preferences rather than merging them", async () => {
    const u = await signUp();
    await api("/account", { token: u.token, method: "PATCH", body: { preferences: { a: 1, b: 2 } } });
    await api("/account", { token: u.token, method: "PATCH", body: { preferences: { c: 3 } } });
    const got = await api("/account", { token: u.token });
    expect(got.body.account.preferences).toEqual({ c: 3 });
  });

  it("does not let the body change the email, id or verification", async () => {
    const u = await signUp();
    const res = await api("/account", {
      token: u.token,
      method: "PATCH",
      body: { email: "hijack@example.com", id: "usr_other", emailVerified: true, username: "hijack", title: "Still fine" },
    });
    expect(res.status, res.text).toBe(200);
    const got = await api("/account", { token: u.token });
    expect(got.body.account).toMatchObject({ id: u.id, email: u.email, emailVerified: false, username: null, title: "Still fine" });
    // The old email still signs in; the hijack address does not exist.
    expect((await api("/auth/login", { body: { email: u.email, password: u.password } })).status).toBe(200);
    expectError(await api("/auth/login", { body: { email: "hijack@example.com", password: u.password } }), 401, "invalid_credentials");
  });

  it("is one user's own: another user's PATCH does not touch it", async () => {
    const a = await signUp({ name: "Alice" });
    const b = await signUp({ name: "Bob" });
    await api("/account", { token: b.token, method: "PATCH", body: { name: "Bobby" } });
    expect((await api("/account", { token: a.token })).body.account.name).toBe("Alice");
    expect((await api("/account", { token: b.token })).body.account.name).toBe("Bobby");
  });

  it("rejects invalid fields with 422 VALIDATION (backlex) and changes nothing", async () => {
    const u = await signUp({ name: "Unchanged" });
    const cases: Array<[unknown, string]> = [
      [{ name: "" }, "name"],
      [{ name: "   " }, "name"],
      [{ name: "x".repeat(121) }, "name"],
      [{ name: 42 }, "name"],
      [{ name: null }, "name"],
      [{ title: "t".repeat(121) }, "title"],
      [{ timezone: "z".repeat(61) }, "timezone"],
      [{ preferences: ["not", "an", "object"] }, "preferences"],
      [{ preferences: "dark" }, "preferences"],
      [{ preferences: { ["k".repeat(65)]: 1 } }, "preferences"],
      [{ preferences: { blob: "x".repeat(20_000) } }, "preferences"],
    ];
    for (const [body, field] of cases) {
      const res = await api("/account", { token: u.token, method: "PATCH", body });
      expectError(res, 422, "VALIDATION");
      expect(issuePaths(res).some((p) => p === field || p.startsWith(`${field}.`)), `${JSON.stringify(body).slice(0, 80)} → ${res.text.slice(0, 300)}`).toBe(true);
    }
    const notObject = await api("/account", { token: u.token, method: "PATCH", raw: "[1,2,3]" });
    expectError(notObject, 422, "VALIDATION");
    const malformed = await api("/account", { token: u.token, method: "PATCH", raw: "{name:" });
    expectError(malformed, 400, "INVALID_JSON");
    const got = await api("/account", { token: u.token });
    expect(got.body.account).toMatchObject({ name: "Unchanged", title: null, timezone: null, preferences: null });
  });

  it("accepts the largest allowed values", async () => {
    const u = await signUp();
    const body = { name: "n".repeat(120), title: "t".repeat(120), timezone: "z".repeat(60), preferences: { blob: "x".repeat(16_000) } };
    const res = await api("/account", { token: u.token, method: "PATCH", body });
    expect(res.status, res.text.slice(0, 300)).toBe(200);
    const got = await api("/account", { token: u.token });
    expect(got.body.account).toMatchObject(body);
  });

  it("is refused without a credential", async () => {
    expectError(await api("/account", { method: "PATCH", body: { name: "Nobody" } }), 401, "UNAUTHORIZED");
  });
});
