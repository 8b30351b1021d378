/**
 * D1 schema. better-auth owns `user`, `session`, `account` and `verification`
 * (their field names are the ones its drizzle adapter expects); everything
 * else is Berth's tenancy model. Migrations in /migrations are generated from
 * this file by drizzle-kit (`npm run db:generate`).
 */
import { relations, sql } from "drizzle-orm";
import { index, integer, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

const createdAt = () =>
  integer("created_at", { mode: "timestamp_ms" })
    .notNull()
    .default(sql`(unixepoch('subsec') * 1000)`);
const updatedAt = () =>
  integer("updated_at", { mode: "timestamp_ms" })
    .notNull()
    .default(sql`(unixepoch('subsec') * 1000)`);

// ---------------------------------------------------------------- better-auth

export const user = sqliteTable("user", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  email: text("email").notNull().unique(),
  emailVerified: integer("email_verified", { mode: "boolean" }).notNull().default(false),
  image: text("image"),
  username: text("username").unique(),
  displayUsername: text("display_username"),
  title: text("title"),
  timezone: text("timezone"),
  country: text("country"),
  language: text("language"),
  preferences: text("preferences"),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

export const session = sqliteTable(
  "session",
  {
    id: text("id").primaryKey(),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
    token: text("token").notNull().unique(),
    ipAddress: text("ip_address"),
    userAgent: text("user_agent"),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("session_user_idx").on(t.userId)],
);

export const account = sqliteTable(
  "account",
  {
    id: text("id").primaryKey(),
    accountId: text("account_id").notNull(),
    providerId: text("provider_id").notNull(),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    accessToken: text("access_token"),
    refreshToken: text("refresh_token"),
    idToken: text("id_token"),
    accessTokenExpiresAt: integer("access_token_expires_at", { mode: "timestamp_ms" }),
    refreshTokenExpiresAt: integer("refresh_token_expires_at", { mode: "timestamp_ms" }),
    scope: text("scope"),
    password: text("password"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("account_user_idx").on(t.userId)],
);

export const verification = sqliteTable(
  "verification",
  {
    id: text("id").primaryKey(),
    identifier: text("identifier").notNull(),
    value: text("value").notNull(),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("verification_identifier_idx").on(t.identifier)],
);

/** Relations better-auth's adapter joins through (advanced.database.joins): a session and its user in one query. */
export const userRelations = relations(user, ({ many }) => ({ sessions: many(session), accounts: many(account) }));
export const sessionRelations = relations(session, ({ one }) => ({ user: one(user, { fields: [session.userId], references: [user.id] }) }));
export const accountRelations = relations(account, ({ one }) => ({ user: one(user, { fields: [account.userId], references: [user.id] }) }));

// ---------------------------------------------------------------- tenancy

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

// ---------------------------------------------------------------- credentials

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

// ---------------------------------------------------------------- audit, mail

export const auditEvent = sqliteTable(
  "audit_event",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").references(() => org.id, { onDelete: "cascade" }),
    actorType: text("actor_type").$type<"user" | "api_key">().notNull(),
    actorId: text("actor_id").notNull(),
    /** The user behind the actor (the key's owner for keys). */
    actorUserId: text("actor_user_id"),
    action: text("action").notNull(),
    targetType: text("target_type"),
    targetId: text("target_id"),
    ip: text("ip"),
    userAgent: text("user_agent"),
    metadata: text("metadata", { mode: "json" }).$type<Record<string, unknown>>(),
    createdAt: createdAt(),
  },
  (t) => [index("audit_org_time_idx").on(t.orgId, t.createdAt)],
);

/** Outbound mail when MAIL_TRANSPORT=outbox (local development and tests). */
export const outbox = sqliteTable("outbox", {
  id: text("id").primaryKey(),
  to: text("to").notNull(),
  subject: text("subject").notNull(),
  text: text("text").notNull(),
  createdAt: createdAt(),
});

// ---------------------------------------------------------------- hosts

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

// ---------------------------------------------------------------- apps (Dockup)

export const APP_STATUSES = ["created", "starting", "running", "stopped", "paused", "restarting", "failed"] as const;
export type AppStatus = (typeof APP_STATUSES)[number];

export const app = sqliteTable(
  "app",
  {
    id: text("id").primaryKey(),
    projectId: text("project_id")
      .notNull()
      .references(() => project.id, { onDelete: "cascade" }),
    orgId: text("org_id")
      .notNull()
      .references(() => org.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /** Globally unique among live apps: the app is served at `{slug}-app.{base_domain}`. */
    slug: text("slug").notNull(),
    image: text("image").notNull(),
    internalPort: integer("internal_port").notNull().default(8080),
    /** AES-GCM ciphertext (src/lib/secrets.ts) of the JSON object of env vars; never logged, never returned. */
    envCiphertext: text("env_ciphertext"),
    /** Names of the env vars, shown to users in place of their values. */
    envKeys: text("env_keys", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    command: text("command"),
    cpuLimit: real("cpu_limit").notNull().default(0.5),
    memoryLimit: integer("memory_limit").notNull().default(512),
    gpuEnabled: integer("gpu_enabled", { mode: "boolean" }).notNull().default(false),
    gitRepoUrl: text("git_repo_url"),
    gitBranch: text("git_branch"),
    gitProvider: text("git_provider"),
    /** The host the app runs on; it stays there across deploys unless that host is gone. */
    hostId: text("host_id").references(() => host.id, { onDelete: "set null" }),
    status: text("status").$type<AppStatus>().notNull().default("created"),
    containerId: text("container_id"),
    /** Loopback port on the host that Caddy routes `{slug}-app.{base_domain}` to. */
    hostPort: integer("host_port"),
    cpuUsage: real("cpu_usage"),
    memoryUsage: real("memory_usage"),
    createdBy: text("created_by").references(() => user.id, { onDelete: "set null" }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    deletedAt: integer("deleted_at", { mode: "timestamp_ms" }),
  },
  (t) => [
    uniqueIndex("app_slug_live_uq").on(t.slug).where(sql`deleted_at IS NULL`),
    index("app_project_idx").on(t.projectId),
    index("app_host_idx").on(t.hostId),
  ],
);

export const DEPLOYMENT_STATUSES = ["pending", "running", "succeeded", "failed", "cancelled"] as const;
export type DeploymentStatus = (typeof DEPLOYMENT_STATUSES)[number];

export const deployment = sqliteTable(
  "deployment",
  {
    id: text("id").primaryKey(),
    appId: text("app_id")
      .notNull()
      .references(() => app.id, { onDelete: "cascade" }),
    image: text("image").notNull(),
    status: text("status").$type<DeploymentStatus>().notNull().default("pending"),
    jobId: text("job_id"),
    hostId: text("host_id"),
    containerId: text("container_id"),
    error: text("error"),
    createdBy: text("created_by"),
    startedAt: integer("started_at", { mode: "timestamp_ms" }),
    finishedAt: integer("finished_at", { mode: "timestamp_ms" }),
    createdAt: createdAt(),
  },
  (t) => [index("deployment_app_idx").on(t.appId, t.createdAt)],
);

export const appEvent = sqliteTable(
  "app_event",
  {
    id: text("id").primaryKey(),
    appId: text("app_id")
      .notNull()
      .references(() => app.id, { onDelete: "cascade" }),
    /** deploy, error, status */
    type: text("type").notNull(),
    message: text("message").notNull(),
    data: text("data", { mode: "json" }).$type<Record<string, unknown>>(),
    createdAt: createdAt(),
  },
  (t) => [index("app_event_app_idx").on(t.appId, t.createdAt)],
);

/** 30-second samples of an app's container, kept 24 hours (GET /apps/{appId}/stats/history). */
export const appStat = sqliteTable(
  "app_stat",
  {
    appId: text("app_id")
      .notNull()
      .references(() => app.id, { onDelete: "cascade" }),
    at: integer("at", { mode: "timestamp_ms" }).notNull(),
    cpuPercent: real("cpu_percent").notNull(),
    memoryMb: real("memory_mb").notNull(),
    memoryMaxMb: real("memory_max_mb").notNull(),
    netRxBytes: integer("net_rx_bytes").notNull(),
    netTxBytes: integer("net_tx_bytes").notNull(),
  },
  (t) => [index("app_stat_app_at_idx").on(t.appId, t.at)],
);

/** Private image registries of an org (Dockup's /registries): deploys of images from them pull with these credentials. */
export const registry = sqliteTable(
  "registry",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => org.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /** The registry's host and port as image references name it, e.g. `ghcr.io` or `127.0.0.1:5001`. */
    url: text("url").notNull(),
    username: text("username"),
    /** AES-GCM ciphertext (src/lib/secrets.ts) of the password or token; never returned. */
    passwordCiphertext: text("password_ciphertext"),
    createdBy: text("created_by").references(() => user.id, { onDelete: "set null" }),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("registry_org_url_uq").on(t.orgId, t.url)],
);

// ---------------------------------------------------------------- catalog (Suble)

/** Compute plans an instance is ordered with. Seeded by a migration; `active` ones are offered. */
export const plan = sqliteTable(
  "plan",
  {
    id: text("id").primaryKey(),
    code: text("code").notNull().unique(),
    name: text("name").notNull(),
    family: text("family").notNull(),
    vcpu: integer("vcpu").notNull(),
    memoryMb: integer("memory_mb").notNull(),
    diskGb: integer("disk_gb").notNull(),
    networkMbps: integer("network_mbps").notNull(),
    priceMonthlyOre: integer("price_monthly_ore").notNull(),
    priceHourlyOre: integer("price_hourly_ore").notNull(),
    sort: integer("sort").notNull(),
    active: integer("active", { mode: "boolean" }).notNull().default(true),
  },
  (t) => [index("plan_active_sort_idx").on(t.active, t.sort)],
);

/** OS images an instance is installed from; each is a VM template of that name on the Proxmox nodes. */
export const osImage = sqliteTable(
  "os_image",
  {
    id: text("id").primaryKey(),
    family: text("family").notNull(),
    version: text("version").notNull(),
    displayName: text("display_name").notNull(),
    protocol: text("protocol").$type<"ssh" | "rdp">().notNull(),
    defaultUser: text("default_user").notNull(),
    minDiskGb: integer("min_disk_gb").notNull(),
    hasGuestAgent: integer("has_guest_agent", { mode: "boolean" }).notNull(),
    /** The VM template's name on a node (clone source). */
    template: text("template").notNull(),
    active: integer("active", { mode: "boolean" }).notNull().default(true),
  },
  (t) => [index("os_image_family_idx").on(t.family, t.version)],
);

/** One-click apps (Suble's `/apps`, served at `/catalog/apps`): an image plus what is installed on it. */
export const catalogApp = sqliteTable(
  "catalog_app",
  {
    seq: integer("seq").primaryKey({ autoIncrement: true }),
    id: text("id").notNull(),
    slug: text("slug").notNull(),
    version: text("version").notNull(),
    name: text("name").notNull(),
    description: text("description").notNull(),
    logo: text("logo"),
    category: text("category").notNull(),
    minVcpu: integer("min_vcpu").notNull(),
    minMemoryMb: integer("min_memory_mb").notNull(),
    minDiskGb: integer("min_disk_gb").notNull(),
    imageFamily: text("image_family").notNull(),
    imageVersion: text("image_version").notNull(),
    active: integer("active", { mode: "boolean" }).notNull().default(true),
  },
  (t) => [index("catalog_app_slug_idx").on(t.slug, t.active)],
);
