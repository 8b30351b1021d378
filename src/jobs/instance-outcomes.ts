/**
 * What an instance job's transitions mean for the instance record: a create that starts
 * makes it `provisioning`; a job that ends records what the node reported (vmid, node,
 * address, power state), the new plan or image, or the error, clears the job from the
 * instance and adds to its activity feed. Called by ProjectDO (through outcomes.ts) on
 * each transition, however the job ended (agent, deadline, cancel, dead letter).
 *
 * Only the instance's own open job moves it: every update names `active_job_id`, so an
 * outcome of a job the instance has moved on from (a create cancelled by a delete) changes
 * nothing but the feed.
 */
import { and, eq, type SQL, sql } from "drizzle-orm";
import { createDb } from "../db/client";
import { instance, instanceEvent, type PowerState } from "../db/schema";
import type { JobRecord } from "../durable/project-do";
import type { Env } from "../env";
import { InstanceJobResult, type JobPayload } from "../protocol/agent";
import { newId } from "../lib/ids";
import { restingStatus } from "../services/instances";

export type InstancePayload = Extract<JobPayload, { type: `instance.${string}` }>;

export const isInstancePayload = (p: JobPayload): p is InstancePayload => p.type.startsWith("instance.");

/** The power state each action leaves the VM in, when the node does not say. */
const AFTER_POWER: Record<Extract<InstancePayload, { type: "instance.power" }>["action"], PowerState> = {
  start: "running",
  reboot: "running",
  reset: "running",
  stop: "stopped",
  shutdown: "stopped",
};

const VERB: Record<InstancePayload["type"], string> = {
  "instance.create": "create",
  "instance.power": "power",
  "instance.resize": "resize",
  "instance.rebuild": "rebuild",
  "instance.reset_password": "password.reset",
  "instance.ssh_key": "ssh_key",
  "instance.delete": "delete",
};

export async function onInstanceJobStarted(env: Env, job: JobRecord, payload: InstancePayload): Promise<void> {
  if (payload.type !== "instance.create") return;
  const db = createDb(env.DB);
  await db
    .update(instance)
    .set({ status: "provisioning", updatedAt: new Date() })
    .where(and(eq(instance.id, payload.instance_id), eq(instance.activeJobId, job.id), eq(instance.status, "queued")));
}

/**
 * What a job's end writes: the instance's changes (only if the job is still its open job)
 * and one event. Whatever depends on the row as it is (the power state a failed resize
 * rests in, the keys already authorized) is said in SQL, so nothing has to be read first.
 */
interface Ending {
  set: { [K in keyof typeof instance.$inferInsert]?: (typeof instance.$inferInsert)[K] | SQL };
  outcome: string;
  message: string;
  meta?: Record<string, unknown>;
}

/** The status of an instance at rest in the power state it has now (restingStatus, in SQL). */
const restingNow = sql`CASE WHEN ${instance.powerState} = 'stopped' THEN 'stopped' ELSE 'running' END`;

/**
 * One batch, no read: the row is updated if the job is still its open job; then its event is
 * written if that update changed the row (SQLite's changes() counts the statement before it
 * in the batch), and the "moved on" event if it did not (and the instance still exists).
 */
export async function onInstanceJobEnded(env: Env, job: JobRecord, payload: InstancePayload): Promise<void> {
  const db = createDb(env.DB);
  const verb = payload.type === "instance.power" ? `power.${payload.action}` : VERB[payload.type];
  const ending = endingOf(job, payload);
  // Every ending frees the instance and forgets the password the job was to set.
  const done = { activeJobId: null, activeJobType: null, jobPasswordCiphertext: null, updatedAt: new Date() };
  // Every column of instance_event in the table's order (seq, id, instance_id, type, message, meta, user_id, created_at).
  const event = (type: string, message: string, meta: Record<string, unknown>, when: SQL) =>
    db
      .insert(instanceEvent)
      .select(
        sql`SELECT NULL, ${newId("iev")}, ${payload.instance_id}, ${type}, ${message.slice(0, 2000)}, ${JSON.stringify({ job_id: job.id, ...meta })}, NULL, unixepoch('subsec') * 1000 WHERE ${when}`,
      );
  await db.batch([
    db
      .update(instance)
      .set({ ...done, ...ending.set })
      .where(and(eq(instance.id, payload.instance_id), eq(instance.activeJobId, job.id))),
    event(`${verb}.${ending.outcome}`, ending.message, ending.meta ?? {}, sql`changes() = 1`),
    event(
      `${verb}.${job.status}`,
      `${verb} ${job.status} after the instance moved on to other work`,
      {},
      sql`changes() = 0 AND EXISTS (SELECT 1 FROM ${instance} WHERE ${instance.id} = ${payload.instance_id})`,
    ),
  ]);
}

function endingOf(job: JobRecord, payload: InstancePayload): Ending {
  const parsed = InstanceJobResult.safeParse(job.result ?? {});
  const result = parsed.success ? parsed.data : {};
  const succeeded = job.status === "succeeded";
  const error = job.error ?? `The job ${job.status}`;
  // What the node reported, where it reported it; the row keeps its own otherwise.
  const reported = {
    ...(result.vmid !== undefined ? { vmid: result.vmid } : {}),
    ...(result.node !== undefined ? { node: result.node } : {}),
    ...(result.ipv4 !== undefined ? { ipv4: result.ipv4 } : {}),
  };

  switch (payload.type) {
    case "instance.create": {
      if (succeeded) {
        const power = result.power_state ?? "running";
        return {
          set: { status: restingStatus(power), powerState: power, ...reported, hostId: job.host_id, errorCode: null, errorMessage: null },
          outcome: "succeeded",
          message: "Instance created",
          meta: { vmid: result.vmid ?? null, node: result.node ?? null, ipv4: result.ipv4 ?? null },
        };
      }
      return {
        set: { status: "error", errorCode: `create_${job.status}`, errorMessage: error, ...(result.vmid !== undefined ? { vmid: result.vmid } : {}) },
        outcome: job.status,
        message: `Instance creation ${job.status}: ${error}`,
      };
    }
    case "instance.power": {
      if (succeeded) {
        const power = result.power_state ?? AFTER_POWER[payload.action];
        // An instance at rest follows its VM; one installing an app stays installing while it runs.
        const status = power === "running" ? sql`CASE WHEN ${instance.status} = 'installing' THEN 'installing' ELSE 'running' END` : restingStatus(power);
        return { set: { status, powerState: power }, outcome: "succeeded", message: `Power action ${payload.action} done: the instance is ${power}` };
      }
      return { set: {}, outcome: job.status, message: `Power action ${payload.action} ${job.status}: ${error}` };
    }
    case "instance.resize": {
      if (succeeded) {
        const power = result.power_state;
        return {
          set: power ? { status: restingStatus(power), powerState: power, planCode: payload.plan.code } : { status: restingNow, planCode: payload.plan.code },
          outcome: "succeeded",
          message: `Resized to ${payload.plan.code}`,
          meta: { plan: payload.plan.code },
        };
      }
      // The VM is as it was: the plan stays, the instance rests again.
      return { set: { status: restingNow }, outcome: job.status, message: `Resize to ${payload.plan.code} ${job.status}: ${error}` };
    }
    case "instance.rebuild": {
      if (succeeded) {
        const power = result.power_state ?? "running";
        return {
          set: { status: restingStatus(power), powerState: power, imageId: payload.image_id, ...(result.ipv4 !== undefined ? { ipv4: result.ipv4 } : {}), errorCode: null, errorMessage: null },
          outcome: "succeeded",
          message: "Instance rebuilt",
          meta: { image: payload.image_id },
        };
      }
      return { set: { status: "error", errorCode: `rebuild_${job.status}`, errorMessage: error }, outcome: job.status, message: `Rebuild ${job.status}: ${error}` };
    }
    case "instance.reset_password":
      if (!succeeded) return { set: {}, outcome: job.status, message: `${VERB[payload.type]} ${job.status}: ${error}` };
      return { set: {}, outcome: "succeeded", message: "Root password reset" };
    case "instance.ssh_key": {
      if (!succeeded) return { set: {}, outcome: job.status, message: `${VERB[payload.type]} ${job.status}: ${error}` };
      // Appended unless it is there already.
      const sshKeys = sql`CASE WHEN EXISTS (SELECT 1 FROM json_each(${instance.sshKeys}) WHERE value = ${payload.public_key}) THEN ${instance.sshKeys} ELSE json_insert(${instance.sshKeys}, '$[#]', ${payload.public_key}) END`;
      return { set: { sshKeys }, outcome: "succeeded", message: result.already_present ? "SSH key was already authorized" : "SSH key authorized" };
    }
    case "instance.delete": {
      if (succeeded) return { set: { status: "deleted", deletedAt: new Date(), rootPasswordCiphertext: null }, outcome: "succeeded", message: "Instance deleted" };
      return { set: { status: "error", errorCode: `delete_${job.status}`, errorMessage: error }, outcome: job.status, message: `Deletion ${job.status}: ${error}` };
    }
  }
}
