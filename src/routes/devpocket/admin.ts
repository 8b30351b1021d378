/**
 * DevPocket's database administration, for platform administrators only (better-auth's admin
 * plugin role, src/auth/platform.ts): `/admin/database/status`, `migrate`, `stats`, `backup`
 * (every table to R2) and `reset` (development deployments only). Migrations are applied at
 * deploy by `wrangler d1 migrations apply`; the Worker reports them and never rolls back.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../../app";
import { requirePlatformAdmin } from "../../auth/platform";
import { ApiError, errorResponsesFor } from "../../lib/errors";
import { recordAudit } from "../../services/audit";
import { backupDatabase, emptyDatabase, humanSize, migrationHistory, tableStats } from "../../services/database-admin";
import { deleteTestUsers, makeTestUsers, sampleItems, testUsersBefore } from "../../services/test-data";
import { json, jsonBody } from "../schemas";

const router = createRouter();
const adminErrors = errorResponsesFor();

const Status = z
  .object({
    current_revision: z.string().nullable(),
    target_revision: z.string().nullable(),
    pending_migrations: z.number().int(),
    is_up_to_date: z.boolean(),
    last_migration_date: z.string().nullable(),
    migration_history: z.array(z.object({ revision: z.string(), message: z.string(), date: z.string() })),
  })
  .openapi("DatabaseStatus");

async function status(db: D1Database) {
  const history = await migrationHistory(db);
  const last = history.at(-1) ?? null;
  // What is applied is what the deploy applied: the Worker carries no migration files to compare with.
  return {
    current_revision: last?.revision ?? null,
    target_revision: last?.revision ?? null,
    pending_migrations: 0,
    is_up_to_date: true,
    last_migration_date: last?.date ?? null,
    migration_history: history,
  };
}

router.openapi(
  createRoute({
    method: "get",
    path: "/admin/database/status",
    tags: ["Database"],
    summary: "Applied migrations (platform administrators)",
    description: "Migrations are applied at deploy (`wrangler d1 migrations apply`), so the applied head is the target.",
    responses: { 200: json(Status, "Status"), ...adminErrors },
  }),
  async (c) => {
    await requirePlatformAdmin(c);
    return c.json(await status(c.env.DB), 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/admin/database/migrate",
    tags: ["Database"],
    summary: "Bring the database to head (platform administrators)",
    description:
      "Berth's migrations are applied at deploy by `wrangler d1 migrations apply`, before the new Worker serves; this answers what is applied. Only `head` is a target: migrations never go back.",
    request: jsonBody(
      z
        .object({ target: z.string().max(100).default("head"), dry_run: z.boolean().default(false), skip_backup: z.boolean().default(false), force: z.boolean().default(false) })
        .openapi("DatabaseMigrateInput"),
    ),
    responses: {
      200: json(z.object({ success: z.boolean(), message: z.string(), migrations_applied: z.array(z.string()), backup_created: z.string().nullable() }), "At head"),
      ...errorResponsesFor("migration_target_not_supported"),
    },
  }),
  async (c) => {
    await requirePlatformAdmin(c);
    const { target } = c.req.valid("json");
    const now = await status(c.env.DB);
    if (target !== "head" && target !== now.current_revision) {
      throw new ApiError("migration_target_not_supported", `Migrations only go forward to head (${now.current_revision ?? "none"}); ${target} is not a target`);
    }
    return c.json({ success: true, message: `The database is at ${now.current_revision ?? "no migration"}; nothing to apply`, migrations_applied: [], backup_created: null }, 200);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/admin/database/stats",
    tags: ["Database"],
    summary: "Rows per table and the database's size (platform administrators)",
    description: "D1 (SQLite) keeps no insert, update or delete counters: those fields are null.",
    responses: {
      200: json(
        z
          .object({
            table_stats: z.array(
              z.object({
                table_name: z.string(),
                live_rows: z.number().int(),
                inserts: z.null(),
                updates: z.null(),
                deletes: z.null(),
                dead_rows: z.null(),
              }),
            ),
            database_size: z.string(),
            database_size_bytes: z.number().int().nullable(),
            total_tables: z.number().int(),
            last_updated: z.string(),
          })
          .openapi("DatabaseStats"),
        "Statistics",
      ),
      ...adminErrors,
    },
  }),
  async (c) => {
    await requirePlatformAdmin(c);
    const { tables, sizeBytes } = await tableStats(c.env.DB);
    return c.json(
      {
        table_stats: tables.map((t) => ({ ...t, inserts: null, updates: null, deletes: null, dead_rows: null })),
        database_size: humanSize(sizeBytes),
        database_size_bytes: sizeBytes,
        total_tables: tables.length,
        last_updated: new Date().toISOString(),
      },
      200,
    );
  },
);

const BackupOutput = z
  .object({ success: z.boolean(), backup_file: z.string(), file_size: z.string(), file_size_bytes: z.number().int(), tables: z.number().int(), rows: z.number().int(), created_at: z.string() })
  .openapi("DatabaseBackup");

const backupKey = (name: string | undefined, compress: boolean) => {
  const stem = name ?? `berth-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  return `backups/database/${stem}.jsonl${compress ? ".gz" : ""}`;
};

router.openapi(
  createRoute({
    method: "post",
    path: "/admin/database/backup",
    tags: ["Database"],
    summary: "Export every table to R2 (platform administrators)",
    description:
      "JSON lines in the ARCHIVE bucket at `backup_file`: a header with each table's schema and row count, then one `{table, row}` line a row; gzip unless `compress` is false.",
    request: {
      body: {
        required: false,
        content: {
          "application/json": {
            schema: z
              .object({
                backup_name: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, "letters, digits, . _ and - only").optional(),
                include_data: z.boolean().default(true),
                compress: z.boolean().default(true),
              })
              .openapi("DatabaseBackupInput"),
          },
        },
      },
    },
    responses: { 200: json(BackupOutput, "Backed up"), ...errorResponsesFor("backup_exists") },
  }),
  async (c) => {
    await requirePlatformAdmin(c);
    // Without a body the validator hands over `{}` with no defaults applied: they are applied here.
    const body: { backup_name?: string; include_data?: boolean; compress?: boolean } = c.req.valid("json") ?? {};
    const input = { backup_name: body.backup_name, include_data: body.include_data ?? true, compress: body.compress ?? true };
    const key = backupKey(input.backup_name, input.compress);
    if (input.backup_name && (await c.env.ARCHIVE.head(key))) throw new ApiError("backup_exists", `A backup named ${input.backup_name} exists`);
    const made = await backupDatabase(c.env, { key, includeData: input.include_data, compress: input.compress });
    await recordAudit(c, { orgId: null, action: "database.backup", targetType: "database", targetId: key, metadata: { tables: made.tables, rows: made.rows } });
    return c.json({ success: true, backup_file: key, file_size: humanSize(made.size), file_size_bytes: made.size, tables: made.tables, rows: made.rows, created_at: new Date().toISOString() }, 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/admin/database/reset",
    tags: ["Database"],
    summary: "Empty the database (development deployments only; platform administrators)",
    description:
      "Refused (`400 not_allowed_in_environment`) unless the deployment's ENVIRONMENT is development. Keeps the migration history and the seeded catalogs; backs up first unless `backup_first` is false.",
    request: jsonBody(
      z
        .object({ confirmation: z.string().max(100), backup_first: z.boolean().default(true), environment: z.enum(["development", "testing"]).optional() })
        .openapi("DatabaseResetInput"),
    ),
    responses: {
      200: json(z.object({ success: z.boolean(), message: z.string(), backup_created: z.string().nullable(), tables_emptied: z.array(z.string()) }), "Emptied"),
      ...errorResponsesFor("not_allowed_in_environment", "invalid_confirmation"),
    },
  }),
  async (c) => {
    await requirePlatformAdmin(c);
    const input = c.req.valid("json");
    if (c.env.ENVIRONMENT !== "development") throw new ApiError("not_allowed_in_environment", `Reset is for development deployments only; this one is ${c.env.ENVIRONMENT}`);
    if (input.confirmation !== "RESET_DATABASE") throw new ApiError("invalid_confirmation", 'confirmation must be "RESET_DATABASE"');
    const backup = input.backup_first ? await backupDatabase(c.env, { key: backupKey(`pre-reset-${new Date().toISOString().replace(/[:.]/g, "-")}`, true), includeData: true, compress: true }) : null;
    const emptied = await emptyDatabase(c.env.DB);
    return c.json({ success: true, message: `Emptied ${emptied.length} tables`, backup_created: backup?.key ?? null, tables_emptied: emptied }, 200);
  },
);

/** Users are made through better-auth (a password hash each, slow by design): at most this many a call. */
const MAX_SEEDED_USERS = 20;
/** Synced items a seeded user gets of each type, at most. */
const MAX_SEEDED_ITEMS = 500;

router.openapi(
  createRoute({
    method: "post",
    path: "/admin/database/seed",
    tags: ["Database"],
    summary: "Seed test users and their data (platform administrators; not in production)",
    description:
      "Test users are `…@devpocket.test` (removed by `POST /dev/cleanup` or `clean_first`). `users` makes `count` users (at most 20); `ssh`, `commands`, `sessions` and `sync` make one user with `count` items of that kind (at most 500); `all` makes up to 5 users with `count` of each. Refused in production (`400 not_allowed_in_environment`).",
    request: jsonBody(
      z
        .object({
          seed_type: z.enum(["all", "users", "ssh", "commands", "sessions", "sync"]).default("all"),
          count: z.number().int().min(1).max(10_000).default(10),
          clean_first: z.boolean().default(false),
          use_upsert: z.boolean().default(false),
          environment: z.enum(["development", "testing", "staging"]).default("development"),
        })
        .openapi("DatabaseSeedInput"),
    ),
    responses: {
      200: json(
        z.object({
          success: z.boolean(),
          message: z.string(),
          records_created: z.object({
            users: z.number().int(),
            ssh_profiles: z.number().int(),
            ssh_keys: z.number().int(),
            commands: z.number().int(),
            sessions: z.number().int(),
            sync_data: z.number().int(),
          }),
          test_users: z.array(z.object({ email: z.string(), password: z.string(), user_id: z.string() })),
          execution_time: z.number(),
        }),
        "Seeded",
      ),
      ...errorResponsesFor("not_allowed_in_environment"),
    },
  }),
  async (c) => {
    await requirePlatformAdmin(c);
    const input = c.req.valid("json");
    if (c.env.ENVIRONMENT === "production") throw new ApiError("not_allowed_in_environment", "Seeding test data is not for production deployments");
    const { seed_type: type, count } = input;
    if (type === "users" && count > MAX_SEEDED_USERS) throw new ApiError("invalid_request", `At most ${MAX_SEEDED_USERS} users a call`, { issues: [{ path: "count", message: `at most ${MAX_SEEDED_USERS} for users` }] });
    if (type !== "users" && count > MAX_SEEDED_ITEMS) throw new ApiError("invalid_request", `At most ${MAX_SEEDED_ITEMS} items of a kind a call`, { issues: [{ path: "count", message: `at most ${MAX_SEEDED_ITEMS}` }] });
    const started = Date.now();
    if (input.clean_first) await deleteTestUsers(c, await testUsersBefore(c, new Date()));
    const of = (kind: "ssh" | "commands" | "sessions") => (type === kind || type === "all" || (type === "sync" && kind !== "sessions") ? count : 0);
    const perUser = { ssh_profiles: of("ssh"), commands: of("commands"), sessions: of("sessions"), settings: type === "sync" || type === "all" };
    const users = type === "users" ? count : type === "all" ? Math.min(count, 5) : 1;
    const made = await makeTestUsers(c, users, type === "users" ? [] : sampleItems(perUser));
    const records = {
      users: made.users.length,
      ssh_profiles: perUser.ssh_profiles * users,
      ssh_keys: 0,
      commands: perUser.commands * users,
      sessions: perUser.sessions * users,
      sync_data: made.syncItems,
    };
    await recordAudit(c, { orgId: null, action: "database.seed", targetType: "database", metadata: { seed_type: type, ...records } });
    return c.json(
      { success: true, message: `Seeded ${made.users.length} test user(s)`, records_created: records, test_users: made.users, execution_time: (Date.now() - started) / 1000 },
      200,
    );
  },
);

export default router;
