/**
 * DevPocket's database administration: platform administrators only (better-auth's admin
 * plugin role), a backup that lands in R2 with every table, reset refused outside development.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import worker from "../../src/index";
import { api, env, expectApiError, fetchWorker, signUp, type TestUser } from "./helpers";

let root: TestUser;
let user: TestUser;
beforeAll(async () => {
  [root, user] = await Promise.all([signUp({ name: "Root" }), signUp({ name: "Plain user" })]);
  // The first platform administrator is made in the database, as the README says.
  await env.DB.prepare("UPDATE user SET role = 'admin' WHERE id = ?").bind(root.id).run();
});

const ROUTES: Array<[string, string, unknown?]> = [
  ["GET", "/admin/database/status"],
  ["GET", "/admin/database/stats"],
  ["POST", "/admin/database/migrate", { target: "head" }],
  ["POST", "/admin/database/backup", { compress: false }],
  ["POST", "/admin/database/reset", { confirmation: "RESET_DATABASE" }],
  ["POST", "/admin/database/seed", { seed_type: "users", count: 1 }],
];

describe("who may administer the database", () => {
  it("is 401 without a credential and 403 for anyone but a platform administrator, an org owner and their keys included", async () => {
    const key = await api("/api-keys", { token: root.token, body: { name: "root's key" } });
    expect(key.status, key.text).toBe(201);
    for (const [method, path, body] of ROUTES) {
      expectApiError(await api(path, { method, body }), 401, "unauthorized");
      // `user` owns their personal org, and is still no platform administrator.
      expectApiError(await api(path, { method, token: user.token, body }), 403, "forbidden");
      expectApiError(await api(path, { method, token: key.body.key, body }), 403, "forbidden");
    }
  });

  it("comes from better-auth's admin plugin: an administrator can make another one there", async () => {
    const res = await fetchWorker("/api/auth/admin/set-role", {
      method: "POST",
      headers: { authorization: `Bearer ${root.token}`, "content-type": "application/json" },
      body: JSON.stringify({ userId: user.id, role: "admin" }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await api("/admin/database/status", { token: user.token })).status).toBe(200);
    await env.DB.prepare("UPDATE user SET role = 'user' WHERE id = ?").bind(user.id).run();
    expectApiError(await api("/admin/database/status", { token: user.token }), 403, "forbidden");
    // And a plain user cannot make themselves one.
    const self = await fetchWorker("/api/auth/admin/set-role", {
      method: "POST",
      headers: { authorization: `Bearer ${user.token}`, "content-type": "application/json" },
      body: JSON.stringify({ userId: user.id, role: "admin" }),
    });
    expect(self.status).toBe(403);
  });
});

describe("what an administrator sees and does", () => {
  it("status lists the applied migrations, this branch's included", async () => {
    const res = await api("/admin/database/status", { token: root.token });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ pending_migrations: 0, is_up_to_date: true, current_revision: expect.any(String) });
    expect(res.body.migration_history.map((m: { revision: string }) => m.revision)).toContain("0014_devpocket");
    expect(res.body.target_revision).toBe(res.body.current_revision);
  });

  it("migrate answers head and refuses to go back", async () => {
    const res = await api("/admin/database/migrate", { token: root.token, body: { target: "head", dry_run: true } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ success: true, migrations_applied: [] });
    expectApiError(await api("/admin/database/migrate", { token: root.token, body: { target: "-1" } }), 400, "migration_target_not_supported");
    expectApiError(await api("/admin/database/migrate", { token: root.token, body: { dry_run: "yes" } }), 400, "invalid_request");
  });

  it("stats counts the rows of every table", async () => {
    const res = await api("/admin/database/stats", { token: root.token });
    expect(res.status, res.text).toBe(200);
    const users = res.body.table_stats.find((t: { table_name: string }) => t.table_name === "user");
    expect(users.live_rows).toBeGreaterThanOrEqual(2);
    expect(res.body.table_stats.find((t: { table_name: string }) => t.table_name === "subscription_plan").live_rows).toBe(4);
    expect(res.body.total_tables).toBe(res.body.table_stats.length);
    expect(res.body.database_size).toMatch(/B$/);
  });

  it("backup writes every table to R2, compressed or not; a name is not reused", async () => {
    const name = `t-${Date.now().toString(36)}`;
    const res = await api("/admin/database/backup", { token: root.token, body: { backup_name: name, compress: false } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ success: true, backup_file: `backups/database/${name}.jsonl`, rows: expect.any(Number) });
    const object = await env.ARCHIVE.get(res.body.backup_file);
    expect(object?.size).toBe(res.body.file_size_bytes);
    const lines = (await object!.text()).trim().split("\n").map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ format: "berth-d1-backup", version: 1 });
    expect(lines[0].tables.map((t: { name: string }) => t.name)).toEqual(expect.arrayContaining(["user", "org", "sync_item", "d1_migrations"]));
    expect(lines.some((l) => l.table === "user" && l.row.id === user.id)).toBe(true);
    expectApiError(await api("/admin/database/backup", { token: root.token, body: { backup_name: name, compress: false } }), 409, "backup_exists");

    const gz = await api("/admin/database/backup", { method: "POST", token: root.token });
    expect(gz.status, gz.text).toBe(200);
    expect(gz.body.backup_file).toMatch(/\.jsonl\.gz$/);
    const packed = await env.ARCHIVE.get(gz.body.backup_file);
    const text = await new Response(packed!.body.pipeThrough(new DecompressionStream("gzip"))).text();
    expect(JSON.parse(text.split("\n")[0]!)).toMatchObject({ format: "berth-d1-backup" });
    expectApiError(await api("/admin/database/backup", { token: root.token, body: { backup_name: "../etc/passwd" } }), 400, "invalid_request");
  });

  it("seed makes test users who can sign in, with their synced data, and refuses too many", async () => {
    const res = await api("/admin/database/seed", { token: root.token, body: { seed_type: "sync", count: 3 } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ success: true, records_created: { users: 1, ssh_profiles: 3, commands: 3, sessions: 0, ssh_keys: 0, sync_data: 7 } });
    const seeded = res.body.test_users[0];
    expect(seeded.email).toMatch(/@devpocket\.test$/);
    const login = await api("/auth/login", { body: { email: seeded.email, password: seeded.password } });
    expect(login.status, login.text).toBe(200);
    const pulled = await api("/sync/data?data_types=all&device_id=x&device_name=x", { token: login.body.token });
    expect(pulled.body.total_items).toBe(7);
    // clean_first removes earlier test users, and only them.
    const again = await api("/admin/database/seed", { token: root.token, body: { seed_type: "users", count: 2, clean_first: true } });
    expect(again.body.records_created.users).toBe(2);
    expect((await env.DB.prepare("SELECT count(*) AS n FROM user WHERE email = ?").bind(seeded.email).first<{ n: number }>())?.n).toBe(0);
    expect((await api("/user/profile", { token: user.token })).status).toBe(200);
    expectApiError(await api("/admin/database/seed", { token: root.token, body: { seed_type: "users", count: 21 } }), 400, "invalid_request");
    expectApiError(await api("/admin/database/seed", { token: root.token, body: { seed_type: "everything" } }), 400, "invalid_request");
  });

  it("reset is refused outside development, and nothing is emptied", async () => {
    expectApiError(await api("/admin/database/reset", { token: root.token, body: { confirmation: "RESET_DATABASE", backup_first: false } }), 400, "not_allowed_in_environment");
    expectApiError(await api("/admin/database/reset", { token: root.token, body: {} }), 400, "invalid_request");
    expect((await api("/user/profile", { token: user.token })).status).toBe(200);
  });
});

/**
 * The Worker's own fetch handler with this file's bindings but another ENVIRONMENT, as a
 * development or production deployment runs it (the tests' Worker runs as `test`).
 */
async function callAs(overrides: Partial<Env>, path: string, opts: { token?: string; body?: unknown } = {}) {
  const ctx = createExecutionContext();
  const headers: Record<string, string> = opts.body === undefined ? {} : { "content-type": "application/json" };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const request = new Request(`http://berth.test/api/v1${path}`, { method: opts.body === undefined ? "GET" : "POST", headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const res = await worker.fetch(request, { ...(env as unknown as Env), ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : null };
}

// Last in this file: a reset empties this file's database.
describe("reset in a development deployment", () => {
  it("is refused in production too, and nothing is emptied", async () => {
    const production: Partial<Env> = {
      ENVIRONMENT: "production",
      AUTH_SECRET: "a-production-secret-of-at-least-thirty-two-characters",
      ENCRYPTION_KEY: "a-production-encryption-key",
      PUBLIC_URL: "https://berth.example.com",
      MAIL_TRANSPORT: "cloudflare",
      MAIL_FROM: "berth@example.com",
    };
    expect((await callAs(production, "/admin/database/status", { token: root.token })).status).toBe(200);
    expectApiError(await callAs(production, "/admin/database/reset", { token: root.token, body: { confirmation: "RESET_DATABASE", backup_first: false } }), 400, "not_allowed_in_environment");
    expect((await api("/user/profile", { token: user.token })).status).toBe(200);
  });

  it("empties everything but the migration history and the catalogs, after a backup; the first administrator is made again as the README says", async () => {
    const development: Partial<Env> = { ENVIRONMENT: "development" };
    const synced = await api("/sync/data", { token: user.token, body: { device_id: "phone", commands: [{ id: "c1", command: "uptime" }] } });
    expect(synced.status, synced.text).toBe(200);
    // Only a platform administrator, and only with the confirmation.
    expectApiError(await callAs(development, "/admin/database/reset", { token: user.token, body: { confirmation: "RESET_DATABASE" } }), 403, "forbidden");
    expectApiError(await callAs(development, "/admin/database/reset", { token: root.token, body: { confirmation: "reset please" } }), 400, "invalid_confirmation");
    expect((await api("/user/profile", { token: user.token })).status).toBe(200);

    const res = await callAs(development, "/admin/database/reset", { token: root.token, body: { confirmation: "RESET_DATABASE" } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ success: true, backup_created: expect.stringMatching(/^backups\/database\/pre-reset-.+\.jsonl\.gz$/) });
    expect(res.body.tables_emptied).toEqual(expect.arrayContaining(["user", "session", "org", "project", "sync_item"]));
    expect(res.body.tables_emptied).not.toContain("d1_migrations");
    expect(res.body.tables_emptied).not.toContain("subscription_plan");

    // The backup taken first holds what was there.
    const packed = await env.ARCHIVE.get(res.body.backup_created);
    const lines = (await new Response(packed!.body.pipeThrough(new DecompressionStream("gzip"))).text()).trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.some((l) => l.table === "user" && l.row.id === user.id)).toBe(true);
    expect(lines.some((l) => l.table === "sync_item" && l.row.item_key === "c1")).toBe(true);

    // Every account is gone, the administrator's own session with it.
    expectApiError(await api("/user/profile", { token: user.token }), 401, "unauthorized");
    expectApiError(await api("/admin/database/status", { token: root.token }), 401, "unauthorized");
    expectApiError(await api("/auth/login", { body: { email: user.email, password: user.password } }), 401, "invalid_credentials");
    for (const table of ["user", "org", "project", "sync_item", "audit_event"]) {
      expect((await env.DB.prepare(`SELECT count(*) AS n FROM "${table}"`).first<{ n: number }>())?.n, table).toBe(0);
    }

    // A fresh start: someone signs up (their org and "My Project" made again), the seeded
    // catalogs are still there, and the first administrator is made in the database again.
    const fresh = await signUp({ name: "After reset", email: root.email });
    const projects = await api("/projects", { token: fresh.token });
    expect(projects.body.map((p: { name: string }) => p.name)).toEqual(["My Project"]);
    expect((await api("/subscription/plans")).body.map((p: { name: string }) => p.name)).toHaveLength(4);
    expect((await api("/plans", { token: fresh.token })).body.plans.length).toBeGreaterThan(0);
    expect((await api("/images", { token: fresh.token })).body.images.length).toBeGreaterThan(0);
    expectApiError(await api("/admin/database/status", { token: fresh.token }), 403, "forbidden");
    await env.DB.prepare("UPDATE user SET role = 'admin' WHERE email = ?").bind(root.email).run();
    const status = await api("/admin/database/status", { token: fresh.token });
    expect(status.status, status.text).toBe(200);
    expect(status.body.migration_history.map((m: { revision: string }) => m.revision)).toContain("0014_devpocket");
  });
});
