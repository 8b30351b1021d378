/**
 * The agent's side of the API. A host credential (`bha_…`, from the join
 * exchange) is good here and nowhere else, for its own host only. Reports
 * about a job carry the lease they were made under; a stale lease is `409
 * lease_stale` and the agent drops that work.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { Context, MiddlewareHandler } from "hono";
import { createRouter } from "../app";
import { app } from "../db/schema";
import { hostMailbox, terminalSession } from "../durable/clients";
import type { AppEnv } from "../env";
import type { ErrorCode } from "../lib/error-codes";
import { buildToken } from "../services/github";
import { ApiError, errorResponses, errorResponsesFor, notFound } from "../lib/errors";
import {
  AppReport, ClaimRequest, CommandOutputReport, SshSecrets, TERMINAL_SESSION_ID, ClaimResponse, FinishRequest, HeartbeatRequest, InstanceReport, JoinRequest, JoinResponse, LogAppendRequest, LogAppendResponse, RenewRequest,
} from "../protocol/agent";
import { answerLeaseReport, type LeaseResult } from "../protocol/lease-answers";
import { applySleepReport } from "../services/app-sleep";
import { applyAppReport } from "../services/app-reports";
import { superviseReplicas } from "../services/replicas";
import { applyInstanceReport } from "../services/instance-reports";
import { readAppEnvVars } from "../services/apps";
import { uploadKey } from "../services/image-uploads";
import { instanceJobPassword } from "../services/instances";
import { registryAuthFor } from "../services/registries";
import { agentSettings } from "../services/host-settings";
import { commandOutputMaxBytes, findProfile, readProfileSecrets, recordCommandOutput } from "../services/ssh";
import { hostByCredential, joinHost, recordHeartbeat, type HostRow } from "../services/hosts";
import { json, jsonBody, Ok, slugParam } from "./schemas";

type AgentEnv = AppEnv & { Variables: AppEnv["Variables"] & { host: HostRow } };

const router = createRouter();
const tags = ["Agent"];
const security = [{ agent: [] }];

const conflict = errorResponsesFor("lease_stale");

/** Resolves the host from its credential; anything else is 401 `invalid_host_credential`, which the agent treats as final. */
const hostAuth: MiddlewareHandler<AgentEnv> = async (c, next) => {
  const header = c.req.header("authorization") ?? "";
  const credential = header.replace(/^bearer\s+/i, "").trim();
  const row = credential ? await hostByCredential(c.var.db, credential) : null;
  if (!row) {
    throw new ApiError("invalid_host_credential", "This host credential is not valid: the host was deleted or its agent re-joined. Enrol the host again.");
  }
  c.set("host", row);
  await next();
};

for (const path of ["/agent/connect", "/agent/heartbeat", "/agent/claim", "/agent/leases/*", "/agent/apps/*", "/agent/instances/*", "/agent/terminals/*"]) router.use(path, hostAuth);

const hostOf = (c: Context) => (c as unknown as Context<AgentEnv>).var.host;
const LeaseParams = z.object({ lease: slugParam("lease").openapi({ description: "Lease id (lse_…)" }) });

router.openapi(
  createRoute({
    method: "post",
    path: "/agent/join",
    tags,
    security: [],
    summary: "Exchange a single-use join token for the host's credential",
    request: jsonBody(JoinRequest),
    responses: { 201: json(JoinResponse, "Joined; keep the credential"), ...errorResponses },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const outcome = await joinHost(c.var.db, input.join_token, input.agent_version, input.facts);
    if (!outcome.ok) throw new ApiError(outcome.code, outcome.message);
    return c.json({ host_id: outcome.host.id, credential: outcome.credential, heartbeat_interval: agentSettings(c.env).heartbeatSeconds }, 201);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/agent/connect",
    tags,
    security,
    summary: "WebSocket to the host's mailbox: leases are pushed as they arrive",
    description: "After upgrading, send `hello` {agent_version, facts, held}; the server answers `hello` and pushes `lease` and `cancel` messages. Send `heartbeat` every `heartbeat_interval` seconds.",
    responses: { 101: { description: "Switching to the WebSocket" }, ...errorResponsesFor("upgrade_required") },
  }),
  async (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new ApiError("upgrade_required", "Connect with an Upgrade: websocket request");
    }
    const host = hostOf(c);
    const headers = new Headers(c.req.raw.headers);
    headers.set("x-berth-host-id", host.id);
    return hostMailbox(c.env, host.id).fetch(new Request(c.req.url, { headers }));
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/agent/terminals/{session}",
    tags,
    security,
    summary: "WebSocket: one terminal session's bytes, after `terminal_open` on the host's socket",
    description:
      "Binary frames are the bytes (the TTY's output up, the user's input down); text frames are control messages " +
      "(`TerminalAgentFrame` up, `TerminalServerFrame` down, src/protocol/agent.ts). Only the host the session was opened on may connect.",
    request: { params: z.object({ session: z.string().regex(TERMINAL_SESSION_ID).openapi({ param: { name: "session", in: "path" }, description: "Terminal session id (trm_…)" }) }) },
    responses: { 101: { description: "Switching to the WebSocket" }, ...errorResponsesFor("upgrade_required") },
  }),
  async (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new ApiError("upgrade_required", "Connect with an Upgrade: websocket request");
    }
    const headers = new Headers(c.req.raw.headers);
    headers.set("x-berth-host-id", hostOf(c).id);
    return terminalSession(c.env, c.req.valid("param").session).fetch(new Request(c.req.url, { headers }));
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/agent/terminals/{session}/secrets",
    tags,
    security,
    summary: "An SSH terminal session's credentials, while it starts, for the host it runs on",
    description: "Credentials never travel in `terminal_open`; the agent fetches them here over its own credential, and only while the session waits for it.",
    request: { params: z.object({ session: z.string().regex(TERMINAL_SESSION_ID).openapi({ param: { name: "session", in: "path" }, description: "Terminal session id (trm_…)" }) }) },
    responses: { 200: json(z.object({ ssh: SshSecrets }), "The credentials"), ...errorResponsesFor("not_found") },
  }),
  async (c) => {
    const ssh = await terminalSession(c.env, c.req.valid("param").session).sshSecrets(hostOf(c).id);
    if (!ssh) throw notFound("Starting SSH terminal session");
    return c.json({ ssh }, 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/agent/heartbeat",
    tags,
    security,
    summary: "The host is alive; refresh its facts",
    request: jsonBody(HeartbeatRequest),
    responses: { 200: json(z.object({ ok: z.boolean(), heartbeat_interval: z.number() }), "Noted"), ...errorResponses },
  }),
  async (c) => {
    const input = c.req.valid("json");
    await recordHeartbeat(c.var.db, hostOf(c).id, input.agent_version, input.facts);
    return c.json({ ok: true, heartbeat_interval: agentSettings(c.env).heartbeatSeconds }, 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/agent/claim",
    tags,
    security,
    summary: "Claim work over HTTP (when the WebSocket is down), waiting up to `wait` seconds",
    description: "Name every lease you still work on in `held`; any other lease of this host is given up and its job handed out again.",
    request: jsonBody(ClaimRequest),
    responses: { 200: json(ClaimResponse, "Leases (possibly none)"), ...errorResponses },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const leases = await hostMailbox(c.env, hostOf(c).id).claim(input.held, input.wait * 1000);
    if (!leases) throw new ApiError("invalid_host_credential", "The host was deleted");
    return c.json({ leases }, 200);
  },
);

/** The same answer the HostDO gives the socket path, as a response or an error envelope. */
function answer(c: Context<AppEnv>, res: LeaseResult, ok: () => Record<string, unknown>) {
  const a = answerLeaseReport(res, ok);
  if (a.status !== 200) throw new ApiError(a.body.error.code as ErrorCode, a.body.error.message);
  return c.json(a.body as never, 200);
}

router.openapi(
  createRoute({
    method: "post",
    path: "/agent/leases/{lease}/start",
    tags,
    security,
    summary: "The agent starts the leased work",
    request: { params: LeaseParams },
    responses: { 200: json(Ok, "Started"), ...conflict },
  }),
  async (c) => {
    return answer(c, await hostMailbox(c.env, hostOf(c).id).start(c.req.valid("param").lease), () => ({ ok: true }));
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/agent/leases/{lease}/renew",
    tags,
    security,
    summary: "Keep the lease alive (at a third of its TTL), optionally with progress",
    request: { params: LeaseParams, ...jsonBody(RenewRequest) },
    responses: { 200: json(z.object({ ok: z.boolean(), lease_ttl: z.number() }), "Renewed"), ...conflict },
  }),
  async (c) => {
    const res = await hostMailbox(c.env, hostOf(c).id).renew(c.req.valid("param").lease, c.req.valid("json").progress);
    return answer(c, res, () => ({ ok: true, lease_ttl: res.lease_ttl ?? 0 }));
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/agent/leases/{lease}/logs",
    tags,
    security,
    summary: "Append output chunks (deduplicated by offset; a gap answers where to resend from)",
    request: { params: LeaseParams, ...jsonBody(LogAppendRequest) },
    responses: { 200: json(LogAppendResponse, "What the control plane now holds per stream"), ...conflict },
  }),
  async (c) => {
    const res = await hostMailbox(c.env, hostOf(c).id).appendLogs(c.req.valid("param").lease, c.req.valid("json").chunks);
    return answer(c, res, () => ({ expected: res.expected, gap: res.gap }));
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/agent/leases/{lease}/finish",
    tags,
    security,
    summary: "Report the outcome; the job ends once",
    request: { params: LeaseParams, ...jsonBody(FinishRequest) },
    responses: { 200: json(Ok, "Recorded"), ...conflict },
  }),
  async (c) => {
    return answer(c, await hostMailbox(c.env, hostOf(c).id).finish(c.req.valid("param").lease, c.req.valid("json")), () => ({ ok: true }));
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/agent/leases/{lease}/command-output",
    tags,
    security,
    summary: "What an `ssh.exec` command printed, sent once before its finish report",
    request: { params: LeaseParams, ...jsonBody(CommandOutputReport) },
    responses: { 200: json(Ok, "Recorded"), ...conflict },
  }),
  async (c) => {
    const leased = await hostMailbox(c.env, hostOf(c).id).leased(c.req.valid("param").lease);
    if (!leased) throw new ApiError("lease_stale", "This lease is no longer valid; drop the work");
    if (leased.payload.type !== "ssh.exec" || !leased.payload.command_id) throw new ApiError("invalid_request", "This lease is not for a command");
    await recordCommandOutput(c.var.db, leased.payload.command_id, leased.job_id, c.req.valid("json"), commandOutputMaxBytes(c.env));
    return c.json({ ok: true }, 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/agent/apps/report",
    tags,
    security,
    summary: "What the agent sees of its apps' containers (on Docker events and every 30 s, with stats)",
    request: jsonBody(AppReport),
    responses: {
      200: json(
        z.object({
          applied: z.number().int().openapi({ description: "How many entries changed an app's record" }),
          orphans: z.array(z.string()).openapi({ description: "Apps this host should not run (deleted, or moved away while it was offline): remove their containers and routes" }),
          sleep_after_minutes: z
            .record(z.string(), z.number().int())
            .openapi({ description: "For each reported app this host runs: minutes without a request before it sleeps (0 = never). The agent decides and acts on it." }),
        }),
        "Applied",
      ),
      ...errorResponses,
    },
  }),
  async (c) => {
    const report = c.req.valid("json");
    const applied = await applyAppReport(c.var.db, hostOf(c).id, hostOf(c).orgId, report);
    // Then the replica count: a CPU step, new bounds, or a replica that died (services/replicas.ts).
    await superviseReplicas(c.env, c.var.db, hostOf(c).id, hostOf(c).orgId, report);
    return c.json({ ...applied, sleep_after_minutes: await applySleepReport(c.var.db, hostOf(c).id, hostOf(c).orgId, report) }, 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/agent/instances/report",
    tags,
    security,
    summary: "The VMs Berth made on this Proxmox node, with their power state (every 30 s)",
    description:
      "A complete list: an instance of this host whose VM is missing from it is marked `error` (`vm_missing`) until it is seen again. Instances with a job working on them, or changed after the list was read, are left to the job.",
    request: jsonBody(InstanceReport),
    responses: {
      200: json(
        z.object({
          applied: z.number().int().openapi({ description: "How many instances changed" }),
          missing: z.number().int().openapi({ description: "How many of them were found gone from the node" }),
        }),
        "Applied",
      ),
      ...errorResponses,
    },
  }),
  async (c) => c.json(await applyInstanceReport(c.var.db, hostOf(c).id, c.req.valid("json")), 200),
);

router.openapi(
  createRoute({
    method: "get",
    path: "/agent/leases/{lease}/env",
    tags,
    security,
    summary: "The secrets of the job a lease is for: a deploy's env vars and registry credentials, an instance job's password",
    description:
      "Secrets never travel in job payloads; the agent fetches them here while its lease is valid, over its own credential. `password` is set for instance jobs whose payload says `has_password` (create, rebuild, password reset), while that job is the instance's open job.",
    request: { params: LeaseParams },
    responses: {
      200: json(
        z.object({
          env: z.record(z.string(), z.string()),
          registry_auth: z.object({ username: z.string(), password: z.string(), serveraddress: z.string() }).nullable(),
          password: z.string().nullable().optional(),
          ssh: SshSecrets.optional().openapi({ description: "An `ssh.exec` lease: the profile's credentials" }),
          git_token: z.string().nullable().optional().openapi({ description: "A deploy built from a private GitHub repository (`git.has_token`): the linked account's token, for the clone only" }),
        }),
        "The secrets",
      ),
      ...conflict,
    },
  }),
  async (c) => {
    const leased = await hostMailbox(c.env, hostOf(c).id).leased(c.req.valid("param").lease);
    if (!leased) throw new ApiError("lease_stale", "This lease is no longer valid; drop the work");
    if ("has_password" in leased.payload) {
      return c.json({ env: {}, registry_auth: null, password: await instanceJobPassword(c.var.db, c.env, leased.payload.instance_id, leased.job_id) }, 200);
    }
    if (leased.payload.type === "ssh.exec") {
      const profile = await findProfile(c.var.db, leased.payload.profile_id);
      // Only a profile of this host's own org: a lease never reaches another tenant's secrets.
      const ssh = profile && profile.orgId === hostOf(c).orgId ? await readProfileSecrets(c.env, profile) : {};
      return c.json({ env: {}, registry_auth: null, ssh }, 200);
    }
    if (leased.payload.type !== "app.deploy") return c.json({ env: {}, registry_auth: null }, 200);
    const [row] = await c.var.db.select({ envCiphertext: app.envCiphertext, orgId: app.orgId, gitAccountId: app.gitAccountId }).from(app).where(eq(app.id, leased.payload.app_id));
    if (!row) return c.json({ env: {}, registry_auth: null }, 200);
    const gitToken = leased.payload.git?.has_token && row.gitAccountId ? await buildToken(c.var.db, c.env, row.gitAccountId) : null;
    return c.json(
      {
        env: await readAppEnvVars(c.env, row),
        registry_auth: await registryAuthFor(c.var.db, c.env, row.orgId, leased.payload.image),
        ...(leased.payload.git ? { git_token: gitToken } : {}),
      },
      200,
    );
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/agent/leases/{lease}/image",
    tags,
    security,
    summary: "The uploaded image tarball a deploy lease loads",
    description:
      "For an `app.deploy` lease whose payload has `upload`: the tarball as it was uploaded (`docker save` output, maybe gzipped), streamed, with its length. " +
      "Only the host holding the lease gets it, with its own credential, and only while the lease is valid: the link expires with the lease.",
    request: { params: LeaseParams },
    responses: {
      200: { description: "The tarball", content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } } },
      ...conflict,
      ...errorResponsesFor("not_found"),
    },
  }),
  async (c) => {
    const leased = await hostMailbox(c.env, hostOf(c).id).leased(c.req.valid("param").lease);
    if (!leased) throw new ApiError("lease_stale", "This lease is no longer valid; drop the work");
    if (leased.payload.type !== "app.deploy" || !leased.payload.upload) throw new ApiError("not_found", "This lease's job has no uploaded image");
    const object = await c.env.ARCHIVE.get(uploadKey(leased.payload.app_id, leased.payload.deployment_id));
    if (!object) throw new ApiError("not_found", "The uploaded image is gone (its deploy ended); upload it again");
    return new Response(object.body, { status: 200, headers: { "content-type": "application/octet-stream", "content-length": String(object.size) } }) as never;
  },
);

export default router;
