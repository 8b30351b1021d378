/**
 * DevPocket's database administration: platform administrators only (better-auth's admin
 * plugin role), a backup that lands in R2 with every table, reset refused outside development.
 */
import { beforeAll, describe, expect, it } from "vitest";
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
