/**
 * What a job's progress means for the records in D1: a deploy that starts
 * marks its deployment running and its app starting; one that ends records the
 * container, the status and an app event; instance jobs are instance-outcomes.ts's. Called by ProjectDO on each
 * transition, so the records follow the job whichever way it ended (agent,
 * deadline, cancel, dead letter).
 */
import { and, eq, isNull } from "drizzle-orm";
import { createDb } from "../db/client";
import { app, appEvent, deployment, instance, org, project } from "../db/schema";
import type { JobRecord } from "../durable/project-do";
import type { Env } from "../env";
import { newId } from "../lib/ids";
import type { JobPayload } from "../protocol/agent";
import { settleSleepAfterJob } from "../services/app-sleep";
import { deleteUpload, uploadKey } from "../services/image-uploads";
import { onDeployReplicas, onScaleJobEnded } from "../services/replicas";
import { markCommandRunning, settleSshJob } from "../services/ssh";
import { emitOrgEvent } from "../services/webhooks";
import { type InstancePayload, isInstancePayload, onInstanceJobEnded, onInstanceJobStarted } from "./instance-outcomes";

const AFTER_ACTION = { "app.start": "running", "app.restart": "running", "app.stop": "stopped" } as const;

export async function onJobStarted(env: Env, job: JobRecord, payload: JobPayload): Promise<void> {
  if (isInstancePayload(payload)) return onInstanceJobStarted(env, job, payload);
  if (payload.type === "ssh.exec") {
    if (payload.command_id) await markCommandRunning(createDb(env.DB), job, payload.command_id);
    return;
  }
  if (payload.type !== "app.deploy") return;
  const db = createDb(env.DB);
  await db.batch([
    db.update(deployment).set({ status: "running", startedAt: new Date(job.started_at ?? Date.now()), hostId: job.host_id }).where(eq(deployment.id, payload.deployment_id)),
    db.update(app).set({ status: "starting", updatedAt: new Date() }).where(and(eq(app.id, payload.app_id), isNull(app.containerId))),
  ]);
}

export async function onJobEnded(env: Env, job: JobRecord, payload: JobPayload): Promise<void> {
  if (payload.type === "host.exec") return;
  if (payload.type === "ssh.exec") return settleSshJob(createDb(env.DB), job, payload);
  if (isInstancePayload(payload)) return onInstanceJobEnded(env, job, payload);
  const db = createDb(env.DB);
  const now = new Date();
  const event = (type: string, message: string, data?: Record<string, unknown>) =>
    db.insert(appEvent).values({ id: newId("aev"), appId: payload.app_id, type, message, data: data ?? null });
  // Whatever a successful deploy, start, restart or stop left, the app is no longer asleep.
  if (job.status === "succeeded" && (payload.type === "app.deploy" || payload.type in AFTER_ACTION)) await settleSleepAfterJob(db, payload.app_id);

  if (payload.type === "app.deploy") {
    // An uploaded tarball serves one deploy: once it ended, the image is on the host (or the deploy
    // failed, and the CI uploads again); the object is not kept.
    if (payload.upload) await deleteUpload(env, uploadKey(payload.app_id, payload.deployment_id));
    // A build from git: the commit its host built (or failed to build).
    const commitSha = typeof job.result?.commit === "string" && /^[0-9a-f]{40,64}$/.test(job.result.commit) ? job.result.commit : null;
    if (job.status === "succeeded") {
      if (typeof job.result?.replicas === "number") await onDeployReplicas(db, payload.app_id, job.result.replicas);
      const containerId = typeof job.result?.container_id === "string" ? job.result.container_id : null;
      const hostPort = typeof job.result?.host_port === "number" ? job.result.host_port : null;
      await db.batch([
        db.update(deployment).set({ status: "succeeded", containerId, finishedAt: now, error: null, ...(commitSha ? { commitSha } : {}) }).where(eq(deployment.id, payload.deployment_id)),
        db.update(app).set({ status: "running", containerId, hostPort, hostId: job.host_id, updatedAt: now }).where(eq(app.id, payload.app_id)),
        event("deploy", `Deployed ${payload.image}${commitSha ? ` (commit ${commitSha.slice(0, 12)})` : ""}`, {
          deployment_id: payload.deployment_id,
          container_id: containerId,
          ...(commitSha ? { commit_sha: commitSha } : {}),
        }),
      ]);
    } else {
      const error = job.error ?? `Deploy ${job.status}`;
      await db.batch([
        db.update(deployment).set({ status: job.status === "cancelled" ? "cancelled" : "failed", finishedAt: now, error, ...(commitSha ? { commitSha } : {}) }).where(eq(deployment.id, payload.deployment_id)),
        // An app that never ran has nothing serving; one that did keeps its previous container.
        db.update(app).set({ status: "failed", updatedAt: now }).where(and(eq(app.id, payload.app_id), isNull(app.containerId))),
        db.update(app).set({ status: "running", updatedAt: now }).where(and(eq(app.id, payload.app_id), eq(app.status, "starting"))),
        event("error", `Deploy of ${payload.image} ${job.status}: ${error}`.slice(0, 2000), { deployment_id: payload.deployment_id }),
      ]);
    }
    return;
  }
  if (payload.type === "app.scale") return onScaleJobEnded(db, job, payload);
  if (payload.type in AFTER_ACTION) {
    const action = payload.type as keyof typeof AFTER_ACTION;
    if (job.status === "succeeded") {
      // A started container gets a new loopback port; the agent reports it.
      const hostPort = typeof job.result?.host_port === "number" ? { hostPort: job.result.host_port } : {};
      await db.batch([
        db.update(app).set({ status: AFTER_ACTION[action], updatedAt: now, ...hostPort }).where(eq(app.id, payload.app_id)),
        event("status", `${action.slice(4)}: app is ${AFTER_ACTION[action]}`),
      ]);
    } else {
      await event("error", `${action.slice(4)} ${job.status}: ${job.error ?? ""}`.slice(0, 2000)).run();
    }
    return;
  }
  if (job.status !== "succeeded") await event("error", `${payload.type.slice(4)} ${job.status}: ${job.error ?? ""}`.slice(0, 2000)).run();
}

/**
 * Tells the org a job ended, once the records are written and waiters woken (ProjectDO runs
 * it after them, in the background): `deployment.succeeded|failed` and `instance.succeeded|failed`
 * to its webhooks, and failures to its members' notifications too. A cancelled job is someone's
 * own doing and goes to webhooks only.
 */
export async function announceJobEnded(env: Env, job: JobRecord, payload: JobPayload): Promise<void> {
  if (job.status === "succeeded" || job.status === "failed" || job.status === "cancelled") {
    if (payload.type === "app.deploy") return announceDeploy(env, job, payload, job.status);
    if (isInstancePayload(payload)) return announceInstance(env, job, payload, job.status);
  }
}

async function announceDeploy(env: Env, job: JobRecord, payload: Extract<JobPayload, { type: "app.deploy" }>, outcome: "succeeded" | "failed" | "cancelled"): Promise<void> {
  const db = createDb(env.DB);
  const [row] = await db
    .select({ orgId: project.orgId, orgSlug: org.slug, projectId: project.id, name: app.name, slug: app.slug })
    .from(app)
    .innerJoin(project, eq(project.id, app.projectId))
    .innerJoin(org, eq(org.id, project.orgId))
    .where(eq(app.id, payload.app_id));
  if (!row) return;
  const error = outcome === "succeeded" ? null : (job.error ?? `Deploy ${outcome}`);
  await emitOrgEvent(env, db, {
    orgId: row.orgId,
    type: outcome === "succeeded" ? "deployment.succeeded" : "deployment.failed",
    data: {
      app: { id: payload.app_id, slug: row.slug, name: row.name, project_id: row.projectId },
      deployment_id: payload.deployment_id,
      job_id: job.id,
      image: payload.image,
      host_id: job.host_id,
      status: outcome,
      error,
    },
    notify:
      outcome === "failed"
        ? { title: `Deploy of ${row.name} failed`, body: (error ?? "").slice(0, 500), link: `/orgs/${row.orgSlug}/projects/${row.projectId}/apps/${payload.app_id}` }
        : undefined,
  });
}

async function announceInstance(env: Env, job: JobRecord, payload: InstancePayload, outcome: "succeeded" | "failed" | "cancelled"): Promise<void> {
  const db = createDb(env.DB);
  const [row] = await db
    .select({ orgId: project.orgId, orgSlug: org.slug, projectId: project.id, name: instance.name })
    .from(instance)
    .innerJoin(project, eq(project.id, instance.projectId))
    .innerJoin(org, eq(org.id, project.orgId))
    .where(eq(instance.id, payload.instance_id));
  if (!row) return;
  const action = payload.type.replace(/^instance\./, "");
  const error = outcome === "succeeded" ? null : (job.error ?? `The job ${outcome}`);
  await emitOrgEvent(env, db, {
    orgId: row.orgId,
    type: outcome === "succeeded" ? "instance.succeeded" : "instance.failed",
    data: { instance: { id: payload.instance_id, name: row.name, project_id: row.projectId }, action, job_id: job.id, host_id: job.host_id, status: outcome, error },
    notify:
      outcome === "failed"
        ? { title: `${action[0]!.toUpperCase()}${action.slice(1)} of instance ${row.name} failed`, body: (error ?? "").slice(0, 500), link: `/orgs/${row.orgSlug}/projects/${row.projectId}/instances` }
        : undefined,
  });
}
