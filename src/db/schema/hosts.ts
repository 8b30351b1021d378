/** Hosts: Docker hosts and Proxmox nodes, with what their agent reports. */
import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { user } from "./auth";
import { createdAt } from "./columns";
import { org } from "./tenancy";

export const HOST_KINDS = ["docker", "proxmox"] as const;
export type HostKind = (typeof HOST_KINDS)[number];

export const host = sqliteTable(
  "host",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => org.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    kind: text("kind").$type<HostKind>().notNull(),
    region: text("region"),
    labels: text("labels", { mode: "json" }).$type<Record<string, string>>().notNull().default(sql`'{}'`),
    /** SHA-256 of the single-use join token; cleared once used. */
    joinTokenHash: text("join_token_hash").unique(),
    joinTokenExpiresAt: integer("join_token_expires_at", { mode: "timestamp_ms" }),
    /** SHA-256 of the agent's credential, set when the join token is exchanged. */
    credentialHash: text("credential_hash").unique(),
    joinedAt: integer("joined_at", { mode: "timestamp_ms" }),
    lastSeenAt: integer("last_seen_at", { mode: "timestamp_ms" }),
    agentVersion: text("agent_version"),
    /** What the agent reported: hostname, CPUs, memory, disk, Docker or Proxmox version. */
    facts: text("facts", { mode: "json" }).$type<Record<string, unknown>>(),
    createdBy: text("created_by").references(() => user.id, { onDelete: "set null" }),
    createdAt: createdAt(),
    /** Deleted hosts keep their row (jobs refer to them) but lose their credential at once. */
    deletedAt: integer("deleted_at", { mode: "timestamp_ms" }),
  },
  (t) => [index("host_org_idx").on(t.orgId)],
);
