/**
 * Test users for development: made through better-auth (so they can sign in), at
 * `@devpocket.test` so cleanup can tell them from real people, with synced items of their own.
 */
import { and, eq, inArray, like, lt } from "drizzle-orm";
import type { Context } from "hono";
import { authOf } from "../auth/middleware";
import { org, user } from "../db/schema";
import type { AppEnv } from "../env";
import { newSecret } from "../lib/crypto";
import { randomString } from "../lib/ids";
import { pushItems, touchDevice, type UploadItem } from "./sync";

export const TEST_USER_DOMAIN = "devpocket.test";

export interface MadeUsers {
  users: Array<{ email: string; password: string; user_id: string }>;
  syncItems: number;
  devices: number;
  conflicts: number;
}

/** `count` test users, each with `items` synced from a test phone, and with `conflict` one open conflict on `profile-1`. */
export async function makeTestUsers(c: Context<AppEnv>, count: number, items: UploadItem[], conflict = false): Promise<MadeUsers> {
  const made: MadeUsers = { users: [], syncItems: 0, devices: 0, conflicts: 0 };
  for (let i = 0; i < count; i++) {
    const email = `test-${randomString(10)}@${TEST_USER_DOMAIN}`;
    const password = newSecret("pw-").slice(0, 32);
    const signed = await authOf(c).api.signUpEmail({ body: { email, password, name: `Test user ${i + 1}` } });
    const userId = signed.user.id;
    made.users.push({ email, password, user_id: userId });
    if (!items.length) continue;
    await touchDevice(c.var.db, userId, { deviceId: "test-phone", deviceName: "Test phone", deviceType: "ios" });
    made.devices++;
    made.syncItems += (await pushItems(c.var.db, userId, "test-phone", items)).applied.length;
    if (conflict) {
      // Two devices edit the first profile from the same base: one open conflict to resolve.
      await touchDevice(c.var.db, userId, { deviceId: "test-laptop", deviceName: "Test laptop", deviceType: "desktop" });
      made.devices++;
      const edit = (deviceId: string, name: string) =>
        pushItems(c.var.db, userId, deviceId, [{ dataType: "ssh_profiles", key: "profile-1", baseVersion: 1, deleted: false, data: { name, host: `server-1.${TEST_USER_DOMAIN}`, port: 22, username: "deploy" } }]);
      await edit("test-laptop", "Edited on the laptop");
      made.conflicts += (await edit("test-phone", "Edited on the phone")).conflicts.length;
    }
  }
  return made;
}

const SAMPLE_COMMANDS = ["ls -la", "git status", "docker ps", "df -h", "uptime", "tail -f /var/log/syslog"];

export function sampleItems(counts: { ssh_profiles?: number; commands?: number; sessions?: number; settings?: boolean }): UploadItem[] {
  const items: UploadItem[] = [];
  const item = (dataType: UploadItem["dataType"], key: string, data: Record<string, unknown>) => items.push({ dataType, key, baseVersion: undefined, deleted: false, data });
  for (let i = 1; i <= (counts.ssh_profiles ?? 0); i++) item("ssh_profiles", `profile-${i}`, { name: `Test server ${i}`, host: `server-${i}.${TEST_USER_DOMAIN}`, port: 22, username: "deploy" });
  for (let i = 1; i <= (counts.commands ?? 0); i++) item("commands", `cmd-${i}`, { command: SAMPLE_COMMANDS[i % SAMPLE_COMMANDS.length], exit_code: i % 7 === 0 ? 1 : 0 });
  for (let i = 1; i <= (counts.sessions ?? 0); i++) item("sessions", `session-${i}`, { kind: "ssh", profile_id: "profile-1", duration_seconds: 60 * i });
  if (counts.settings) item("settings", "settings", { theme: "dark", terminal_font_size: 14 });
  return items;
}

/** Test users made before `before`; deletes them with their personal orgs (and everything cascading from both). */
export async function testUsersBefore(c: Context<AppEnv>, before: Date): Promise<string[]> {
  const rows = await c.var.db
    .select({ id: user.id })
    .from(user)
    .where(and(like(user.email, `%@${TEST_USER_DOMAIN}`), lt(user.createdAt, before)))
    .limit(1000);
  return rows.map((r) => r.id);
}

export async function deleteTestUsers(c: Context<AppEnv>, ids: string[]) {
  for (let i = 0; i < ids.length; i += 90) {
    const chunk = ids.slice(i, i + 90);
    await c.var.db.batch([
      c.var.db.delete(org).where(and(eq(org.personal, true), inArray(org.createdBy, chunk))),
      c.var.db.delete(user).where(and(inArray(user.id, chunk), like(user.email, `%@${TEST_USER_DOMAIN}`))),
    ]);
  }
}
