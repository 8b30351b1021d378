/**
 * DevPocket's development utilities: `POST /dev/test-data/generate` makes test users (at
 * `@devpocket.test`, with their passwords in the answer) and their sync data for a scenario;
 * `POST /dev/cleanup` deletes test users older than a given age, and everything of theirs.
 * Mounted (src/index.ts) like the mail outbox: only in development and tests, absent from a
 * deployment and from its OpenAPI document. Never touches anyone who is not a test user.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { and, eq, inArray, like, lt, sql } from "drizzle-orm";
import { createRouter } from "../../app";
import { requireUser } from "../../auth/access";
import { authOf } from "../../auth/middleware";
import { org, syncItem, user } from "../../db/schema";
import { errorResponsesFor } from "../../lib/errors";
import { newSecret } from "../../lib/crypto";
import { randomString } from "../../lib/ids";
import { pushItems, touchDevice, type UploadItem } from "../../services/sync";
import { json, jsonBody } from "../schemas";

const router = createRouter();

export const TEST_USER_DOMAIN = "devpocket.test";

const SCENARIOS = ["user_onboarding", "ssh_workflow", "command_history", "sync_testing", "performance_testing"] as const;

const GenerateInput = z
  .object({
    scenario: z.enum(SCENARIOS),
    parameters: z
      .object({
        user_count: z.number().int().min(1).max(20).optional(),
        command_count: z.number().int().min(0).max(500).optional(),
        session_duration_hours: z.number().int().min(0).max(720).optional(),
        ssh_profiles_per_user: z.number().int().min(0).max(50).optional(),
      })
      .default({}),
  })
  .openapi("DevTestDataInput");

function itemsFor(scenario: (typeof SCENARIOS)[number], p: z.infer<typeof GenerateInput>["parameters"]): UploadItem[] {
  const profiles = p.ssh_profiles_per_user ?? (scenario === "ssh_workflow" || scenario === "sync_testing" ? 3 : 0);
  const commands = p.command_count ?? (scenario === "command_history" ? 25 : scenario === "performance_testing" ? 200 : scenario === "sync_testing" ? 5 : 0);
  const items: UploadItem[] = [];
  for (let i = 1; i <= profiles; i++) {
    items.push({ dataType: "ssh_profiles", key: `profile-${i}`, baseVersion: undefined, deleted: false, data: { name: `Test server ${i}`, host: `server-${i}.${TEST_USER_DOMAIN}`, port: 22, username: "deploy" } });
  }
  const sample = ["ls -la", "git status", "docker ps", "df -h", "uptime", "tail -f /var/log/syslog"];
  for (let i = 1; i <= commands; i++) {
    items.push({ dataType: "commands", key: `cmd-${i}`, baseVersion: undefined, deleted: false, data: { command: sample[i % sample.length], exit_code: i % 7 === 0 ? 1 : 0 } });
  }
  if (scenario !== "user_onboarding") items.push({ dataType: "settings", key: "settings", baseVersion: undefined, deleted: false, data: { theme: "dark", terminal_font_size: 14 } });
  return items;
}

router.openapi(
  createRoute({
    method: "post",
    path: "/dev/test-data/generate",
    tags: ["Development"],
    summary: "Test users and their data for a scenario (local development only)",
    description: "Test users are `…@devpocket.test`; their passwords are in this answer only. `sync_testing` leaves each user one open sync conflict.",
    request: jsonBody(GenerateInput),
    responses: {
      200: json(
        z.object({
          success: z.boolean(),
          scenario: z.string(),
          data_created: z.object({ users: z.number().int(), sync_items: z.number().int(), devices: z.number().int(), conflicts: z.number().int() }),
          test_users: z.array(z.object({ email: z.string(), password: z.string(), user_id: z.string() })),
        }),
        "Generated",
      ),
      ...errorResponsesFor(),
    },
  }),
  async (c) => {
    requireUser(c, "account:update");
    const { scenario, parameters } = c.req.valid("json");
    const count = parameters.user_count ?? (scenario === "user_onboarding" ? 3 : 1);
    const created = { users: 0, sync_items: 0, devices: 0, conflicts: 0 };
    const testUsers: Array<{ email: string; password: string; user_id: string }> = [];
    for (let i = 0; i < count; i++) {
      const email = `test-${randomString(10)}@${TEST_USER_DOMAIN}`;
      const password = newSecret("pw-").slice(0, 32);
      const made = await authOf(c).api.signUpEmail({ body: { email, password, name: `Test user ${i + 1}` } });
      const userId = made.user.id;
      testUsers.push({ email, password, user_id: userId });
      created.users++;
      const items = itemsFor(scenario, parameters);
      if (!items.length) continue;
      await touchDevice(c.var.db, userId, { deviceId: "test-phone", deviceName: "Test phone", deviceType: "ios" });
      created.devices++;
      created.sync_items += (await pushItems(c.var.db, userId, "test-phone", items)).applied.length;
      if (scenario === "sync_testing") {
        // Two devices edit the first profile from the same base: one open conflict to resolve.
        await touchDevice(c.var.db, userId, { deviceId: "test-laptop", deviceName: "Test laptop", deviceType: "desktop" });
        created.devices++;
        const edit = (deviceId: string, name: string) =>
          pushItems(c.var.db, userId, deviceId, [{ dataType: "ssh_profiles", key: "profile-1", baseVersion: 1, deleted: false, data: { name, host: `server-1.${TEST_USER_DOMAIN}`, port: 22, username: "deploy" } }]);
        await edit("test-laptop", "Edited on the laptop");
        created.conflicts += (await edit("test-phone", "Edited on the phone")).conflicts.length;
      }
    }
    return c.json({ success: true, scenario, data_created: created, test_users: testUsers }, 200);
  },
);

const CleanupInput = z
  .object({
    older_than_hours: z.number().int().min(0).max(24 * 365).default(24),
    include_test_users: z.boolean().default(true),
    data_types: z.array(z.enum(["users", "commands", "sessions", "ssh_profiles"])).max(4).optional(),
  })
  .openapi("DevCleanupInput");

router.openapi(
  createRoute({
    method: "post",
    path: "/dev/cleanup",
    tags: ["Development"],
    summary: "Delete test users older than an age, and their data (local development only)",
    description:
      "Only `…@devpocket.test` users made by `/dev/test-data/generate`. With `users` (or `include_test_users`) they go with everything of theirs; otherwise only their synced items of the listed types.",
    request: jsonBody(CleanupInput),
    responses: {
      200: json(
        z.object({ success: z.boolean(), cleaned_records: z.object({ users: z.number().int(), commands: z.number().int(), sessions: z.number().int(), ssh_profiles: z.number().int() }) }),
        "Cleaned",
      ),
      ...errorResponsesFor(),
    },
  }),
  async (c) => {
    requireUser(c, "account:update");
    const input = c.req.valid("json");
    const types = input.data_types ?? ["users", "commands", "sessions", "ssh_profiles"];
    const before = new Date(Date.now() - input.older_than_hours * 3_600_000);
    const targets = await c.var.db
      .select({ id: user.id })
      .from(user)
      .where(and(like(user.email, `%@${TEST_USER_DOMAIN}`), lt(user.createdAt, before)))
      .limit(1000);
    const ids = targets.map((t) => t.id);
    const cleaned = { users: 0, commands: 0, sessions: 0, ssh_profiles: 0 };
    for (let i = 0; i < ids.length; i += 90) {
      const chunk = ids.slice(i, i + 90);
      const counts = await c.var.db
        .select({ type: syncItem.dataType, n: sql<number>`count(*)` })
        .from(syncItem)
        .where(inArray(syncItem.userId, chunk))
        .groupBy(syncItem.dataType);
      const dropUsers = input.include_test_users && types.includes("users");
      for (const row of counts) {
        if ((row.type === "commands" || row.type === "sessions" || row.type === "ssh_profiles") && (dropUsers || types.includes(row.type))) cleaned[row.type] += Number(row.n);
      }
      if (dropUsers) {
        // Their personal orgs first (projects and the rest cascade from them), then the users with everything of theirs.
        await c.var.db.batch([
          c.var.db.delete(org).where(and(eq(org.personal, true), inArray(org.createdBy, chunk))),
          c.var.db.delete(user).where(inArray(user.id, chunk)),
        ]);
        cleaned.users += chunk.length;
      } else {
        const only = types.filter((t): t is "commands" | "sessions" | "ssh_profiles" => t !== "users");
        if (only.length) await c.var.db.delete(syncItem).where(and(inArray(syncItem.userId, chunk), inArray(syncItem.dataType, only)));
      }
    }
    return c.json({ success: true, cleaned_records: cleaned }, 200);
  },
);

export default router;
