/**
 * Hosts of an org: enrol (a single-use join token for the agent), list with
 * liveness and facts, delete (the credential dies at once), and host jobs:
 * `exec` runs a command on the host with its output kept as job logs.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createRouter } from "../app";
import { authorizeOrg } from "../auth/access";
import { HOST_KINDS } from "../db/schema";
import { hostScope, hostMailbox, projectJobs } from "../durable/clients";
import type { AppEnv } from "../env";
import { ApiError, errorResponses, notFound, errorResponsesFor } from "../lib/errors";
import { audited, recordAudit } from "../services/audit";
import { createHost, deleteHost, findHost, listHosts, presentHost, rotateJoinToken } from "../services/hosts";
import { presentJob, presentLogs, submitHostExec } from "../services/jobs";
import { Job, JobLogLine, json, jsonBody, name, Ok, OrgSlugParams, slugParam, WaitQuery } from "./schemas";
import { isTerminal } from "../jobs/states";

const router = createRouter();
const tags = ["Hosts"];

const Host = z
  .object({
    id: z.string().openapi({ example: "hst_4kd9s0a1b2c3d4e5" }),
    uid: z.string(),
    org_id: z.string(),
    name: z.string(),
    kind: z.enum(HOST_KINDS),
    region: z.string().nullable(),
    labels: z.record(z.string(), z.string()),
    status: z.enum(["online", "offline"]),
    connected: z.boolean().optional().openapi({ description: "The agent holds its WebSocket right now (otherwise it claims work over HTTP)." }),
    last_seen_at: z.string().nullable(),
    joined_at: z.string().nullable(),
    agent_version: z.string().nullable(),
    facts: z.record(z.string(), z.unknown()).nullable().openapi({ description: "hostname, os, arch, cpus, memory_bytes, disk_bytes, disk_free_bytes, docker_version, proxmox_version" }),
    created_at: z.string(),
  })
  .openapi("Host");

const JoinToken = {
  join_token: z.string().openapi({ description: "Single use; give it to the agent once. Shown only here." }),
  join_token_expires_at: z.string(),
  agent_command: z.string().openapi({ description: "How to start the agent with this token" }),
};

const HostParams = OrgSlugParams.extend({ id: slugParam("id").openapi({ description: "Host id (hst_…)" }) });
const HostJobParams = HostParams.extend({ job: slugParam("job").openapi({ description: "Job id (job_…)" }) });

const labels = z
  .record(z.string().min(1).max(63).regex(/^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$/i, "label keys are letters, digits, '.', '_' and '-'"), z.string().max(255))
  .refine((l) => Object.keys(l).length <= 32, "at most 32 labels");

function agentCommand(c: Context<AppEnv>, token: string) {
  return `npm run agent -- --url ${c.env.PUBLIC_URL || new URL(c.req.url).origin} --join-token ${token}`;
}

async function loadHost(c: Context<AppEnv>, orgId: string, id: string, opts: { includeDeleted?: boolean } = {}) {
  const row = await findHost(c.var.db, orgId, id, opts);
  if (!row) throw notFound("Host", "host_not_found");
  return row;
}

async function withConnection(c: Context<AppEnv>, row: Parameters<typeof presentHost>[1]) {
  const status = row.joinedAt ? await hostMailbox(c.env, row.id).status().catch(() => null) : null;
  return { ...presentHost(c.env, row), connected: status?.connected ?? false };
}

router.openapi(
  createRoute({
    method: "get",
    path: "/org/{slug}/hosts",
    tags,
    summary: "The org's hosts, with liveness and what their agents reported",
    request: { params: OrgSlugParams },
    responses: { 200: json(z.object({ hosts: z.array(Host) }), "Hosts"), ...errorResponses },
  }),
  async (c) => {
    const { org } = await authorizeOrg(c, c.req.valid("param").slug, "host:read");
    const rows = await listHosts(c.var.db, org.id);
    return c.json({ hosts: await Promise.all(rows.map((r) => withConnection(c, r))) }, 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/org/{slug}/hosts",
    tags,
    summary: "Enrol a host; answers a single-use join token for its agent",
    request: {
      params: OrgSlugParams,
      ...jsonBody(z.object({ name: name(100), kind: z.enum(HOST_KINDS), region: name(64).optional(), labels: labels.optional() })),
    },
    responses: { 201: json(z.object({ host: Host, ...JoinToken }), "Enrolled"), ...errorResponses },
  }),
  async (c) => {
    const { org, principal } = await authorizeOrg(c, c.req.valid("param").slug, "host:manage");
    const input = c.req.valid("json");
    const { row, joinToken, joinTokenExpiresAt } = await createHost(
      c.var.db,
      { orgId: org.id, name: input.name, kind: input.kind, region: input.region, labels: input.labels, createdBy: principal.userId },
      audited(c, (id) => ({ orgId: org.id, action: "host.create", targetType: "host", targetId: id, metadata: { name: input.name, kind: input.kind } })),
    );
    return c.json(
      { host: presentHost(c.env, row), join_token: joinToken, join_token_expires_at: joinTokenExpiresAt.toISOString(), agent_command: agentCommand(c, joinToken) },
      201,
    );
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/org/{slug}/hosts/{id}/events",
    tags,
    summary: "WebSocket: the host's agent connecting, beating and leaving, as it happens",
    description:
      "Upgrade to a WebSocket (credential as cookie, bearer or `?token=`). The first frame is `{type:\"host.status\", connected, at}`; " +
      "then `host.connected` when the agent opens its socket (its heartbeat is recorded first, so the host reads `online`), " +
      "`host.heartbeat` at each heartbeat over the socket and `host.disconnected` when the socket closes, each `{type, connected, at}`. " +
      "An agent that only claims work over HTTP sends none of these: read the host for its status. The socket closes when the host is deleted.",
    request: { params: HostParams },
    responses: { 101: { description: "Switching to the WebSocket" }, ...errorResponsesFor("host_not_found", "upgrade_required") },
  }),
  async (c) => {
    const { slug, id } = c.req.valid("param");
    const { org } = await authorizeOrg(c, slug, "host:read");
    const row = await loadHost(c, org.id, id);
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new ApiError("upgrade_required", "This endpoint is a WebSocket; connect with an Upgrade: websocket request");
    }
    const headers = new Headers(c.req.raw.headers);
    headers.delete("x-berth-host-id");
    headers.set("x-berth-watch", "1");
    return hostMailbox(c.env, row.id).fetch(new Request(c.req.url, { headers }));
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/org/{slug}/hosts/{id}",
    tags,
    summary: "One host",
    request: { params: HostParams },
    responses: { 200: json(z.object({ host: Host }), "The host"), ...errorResponses },
  }),
  async (c) => {
    const { slug, id } = c.req.valid("param");
    const { org } = await authorizeOrg(c, slug, "host:read");
    return c.json({ host: await withConnection(c, await loadHost(c, org.id, id)) }, 200);
  },
);

router.openapi(
  createRoute({
    method: "delete",
    path: "/org/{slug}/hosts/{id}",
    tags,
    summary: "Delete a host: its agent's credential stops working at once and its open jobs fail",
    request: { params: HostParams },
    responses: { 200: json(Ok, "Deleted"), ...errorResponses },
  }),
  async (c) => {
    const { slug, id } = c.req.valid("param");
    const { org } = await authorizeOrg(c, slug, "host:manage");
    const row = await loadHost(c, org.id, id);
    await deleteHost(c.var.db, c.env, row, audited(c, () => ({ orgId: org.id, action: "host.delete", targetType: "host", targetId: row.id, metadata: { name: row.name } })));
    return c.json({ ok: true }, 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/org/{slug}/hosts/{id}/join-token",
    tags,
    summary: "A new join token for the host (to reinstall its agent)",
    request: { params: HostParams },
    responses: { 201: json(z.object(JoinToken), "A new single-use token"), ...errorResponses },
  }),
  async (c) => {
    const { slug, id } = c.req.valid("param");
    const { org } = await authorizeOrg(c, slug, "host:manage");
    const row = await loadHost(c, org.id, id);
    const { joinToken, joinTokenExpiresAt } = await rotateJoinToken(c.var.db, row.id, audited(c, () => ({ orgId: org.id, action: "host.join_token", targetType: "host", targetId: row.id })));
    return c.json({ join_token: joinToken, join_token_expires_at: joinTokenExpiresAt.toISOString(), agent_command: agentCommand(c, joinToken) }, 201);
  },
);

// ---------------------------------------------------------------- host jobs

router.openapi(
  createRoute({
    method: "post",
    path: "/org/{slug}/hosts/{id}/exec",
    tags,
    summary: "Run a shell command on the host as a job; its output becomes the job's logs",
    request: {
      params: HostParams,
      ...jsonBody(z.object({ command: z.string().min(1).max(8192), timeout_seconds: z.number().int().min(1).max(3600).default(300) })),
    },
    responses: { 202: json(z.object({ job: Job }), "Accepted; follow the job"), ...errorResponses },
  }),
  async (c) => {
    const { slug, id } = c.req.valid("param");
    const { org } = await authorizeOrg(c, slug, "host:manage");
    const row = await loadHost(c, org.id, id);
    const input = c.req.valid("json");
    const job = await submitHostExec(c.env, row.id, input.command, input.timeout_seconds);
    // A job on the host, not a D1 write: its audit row is written on its own.
    // The command itself may hold secrets: the audit keeps only its length.
    await recordAudit(c, { orgId: org.id, action: "host.exec", targetType: "job", targetId: job.id, metadata: { host_id: row.id, command_length: input.command.length } });
    return c.json({ job: presentJob(job) }, 202);
  },
);

/** A job of the org's host; a deleted host's jobs stay readable, so the reason they ended can be seen. */
async function loadHostJob(c: Context<AppEnv>, permission: "host:read" | "host:manage") {
  const { slug, id, job } = c.req.param() as { slug: string; id: string; job: string };
  const { org } = await authorizeOrg(c, slug, permission);
  const row = await loadHost(c, org.id, id, { includeDeleted: true });
  const jobs = projectJobs(c.env, hostScope(row.id));
  const record = await jobs.getJob(job);
  if (!record) throw notFound("Job", "job_not_found");
  return { jobs, record, org };
}

router.openapi(
  createRoute({
    method: "get",
    path: "/org/{slug}/hosts/{id}/jobs",
    tags,
    summary: "The host's own 50 newest jobs",
    request: { params: HostParams },
    responses: { 200: json(z.object({ jobs: z.array(Job) }), "Jobs"), ...errorResponses },
  }),
  async (c) => {
    const { slug, id } = c.req.valid("param");
    const { org } = await authorizeOrg(c, slug, "host:read");
    const row = await loadHost(c, org.id, id);
    const jobs = await projectJobs(c.env, hostScope(row.id)).listJobs({ limit: 50 });
    return c.json({ jobs: jobs.map(presentJob) }, 200);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/org/{slug}/hosts/{id}/jobs/{job}",
    tags,
    summary: "One host job",
    request: { params: HostJobParams },
    responses: { 200: json(z.object({ job: Job }), "The job"), ...errorResponses },
  }),
  async (c) => c.json({ job: presentJob((await loadHostJob(c, "host:read")).record) }, 200),
);

router.openapi(
  createRoute({
    method: "get",
    path: "/org/{slug}/hosts/{id}/jobs/{job}/logs",
    tags,
    summary: "The host job's output (owner and admin: it is a command's raw output)",
    request: { params: HostJobParams },
    responses: { 200: json(z.object({ logs: z.array(JobLogLine) }), "Log lines"), ...errorResponses },
  }),
  async (c) => {
    const { jobs, record } = await loadHostJob(c, "host:manage");
    return c.json({ logs: presentLogs(await jobs.getLogs(record.id)) as z.infer<typeof JobLogLine>[] }, 200);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/org/{slug}/hosts/{id}/jobs/{job}/wait",
    tags,
    summary: "Long-poll until the host job ends or `timeout` seconds pass (at most 60)",
    request: { params: HostJobParams, query: WaitQuery },
    responses: { 200: json(z.object({ job: Job, done: z.boolean() }), "The job as it is when the wait ends"), ...errorResponses },
  }),
  async (c) => {
    const { jobs, record } = await loadHostJob(c, "host:read");
    const after = (await jobs.waitForJob(record.id, c.req.valid("query").timeout * 1000)) ?? record;
    return c.json({ job: presentJob(after), done: isTerminal(after.status) }, 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/org/{slug}/hosts/{id}/jobs/{job}/cancel",
    tags,
    summary: "Cancel a host job; the agent stops the command",
    request: { params: HostJobParams },
    responses: { 200: json(z.object({ job: Job }), "Cancelled"), ...errorResponsesFor("host_not_found", "job_not_found", "job_finished") },
  }),
  async (c) => {
    const { jobs, record, org } = await loadHostJob(c, "host:manage");
    if (isTerminal(record.status)) throw new ApiError("job_finished", `The job already ended (${record.status})`);
    const after = await jobs.cancelJob(record.id);
    // The job's state lives in its project's Durable Object: the audit row is written on its own.
    await recordAudit(c, { orgId: org.id, action: "job.cancel", targetType: "job", targetId: record.id });
    return c.json({ job: presentJob(after!) }, 200);
  },
);

export default router;
