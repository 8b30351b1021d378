/** Tenancy: orgs, their members and invitations, projects and project grants. */
import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { user } from "./auth";
import { createdAt, updatedAt } from "./columns";

export const ROLES = ["owner", "admin", "developer", "viewer"] as const;
export type Role = (typeof ROLES)[number];

export const org = sqliteTable("org", {
  id: text("id").primaryKey(),
  slug: text("slug").notNull().unique(),
  name: text("name").notNull(),
  planId: text("plan_id").notNull().default("free"),
  residency: text("residency").notNull().default("global"),
  defaultRegion: text("default_region").notNull().default("fra"),
  ipAllowlist: text("ip_allowlist", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
  webhookUrl: text("webhook_url"),
  status: text("status").notNull().default("active"),
  /** The org made for a user at sign-up; it cannot be deleted while the user exists. */
  personal: integer("personal", { mode: "boolean" }).notNull().default(false),
  createdBy: text("created_by").references(() => user.id, { onDelete: "set null" }),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

export const orgMember = sqliteTable(
  "org_member",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => org.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    role: text("role").$type<Role>().notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("org_member_org_user_uq").on(t.orgId, t.userId), index("org_member_user_idx").on(t.userId)],
);

export const invitation = sqliteTable(
  "invitation",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => org.id, { onDelete: "cascade" }),
    /** Set for an invitation to one project (a grant), not to the org. */
    projectId: text("project_id").references(() => project.id, { onDelete: "cascade" }),
    email: text("email").notNull(),
    role: text("role").$type<Role>().notNull(),
    /** SHA-256 of the token mailed to the invitee; the token itself is never stored. */
    tokenHash: text("token_hash").notNull().unique(),
    status: text("status").$type<"pending" | "accepted" | "revoked">().notNull().default("pending"),
    invitedBy: text("invited_by").references(() => user.id, { onDelete: "set null" }),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
    acceptedAt: integer("accepted_at", { mode: "timestamp_ms" }),
    createdAt: createdAt(),
  },
  (t) => [index("invitation_org_idx").on(t.orgId, t.status), index("invitation_project_idx").on(t.projectId, t.status)],
);

export const project = sqliteTable(
  "project",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => org.id, { onDelete: "cascade" }),
    slug: text("slug").notNull(),
    name: text("name").notNull(),
    status: text("status").$type<"active" | "paused">().notNull().default("active"),
    environment: text("environment").notNull().default("production"),
    region: text("region"),
    category: text("category").notNull().default("business"),
    createdBy: text("created_by").references(() => user.id, { onDelete: "set null" }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    deletedAt: integer("deleted_at", { mode: "timestamp_ms" }),
  },
  (t) => [
    // Slugs are unique among live projects of an org; a deleted project frees its slug.
    uniqueIndex("project_org_slug_live_uq").on(t.orgId, t.slug).where(sql`deleted_at IS NULL`),
  ],
);

/** A grant on one project, on top of (or instead of) an org membership. */
export const projectMember = sqliteTable(
  "project_member",
  {
    id: text("id").primaryKey(),
    projectId: text("project_id")
      .notNull()
      .references(() => project.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    role: text("role").$type<Exclude<Role, "owner">>().notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("project_member_uq").on(t.projectId, t.userId), index("project_member_user_idx").on(t.userId)],
);
