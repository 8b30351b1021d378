/** Credentials: API keys and the seeds' rotating refresh tokens, stored as hashes. */
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { user } from "./auth";
import { createdAt } from "./columns";
import { org, project } from "./tenancy";

export const API_KEY_SCOPES = ["full", "deploy", "read-only"] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

export const apiKey = sqliteTable(
  "api_key",
  {
    id: text("id").primaryKey(),
    /** personal: dkp_, acts as its user. org: pak_, acts for one org, optionally one project. */
    kind: text("kind").$type<"personal" | "org">().notNull(),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    orgId: text("org_id").references(() => org.id, { onDelete: "cascade" }),
    projectId: text("project_id").references(() => project.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /** The first characters of the secret, safe to show. */
    prefix: text("prefix").notNull(),
    /** SHA-256 of the whole secret. */
    hash: text("hash").notNull().unique(),
    scope: text("scope").$type<ApiKeyScope>().notNull().default("full"),
    /** Suble's permission bitmask, kept for its clients. */
    permissions: integer("permissions"),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }),
    lastUsedAt: integer("last_used_at", { mode: "timestamp_ms" }),
    revokedAt: integer("revoked_at", { mode: "timestamp_ms" }),
    createdAt: createdAt(),
  },
  (t) => [index("api_key_user_idx").on(t.userId, t.kind), index("api_key_org_idx").on(t.orgId)],
);

/** Rotating refresh tokens for the seeds' token-pair logins (Suble, DevPocket). */
export const refreshToken = sqliteTable(
  "refresh_token",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    hash: text("hash").notNull().unique(),
    /** SHA-256 of the session token issued with it, so signing that session out revokes its refresh token too. */
    sessionTokenHash: text("session_token_hash"),
    /** The session issued with it: ending that session, by any route, ends this token. */
    sessionId: text("session_id"),
    /**
     * Every token rotated from one sign-in shares a family (the first token's id). A replayed
     * token ends the whole family: its refresh tokens and the sessions they issued.
     */
    familyId: text("family_id"),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
    usedAt: integer("used_at", { mode: "timestamp_ms" }),
    createdAt: createdAt(),
  },
  (t) => [
    index("refresh_token_user_idx").on(t.userId),
    index("refresh_token_session_idx").on(t.sessionTokenHash),
    index("refresh_token_session_id_idx").on(t.sessionId),
    index("refresh_token_family_idx").on(t.familyId),
  ],
);
