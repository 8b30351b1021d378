/**
 * Suble's instances: `/projects/{project}/instances` and what acts on one. Every long
 * action answers 202 with a job on the instance's Proxmox node; while it runs the instance
 * shows its progress. Each route declares Suble's key scope and checks the permission that
 * scope stands for (auth/permissions.ts, SUBLE_SCOPES).
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createRouter } from "../../app";
import { authorizeProject } from "../../auth/access";
import { SUBLE_SCOPES, type SubleScope } from "../../auth/permissions";
import { projectJobs, projectScope } from "../../durable/clients";
import type { JobRecord } from "../../durable/project-do";
import type { AppEnv } from "../../env";
import { isTerminal } from "../../jobs/states";
import type { ErrorCode } from "../../lib/error-codes";
import { ApiError, errorResponsesFor, notFound } from "../../lib/errors";
import { InstanceJobResult } from "../../protocol/agent";
import { audited } from "../../services/audit";
import { findImage, findPlanByCode } from "../../services/catalog";
import {
  createInstance,
  readForCreate,
  submitDelete,
  submitPasswordReset,
  submitPowerAction,
  submitRebuild,
  submitResize,
  submitSshKey,
} from "../../services/instance-jobs";
import {
  acknowledgeRootPassword,
  catalogNames,
  decodeCursor,
  findInstance,
  generatePassword,
  type InstanceRow,
  listInstanceEvents,
  listInstances,
  openJobs,
  planByCode,
  presentInstance,
  instanceEventOf,
  recordInstanceEvent,
  renameInstance,
  revealRootPassword,
} from "../../services/instances";
import { presentJob } from "../../services/jobs";
import { Job, json, jsonBody } from "../schemas";
import {
  CreateInstanceInput,
  DeleteQuery,
  EventsQuery,
  FlatJob,
  InstanceDetail,
  InstanceEvent,
  InstanceParams,
  InstanceSchema,
  PasswordInput,
  PowerActionInput,
  ProjectInstancesParams,
  RebuildInput,
  RenameInstanceInput,
  ResizeInput,
  SshKeyInput,
} from "./schema";

const router = createRouter();
const tags = ["Instances"];

/** Suble's scope as the route's declared security, for a bearer token or key; the session cookie works as everywhere. */
const scoped = (scope: SubleScope) => ({ security: [{ bearer: [scope] }, { session: [] }] as Array<Record<string, string[]>> });

/** How long `POST …/ssh-key` waits for its node to answer before answering 202 with the job. */
const SSH_KEY_WAIT_MS = 25_000;

// ---------------------------------------------------------------- access and shaping

/**
 * The caller's project and the instance, read side by side (the instance is looked up by the
 * project id in the path, and shown only once the caller is authorized for that project).
 */
async function loadInstance(c: Context<AppEnv>, params: { project: string; instance: string }, scope: SubleScope) {
  const [{ project, principal }, row] = await Promise.all([
    authorizeProject(c, params.project, SUBLE_SCOPES[scope]),
    findInstance(c.var.db, params.project, params.instance),
  ]);
  if (!row) throw notFound("Instance", "instance_not_found");
  return { project, principal, instance: row };
}

/** Instances as clients see them, with the progress of the job working on each (both read side by side). */
async function presentMany(c: Context<AppEnv>, projectId: string, rows: InstanceRow[]) {
  const ids = rows.map((r) => r.activeJobId).filter((id): id is string => Boolean(id));
  const [jobs, names] = await Promise.all([ids.length ? projectJobs(c.env, projectScope(projectId)).getJobs(ids) : [], catalogNames(c.var.db, rows)]);
  return rows.map((r) => presentInstance(r, names, openJobs(jobs)));
}

async function presentDetail(c: Context<AppEnv>, row: InstanceRow) {
  const [shown] = await presentMany(c, row.projectId, [row]);
  return { ...shown!, root_password: await revealRootPassword(c.env, row) };
}

const flatJob = (job: JobRecord) => ({ ...presentJob(job), createdAt: new Date(job.created_at).toISOString() });

const errors = (...codes: ErrorCode[]) => errorResponsesFor("instance_not_found", ...codes);

// ---------------------------------------------------------------- the collection

router.openapi(
  createRoute({
    method: "get",
    path: "/projects/{project}/instances",
    tags,
    ...scoped("READ_VPS"),
    summary: "The project's live instances, newest first, with the progress of any job working on them",
    request: { params: ProjectInstancesParams },
    responses: { 200: json(z.object({ instances: z.array(InstanceSchema) }), "Instances"), ...errorResponsesFor() },
  }),
  async (c) => {
    const { project } = await authorizeProject(c, c.req.valid("param").project, SUBLE_SCOPES.READ_VPS);
    const rows = await listInstances(c.var.db, project.id);
    return c.json({ instances: await presentMany(c, project.id, rows) }, 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/projects/{project}/instances",
    tags,
    ...scoped("ORDER_PRODUCT"),
    summary: "Create an instance from an OS image on one of the org's Proxmox nodes",
    description:
      "Checks the plan against the image's minimums, places the instance on an online Proxmox node that has the image's template and room for the plan, and answers 202 with the queued instance and its `instance.create` job. The root password (given, or made) is shown on the instance until acknowledged. `source.template` and `source.app` answer `source_not_supported` for now.",
    request: { params: ProjectInstancesParams, ...jsonBody(CreateInstanceInput) },
    responses: {
      202: json(z.object({ instance: InstanceDetail, job: Job }), "Queued"),
      ...errorResponsesFor("plan_not_found", "image_not_found", "plan_too_small", "source_not_supported", "name_taken", "no_host_available"),
    },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const imageId = "image" in input.source ? input.source.image : null;
    const projectId = c.req.valid("param").project;
    // The catalog, and what placement reads (readForCreate), beside the authorization: used only after it.
    const [{ project, principal }, plan, image, reads] = await Promise.all([
      authorizeProject(c, projectId, SUBLE_SCOPES.ORDER_PRODUCT),
      findPlanByCode(c.var.db, input.plan),
      imageId ? findImage(c.var.db, imageId) : null,
      readForCreate(c.var.db, projectId, input.name),
    ]);
    if (!plan) throw notFound(`Plan "${input.plan}"`, "plan_not_found");
    if (!imageId) {
      throw new ApiError("source_not_supported", `Instances cannot be created from ${"template" in input.source ? "a project template" : "a one-click app"} yet; use {"image": "<os_image uid>"}`);
    }
    if (!image) throw notFound(`Image "${imageId}"`, "image_not_found");
    if (plan.diskGb < image.minDiskGb) {
      throw new ApiError("plan_too_small", `${image.displayName} needs a ${image.minDiskGb} GB disk; plan ${plan.code} has ${plan.diskGb} GB`);
    }
    const password = input.password ?? generatePassword();
    const { instance, job } = await createInstance(
      c.var.db,
      c.env,
      {
        projectId: project.id,
        orgId: project.orgId,
        name: input.name,
        plan,
        image,
        password,
        sshKeys: input.ssh_keys,
        networks: input.networks,
        backupTier: input.backup_tier,
        createdBy: principal.userId,
      },
      reads,
      // Written with the instance, so nothing is left to write once its job is on the way to the node.
      audited(c, (placed: { id: string; hostId: string }) => ({
        orgId: project.orgId,
        action: "instance.create",
        targetType: "instance",
        targetId: placed.id,
        metadata: { name: input.name, project_id: project.id, plan: plan.code, image: image.id, host_id: placed.hostId },
      })),
    );
    // Shown as written, with the job just made: no second read while its node is being handed the job.
    const shown = presentInstance(instance, { imageNames: new Map([[image.id, image.displayName]]) }, openJobs([job]));
    return c.json({ instance: { ...shown, root_password: password }, job: presentJob(job) }, 202);
  },
);

// ---------------------------------------------------------------- one instance

router.openapi(
  createRoute({
    method: "get",
    path: "/projects/{project}/instances/{instance}",
    tags,
    ...scoped("READ_VPS"),
    summary: "An instance, with its root password until that is acknowledged",
    request: { params: InstanceParams },
    responses: { 200: json(z.object({ instance: InstanceDetail }), "The instance"), ...errors() },
  }),
  async (c) => {
    const { instance } = await loadInstance(c, c.req.valid("param"), "READ_VPS");
    return c.json({ instance: await presentDetail(c, instance) }, 200);
  },
);

router.openapi(
  createRoute({
    method: "patch",
    path: "/projects/{project}/instances/{instance}",
    tags,
    ...scoped("VPS_CONTROL"),
    summary: "Rename an instance (its name in Berth; the VM's own hostname changes at its next rebuild)",
    request: { params: InstanceParams, ...jsonBody(RenameInstanceInput) },
    responses: { 200: json(z.object({ instance: InstanceSchema }), "Renamed"), ...errors("name_taken") },
  }),
  async (c) => {
    const { name } = c.req.valid("json");
    const { project, principal, instance } = await loadInstance(c, c.req.valid("param"), "VPS_CONTROL");
    const renamed = await renameInstance(c.var.db, instance, name, (id) => [
      ...instanceEventOf(c.var.db, "renamed", `Renamed from ${instance.name} to ${name}`, { meta: { from: instance.name, to: name }, userId: principal.userId })(id),
      ...audited(c, () => ({ orgId: project.orgId, action: "instance.rename", targetType: "instance", targetId: id, metadata: { from: instance.name, to: name } }))(id),
    ]);
    const [shown] = await presentMany(c, project.id, [renamed]);
    return c.json({ instance: shown! }, 200);
  },
);

router.openapi(
  createRoute({
    method: "delete",
    path: "/projects/{project}/instances/{instance}",
    tags,
    ...scoped("VPS_DELETE"),
    summary: "Delete an instance: its VM and disks are destroyed by an `instance.delete` job",
    description: "A job still working on the instance is cancelled first. `job` is null only when the instance's node is gone from Berth, and the instance is deleted at once.",
    request: { params: InstanceParams, query: DeleteQuery },
    responses: { 202: json(z.object({ job: Job.nullable() }), "Deletion queued"), ...errors("operation_in_progress") },
  }),
  async (c) => {
    const { project, principal, instance } = await loadInstance(c, c.req.valid("param"), "VPS_DELETE");
    const finalBackup = c.req.valid("query").final_backup === "true";
    if (finalBackup) throw new ApiError("backup_not_supported", "Berth takes no VM backups yet: delete without final_backup=true, or back the VM up on its node first");
    const job = await submitDelete(
      c.var.db,
      c.env,
      instance,
      finalBackup,
      principal.userId,
      audited(c, (id) => ({ orgId: project.orgId, action: "instance.delete", targetType: "instance", targetId: id, metadata: { name: instance.name, final_backup: finalBackup } })),
    );
    return c.json({ job: job ? presentJob(job) : null }, 202);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/projects/{project}/instances/{instance}/password/acknowledge",
    tags,
    ...scoped("READ_VPS"),
    summary: "The root password was seen: it is forgotten and never shown again",
    request: { params: InstanceParams },
    responses: { 204: { description: "Acknowledged" }, ...errors() },
  }),
  async (c) => {
    const { principal, instance } = await loadInstance(c, c.req.valid("param"), "READ_VPS");
    if (instance.rootPasswordCiphertext) {
      await acknowledgeRootPassword(c.var.db, instance.id);
      await recordInstanceEvent(c.var.db, instance.id, "password.acknowledged", "Root password acknowledged", { userId: principal.userId });
    }
    return c.body(null, 204);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/projects/{project}/instances/{instance}/actions",
    tags,
    ...scoped("VPS_CONTROL"),
    summary: "A power action: start (from stopped), stop, shutdown, reboot or reset (from running or installing)",
    request: { params: InstanceParams, ...jsonBody(PowerActionInput) },
    responses: { 202: json(z.object({ job: Job }), "Queued"), ...errors("invalid_state", "operation_in_progress") },
  }),
  async (c) => {
    const { type } = c.req.valid("json");
    const { project, principal, instance } = await loadInstance(c, c.req.valid("param"), "VPS_CONTROL");
    const job = await submitPowerAction(
      c.var.db,
      c.env,
      instance,
      type,
      principal.userId,
      audited(c, (id) => ({ orgId: project.orgId, action: "instance.power", targetType: "instance", targetId: id, metadata: { action: type } })),
    );
    return c.json({ job: presentJob(job) }, 202);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/projects/{project}/instances/{instance}/resize",
    tags,
    ...scoped("VPS_CONTROL"),
    summary: "Move to another plan (cores, memory, disk); the disk only grows. The plan changes when the job succeeds",
    request: { params: InstanceParams, ...jsonBody(ResizeInput) },
    responses: { 202: json(FlatJob, "Queued"), ...errors("plan_not_found", "plan_too_small", "operation_in_progress", "invalid_state") },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { project, principal, instance } = await loadInstance(c, c.req.valid("param"), "VPS_CONTROL");
    const next = await findPlanByCode(c.var.db, input.plan);
    if (!next) throw notFound(`Plan "${input.plan}"`, "plan_not_found");
    const current = await planByCode(c.var.db, instance.planCode);
    if (!current) throw notFound(`Plan "${instance.planCode}"`, "plan_not_found");
    const job = await submitResize(
      c.var.db,
      c.env,
      instance,
      current,
      next,
      principal.userId,
      audited(c, (id) => ({ orgId: project.orgId, action: "instance.resize", targetType: "instance", targetId: id, metadata: { from: current.code, to: next.code } })),
    );
    return c.json(flatJob(job), 202);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/projects/{project}/instances/{instance}/rebuild",
    tags,
    ...scoped("VPS_DELETE"),
    summary: "Wipe and reinstall from an OS image, keeping the vmid and address; a new root password is shown until acknowledged",
    request: { params: InstanceParams, ...jsonBody(RebuildInput) },
    responses: { 202: json(FlatJob, "Queued"), ...errors("image_not_found", "plan_too_small", "source_not_supported", "backup_not_supported", "operation_in_progress", "invalid_state") },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { project, principal, instance } = await loadInstance(c, c.req.valid("param"), "VPS_DELETE");
    if (!("image" in input.source)) throw new ApiError("source_not_supported", 'Instances cannot be rebuilt from a project template yet; use {"image": "<os_image uid>"}');
    const image = await findImage(c.var.db, input.source.image);
    if (!image) throw notFound(`Image "${input.source.image}"`, "image_not_found");
    const plan = await planByCode(c.var.db, instance.planCode);
    if (!plan) throw notFound(`Plan "${instance.planCode}"`, "plan_not_found");
    const job = await submitRebuild(c.var.db, c.env, instance, {
      image,
      plan,
      sshKeys: input.sshKeys,
      backup: input.backup !== false,
      password: generatePassword(),
      userId: principal.userId,
      also: audited(c, (id) => ({ orgId: project.orgId, action: "instance.rebuild", targetType: "instance", targetId: id, metadata: { image: image.id } })),
    });
    return c.json(flatJob(job), 202);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/projects/{project}/instances/{instance}/password",
    tags,
    ...scoped("VPS_CONTROL"),
    summary: "Set a new root password (given, or made); it is answered here once and never shown again",
    request: { params: InstanceParams, ...jsonBody(PasswordInput) },
    responses: { 202: json(FlatJob.extend({ password: z.string() }), "Queued, with the new password"), ...errors("operation_in_progress", "invalid_state") },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { project, principal, instance } = await loadInstance(c, c.req.valid("param"), "VPS_CONTROL");
    const image = instance.imageId ? await findImage(c.var.db, instance.imageId) : undefined;
    const password = input.password ?? generatePassword();
    const job = await submitPasswordReset(
      c.var.db,
      c.env,
      instance,
      image?.defaultUser ?? "root",
      password,
      principal.userId,
      audited(c, (id) => ({ orgId: project.orgId, action: "instance.password_reset", targetType: "instance", targetId: id })),
    );
    return c.json({ ...flatJob(job), password }, 202);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/projects/{project}/instances/{instance}/ssh-key",
    tags,
    ...scoped("VPS_CONTROL"),
    summary: "Authorize an SSH public key for the image's default user on the running VM (idempotent)",
    description: `Waits up to ${SSH_KEY_WAIT_MS / 1000} s for the node; if the job has not ended by then, answers 202 with it to poll.`,
    request: { params: InstanceParams, ...jsonBody(SshKeyInput) },
    responses: {
      200: json(z.object({ added: z.boolean(), alreadyPresent: z.boolean(), user: z.string(), ip: z.string().nullable() }), "Authorized"),
      202: json(z.object({ job: Job }), "Still running: poll the job"),
      ...errors("invalid_key", "invalid_state", "operation_in_progress", "agent_error"),
    },
  }),
  async (c) => {
    const { publicKey } = c.req.valid("json");
    const { project, principal, instance } = await loadInstance(c, c.req.valid("param"), "VPS_CONTROL");
    const image = instance.imageId ? await findImage(c.var.db, instance.imageId) : undefined;
    const user = image?.defaultUser ?? "root";
    const job = await submitSshKey(c.var.db, c.env, instance, user, publicKey, principal.userId);
    const ended = await projectJobs(c.env, projectScope(project.id)).waitForJob(job.id, SSH_KEY_WAIT_MS);
    if (!ended || !isTerminal(ended.status)) return c.json({ job: presentJob(ended ?? job) }, 202);
    if (ended.status !== "succeeded") throw new ApiError("agent_error", `The node could not authorize the key: ${ended.error ?? ended.status}`);
    const result = InstanceJobResult.safeParse(ended.result ?? {});
    const alreadyPresent = result.success ? Boolean(result.data.already_present) : false;
    const after = (await findInstance(c.var.db, project.id, instance.id)) ?? instance;
    return c.json({ added: !alreadyPresent, alreadyPresent, user, ip: after.ipv4 }, 200);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/projects/{project}/instances/{instance}/events",
    tags,
    ...scoped("READ_VPS"),
    summary: "The instance's activity feed, newest first, a page at a time",
    request: { params: InstanceParams, query: EventsQuery },
    responses: { 200: json(z.object({ events: z.array(InstanceEvent), next_cursor: z.string().nullable() }), "Events"), ...errors() },
  }),
  async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const { instance } = await loadInstance(c, c.req.valid("param"), "READ_VPS");
    return c.json(await listInstanceEvents(c.var.db, instance.id, limit, decodeCursor(cursor)), 200);
  },
);

export default router;
