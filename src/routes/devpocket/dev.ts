/**
 * DevPocket's development utilities: `POST /dev/test-data/generate` makes test users (at
 * `@devpocket.test`, with their passwords in the answer) and their sync data for a scenario;
 * `POST /dev/cleanup` deletes test users older than a given age, and everything of theirs.
 * Mounted (src/index.ts) like the mail outbox: only in development and tests, absent from a
 * deployment and from its OpenAPI document. Never touches anyone who is not a test user.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { and, inArray, sql } from "drizzle-orm";
import { createRouter } from "../../app";
import { requireUser } from "../../auth/access";
import { syncItem } from "../../db/schema";
import { errorResponsesFor } from "../../lib/errors";
import { deleteTestUsers, makeTestUsers, sampleItems, testUsersBefore } from "../../services/test-data";
import { json, jsonBody } from "../schemas";

const router = createRouter();

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

function itemsFor(scenario: (typeof SCENARIOS)[number], p: z.infer<typeof GenerateInput>["parameters"]) {
  return sampleItems({
    ssh_profiles: p.ssh_profiles_per_user ?? (scenario === "ssh_workflow" || scenario === "sync_testing" ? 3 : 0),
    commands: p.command_count ?? (scenario === "command_history" ? 25 : scenario === "performance_testing" ? 200 : scenario === "sync_testing" ? 5 : 0),
    settings: scenario !== "user_onboarding",
  });
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
    const made = await makeTestUsers(c, count, itemsFor(scenario, parameters), scenario === "sync_testing");
    const created = { users: made.users.length, sync_items: made.syncItems, devices: made.devices, conflicts: made.conflicts };
    const testUsers = made.users;
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
    const ids = await testUsersBefore(c, before);
    const cleaned = { users: 0, commands: 0, sessions: 0, ssh_profiles: 0 };
    const dropUsers = input.include_test_users && types.includes("users");
    for (let i = 0; i < ids.length; i += 90) {
      const chunk = ids.slice(i, i + 90);
      const counts = await c.var.db
        .select({ type: syncItem.dataType, n: sql<number>`count(*)` })
        .from(syncItem)
        .where(inArray(syncItem.userId, chunk))
        .groupBy(syncItem.dataType);
      for (const row of counts) {
        if ((row.type === "commands" || row.type === "sessions" || row.type === "ssh_profiles") && (dropUsers || types.includes(row.type))) cleaned[row.type] += Number(row.n);
      }
      if (!dropUsers) {
        const only = types.filter((t): t is "commands" | "sessions" | "ssh_profiles" => t !== "users");
        if (only.length) await c.var.db.delete(syncItem).where(and(inArray(syncItem.userId, chunk), inArray(syncItem.dataType, only)));
      }
    }
    if (dropUsers) {
      await deleteTestUsers(c, ids);
      cleaned.users = ids.length;
    }
    return c.json({ success: true, cleaned_records: cleaned }, 200);
  },
);

export default router;
