/** Suble's instance shapes and input rules, written once: what the instance routes take and answer. */
import { z } from "@hono/zod-openapi";
import { BACKUP_TIERS, INSTANCE_STATUSES, POWER_STATES } from "../../db/schema";
import { POWER_ACTIONS, SSH_PUBLIC_KEY } from "../../protocol/agent";
import { HOSTNAME_PATTERN } from "../../services/instances";
import { Job, slugParam } from "../schemas";

// ---------------------------------------------------------------- shapes

export const InstanceSchema = z
  .object({
    uid: z.string().openapi({ example: "ins_a1b2c3d4e5f6g7h8" }),
    id: z.string(),
    name: z.string().openapi({ example: "web-01" }),
    status: z.enum(INSTANCE_STATUSES),
    power_state: z.enum(POWER_STATES),
    backup_tier: z.enum(BACKUP_TIERS),
    error_code: z.string().nullable(),
    error_message: z.string().nullable(),
    created_at: z.string(),
    plan_code: z.string().openapi({ example: "bxs-2-4" }),
    primary_ip: z.string().nullable(),
    image_id: z.string().nullable(),
    image_name: z.string().nullable().openapi({ example: "Ubuntu 24.04 LTS" }),
    app_slug: z.string().nullable(),
    app_name: z.string().nullable(),
    host_id: z.string().nullable().openapi({ description: "The Proxmox node (host) it runs on" }),
    node: z.string().nullable(),
    vmid: z.number().int().nullable(),
    job_uid: z.string().nullable().openapi({ description: "The job working on the instance now, if any" }),
    job_type: z.string().nullable(),
    progress_step: z.number().int().nullable(),
    progress_total: z.number().int().nullable(),
    progress_percent: z.number().nullable(),
    progress_message: z.string().nullable(),
  })
  .openapi("Instance");

export const InstanceDetail = InstanceSchema.extend({
  root_password: z.string().nullable().openapi({ description: "The root password, shown until `POST …/password/acknowledge`, then never again" }),
}).openapi("InstanceDetail");

/** Suble's flat job answer (resize, rebuild, password): the job with `createdAt`. */
export const FlatJob = Job.extend({ createdAt: z.string() }).openapi("InstanceJob");

export const InstanceEvent = z
  .object({
    uid: z.string().openapi({ example: "iev_a1b2c3d4e5f6g7h8" }),
    type: z.string().openapi({ example: "create.requested" }),
    message: z.string(),
    meta: z.record(z.string(), z.unknown()).nullable(),
    created_at: z.string(),
    user_email: z.string().nullable(),
  })
  .openapi("InstanceEvent");

// ---------------------------------------------------------------- input rules

const hostname = z
  .string()
  .regex(HOSTNAME_PATTERN, "a hostname: lowercase letters, digits and hyphens, 1-64 characters, not starting or ending with a hyphen")
  .openapi({ example: "web-01" });

const noControl = (s: string) => [...s].every((ch) => ch.charCodeAt(0) >= 0x20 && ch.charCodeAt(0) !== 0x7f);
const password = z.string().min(8).max(72).refine(noControl, "a password cannot contain control characters");

export const sshPublicKey = z
  .string()
  .trim()
  .max(16_384)
  .regex(SSH_PUBLIC_KEY, "a single-line OpenSSH public key (ssh-ed25519, ssh-rsa, ssh-dss or ecdsa-sha2-*)");

const uid = z.string().min(1).max(100);

/** Exactly one of an OS image, a project template or a one-click app. */
const Source = z
  .union([z.object({ image: uid }).strict(), z.object({ template: uid }).strict(), z.object({ app: uid }).strict()])
  .openapi({ description: "Exactly one of `{image: <os_image uid>}`, `{template: <template uid>}`, `{app: <app slug>}`; only images are installed for now" });

export const CreateInstanceInput = z
  .object({
    name: hostname.openapi({ description: "Hostname, unique among the project's live instances" }),
    plan: z.string().min(1).max(64).openapi({ description: "Plan code (GET /plans)", example: "bxs-2-4" }),
    source: Source,
    ssh_keys: z.array(sshPublicKey).max(32).default([]),
    networks: z.array(z.string().min(1).max(64)).max(16).default([]).openapi({ description: "Private network uids, attached once networks exist" }),
    backup_tier: z.enum(BACKUP_TIERS).default("none"),
    password: password.optional().openapi({ description: "Root password, 8-72 characters; a random one is made when omitted" }),
  })
  .openapi("CreateInstanceInput");

/** A rename takes the name by the create rule. */
export const RenameInstanceInput = CreateInstanceInput.pick({ name: true }).openapi("RenameInstanceInput");

export const PowerActionInput = z.object({ type: z.enum(POWER_ACTIONS) }).openapi("PowerActionInput");

export const ResizeInput = z.object({ plan: z.string().min(1).max(64) }).openapi("ResizeInput");

export const RebuildInput = z
  .object({
    source: z.union([z.object({ image: uid }).strict(), z.object({ template: uid }).strict()]).openapi({ description: "`{image: <os_image uid>}` (or `{template: …}`, later)" }),
    sshKeys: z.array(sshPublicKey).max(32).optional().openapi({ description: "Replaces the instance's SSH keys when given" }),
    backup: z.boolean().optional().openapi({ description: "A safety backup first; only `false` turns it off" }),
  })
  .openapi("RebuildInput");

export const PasswordInput = z.object({ password: password.optional() }).openapi("PasswordInput");

export const SshKeyInput = z.object({ publicKey: sshPublicKey }).openapi("SshKeyInput");

export const ProjectInstancesParams = z.object({ project: slugParam("project").openapi({ description: "Project id (prj_…)" }) });
export const InstanceParams = ProjectInstancesParams.extend({ instance: slugParam("instance").openapi({ description: "Instance id (ins_…)" }) });

export const DeleteQuery = z.object({
  final_backup: z.string().max(10).optional().openapi({ param: { name: "final_backup", in: "query" }, description: "`true` takes a final backup first; anything else is false" }),
});

export const EventsQuery = z.object({
  limit: z.coerce.number().int().min(1).default(50).transform((n) => Math.min(n, 200)).openapi({ param: { name: "limit", in: "query" }, description: "At most this many (capped at 200, default 50)" }),
  cursor: z.string().max(200).optional().openapi({ param: { name: "cursor", in: "query" }, description: "`next_cursor` of the previous page" }),
});
