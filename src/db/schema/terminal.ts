/**
 * DevPocket's SSH profiles and command history. Both belong to a person within one org: the
 * org's hosts run the SSH client, and only the person who saved a profile (or ran a command)
 * sees it. Credentials are encrypted at rest (src/lib/secrets.ts) and never leave in a response.
 */
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { user } from "./auth";
import { createdAt, updatedAt } from "./columns";
import { host } from "./hosts";
import { org } from "./tenancy";

export const sshProfile = sqliteTable(
  "ssh_profile",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => org.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    host: text("host").notNull(),
    port: integer("port").notNull().default(22),
    username: text("username").notNull(),
    /** The host whose agent runs the client; null: any online host of the org. */
    viaHostId: text("via_host_id").references(() => host.id, { onDelete: "set null" }),
    /** `{password?, private_key?, passphrase?}`, encrypted (encryptJson); null when the profile has none. */
    secretCiphertext: text("secret_ciphertext"),
    hasPassword: integer("has_password", { mode: "boolean" }).notNull().default(false),
    hasPrivateKey: integer("has_private_key", { mode: "boolean" }).notNull().default(false),
    /** The server's host key as first seen (`SHA256:…`), pinned: another key is refused. */
    hostKeyFingerprint: text("host_key_fingerprint"),
    hostKeyPinnedAt: integer("host_key_pinned_at", { mode: "timestamp_ms" }),
    /** A one-off `POST /ssh/connect` with inline credentials: not listed with the saved profiles. */
    adhoc: integer("adhoc", { mode: "boolean" }).notNull().default(false),
    lastConnectedAt: integer("last_connected_at", { mode: "timestamp_ms" }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("ssh_profile_user_idx").on(t.userId, t.orgId)],
);

export const COMMAND_STATUSES = ["pending", "running", "success", "error"] as const;
export type CommandStatus = (typeof COMMAND_STATUSES)[number];

export const command = sqliteTable(
  "command",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => org.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    profileId: text("profile_id").references(() => sshProfile.id, { onDelete: "set null" }),
    /** The host whose agent ran it. */
    hostId: text("host_id"),
    jobId: text("job_id"),
    /** DevPocket's free-form session id, for filtering the history. */
    sessionId: text("session_id"),
    command: text("command").notNull(),
    timeoutSeconds: integer("timeout_seconds").notNull(),
    status: text("status").$type<CommandStatus>().notNull().default("pending"),
    stdout: text("stdout"),
    stderr: text("stderr"),
    /** The output went past COMMAND_OUTPUT_MAX_BYTES (per stream) and was cut. */
    outputTruncated: integer("output_truncated", { mode: "boolean" }).notNull().default(false),
    exitCode: integer("exit_code"),
    durationMs: integer("duration_ms"),
    error: text("error"),
    /** The command this one reran. */
    rerunOf: text("rerun_of"),
    createdAt: createdAt(),
    executedAt: integer("executed_at", { mode: "timestamp_ms" }),
    finishedAt: integer("finished_at", { mode: "timestamp_ms" }),
  },
  (t) => [index("command_user_idx").on(t.userId, t.orgId, t.createdAt), index("command_job_idx").on(t.jobId)],
);
