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
import { and, eq } from "drizzle-orm";
import { createDb, type Database } from "../db/client";
import { instance, type InstanceStatus, type PowerState } from "../db/schema";
import type { JobRecord } from "../durable/project-do";
import type { Env } from "../env";
import { InstanceJobResult, type JobPayload } from "../protocol/agent";
import { instanceEventOf, recordInstanceEvent, restingStatus } from "../services/instances";

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

/** What a job's end writes: the instance's changes (only if the job is still its open job) and one event. */
interface Ending {
  set: Partial<typeof instance.$inferInsert>;
  outcome: string;
  message: string;
  meta?: Record<string, unknown>;
}

export async function onInstanceJobEnded(env: Env, job: JobRecord, payload: InstancePayload): Promise<void> {
  const db = createDb(env.DB);
  const row = await db.query.instance.findFirst({ where: eq(instance.id, payload.instance_id) });
  if (!row) return;
  const verb = payload.type === "instance.power" ? `power.${payload.action}` : VERB[payload.type];
  const eventOf = (outcome: string, message: string, meta: Record<string, unknown> = {}) =>
    instanceEventOf(db, `${verb}.${outcome}`, message.slice(0, 2000), { meta: { job_id: job.id, ...meta } })(row.id);

  if (row.activeJobId !== job.id) {
    await recordInstanceEvent(db, row.id, `${verb}.${job.status}`, `${verb} ${job.status} after the instance moved on to other work`, { meta: { job_id: job.id } });
    return;
  }
  const ending = endingOf(job, payload, row);
  // Every ending frees the instance and forgets the password the job was to set. The row and
  // its event go in one batch: one round trip between the job's end and the instance showing it.
  const done = { activeJobId: null, activeJobType: null, jobPasswordCiphertext: null, updatedAt: new Date() };
  await db.batch([updateIfOwned(db, row.id, job.id, { ...done, ...ending.set }), ...eventOf(ending.outcome, ending.message, ending.meta)]);
}

function endingOf(job: JobRecord, payload: InstancePayload, row: typeof instance.$inferSelect): Ending {
  const parsed = InstanceJobResult.safeParse(job.result ?? {});
  const result = parsed.success ? parsed.data : {};
  const succeeded = job.status === "succeeded";
  const error = job.error ?? `The job ${job.status}`;

  switch (payload.type) {
    case "instance.create": {
      if (succeeded) {
        const power = result.power_state ?? "running";
        return {
          set: {
            status: restingStatus(power),
            powerState: power,
            vmid: result.vmid ?? row.vmid,
            node: result.node ?? row.node,
            ipv4: result.ipv4 ?? row.ipv4,
            hostId: job.host_id,
            errorCode: null,
            errorMessage: null,
          },
          outcome: "succeeded",
          message: "Instance created",
          meta: { vmid: result.vmid ?? null, node: result.node ?? null, ipv4: result.ipv4 ?? null },
        };
      }
      return {
        set: { status: "error", errorCode: `create_${job.status}`, errorMessage: error, vmid: result.vmid ?? row.vmid },
        outcome: job.status,
        message: `Instance creation ${job.status}: ${error}`,
      };
    }
    case "instance.power": {
      if (succeeded) {
        const power = result.power_state ?? AFTER_POWER[payload.action];
        return { set: { status: statusAfter(row.status, power), powerState: power }, outcome: "succeeded", message: `Power action ${payload.action} done: the instance is ${power}` };
      }
      return { set: {}, outcome: job.status, message: `Power action ${payload.action} ${job.status}: ${error}` };
    }
    case "instance.resize": {
      if (succeeded) {
        const power = result.power_state ?? row.powerState;
        return {
          set: { status: restingStatus(power), powerState: power, planCode: payload.plan.code },
          outcome: "succeeded",
          message: `Resized to ${payload.plan.code}`,
          meta: { plan: payload.plan.code },
        };
      }
      // The VM is as it was: the plan stays, the instance rests again.
      return { set: { status: restingStatus(row.powerState) }, outcome: job.status, message: `Resize to ${payload.plan.code} ${job.status}: ${error}` };
    }
    case "instance.rebuild": {
      if (succeeded) {
        const power = result.power_state ?? "running";
        return {
          set: { status: restingStatus(power), powerState: power, imageId: payload.image_id, ipv4: result.ipv4 ?? row.ipv4, errorCode: null, errorMessage: null },
          outcome: "succeeded",
          message: "Instance rebuilt",
          meta: { image: payload.image_id },
        };
      }
      return { set: { status: "error", errorCode: `rebuild_${job.status}`, errorMessage: error }, outcome: job.status, message: `Rebuild ${job.status}: ${error}` };
    }
    case "instance.reset_password":
    case "instance.ssh_key": {
      const sshKeys = succeeded && payload.type === "instance.ssh_key" && !row.sshKeys.includes(payload.public_key) ? { sshKeys: [...row.sshKeys, payload.public_key] } : {};
      if (!succeeded) return { set: sshKeys, outcome: job.status, message: `${VERB[payload.type]} ${job.status}: ${error}` };
      const message = payload.type === "instance.ssh_key" ? (result.already_present ? "SSH key was already authorized" : "SSH key authorized") : "Root password reset";
      return { set: sshKeys, outcome: "succeeded", message };
    }
    case "instance.delete": {
      if (succeeded) return { set: { status: "deleted", deletedAt: new Date(), rootPasswordCiphertext: null }, outcome: "succeeded", message: "Instance deleted" };
      return { set: { status: "error", errorCode: `delete_${job.status}`, errorMessage: error }, outcome: job.status, message: `Deletion ${job.status}: ${error}` };
    }
  }
}

/** After a power action an instance at rest follows its VM; one installing an app stays installing while it runs. */
function statusAfter(status: InstanceStatus, power: PowerState): InstanceStatus {
  if (status === "installing" && power === "running") return status;
  return restingStatus(power);
}

function updateIfOwned(db: Database, instanceId: string, jobId: string, set: Partial<typeof instance.$inferInsert>) {
  return db
    .update(instance)
    .set(set)
    .where(and(eq(instance.id, instanceId), eq(instance.activeJobId, jobId)));
}
