/**
 * What acts on an instance's VM, as jobs on its Proxmox node: create (with placement),
 * power actions, resize, rebuild, password reset, SSH key, delete. Each job is recorded on
 * the instance (`active_job_id`) before it exists anywhere else, so every transition of it
 * finds its instance (jobs/instance-outcomes.ts); one job works on an instance at a time.
 */
import { and, eq, isNull, max, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Database } from "../db/client";
import { host, instance, type InstanceStatus, type osImage, type plan, project } from "../db/schema";
import { projectJobs, projectScope } from "../durable/clients";
import type { JobRecord } from "../durable/project-do";
import type { Env } from "../env";
import { isTerminal } from "../jobs/states";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { InstancePlanSpec, JobPayload, PowerAction, ProxmoxFacts } from "../protocol/agent";
import { agentSettings } from "./host-settings";
import { hostStatus, type HostRow } from "./hosts";
import { type Also, NOTHING, withAlso } from "./audit";
import { type InstanceRow, insertInstance, instanceEventOf, sealPassword } from "./instances";

type PlanRow = typeof plan.$inferSelect;
type ImageRow = typeof osImage.$inferSelect;
type InstancePayload = Extract<JobPayload, { type: `instance.${string}` }>;

/** How long each job may take once its node has it, unless the deployment says otherwise (INSTANCE_JOB_SECONDS). */
const SECONDS: Record<InstancePayload["type"], number> = {
  "instance.create": 900,
  "instance.power": 180,
  "instance.resize": 600,
  "instance.rebuild": 900,
  "instance.reset_password": 120,
  "instance.ssh_key": 120,
  "instance.delete": 600,
};

/**
 * Each instance job's run time limit: the defaults above, with the deployment's
 * `INSTANCE_JOB_SECONDS` on top, as `kind=seconds` pairs (`power=60,create=1800`; kinds are
 * the job types without `instance.`) for nodes slower or quicker than usual. An entry that
 * names no kind or is not 5 to 86 400 seconds is ignored, so a typo cannot make a limit 0.
 */
export function instanceJobSeconds(env: Pick<Env, "INSTANCE_JOB_SECONDS">): Record<InstancePayload["type"], number> {
  const out = { ...SECONDS };
  for (const entry of (env.INSTANCE_JOB_SECONDS ?? "").split(",")) {
    const m = /^\s*([a-z_]+)\s*=\s*(\d+)\s*$/.exec(entry);
    const type = m ? (`instance.${m[1]}` as InstancePayload["type"]) : null;
    const seconds = Number(m?.[2]);
    if (type && type in out && seconds >= 5 && seconds <= 86_400) out[type] = seconds;
  }
  return out;
}

/** Suble's POWER_PRECONDITIONS: the statuses each action may start from. */
export const POWER_PRECONDITIONS: Record<PowerAction, readonly InstanceStatus[]> = {
  start: ["stopped"],
  stop: ["running", "installing"],
  shutdown: ["running", "installing"],
  reboot: ["running", "installing"],
  reset: ["running", "installing"],
};

/** Suble's IDLE_FOR_OPS: resize, rebuild and password resets need an instance at rest. */
const IDLE_FOR_OPS: readonly InstanceStatus[] = ["running", "stopped"];

const planSpec = (p: PlanRow): InstancePlanSpec => ({ code: p.code, cores: p.vcpu, memory_mb: p.memoryMb, disk_gb: p.diskGb });
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

// ---------------------------------------------------------------- placement

function proxmoxFacts(h: HostRow): (ProxmoxFacts & { memory_bytes?: number; disk_bytes?: number }) | null {
  const facts = h.facts as { proxmox?: ProxmoxFacts; memory_bytes?: number; disk_bytes?: number } | null;
  return facts?.proxmox ? { ...facts.proxmox, memory_bytes: facts.memory_bytes, disk_bytes: facts.disk_bytes } : null;
}

/**
 * What placement reads: the org's Proxmox hosts, and per host what its live instances' plans
 * take and the highest vmid Berth knows there. The org is the project's, named by a subquery
 * so these reads need not wait for the project row.
 */
function placementReads(db: Database, projectId: string) {
  const orgId = sql`(SELECT ${project.orgId} FROM ${project} WHERE ${project.id} = ${projectId})`;
  return [
    db
      .select()
      .from(host)
      .where(and(eq(host.orgId, orgId), eq(host.kind, "proxmox"), isNull(host.deletedAt))),
    db
      .select({
        hostId: instance.hostId,
        memoryMb: sql<number>`COALESCE(SUM(CASE WHEN ${instance.deletedAt} IS NULL THEN p.memory_mb END), 0)`,
        diskGb: sql<number>`COALESCE(SUM(CASE WHEN ${instance.deletedAt} IS NULL THEN p.disk_gb END), 0)`,
        // Deleted instances count here: their vmid may not be free again on the node yet.
        topVmid: max(instance.vmid),
      })
      .from(instance)
      .innerJoin(sql`plan p`, sql`p.code = ${instance.planCode}`)
      .where(eq(instance.orgId, orgId))
      .groupBy(instance.hostId),
  ] as const;
}

type Allocation = { hostId: string | null; memoryMb: number; diskGb: number; topVmid: number | null };

/**
 * The online Proxmox node of the org that has the image's template and room for the plan:
 * memory and VM storage it reported, less the plans of the live instances already placed
 * there. The one with the most memory left wins. Also gives the VM id to try first there:
 * one past the highest Berth knows of on that node (the node may give another).
 */
function placeInstance(env: Env, hosts: HostRow[], allocated: Allocation[], image: ImageRow, p: PlanRow): { host: HostRow; node: string; vmidHint: number | null } {
  const online = hosts.filter((h) => hostStatus(env, h) === "online");
  if (!online.length) {
    throw new ApiError("no_host_available", "No Proxmox node of this org is online: enrol one (POST /org/{slug}/hosts, kind proxmox) and start its agent");
  }
  const withTemplate = online.filter((h) => proxmoxFacts(h)?.templates.includes(image.template));
  if (!withTemplate.length) {
    throw new ApiError("no_host_available", `No online Proxmox node of this org has the template for ${image.displayName} (${image.template})`);
  }
  const used = new Map(allocated.map((a) => [a.hostId, a]));
  const room = (h: HostRow) => {
    const f = proxmoxFacts(h)!;
    const u = used.get(h.id);
    return {
      memoryMb: (f.memory_bytes ?? 0) / MIB - Number(u?.memoryMb ?? 0),
      diskGb: (f.storage_bytes ?? f.disk_bytes ?? 0) / GIB - Number(u?.diskGb ?? 0),
    };
  };
  const fits = withTemplate.filter((h) => room(h).memoryMb >= p.memoryMb && room(h).diskGb >= p.diskGb).sort((a, b) => room(b).memoryMb - room(a).memoryMb);
  const chosen = fits[0];
  if (!chosen) {
    throw new ApiError("no_host_available", `No online Proxmox node of this org with ${image.template} has room for plan ${p.code} (${p.memoryMb} MB memory, ${p.diskGb} GB disk)`);
  }
  const top = used.get(chosen.id)?.topVmid;
  return { host: chosen, node: proxmoxFacts(chosen)!.node, vmidHint: top ? top + 1 : null };
}

// ---------------------------------------------------------------- the open job

/** The job working on the instance now, if it has not ended. */
export async function openJobOf(env: Env, row: InstanceRow): Promise<JobRecord | null> {
  if (!row.activeJobId) return null;
  const job = await projectJobs(env, projectScope(row.projectId)).getJob(row.activeJobId);
  return job && !isTerminal(job.status) ? job : null;
}

async function refuseWhileBusy(env: Env, row: InstanceRow) {
  const job = await openJobOf(env, row);
  if (job) throw new ApiError("operation_in_progress", `The instance is busy with ${job.type} (${job.id}); wait for it to end`);
}

function requireHost(row: InstanceRow): string {
  if (!row.hostId) throw new ApiError("invalid_state", "The instance's node is gone from Berth; it cannot be acted on");
  return row.hostId;
}

const vmRef = (row: InstanceRow) => ({ instance_id: row.id, vmid: row.vmid, node: row.node });

/**
 * Records the job on the instance (with `set`), then creates it, then writes its event and
 * `also` (the caller's audit row) in one batch. If it cannot be created the instance is put
 * back as it was and the error goes to the caller.
 */
async function submit(
  db: Database,
  env: Env,
  row: InstanceRow,
  payload: InstancePayload,
  opts: {
    idempotent: boolean;
    set?: Partial<typeof instance.$inferInsert>;
    event: { type: string; message: string; meta?: Record<string, unknown> };
    userId: string | null;
    also?: Also;
  },
): Promise<JobRecord> {
  const hostId = requireHost(row);
  const jobId = newId("job");
  await db
    .update(instance)
    .set({ activeJobId: jobId, activeJobType: payload.type, ...opts.set, updatedAt: new Date() })
    .where(eq(instance.id, row.id));
  let job: JobRecord;
  try {
    job = await projectJobs(env, projectScope(row.projectId)).createJob(projectScope(row.projectId), {
      id: jobId,
      type: payload.type,
      hostId,
      payload,
      subject: row.id,
      idempotent: opts.idempotent,
      deadlineSeconds: instanceJobSeconds(env)[payload.type] + agentSettings(env).queueGraceSeconds,
    });
  } catch (err) {
    await db
      .update(instance)
      .set({ activeJobId: null, activeJobType: null, status: row.status, jobPasswordCiphertext: null, updatedAt: new Date() })
      .where(and(eq(instance.id, row.id), eq(instance.activeJobId, jobId)));
    throw err;
  }
  const [event, ...rest] = instanceEventOf(db, opts.event.type, opts.event.message, { meta: { job_id: job.id, ...opts.event.meta }, userId: opts.userId })(row.id);
  await withAlso(db, event!, [...rest, ...(opts.also ?? NOTHING)(row.id)]);
  return job;
}

// ---------------------------------------------------------------- create

/**
 * What a create reads before it places the instance, in one round trip: whether the name is
 * taken in the project, and what placement needs. It reads by the project id in the path, so
 * the route runs it beside the caller's authorization and uses it only once that succeeded:
 * for a project that is not the caller's, the rows are read and dropped, never shown.
 */
export function readForCreate(db: Database, projectId: string, name: string) {
  return db.batch([
    // A taken name is said before placement; the unique index still decides between two racing creates.
    db
      .select({ id: instance.id })
      .from(instance)
      .where(and(eq(instance.projectId, projectId), eq(instance.name, name), isNull(instance.deletedAt)))
      .limit(1),
    ...placementReads(db, projectId),
  ]);
}

export type CreateReads = Awaited<ReturnType<typeof readForCreate>>;

export interface CreateInstanceInput {
  projectId: string;
  orgId: string;
  name: string;
  plan: PlanRow;
  image: ImageRow;
  password: string;
  sshKeys: string[];
  networks: string[];
  backupTier: "none" | "basic" | "extended";
  createdBy: string | null;
}

/**
 * Places the instance, records it `queued` with its password sealed, and submits
 * `instance.create`. On the path from request to the node's first call: its reads
 * (readForCreate, made beside the authorization) are one round trip, and the instance, its
 * first event and `also` (the audit row) are written in one more.
 */
export async function createInstance(
  db: Database,
  env: Env,
  input: CreateInstanceInput,
  reads: CreateReads,
  also: (placed: { id: string; hostId: string }) => BatchItem<"sqlite">[] = () => [],
) {
  const [taken, hosts, allocated] = reads;
  if (taken.length) throw new ApiError("name_taken", `An instance named "${input.name}" already exists in this project`);
  const { host: target, node, vmidHint } = placeInstance(env, hosts, allocated, input.image, input.plan);
  const sealed = await sealPassword(env, input.password);
  const jobId = newId("job");
  const row = await insertInstance(
    db,
    {
      id: newId("ins"),
      projectId: input.projectId,
      orgId: input.orgId,
      name: input.name,
      status: "queued",
      backupTier: input.backupTier,
      planCode: input.plan.code,
      imageId: input.image.id,
      hostId: target.id,
      node,
      rootPasswordCiphertext: sealed,
      jobPasswordCiphertext: sealed,
      sshKeys: input.sshKeys,
      networks: input.networks,
      activeJobId: jobId,
      activeJobType: "instance.create",
      createdBy: input.createdBy,
    },
    (id) => [
      ...instanceEventOf(db, "create.requested", "Instance creation requested", {
        meta: { job_id: jobId, plan: input.plan.code, image: input.image.id, host_id: target.id },
        userId: input.createdBy,
      })(id),
      ...also({ id, hostId: target.id }),
    ],
  );
  const payload: InstancePayload = {
    type: "instance.create",
    instance_id: row.id,
    vmid_hint: vmidHint,
    template: input.image.template,
    hostname: row.name,
    ciuser: input.image.defaultUser,
    ssh_keys: input.sshKeys,
    has_password: true,
    plan: planSpec(input.plan),
    networks: input.networks,
  };
  let job: JobRecord;
  try {
    job = await projectJobs(env, projectScope(row.projectId)).createJob(projectScope(row.projectId), {
      id: jobId,
      type: payload.type,
      hostId: target.id,
      payload,
      subject: row.id,
      // A clone must not happen twice: a create handed out again looks for the VM the first attempt made.
      idempotent: false,
      deadlineSeconds: instanceJobSeconds(env)["instance.create"] + agentSettings(env).queueGraceSeconds,
    });
  } catch (err) {
    await db.batch([
      db
        .update(instance)
        .set({ status: "error", errorCode: "create_failed", errorMessage: "The create job could not be queued; delete the instance and try again", activeJobId: null, activeJobType: null, jobPasswordCiphertext: null })
        .where(eq(instance.id, row.id)),
      ...instanceEventOf(db, "create.failed", "The create job could not be queued", { meta: { job_id: jobId } })(row.id),
    ]);
    throw err;
  }
  return { instance: row, job };
}

// ---------------------------------------------------------------- acting on an instance

/** `also`, here and below: the caller's audit row, written in the batch with the job's event. */
export async function submitPowerAction(db: Database, env: Env, row: InstanceRow, action: PowerAction, userId: string | null, also?: Also) {
  if (!POWER_PRECONDITIONS[action].includes(row.status)) {
    throw new ApiError("invalid_state", `Cannot ${action} an instance that is ${row.status} (needs ${POWER_PRECONDITIONS[action].join(" or ")})`);
  }
  await refuseWhileBusy(env, row);
  return submit(db, env, row, { type: "instance.power", ...vmRef(row), action }, {
    idempotent: true,
    event: { type: `power.${action}.requested`, message: `Power action ${action} requested` },
    userId,
    also,
  });
}

async function requireIdle(env: Env, row: InstanceRow) {
  if (!IDLE_FOR_OPS.includes(row.status)) {
    throw new ApiError("operation_in_progress", `The instance is ${row.status}; this needs it running or stopped`);
  }
  await refuseWhileBusy(env, row);
}

/** A new plan; the disk only grows. The instance's plan changes when the job succeeds. */
export async function submitResize(db: Database, env: Env, row: InstanceRow, current: PlanRow, next: PlanRow, userId: string | null, also?: Also) {
  if (next.diskGb < current.diskGb) {
    throw new ApiError("plan_too_small", `Plan ${next.code} has a ${next.diskGb} GB disk; this instance's is ${current.diskGb} GB, and disks only grow`);
  }
  await requireIdle(env, row);
  return submit(db, env, row, { type: "instance.resize", ...vmRef(row), plan: planSpec(next), previous_disk_gb: current.diskGb }, {
    idempotent: true,
    set: { status: "resizing" },
    event: { type: "resize.requested", message: `Resize from ${current.code} to ${next.code} requested`, meta: { from: current.code, to: next.code } },
    userId,
    also,
  });
}

/** Reinstalls from `image` with a new root password (shown until acknowledged), keeping the vmid and address. */
export async function submitRebuild(
  db: Database,
  env: Env,
  row: InstanceRow,
  opts: { image: ImageRow; plan: PlanRow; sshKeys?: string[]; backup: boolean; password: string; userId: string | null; also?: Also },
) {
  if (opts.image.minDiskGb > opts.plan.diskGb) {
    throw new ApiError("plan_too_small", `${opts.image.displayName} needs a ${opts.image.minDiskGb} GB disk; plan ${opts.plan.code} has ${opts.plan.diskGb} GB`);
  }
  await requireIdle(env, row);
  // Refused here rather than failed on the node: the VM is not touched, and the client can ask again at once.
  if (opts.backup) throw new ApiError("backup_not_supported", 'Berth takes no VM backups yet, and a rebuild wipes the disk: send "backup": false to rebuild without one');
  const sealed = await sealPassword(env, opts.password);
  const sshKeys = opts.sshKeys ?? row.sshKeys;
  return submit(
    db,
    env,
    row,
    {
      type: "instance.rebuild",
      ...vmRef(row),
      image_id: opts.image.id,
      template: opts.image.template,
      hostname: row.name,
      ciuser: opts.image.defaultUser,
      ssh_keys: sshKeys,
      has_password: true,
      disk_gb: opts.plan.diskGb,
      backup: opts.backup,
    },
    {
      idempotent: false,
      set: { status: "rebuilding", sshKeys, rootPasswordCiphertext: sealed, jobPasswordCiphertext: sealed, errorCode: null, errorMessage: null },
      event: { type: "rebuild.requested", message: `Rebuild from ${opts.image.displayName} requested`, meta: { image: opts.image.id, backup: opts.backup } },
      userId: opts.userId,
      also: opts.also,
    },
  );
}

/** A new root password, returned to the caller once: the one shown on the instance (if any) is forgotten. */
export async function submitPasswordReset(db: Database, env: Env, row: InstanceRow, ciuser: string, password: string, userId: string | null, also?: Also) {
  await requireIdle(env, row);
  return submit(db, env, row, { type: "instance.reset_password", ...vmRef(row), ciuser, has_password: true }, {
    idempotent: true,
    set: { jobPasswordCiphertext: await sealPassword(env, password), rootPasswordCiphertext: null },
    event: { type: "password.reset.requested", message: "Root password reset requested" },
    userId,
    also,
  });
}

export async function submitSshKey(db: Database, env: Env, row: InstanceRow, user: string, publicKey: string, userId: string | null) {
  if (row.vmid === null || !row.node) throw new ApiError("invalid_state", "The instance has no running VM yet");
  await refuseWhileBusy(env, row);
  return submit(db, env, row, { type: "instance.ssh_key", ...vmRef(row), user, public_key: publicKey }, {
    idempotent: true,
    event: { type: "ssh_key.requested", message: `SSH key authorization for ${user} requested`, meta: { key_type: publicKey.split(" ")[0] } },
    userId,
  });
}

/**
 * Destroys the VM. A job still working on the instance (a create, a resize) is cancelled
 * first. An instance whose node is gone from Berth has nothing left to destroy: it is
 * deleted at once, and there is no job.
 */
export async function submitDelete(db: Database, env: Env, row: InstanceRow, finalBackup: boolean, userId: string | null, also: Also = NOTHING): Promise<JobRecord | null> {
  if (row.status === "deleting") throw new ApiError("operation_in_progress", "The instance is being deleted already");
  const busy = await openJobOf(env, row);
  if (busy) await projectJobs(env, projectScope(row.projectId)).cancelJob(busy.id);
  if (!row.hostId) {
    await withAlso(db, db.update(instance).set({ status: "deleted", deletedAt: new Date(), activeJobId: null, activeJobType: null, jobPasswordCiphertext: null }).where(eq(instance.id, row.id)), [
      ...instanceEventOf(db, "delete.succeeded", "Instance deleted (its node was already gone)", { userId })(row.id),
      ...also(row.id),
    ]);
    return null;
  }
  return submit(db, env, row, { type: "instance.delete", ...vmRef(row), hostname: row.name, final_backup: finalBackup }, {
    idempotent: true,
    set: { status: "deleting" },
    event: { type: "delete.requested", message: "Instance deletion requested", meta: { final_backup: finalBackup } },
    userId,
    also,
  });
}

