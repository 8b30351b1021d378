/** Dockup's apps: apps, deployments, their events and stats, and private registries. */
import { sql } from "drizzle-orm";
import { index, integer, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { user } from "./auth";
import { createdAt, updatedAt } from "./columns";
import { host } from "./hosts";
import { org, project } from "./tenancy";

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
    /**
     * AES-GCM ciphertext (src/lib/secrets.ts) of the secret push webhooks are signed with
     * (`X-Hub-Signature-256`); made when the app gets a repository, shown once, never returned after.
     */
    gitWebhookSecretCiphertext: text("git_webhook_secret_ciphertext"),
    /**
     * The linked GitHub account (account.id) whose token clones a private repository: the one of
     * whoever last set `git_repo_url`, when it is on GitHub. No foreign key (a plain column keeps
     * the migration an ADD COLUMN): an unlinked account's row is gone and the app clones without one.
     */
    gitAccountId: text("git_account_id"),
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
    /** A build from git: the commit built, as its host reported it. */
    commitSha: text("commit_sha"),
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

/**
 * Dockup's persistent volumes: a Docker named volume on the app's host, mounted at
 * `mountPath` from the app's next deploy on. Detaching keeps the row (and the volume, and its
 * data): attaching the same path again brings the same volume back.
 */
export const appVolume = sqliteTable(
  "app_volume",
  {
    id: text("id").primaryKey(),
    appId: text("app_id")
      .notNull()
      .references(() => app.id, { onDelete: "cascade" }),
    /** The Docker volume's name on the host, `berth-vol-{appId}-{n}`. */
    name: text("name").notNull(),
    mountPath: text("mount_path").notNull(),
    /** What the user asked for; the local volume driver cannot enforce it (see README). */
    sizeMb: integer("size_mb").notNull().default(1024),
    /** Bytes the volume holds on its host, as the agent last measured them (null until then). */
    usedBytes: integer("used_bytes"),
    measuredAt: integer("measured_at", { mode: "timestamp_ms" }),
    detachedAt: integer("detached_at", { mode: "timestamp_ms" }),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("app_volume_path_uq").on(t.appId, t.mountPath), uniqueIndex("app_volume_name_uq").on(t.name)],
);

/**
 * Dockup's `/apps/{appId}/autoscale`: how many replicas the app may run and when it scales,
 * and how long it may sit idle before it sleeps. No row means the defaults below.
 */
export const appAutoscale = sqliteTable("app_autoscale", {
  appId: text("app_id")
    .primaryKey()
    .references(() => app.id, { onDelete: "cascade" }),
  enabled: integer("enabled", { mode: "boolean" }).notNull().default(false),
  /** Average CPU % across the app's replicas above which it scales up. */
  cpuThreshold: real("cpu_threshold").notNull().default(80),
  minReplicas: integer("min_replicas").notNull().default(1),
  maxReplicas: integer("max_replicas").notNull().default(3),
  /** Least time between two scaling changes, so the app does not flap. */
  cooldownSeconds: integer("cooldown_seconds").notNull().default(300),
  /** Minutes without a request before the app sleeps; 0 never. */
  sleepAfterMinutes: integer("sleep_after_minutes").notNull().default(0),
  updatedAt: updatedAt(),
});
