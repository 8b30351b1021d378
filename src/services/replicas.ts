/**
 * How many replicas an app runs, decided by the control plane and carried out by
 * `app.scale` jobs on its host:
 *
 * - autoscale off: the app runs `min_replicas` (1 by default, as before replicas existed);
 * - autoscale on: between `min_replicas` and `max_replicas`, one step at a time, from the
 *   stats samples its host reports: up when the replicas' average CPU over the last
 *   SAMPLES samples is above `cpu_threshold` % of the app's CPU limit; down when that load
 *   spread over one replica fewer would still stay under SCALE_DOWN_MARGIN of the
 *   threshold (hysteresis, so a step down does not call for a step up at once); at most
 *   one such step per `cooldown_seconds`, and only from samples taken since the count last
 *   changed;
 * - a replica that died while others run is replaced (a scale job to the same count).
 *
 * A step the CPU or a death asked for is audited as the system (`actor_type: system`);
 * one a user's settings asked for is that user's (its PUT's audit row).
 */
import { and, desc, eq, gt, inArray, isNull, lt, or } from "drizzle-orm";
import type { Database } from "../db/client";
import { app, appEvent, appReplicas, appStat, auditEvent, deployment } from "../db/schema";
import { projectJobs, projectScope } from "../durable/clients";
import type { JobRecord } from "../durable/project-do";
import type { Env } from "../env";
import { newId } from "../lib/ids";
import type { AppReport, JobPayload } from "../protocol/agent";
import { type AutoscaleRow, autoscaleOf } from "./autoscale";
import { appHostname } from "./deployments";
import { agentSettings } from "./host-settings";

/** Samples the CPU rule looks at (the host reports one every 30 s). */
export const SAMPLES = 3;
/** A step down happens only when the load on one replica fewer would stay under this share of the threshold. */
export const SCALE_DOWN_MARGIN = 0.8;
/** Samples older than this do not count, however few there are since. */
const SAMPLE_WINDOW_MS = 10 * 60_000;
/** A scale job that has not ended after this long no longer holds others back (its deadline has passed). */
const STALE_JOB_MS = 10 * 60_000;
const SCALE_SECONDS = 120;
const HEALTH_TIMEOUT_SECONDS = 60;

export type ScaleReason = "autoscale" | "config" | "replace";
export type ReplicasRow = typeof appReplicas.$inferSelect;
type AppRow = typeof app.$inferSelect;

export interface Sample {
  cpuPercent: number;
  /** Replicas the sample sums over (null: one). */
  replicas: number | null;
}

export interface Decision {
  replicas: number;
  reason: ScaleReason;
  /** Why, in words, for the app's events and the job's audit row. */
  detail: string;
  /** The replicas' average CPU as a percentage of their limit, when the CPU decided. */
  cpu?: number;
}

/** The bounds the settings put on the count: a fixed `min_replicas` while autoscale is off. */
export function bounds(cfg: Pick<AutoscaleRow, "enabled" | "minReplicas" | "maxReplicas">): { min: number; max: number } {
  return cfg.enabled ? { min: cfg.minReplicas, max: cfg.maxReplicas } : { min: cfg.minReplicas, max: cfg.minReplicas };
}

/** The count a deploy starts with: the current one, within the settings' bounds. */
export function deployCount(cfg: AutoscaleRow, current: number | null): number {
  const { min, max } = bounds(cfg);
  return Math.min(max, Math.max(min, current ?? min));
}

/**
 * The replicas' average CPU over `samples` (newest first), as a percentage of one replica's
 * limit (`cpuLimit` cores; no limit counts as one core).
 */
export function averageLoad(samples: Sample[], cpuLimit: number): number {
  const core = (cpuLimit > 0 ? cpuLimit : 1) * 100;
  const perReplica = samples.map((s) => s.cpuPercent / Math.max(1, s.replicas ?? 1) / core);
  return (perReplica.reduce((a, b) => a + b, 0) / Math.max(1, perReplica.length)) * 100;
}

/**
 * What the count should become, or null to leave it. `samples` are the newest first, taken
 * since the count last changed; `autoChangedAt` is when the CPU last changed it.
 */
export function decideReplicas(cfg: AutoscaleRow, current: number, samples: Sample[], cpuLimit: number, autoChangedAt: Date | null, now: Date): Decision | null {
  const { min, max } = bounds(cfg);
  if (current < min) return { replicas: min, reason: "config", detail: `${cfg.enabled ? "min_replicas" : "The replica count"} is ${min}` };
  if (current > max) return { replicas: max, reason: "config", detail: `${cfg.enabled ? "max_replicas" : "The replica count"} is ${max}` };
  if (!cfg.enabled || samples.length < SAMPLES) return null;
  if (autoChangedAt && now.getTime() - autoChangedAt.getTime() < cfg.cooldownSeconds * 1000) return null;
  const load = averageLoad(samples.slice(0, SAMPLES), cpuLimit);
  const pct = Math.round(load * 10) / 10;
  if (pct > cfg.cpuThreshold && current < max) {
    return { replicas: current + 1, reason: "autoscale", cpu: pct, detail: `average CPU ${pct}% of the limit over the last ${SAMPLES} samples is above ${cfg.cpuThreshold}%` };
  }
  if (current > min && (load * current) / (current - 1) < cfg.cpuThreshold * SCALE_DOWN_MARGIN) {
    return {
      replicas: current - 1,
      reason: "autoscale",
      cpu: pct,
      detail: `average CPU ${pct}% of the limit over the last ${SAMPLES} samples would stay under ${Math.round(cfg.cpuThreshold * SCALE_DOWN_MARGIN * 10) / 10}% on ${current - 1} replica${current - 1 === 1 ? "" : "s"}`,
    };
  }
  return null;
}

export async function replicasOf(db: Database, appId: string): Promise<ReplicasRow | null> {
  return (await db.query.appReplicas.findFirst({ where: eq(appReplicas.appId, appId) })) ?? null;
}

/** The state fields of GET/PUT /apps/{appId}/autoscale. */
export function presentReplicas(row: ReplicasRow | null, cfg: AutoscaleRow) {
  return {
    replicas: row?.desired ?? bounds(cfg).min,
    replicas_running: row?.running ?? null,
    scaling: Boolean(row?.jobId && row.jobAt && Date.now() - row.jobAt.getTime() < STALE_JOB_MS),
  };
}

/**
 * Asks the app's host for `decision.replicas` replicas through an `app.scale` job, unless one
 * is under way. Answers the job, or null when none was made (not deployed, not running, busy).
 */
export async function submitScale(env: Env, db: Database, row: AppRow, decision: Decision, from: number): Promise<JobRecord | null> {
  const now = new Date();
  if (!row.hostId || !row.containerId) return null;
  const jobId = newId("job");
  // Claim the app's one scale slot first: two reports at once must not ask twice.
  await db.insert(appReplicas).values({ appId: row.id, desired: from }).onConflictDoNothing();
  const claimed = await db
    .update(appReplicas)
    .set({ jobId, jobAt: now, updatedAt: now })
    .where(and(eq(appReplicas.appId, row.id), or(isNull(appReplicas.jobId), lt(appReplicas.jobAt, new Date(now.getTime() - STALE_JOB_MS)))))
    .returning({ appId: appReplicas.appId });
  if (!claimed.length) return null;
  const payload: JobPayload = {
    type: "app.scale",
    app_id: row.id,
    slug: row.slug,
    hostname: appHostname(env, row.slug),
    replicas: decision.replicas,
    reason: decision.reason,
    internal_port: row.internalPort,
    health_timeout_seconds: HEALTH_TIMEOUT_SECONDS,
  };
  let job: JobRecord;
  try {
    job = await projectJobs(env, projectScope(row.projectId)).createJob(projectScope(row.projectId), {
      id: jobId,
      type: "app.scale",
      hostId: row.hostId,
      payload,
      subject: row.id,
      // The job converges on a count: run again, it finds what an earlier attempt made.
      idempotent: true,
      deadlineSeconds: SCALE_SECONDS + agentSettings(env).queueGraceSeconds,
    });
  } catch (err) {
    await db.update(appReplicas).set({ jobId: null, jobAt: null }).where(and(eq(appReplicas.appId, row.id), eq(appReplicas.jobId, jobId)));
    throw err;
  }
  const counted = decision.reason === "replace" ? {} : { desired: decision.replicas, changedAt: now, ...(decision.reason === "autoscale" ? { autoChangedAt: now } : {}) };
  const message =
    decision.reason === "replace"
      ? `Replacing ${decision.replicas - from} replica${decision.replicas - from === 1 ? "" : "s"} that stopped: ${from} of ${decision.replicas} running`
      : `Scaling from ${from} to ${decision.replicas} replica${decision.replicas === 1 ? "" : "s"}: ${decision.detail}`;
  const data = { job_id: job.id, from, to: decision.replicas, reason: decision.reason, ...(decision.cpu !== undefined ? { cpu_percent: decision.cpu } : {}) };
  await db.batch([
    db.update(appReplicas).set({ ...counted, updatedAt: now }).where(eq(appReplicas.appId, row.id)),
    db.insert(appEvent).values({ id: newId("aev"), appId: row.id, type: "scale", message, data }),
    // The user's own settings change is audited by its request; the control plane's own steps here.
    ...(decision.reason === "config"
      ? []
      : [
          db.insert(auditEvent).values({
            id: newId("aud"),
            orgId: row.orgId,
            actorType: "system",
            actorId: decision.reason === "autoscale" ? "autoscale" : "replica-supervisor",
            actorUserId: null,
            action: "app.scale",
            targetType: "app",
            targetId: row.id,
            metadata: data,
          }),
        ]),
  ]);
  return job;
}

/** After the settings changed: a count outside the new bounds moves to them at once. */
export async function applyAutoscaleSettings(env: Env, db: Database, row: AppRow): Promise<JobRecord | null> {
  const cfg = await autoscaleOf(db, row.id);
  const state = await replicasOf(db, row.id);
  const current = state?.desired ?? 1;
  const decision = decideReplicas({ ...cfg, enabled: cfg.enabled }, current, [], row.cpuLimit, null, new Date());
  if (!decision) return null;
  if (!row.containerId || row.status !== "running") {
    // Nothing runs to scale: the next deploy starts with the new count.
    await db.insert(appReplicas).values({ appId: row.id, desired: decision.replicas }).onConflictDoUpdate({ target: appReplicas.appId, set: { desired: decision.replicas, changedAt: new Date() } });
    return null;
  }
  return submitScale(env, db, row, decision, current);
}

/**
 * After a host's report was applied: records each app's running replicas, and asks for a scale
 * job where the CPU calls for a step, the settings for another count, or a replica died.
 */
export async function superviseReplicas(env: Env, db: Database, hostId: string, orgId: string, report: AppReport): Promise<void> {
  const entries = report.apps.filter((a) => a.replicas || a.stats);
  if (!entries.length) return;
  const ids = [...new Set(entries.map((a) => a.app_id))];
  const rows = await db
    .select()
    .from(app)
    .where(and(inArray(app.id, ids), eq(app.orgId, orgId), eq(app.hostId, hostId), isNull(app.deletedAt)));
  const deploying = new Set(
    (
      await db
        .select({ appId: deployment.appId })
        .from(deployment)
        .where(and(inArray(deployment.appId, ids), inArray(deployment.status, ["pending", "running"])))
    ).map((d) => d.appId),
  );
  const now = new Date();
  for (const row of rows) {
    const entry = entries.find((a) => a.app_id === row.id)!;
    // Only a report about the app's current replicas (applyAppReport kept container_id in step).
    if (row.containerId !== entry.container_id) continue;
    const state = await replicasOf(db, row.id);
    const running = entry.replicas?.running ?? (entry.state === "running" ? 1 : 0);
    if (state?.running !== running) {
      await db.insert(appReplicas).values({ appId: row.id, running }).onConflictDoUpdate({ target: appReplicas.appId, set: { running, updatedAt: now } });
    }
    if (deploying.has(row.id) || row.status !== "running") continue;
    const current = state?.desired ?? 1;
    const cfg = await autoscaleOf(db, row.id);
    const since = new Date(Math.max(now.getTime() - SAMPLE_WINDOW_MS, state?.changedAt?.getTime() ?? 0));
    const samples = cfg.enabled
      ? await db
          .select({ cpuPercent: appStat.cpuPercent, replicas: appStat.replicas })
          .from(appStat)
          .where(and(eq(appStat.appId, row.id), gt(appStat.at, since)))
          .orderBy(desc(appStat.at))
          .limit(SAMPLES)
      : [];
    const decision = decideReplicas(cfg, current, samples, row.cpuLimit, state?.autoChangedAt ?? null, now);
    if (decision) {
      await submitScale(env, db, row, decision, current);
    } else if (entry.replicas && running > 0 && running < current) {
      await submitScale(env, db, row, { replicas: current, reason: "replace", detail: "a replica stopped" }, running);
    }
  }
}

/** A scale job ended: the app's first replica and count as the host left them, and an event. */
export async function onScaleJobEnded(db: Database, job: JobRecord, payload: Extract<JobPayload, { type: "app.scale" }>): Promise<void> {
  const now = new Date();
  const containerId = typeof job.result?.container_id === "string" ? job.result.container_id : null;
  const replicas = typeof job.result?.replicas === "number" ? job.result.replicas : null;
  const release = db
    .update(appReplicas)
    .set({ jobId: null, jobAt: null, updatedAt: now, ...(replicas !== null ? { running: replicas } : {}) })
    .where(and(eq(appReplicas.appId, payload.app_id), eq(appReplicas.jobId, job.id)));
  if (job.status === "succeeded") {
    await db.batch([
      release,
      ...(containerId ? [db.update(app).set({ containerId, updatedAt: now }).where(and(eq(app.id, payload.app_id), isNull(app.deletedAt)))] : []),
      db.insert(appEvent).values({ id: newId("aev"), appId: payload.app_id, type: "scale", message: `Running ${replicas ?? payload.replicas} replica${(replicas ?? payload.replicas) === 1 ? "" : "s"}`, data: { job_id: job.id, replicas: replicas ?? payload.replicas, reason: payload.reason } }),
    ]);
  } else {
    // A CPU step that could not be made is not the count: back to what runs, so the supervisor does
    // not take the step for dead replicas; the CPU may ask again after the cool-down.
    const state = payload.reason === "autoscale" ? await replicasOf(db, payload.app_id) : null;
    const revert = state?.running ? [db.update(appReplicas).set({ desired: state.running, changedAt: now }).where(eq(appReplicas.appId, payload.app_id))] : [];
    await db.batch([
      release,
      ...revert,
      db.insert(appEvent).values({ id: newId("aev"), appId: payload.app_id, type: "error", message: `Scaling to ${payload.replicas} replicas ${job.status}: ${job.error ?? ""}`.slice(0, 2000), data: { job_id: job.id, reason: payload.reason } }),
    ]);
  }
}

/** A deploy succeeded with `replicas` containers: that is the app's count from now on. */
export async function onDeployReplicas(db: Database, appId: string, replicas: number): Promise<void> {
  const now = new Date();
  const state = await replicasOf(db, appId);
  if (state && state.desired === replicas && state.running === replicas) return;
  await db
    .insert(appReplicas)
    .values({ appId, desired: replicas, running: replicas, changedAt: now })
    .onConflictDoUpdate({ target: appReplicas.appId, set: { desired: replicas, running: replicas, ...(state?.desired !== replicas ? { changedAt: now } : {}), updatedAt: now } });
}
