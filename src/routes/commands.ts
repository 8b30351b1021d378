/**
 * DevPocket's commands: `POST /commands/execute` runs a command over one of your SSH profiles
 * as an `ssh.exec` job on a host of the org, `GET /commands/history` pages through yours,
 * `GET /commands/{command_id}` and `POST /commands/{command_id}/rerun`.
 *
 * Commands run over SSH only. A command straight on a host would be root on that host for any
 * developer; that stays `POST /org/{slug}/hosts/{id}/exec`, for owners and admins. `host_id`
 * here only picks the host whose agent runs the SSH client.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createRouter } from "../app";
import { authorizeOrg, requirePrincipal } from "../auth/access";
import { COMMAND_STATUSES } from "../db/schema";
import { hostScope, projectJobs } from "../durable/clients";
import type { AppEnv } from "../env";
import { ApiError, errorResponsesFor, notFound } from "../lib/errors";
import { recordAudit } from "../services/audit";
import { findOrgById } from "../services/orgs";
import {
  clientHost,
  type CommandRow,
  commandHistory,
  createCommand,
  failCommand,
  findCommand,
  findProfile,
  presentCommand,
  settleFromJob,
  type SshProfileRow,
  submitSsh,
  waitForJob,
} from "../services/ssh";
import { json, jsonBody, slugParam } from "./schemas";
import { execOrgIds, loadProfile } from "./ssh";

const router = createRouter();
const tags = ["Terminal"];

export const Command = z
  .object({
    id: z.string().openapi({ example: "cmd_4kd9s0a1b2c3d4e5" }),
    session_id: z.string().nullable(),
    command: z.string(),
    output: z.string().openapi({ description: "stdout followed by stderr" }),
    stdout: z.string(),
    stderr: z.string(),
    output_truncated: z.boolean().openapi({ description: "A stream went past the kept size (COMMAND_OUTPUT_MAX_BYTES) and was cut" }),
    status: z.enum(COMMAND_STATUSES),
    exit_code: z.number().int().nullable(),
    duration_ms: z.number().int().nullable(),
    error: z.string().nullable(),
    profile_id: z.string().nullable(),
    host_id: z.string().nullable(),
    job_id: z.string().nullable(),
    rerun_of: z.string().nullable(),
    timeout: z.number().int(),
    created_at: z.string(),
    executed_at: z.string().nullable(),
    finished_at: z.string().nullable(),
  })
  .openapi("Command");

const CommandParams = z.object({ command_id: slugParam("command_id").openapi({ description: "Command id (cmd_…)" }) });
const wait = z
  .number()
  .int()
  .min(0)
  .max(60)
  .optional()
  .openapi({ description: "Seconds to wait for the command to end before answering (default: its timeout plus 5, at most 30); 0 answers at once" });
const orgField = z.string().max(100).optional().openapi({ description: "Org slug or id; defaults to the key's org or your personal org" });

const runErrors = errorResponsesFor("profile_not_found", "command_not_found", "host_not_found", "no_host_available", "target_required");

/** The caller's command in an org where they may run commands; anyone else's is 404. */
async function loadCommand(c: Context<AppEnv>, id: string): Promise<CommandRow> {
  const p = requirePrincipal(c);
  const row = await findCommand(c.var.db, id);
  const owner = row && row.userId === p.userId ? await findOrgById(c.var.db, row.orgId) : null;
  if (!row || !owner) throw notFound("Command", "command_not_found");
  await authorizeOrg(c, owner.slug, "command:exec").catch((err) => {
    if (err?.status === 404) throw notFound("Command", "command_not_found");
    throw err;
  });
  return row;
}

/** Runs `text` over `profile` as a new command, waits as asked, and answers it as it then is. */
async function run(
  c: Context<AppEnv>,
  profile: SshProfileRow,
  input: { command: string; timeout: number; sessionId: string | null; hostId?: string | null; wait?: number; rerunOf?: string },
) {
  const via = await clientHost(c.var.db, c.env, profile.orgId, input.hostId ?? profile.viaHostId);
  const principal = requirePrincipal(c);
  const row = await createCommand(c.var.db, {
    orgId: profile.orgId,
    userId: principal.userId,
    profileId: profile.id,
    hostId: via,
    sessionId: input.sessionId,
    command: input.command,
    timeoutSeconds: input.timeout,
    rerunOf: input.rerunOf ?? null,
  });
  try {
    await submitSsh(c.env, via, profile, { id: row.id, jobId: row.jobId!, command: input.command, timeoutSeconds: input.timeout });
  } catch (err) {
    await failCommand(c.var.db, row.id, "Could not queue the command");
    throw err;
  }
  // The command may hold secrets: the audit keeps its length only (as host exec does).
  await recordAudit(c, {
    orgId: profile.orgId,
    action: input.rerunOf ? "command.rerun" : "command.execute",
    targetType: "command",
    targetId: row.id,
    metadata: { profile_id: profile.id, host_id: via, job_id: row.jobId, command_length: input.command.length },
  });
  const seconds = input.wait ?? Math.min(input.timeout + 5, 30);
  const job = await waitForJob(c.env, via, row.jobId!, seconds);
  return settleFromJob(c.var.db, (await findCommand(c.var.db, row.id)) ?? row, job);
}

router.openapi(
  createRoute({
    method: "post",
    path: "/commands/execute",
    tags,
    summary: "Run a command over one of your SSH profiles, from a host of the org; answers with its output when it ends in time",
    description:
      "Runs as an `ssh.exec` job. The answer waits up to `wait` seconds: a command still running is answered with status `pending` or `running`; read it later at `/commands/{command_id}`. " +
      "A non-zero exit status is status `error` with its `exit_code`. Needs `command:exec` (owner, admin, developer; full-scope keys).",
    request: jsonBody(
      z.object({
        command: z.string().min(1).max(8192),
        session_id: z.string().max(128).optional().openapi({ description: "Your own label for grouping the history (DevPocket's terminal session)" }),
        timeout: z.number().int().min(1).max(3600).default(30).openapi({ description: "Seconds the command may run" }),
        profile_id: z.string().max(64).optional().openapi({ description: "The SSH profile to run it over (required)" }),
        host_id: z.string().max(64).optional().openapi({ description: "The host whose agent runs the SSH client (default: the profile's, else any online host)" }),
        wait,
      }),
    ),
    responses: { 200: json(Command, "The command, ended or still running"), ...runErrors },
  }),
  async (c) => {
    const input = c.req.valid("json");
    if (!input.profile_id) {
      requirePrincipal(c);
      throw new ApiError(
        "target_required",
        input.host_id
          ? "Commands run over SSH: name a profile (profile_id). Running straight on a host is POST /org/{slug}/hosts/{id}/exec, for owners and admins"
          : "Name the SSH profile to run the command over (profile_id)",
      );
    }
    const profile = await loadProfile(c, input.profile_id);
    const row = await run(c, profile, { command: input.command, timeout: input.timeout, sessionId: input.session_id ?? null, hostId: input.host_id, wait: input.wait });
    return c.json(presentCommand(row), 200);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/commands/history",
    tags,
    summary: "Your commands, newest first: in the org named, else in every org where you may run commands",
    request: {
      query: z.object({
        limit: z.coerce.number().int().min(1).max(1000).default(100).openapi({ param: { name: "limit", in: "query" } }),
        offset: z.coerce.number().int().min(0).max(1_000_000).default(0).openapi({ param: { name: "offset", in: "query" } }),
        session_id: z.string().max(128).optional().openapi({ param: { name: "session_id", in: "query" } }),
        status: z.enum(COMMAND_STATUSES).optional().openapi({ param: { name: "status", in: "query" } }),
        search: z.string().min(1).max(200).optional().openapi({ param: { name: "search", in: "query" }, description: "Text the command contains" }),
        profile_id: z.string().max(64).optional().openapi({ param: { name: "profile_id", in: "query" } }),
        org: orgField.openapi({ param: { name: "org", in: "query" } }),
      }),
    },
    responses: {
      200: json(z.object({ commands: z.array(Command), total: z.number().int(), has_more: z.boolean(), limit: z.number().int(), offset: z.number().int() }), "A page of the history"),
      ...errorResponsesFor(),
    },
  }),
  async (c) => {
    const q = c.req.valid("query");
    const orgIds = await execOrgIds(c, q.org);
    const { rows, total } = await commandHistory(c.var.db, orgIds, requirePrincipal(c).userId, q);
    return c.json({ commands: rows.map(presentCommand), total, has_more: q.offset + rows.length < total, limit: q.limit, offset: q.offset }, 200);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/commands/{command_id}",
    tags,
    summary: "One of your commands, with its output",
    request: { params: CommandParams },
    responses: { 200: json(Command, "The command"), ...errorResponsesFor("command_not_found") },
  }),
  async (c) => {
    let row = await loadCommand(c, c.req.valid("param").command_id);
    if ((row.status === "pending" || row.status === "running") && row.hostId && row.jobId) {
      row = await settleFromJob(c.var.db, row, await projectJobs(c.env, hostScope(row.hostId)).getJob(row.jobId));
    }
    return c.json(presentCommand(row), 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/commands/{command_id}/rerun",
    tags,
    summary: "Run one of your commands again, over the same profile, as a new command",
    request: {
      params: CommandParams,
      body: { content: { "application/json": { schema: z.object({ wait, host_id: z.string().max(64).optional() }) } }, required: false },
    },
    responses: { 200: json(Command, "The new command, ended or still running"), ...runErrors },
  }),
  async (c) => {
    const original = await loadCommand(c, c.req.valid("param").command_id);
    const body = (c.req.valid("json") ?? {}) as { wait?: number; host_id?: string };
    const profile = original.profileId ? await findProfile(c.var.db, original.profileId) : null;
    if (!profile || profile.userId !== original.userId) throw notFound("The command's SSH profile (deleted)", "profile_not_found");
    const row = await run(c, profile, { command: original.command, timeout: original.timeoutSeconds, sessionId: original.sessionId, hostId: body.host_id, wait: body.wait, rerunOf: original.id });
    return c.json(presentCommand(row), 200);
  },
);

export default router;
