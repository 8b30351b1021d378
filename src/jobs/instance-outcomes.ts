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
import { recordInstanceEvent, restingStatus } from "../services/instances";

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

export async function onInstanceJobEnded(env: Env, job: JobRecord, payload: InstancePayload): Promise<void> {
  const db = createDb(env.DB);
  const row = await db.query.instance.findFirst({ where: eq(instance.id, payload.instance_id) });
  if (!row) return;
  const verb = payload.type === "instance.power" ? `power.${payload.action}` : VERB[payload.type];
  const event = (outcome: string, message: string, meta: Record<string, unknown> = {}) =>
    recordInstanceEvent(db, row.id, `${verb}.${outcome}`, message.slice(0, 2000), { meta: { job_id: job.id, ...meta } });

  if (row.activeJobId !== job.id) {
    await event(job.status, `${verb} ${job.status} after the instance moved on to other work`);
    return;
  }
  const parsed = InstanceJobResult.safeParse(job.result ?? {});
  const result = parsed.success ? parsed.data : {};
  const succeeded = job.status === "succeeded";
  const error = job.error ?? `The job ${job.status}`;
  // Every ending frees the instance and forgets the password the job was to set.
  const done = { activeJobId: null, activeJobType: null, jobPasswordCiphertext: null, updatedAt: new Date() };
  const update = (set: Partial<typeof instance.$inferInsert>) => updateIfOwned(db, row.id, job.id, { ...done, ...set });

  switch (payload.type) {
    case "instance.create": {
      if (succeeded) {
        const power = result.power_state ?? "running";
        await update({
          status: restingStatus(power),
          powerState: power,
          vmid: result.vmid ?? row.vmid,
          node: result.node ?? row.node,
          ipv4: result.ipv4 ?? row.ipv4,
          hostId: job.host_id,
          errorCode: null,
          errorMessage: null,
        });
        await event("succeeded", "Instance created", { vmid: result.vmid ?? null, node: result.node ?? null, ipv4: result.ipv4 ?? null });
      } else {
        await update({ status: "error", errorCode: `create_${job.status}`, errorMessage: error, vmid: result.vmid ?? row.vmid });
        await event(job.status, `Instance creation ${job.status}: ${error}`);
      }
      return;
    }
    case "instance.power": {
      if (succeeded) {
        const power = result.power_state ?? AFTER_POWER[payload.action];
        await update({ status: statusAfter(row.status, power), powerState: power });
        await event("succeeded", `Power action ${payload.action} done: the instance is ${power}`);
      } else {
        await update({});
        await event(job.status, `Power action ${payload.action} ${job.status}: ${error}`);
      }
      return;
    }
    case "instance.resize": {
      if (succeeded) {
        const power = result.power_state ?? row.powerState;
        await update({ status: restingStatus(power), powerState: power, planCode: payload.plan.code });
        await event("succeeded", `Resized to ${payload.plan.code}`, { plan: payload.plan.code });
      } else {
        // The VM is as it was: the plan stays, the instance rests again.
        await update({ status: restingStatus(row.powerState) });
        await event(job.status, `Resize to ${payload.plan.code} ${job.status}: ${error}`);
      }
      return;
    }
    case "instance.rebuild": {
      if (succeeded) {
        const power = result.power_state ?? "running";
        await update({ status: restingStatus(power), powerState: power, imageId: payload.image_id, ipv4: result.ipv4 ?? row.ipv4, errorCode: null, errorMessage: null });
        await event("succeeded", "Instance rebuilt", { image: payload.image_id });
      } else {
        await update({ status: "error", errorCode: `rebuild_${job.status}`, errorMessage: error });
        await event(job.status, `Rebuild ${job.status}: ${error}`);
      }
      return;
    }
    case "instance.reset_password":
    case "instance.ssh_key": {
      const sshKeys = succeeded && payload.type === "instance.ssh_key" && !row.sshKeys.includes(payload.public_key) ? { sshKeys: [...row.sshKeys, payload.public_key] } : {};
      await update(sshKeys);
      if (succeeded) await event("succeeded", payload.type === "instance.ssh_key" ? (result.already_present ? "SSH key was already authorized" : "SSH key authorized") : "Root password reset");
      else await event(job.status, `${verb} ${job.status}: ${error}`);
      return;
    }
    case "instance.delete": {
      if (succeeded) {
        await update({ status: "deleted", deletedAt: new Date(), rootPasswordCiphertext: null });
        await event("succeeded", "Instance deleted");
      } else {
        await update({ status: "error", errorCode: `delete_${job.status}`, errorMessage: error });
        await event(job.status, `Deletion ${job.status}: ${error}`);
      }
      return;
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
