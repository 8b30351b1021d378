/** DevPocket's development utilities (served in development and tests only): test users and their data, and cleaning them up. */
import { beforeAll, describe, expect, it } from "vitest";
import { api, env, expectApiError, signUp, type TestUser } from "./helpers";

let dev: TestUser;
beforeAll(async () => {
  dev = await signUp({ name: "Developer" });
});

describe("POST /dev/test-data/generate", () => {
  it("makes test users who can sign in, with the scenario's data and an open conflict for sync_testing", async () => {
    const res = await api("/dev/test-data/generate", { token: dev.token, body: { scenario: "sync_testing", parameters: { user_count: 2, command_count: 4 } } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ success: true, scenario: "sync_testing", data_created: { users: 2, devices: 4, conflicts: 2, sync_items: 2 * (3 + 4 + 1) } });
    const [first] = res.body.test_users;
    expect(first.email).toMatch(/@devpocket\.test$/);
    const login = await api("/auth/login", { body: { email: first.email, password: first.password } });
    expect(login.status, login.text).toBe(200);
    const pulled = await api("/sync/data?data_types=all&device_id=x&device_name=x", { token: login.body.token });
    expect(pulled.body.data.ssh_profiles).toHaveLength(3);
    expect(pulled.body.data.commands).toHaveLength(4);
    expect(pulled.body.conflicts).toHaveLength(1);
    // The caller's own data is untouched.
    expect((await api("/sync/stats", { token: dev.token })).body.total_syncs).toBe(0);
  });

  it("checks its input and needs a signed-in caller", async () => {
    expectApiError(await api("/dev/test-data/generate", { token: dev.token, body: { scenario: "chaos" } }), 400, "invalid_request");
    expectApiError(await api("/dev/test-data/generate", { token: dev.token, body: { scenario: "user_onboarding", parameters: { user_count: 10_000 } } }), 400, "invalid_request");
    expectApiError(await api("/dev/test-data/generate", { body: { scenario: "user_onboarding" } }), 401, "unauthorized");
    expectApiError(await api("/dev/cleanup", { body: {} }), 401, "unauthorized");
  });
});

describe("POST /dev/cleanup", () => {
  it("deletes test users older than the age given, with their orgs and data, and nobody else", async () => {
    const made = await api("/dev/test-data/generate", { token: dev.token, body: { scenario: "command_history", parameters: { user_count: 1, command_count: 3 } } });
    expect(made.status, made.text).toBe(200);
    const testUser = made.body.test_users[0];
    // Younger than the default 24 hours: kept.
    const none = await api("/dev/cleanup", { token: dev.token, body: {} });
    expect(none.body.cleaned_records.users).toBe(0);
    // Only their commands.
    const commands = await api("/dev/cleanup", { token: dev.token, body: { older_than_hours: 0, include_test_users: false, data_types: ["commands"] } });
    expect(commands.body.cleaned_records.commands).toBeGreaterThanOrEqual(3);
    expect((await env.DB.prepare("SELECT count(*) AS n FROM user WHERE id = ?").bind(testUser.user_id).first<{ n: number }>())?.n).toBe(1);
    // Then the users themselves.
    const all = await api("/dev/cleanup", { token: dev.token, body: { older_than_hours: 0 } });
    expect(all.status, all.text).toBe(200);
    expect(all.body.cleaned_records.users).toBeGreaterThanOrEqual(1);
    expect((await env.DB.prepare("SELECT count(*) AS n FROM user WHERE email LIKE '%@devpocket.test'").first<{ n: number }>())?.n).toBe(0);
    expect((await env.DB.prepare("SELECT count(*) AS n FROM org WHERE created_by = ?").bind(testUser.user_id).first<{ n: number }>())?.n).toBe(0);
    expect((await api("/auth/login", { body: { email: testUser.email, password: testUser.password } })).status).toBe(401);
    // The caller is still there.
    expect((await api("/user/profile", { token: dev.token })).status).toBe(200);
  });
});
