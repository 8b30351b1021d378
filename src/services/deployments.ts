/**
 * Deploys and lifecycle actions of apps, as jobs on the app's Docker host.
 * Placement: an app stays on its host across deploys while that host is
 * online; otherwise it goes to the online Docker host of its org with the
 * most memory left (host memory minus the limits of the apps placed there).
 */
import type { BatchItem } from "drizzle-orm/batch";
import { and, eq, isNull, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { app, deployment, host } from "../db/schema";
import { projectScope, projectJobs } from "../durable/clients";
import type { Env } from "../env";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { JobPayload } from "../protocol/agent";
import { agentSettings } from "./host-settings";
import { hostStatus, type HostRow } from "./hosts";
import { hasRegistryAuth } from "./registries";
import { withAlso } from "./audit";
import { attachedVolumes } from "./volumes";
import { buildTag, gitCloneUrl } from "./git-builds";
import { githubWebUrl, isOnGitHub } from "./github";

export type AppRow = typeof app.$inferSelect;
type AppAction = "app.start" | "app.stop" | "app.restart" | "app.remove";

/** How long a deploy may take once its host has it: pull, start, health check, switch. */
const DEPLOY_SECONDS = 600;
/** A deploy that builds from git first: clone, build (base images pulled, dependencies installed), then the same. */
const BUILD_DEPLOY_SECONDS = 1800;
const ACTION_SECONDS = 120;
const HEALTH_TIMEOUT_SECONDS = 60;

export const appHostname = (env: Env, slug: string) => `${slug}-app.${env.BASE_DOMAIN}`;

/** The host an app runs on, or the one it should go to. */
export async function placeApp(db: Database, env: Env, row: AppRow, opts: { hasVolumes?: boolean } = {}): Promise<HostRow> {
  const hosts = await db
    .select()
    .from(host)
    .where(and(eq(host.orgId, row.orgId), eq(host.kind, "docker"), isNull(host.deletedAt)));
  const online = hosts.filter((h) => hostStatus(env, h) === "online");
  const current = online.find((h) => h.id === row.hostId);
  if (current) return current;
  // An app's volumes (its data) are on its host: it waits for that host rather than start empty elsewhere.
  const home = hosts.find((h) => h.id === row.hostId);
  if (home && opts.hasVolumes) {
    throw new ApiError("no_host_available", `The app's volumes are on host ${home.name}, which is offline: start its agent, or detach the volumes to deploy elsewhere`);
  }
  if (!online.length) {
    throw new ApiError("no_host_available", "No Docker host of this org is online: enrol one (POST /org/{slug}/hosts) and start its agent");
  }
  const allocated = await db
    .select({ hostId: app.hostId, mb: sql<number>`COALESCE(SUM(${app.memoryLimit}), 0)` })
    .from(app)
    .where(and(eq(app.orgId, row.orgId), isNull(app.deletedAt)))
    .groupBy(app.hostId);
  const used = new Map(allocated.map((a) => [a.hostId, Number(a.mb)]));
  const room = (h: HostRow) => {
    const memory = Number((h.facts as { memory_bytes?: number } | null)?.memory_bytes ?? 0) / (1024 * 1024);
    return memory - (used.get(h.id) ?? 0);
  };
  const candidates = online.filter((h) => room(h) >= row.memoryLimit).sort((a, b) => room(b) - room(a));
  if (!candidates.length) {
    throw new ApiError("no_host_available", `No online Docker host of this org has ${row.memoryLimit} MB of memory left for this app`);
  }
  return candidates[0]!;
}

function appRef(env: Env, row: AppRow) {
  return { app_id: row.id, slug: row.slug, hostname: appHostname(env, row.slug) };
}

/**
 * Starts a deploy: a deployment record and its job. `newImage` changes the
 * app's image, only once a host to run it on was found.
 */
/** `also` is written with the deployment's job id, in one batch: the deploy's event and audit rows. */
export async function startDeploy(
  db: Database,
  env: Env,
  found: AppRow,
  createdBy: string | null,
  newImage: string | undefined,
  also: (started: { appId: string; image: string; deploymentId: string; jobId: string }) => BatchItem<"sqlite">[] = () => [],
  /** An uploaded image (already in R2 under this deployment's id): loaded on the host instead of pulled. */
  upload?: { deploymentId: string; sizeBytes: number },
) {
  const volumes = await attachedVolumes(db, found.id);
  const target = await placeApp(db, env, found, { hasVolumes: volumes.length > 0 });
  let row = found;
  const deploymentId = upload?.deploymentId ?? newId("dep");
  // An app with a repository is built from it, unless this deploy names an image or brings one.
  const repoUrl = found.gitRepoUrl && !newImage && !upload ? gitCloneUrl(found.gitRepoUrl, githubWebUrl(env)) : null;
  // A repository on GitHub set by someone with a linked account is cloned with that account's token, fetched for the lease.
  const git = repoUrl ? { repo_url: repoUrl, branch: found.gitBranch || "main", has_token: Boolean(found.gitAccountId && isOnGitHub(env, repoUrl)) } : null;
  if (git) newImage = buildTag(found.slug, deploymentId);
  if (newImage && newImage !== row.image) {
    const [updated] = await db.update(app).set({ image: newImage, updatedAt: new Date() }).where(eq(app.id, row.id)).returning();
    row = updated ?? row;
  }
  const [dep] = await db
    .insert(deployment)
    .values({ id: deploymentId, appId: row.id, image: row.image, status: "pending", hostId: target.id, createdBy })
    .returning();
  const payload: JobPayload = {
    type: "app.deploy",
    ...appRef(env, row),
    deployment_id: deploymentId,
    image: row.image,
    internal_port: row.internalPort,
    command: row.command,
    cpu_limit: row.cpuLimit,
    memory_limit_mb: row.memoryLimit,
    has_env: row.envKeys.length > 0,
    has_registry_auth: await hasRegistryAuth(db, row.orgId, row.image),
    health_timeout_seconds: HEALTH_TIMEOUT_SECONDS,
    volumes: volumes.map((v) => ({ name: v.name, mount_path: v.mountPath })),
    upload: upload ? { size_bytes: upload.sizeBytes } : null,
    git,
  };
  let job: Awaited<ReturnType<ReturnType<typeof projectJobs>["createJob"]>>;
  try {
    job = await projectJobs(env, projectScope(row.projectId)).createJob(projectScope(row.projectId), {
      type: "app.deploy",
      hostId: target.id,
      payload,
      subject: row.id,
      // Creating containers must not happen twice: a redelivered deploy first looks for what the earlier attempt made.
      idempotent: false,
      deadlineSeconds: (git ? BUILD_DEPLOY_SECONDS : DEPLOY_SECONDS) + agentSettings(env).queueGraceSeconds,
    });
  } catch (err) {
    await db.update(deployment).set({ status: "failed", error: "The deploy could not be queued; try again", finishedAt: new Date() }).where(eq(deployment.id, deploymentId));
    throw err;
  }
  const [updated] = await withAlso(db, db.update(deployment).set({ jobId: job.id }).where(eq(deployment.id, deploymentId)).returning(), also({ appId: row.id, image: row.image, deploymentId, jobId: job.id }));
  // The app moves to `target` when this deploy succeeds (jobs/outcomes.ts), not before: until then its
  // lifecycle actions, logs and stats still go where its container is.
  if (!row.hostId) await db.update(app).set({ hostId: target.id }).where(and(eq(app.id, row.id), isNull(app.hostId)));
  return { app: row, deployment: updated ?? dep!, job };
}

/** Start, stop, restart or remove the app's container on its host; null when it has never been placed. */
export async function submitAppAction(env: Env, row: AppRow, type: AppAction) {
  if (!row.hostId) return null;
  return projectJobs(env, projectScope(row.projectId)).createJob(projectScope(row.projectId), {
    type,
    hostId: row.hostId,
    payload: { type, ...appRef(env, row) },
    subject: row.id,
    idempotent: true,
    deadlineSeconds: ACTION_SECONDS + agentSettings(env).queueGraceSeconds,
  });
}

/** New CPU and memory limits, applied to the running container live. */
export async function submitLimitsUpdate(env: Env, row: AppRow) {
  if (!row.hostId || !row.containerId) return null;
  return projectJobs(env, projectScope(row.projectId)).createJob(projectScope(row.projectId), {
    type: "app.update",
    hostId: row.hostId,
    payload: { type: "app.update", ...appRef(env, row), cpu_limit: row.cpuLimit, memory_limit_mb: row.memoryLimit },
    subject: row.id,
    idempotent: true,
    deadlineSeconds: ACTION_SECONDS + agentSettings(env).queueGraceSeconds,
  });
}
