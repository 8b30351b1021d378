/**
 * Dockup's apps: a container image with its settings, in a project. Slugs are
 * unique among live apps everywhere (the app is served at `{slug}-app.{BASE_DOMAIN}`).
 * Env vars are stored only as AES-GCM ciphertext plus their names; presenters show
 * the names with masked values, never the values.
 */
import { and, desc, eq, isNull, or, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Database } from "../db/client";
import { app, appEvent, deployment, type AppStatus } from "../db/schema";
import type { Env } from "../env";
import { conflict, notFound } from "../lib/errors";
import { newId } from "../lib/ids";
import { decryptJson, encryptJson } from "../lib/secrets";
import { availableSlug } from "../lib/slug";
import { type Also, NOTHING, withAlso } from "./audit";
import { buildRepository, webhookPath } from "./git-builds";

const NOTHING_CHANGED = () => [];

export type AppRow = typeof app.$inferSelect;
export type DeploymentRow = typeof deployment.$inferSelect;
export type AppEventRow = typeof appEvent.$inferSelect;
export type EnvVars = Record<string, string>;

/** What every env var value reads as in responses. */
export const MASKED_VALUE = "••••••";

/** `{slug}-app` must be one DNS label (63 characters at most), so a slug has 59. */
export const APP_SLUG_MAX = 59;

/** Settings a client may set on create and change on update. */
export interface AppSettings {
  name?: string;
  image?: string;
  internalPort?: number;
  /** Replaces the whole set; a value equal to `MASKED_VALUE` keeps the variable's stored value. */
  envVars?: EnvVars;
  command?: string | null;
  cpuLimit?: number;
  memoryLimit?: number;
  gpuEnabled?: boolean;
  gitRepoUrl?: string | null;
  gitBranch?: string | null;
  gitProvider?: "github" | "custom" | null;
  /** The push webhook's secret, sealed (services/git-builds.ts); set when the app gets a repository. */
  gitWebhookSecretCiphertext?: string | null;
  /** The linked GitHub account whose token clones the repository (services/github.ts, `gitAccountFor`). */
  gitAccountId?: string | null;
}

export interface CreateAppInput extends AppSettings {
  projectId: string;
  orgId: string;
  name: string;
  /** Absent for an app built from git: its image is `berth-build/{slug}` until a build names one. */
  image?: string;
  slug?: string;
  createdBy: string | null;
}

async function slugInUse(db: Database, slug: string) {
  return Boolean(await db.query.app.findFirst({ where: and(eq(app.slug, slug), isNull(app.deletedAt)), columns: { id: true } }));
}

function isUniqueViolation(err: unknown, column: string): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e.message.includes("UNIQUE constraint failed") && e.message.includes(column)) return true;
  }
  return false;
}

/** The stored form of a set of env vars: ciphertext (null when there are none) and the names, sorted. */
async function sealEnv(env: Env, vars: EnvVars) {
  const keys = Object.keys(vars).sort();
  return { envCiphertext: keys.length ? await encryptJson(env, vars) : null, envKeys: keys };
}

/** An app's env vars in clear, for handing to its container; never for responses, logs or audit. */
export async function readAppEnvVars(env: Env, row: Pick<AppRow, "envCiphertext">): Promise<EnvVars> {
  return row.envCiphertext ? await decryptJson<EnvVars>(env, row.envCiphertext) : {};
}

/**
 * Creates an app. A requested slug must be free everywhere (409 slug_taken); a slug
 * derived from the name gets a suffix when it is not.
 */
export async function createApp(
  db: Database,
  env: Env,
  input: CreateAppInput,
  also: (created: { id: string; slug: string; envKeys: string[] }) => BatchItem<"sqlite">[] = NOTHING_CHANGED,
): Promise<AppRow> {
  const taken = (slug: string) => conflict("slug_taken", `An app with slug "${slug}" already exists`);
  const sealed = await sealEnv(env, input.envVars ?? {});
  // Two creates can both find a slug free; the unique index decides, and the loser picks again.
  for (let attempt = 0; ; attempt++) {
    let slug: string;
    if (input.slug) {
      slug = input.slug;
      if (await slugInUse(db, slug)) throw taken(slug);
    } else {
      slug = await availableSlug(input.name, (s) => slugInUse(db, s), "app");
    }
    try {
      const id = newId("app");
      const insert = db
        .insert(app)
        .values({
          id,
          projectId: input.projectId,
          orgId: input.orgId,
          name: input.name,
          slug,
          image: input.image ?? buildRepository(slug),
          internalPort: input.internalPort ?? 8080,
          ...sealed,
          command: input.command || null,
          cpuLimit: input.cpuLimit ?? 0.5,
          memoryLimit: input.memoryLimit ?? 512,
          gpuEnabled: input.gpuEnabled ?? false,
          gitRepoUrl: input.gitRepoUrl || null,
          gitBranch: input.gitBranch || (input.gitRepoUrl ? "main" : null),
          gitProvider: input.gitProvider ?? null,
          gitWebhookSecretCiphertext: input.gitRepoUrl ? (input.gitWebhookSecretCiphertext ?? null) : null,
          gitAccountId: input.gitRepoUrl ? (input.gitAccountId ?? null) : null,
          createdBy: input.createdBy,
        })
        .returning();
      const [row] = await withAlso(db, insert, also({ id, slug, envKeys: sealed.envKeys }));
      return row!;
    } catch (err) {
      if (!isUniqueViolation(err, "app.slug")) throw err;
      if (input.slug || attempt >= 2) throw taken(slug);
    }
  }
}

/** A live app by id (`app_…`) or slug; ids and slugs cannot collide (slugs have no `_`). */
/** The host an app runs on (deleted apps included: a follow may outlive its app). */
export async function appHost(db: Database, appId: string): Promise<string | null> {
  const row = await db.query.app.findFirst({ where: eq(app.id, appId), columns: { hostId: true } });
  return row?.hostId ?? null;
}

export async function findApp(db: Database, idOrSlug: string): Promise<AppRow | null> {
  const row = await db.query.app.findFirst({
    where: and(or(eq(app.id, idOrSlug), eq(app.slug, idOrSlug)), isNull(app.deletedAt)),
  });
  return row ?? null;
}

export function listProjectApps(db: Database, projectId: string) {
  return db
    .select()
    .from(app)
    .where(and(eq(app.projectId, projectId), isNull(app.deletedAt)))
    .orderBy(app.createdAt, sql`rowid`);
}

/**
 * Applies `patch` and answers the app as it is now, with the names of the settings
 * that changed (`env_vars` when the set of names or any value did). Setting a field
 * to its current value is not a change.
 */
export async function updateApp(
  db: Database,
  env: Env,
  row: AppRow,
  patch: AppSettings,
  also: (change: { id: string; changed: string[]; envKeys: string[] }) => BatchItem<"sqlite">[] = NOTHING_CHANGED,
): Promise<{ app: AppRow; changed: string[] }> {
  const set: Partial<typeof app.$inferInsert> = {};
  const changed: string[] = [];
  const field = <K extends keyof AppRow>(name: string, column: K, value: AppRow[K] | undefined) => {
    if (value === undefined || value === row[column]) return;
    (set as Record<string, unknown>)[column] = value;
    changed.push(name);
  };
  field("name", "name", patch.name);
  field("image", "image", patch.image);
  field("internal_port", "internalPort", patch.internalPort);
  field("command", "command", patch.command === "" ? null : patch.command);
  field("cpu_limit", "cpuLimit", patch.cpuLimit);
  field("memory_limit", "memoryLimit", patch.memoryLimit);
  field("gpu_enabled", "gpuEnabled", patch.gpuEnabled);
  field("git_repo_url", "gitRepoUrl", patch.gitRepoUrl === "" ? null : patch.gitRepoUrl);
  field("git_branch", "gitBranch", patch.gitBranch === "" ? null : patch.gitBranch);
  field("git_provider", "gitProvider", patch.gitProvider);
  field("git_webhook_secret", "gitWebhookSecretCiphertext", patch.gitWebhookSecretCiphertext);
  field("git_account", "gitAccountId", patch.gitAccountId);
  if (patch.envVars) {
    // Stored values that no longer decrypt (ENCRYPTION_KEY changed) can still be replaced, all at once.
    const current = await readAppEnvVars(env, row).catch(() => null);
    if (!current && Object.values(patch.envVars).includes(MASKED_VALUE)) {
      throw conflict("env_vars_unreadable", "The stored env vars cannot be decrypted (was ENCRYPTION_KEY changed?); send every value again");
    }
    // A client that sends back what it read (masked values) keeps the stored values.
    const next: EnvVars = Object.fromEntries(
      Object.entries(patch.envVars).map(([k, v]) => [k, v === MASKED_VALUE && current && Object.hasOwn(current, k) ? current[k]! : v]),
    );
    if (!current || !sameVars(current, next)) {
      Object.assign(set, await sealEnv(env, next));
      changed.push("env_vars");
    }
  }
  if (!changed.length) return { app: row, changed };
  const update = db
    .update(app)
    .set({ ...set, updatedAt: new Date() })
    .where(and(eq(app.id, row.id), isNull(app.deletedAt)))
    .returning();
  const [updated] = await withAlso(db, update, also({ id: row.id, changed, envKeys: set.envKeys ?? row.envKeys }));
  if (!updated) throw notFound("App");
  return { app: updated, changed };
}

function sameVars(a: EnvVars, b: EnvVars): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

/** Soft delete: the row stays for history, the slug is free at once. */
export async function softDeleteApp(db: Database, appId: string, also: Also = NOTHING) {
  await withAlso(db, db.update(app).set({ deletedAt: new Date(), updatedAt: new Date() }).where(and(eq(app.id, appId), isNull(app.deletedAt))), also(appId));
}

/**
 * An entry for the app's event feed (`deploy`, `error`, `status`, `created`, `updated`), to
 * write in the batch of the change it tells of; `data` holds no secrets.
 */
export function appEventOf(db: Database, type: string, message: string, data?: Record<string, unknown>): Also {
  return (appId) => [db.insert(appEvent).values({ id: newId("aev"), appId, type, message, data: data ?? null })];
}

export function listAppEvents(db: Database, appId: string, limit = 50) {
  return db
    .select()
    .from(appEvent)
    .where(eq(appEvent.appId, appId))
    .orderBy(desc(appEvent.createdAt), desc(sql`rowid`))
    .limit(limit);
}

export function listAppDeployments(db: Database, appId: string, limit = 50) {
  return db
    .select()
    .from(deployment)
    .where(eq(deployment.appId, appId))
    .orderBy(desc(deployment.createdAt), desc(sql`rowid`))
    .limit(limit);
}

// ---------------------------------------------------------------- presenters

/** Dockup's container states; an app never deployed, or whose deploy failed, reads as stopped. */
export type DockupAppStatus = "running" | "stopped" | "paused" | "restarting" | "starting";

export function dockupStatus(state: AppStatus): DockupAppStatus {
  return state === "created" || state === "failed" ? "stopped" : state;
}

export function appUrl(env: Pick<Env, "BASE_DOMAIN">, slug: string): string {
  return `http://${slug}-app.${env.BASE_DOMAIN}`;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** `sleeping` where the answer reads the app (see AppSchema); actions that wake it leave it out. */
export function presentApp(env: Pick<Env, "BASE_DOMAIN" | "PUBLIC_URL">, row: AppRow, sleeping?: boolean) {
  return {
    id: row.id,
    name: row.name,
    slug: row.slug,
    project_id: row.projectId,
    image: row.image,
    internal_port: row.internalPort,
    // The names only: values never leave the control plane except to the app's container.
    env_vars: Object.fromEntries(row.envKeys.map((k) => [k, MASKED_VALUE])) as Record<string, string>,
    command: row.command,
    cpu_limit: row.cpuLimit,
    memory_limit: row.memoryLimit,
    gpu_enabled: row.gpuEnabled,
    git_repo_url: row.gitRepoUrl,
    git_branch: row.gitBranch,
    git_provider: row.gitProvider as "github" | "custom" | null,
    // Where the git provider sends pushes; its secret is shown once, when it is made.
    git_webhook_url: row.gitRepoUrl ? `${env.PUBLIC_URL?.replace(/\/+$/, "") ?? ""}${webhookPath(row.id)}` : null,
    status: dockupStatus(row.status),
    state: row.status,
    ...(sleeping === undefined ? {} : { sleeping }),
    cpu_usage: row.cpuUsage,
    memory_usage: row.memoryUsage,
    url: appUrl(env, row.slug),
    host_id: row.hostId,
    container_id: row.containerId,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

export function presentDeployment(row: DeploymentRow) {
  return {
    id: row.id,
    app_id: row.appId,
    image: row.image,
    status: row.status,
    container_id: row.containerId,
    commit_sha: row.commitSha,
    error: row.error,
    job_id: row.jobId,
    started_at: iso(row.startedAt),
    finished_at: iso(row.finishedAt),
    created_at: row.createdAt.toISOString(),
  };
}

export function presentAppEvent(row: AppEventRow) {
  const status = row.data && typeof row.data.status === "string" ? row.data.status : null;
  return {
    id: row.id,
    type: row.type,
    message: row.message,
    data: row.data ?? null,
    // Dockup's names for the same things.
    status,
    details: row.data ?? null,
    created_at: row.createdAt.toISOString(),
  };
}
