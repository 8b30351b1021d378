/**
 * DevPocket's terminal socket: `GET /ws/terminal?token=…`. The route authenticates, works out
 * which orgs the caller may open SSH shells in (`command:exec`) and host shells in
 * (`host:manage`), and hands the socket to a new TerminalDO; the session's messages and bytes
 * never come back through here (src/durable/terminal/ws-protocol.ts has the messages).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { requirePrincipal } from "../auth/access";
import { roleAllows, scopeAllows, scopeAllowsAccount } from "../auth/permissions";
import { actorOf } from "../auth/principal";
import { createRouter } from "../app";
import { terminalSession } from "../durable/clients";
import type { TerminalAttach } from "../durable/terminal/protocol";
import { WS_ERRORS, type WsGrant } from "../durable/terminal/ws-protocol";
import { ApiError, errorResponsesFor, forbidden, notFound } from "../lib/errors";
import { TERMINAL_SESSION_ID } from "../protocol/agent";
import { findOrgById, listUserOrgs } from "../services/orgs";
import type { Role } from "../db/schema";

const router = createRouter();

const WsQuery = z.object({
  token: z.string().max(4096).optional().openapi({ param: { name: "token", in: "query" }, description: "The credential (a session token, `pak_` or `dkp_` key); or a cookie or bearer header" }),
  org: z.string().max(100).optional().openapi({ param: { name: "org", in: "query" }, description: "Berth extension: the org (slug or id) for inline SSH and host shells; default the key's org or your personal org" }),
  session: z.string().regex(TERMINAL_SESSION_ID).optional().openapi({ param: { name: "session", in: "query" }, description: "Berth extension: rejoin this session (its opener resumes it within the grace period; anyone else allowed watches)" }),
  since: z.coerce.number().int().min(0).optional().openapi({ param: { name: "since", in: "query" }, description: "With `session`: output bytes already received; only the rest is replayed" }),
  view: z.enum(["0", "1", "true", "false"]).optional().openapi({ param: { name: "view", in: "query" }, description: "With `session`: watch read-only even as its opener" }),
});

const newSessionId = () => `trm_${[...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;

router.openapi(
  createRoute({
    method: "get",
    path: "/ws/terminal",
    tags: ["Terminal"],
    summary: "WebSocket: DevPocket's terminal (an SSH shell from a host's agent, or a shell on a Docker host)",
    description:
      "Upgrade to a WebSocket with `?token=`. Every frame is JSON. Client: `connect_ssh {config:{host,port,username,password|private_key}}` or `{profile_id}` " +
      "(needs `command:exec`), `create_pty {host_id?}` (a root shell on a Docker host: needs `host:manage`), `pty_input {data}`, `resize_pty {cols,rows}`, " +
      "`command {data}` (typed, then a newline), `ai_convert {prompt,api_key?}` (as `POST /ai/suggest`). Server: `ssh_connected {session_id}`, `pty_created {session_id}`, " +
      "`ai_suggestion {command}`, `pty_output {data}` (UTF-8 text; bytes that are not UTF-8 arrive as U+FFFD), `session_ended {session_id,exit_code,reason}`, " +
      "`error {code,message}`. One session per socket; the socket closes when its session ends. Error codes of frames: " +
      Object.entries(WS_ERRORS)
        .map(([k, v]) => `${k} (${v})`)
        .join(", ") +
      ", and the API's own (forbidden, profile_not_found, host_not_found, no_host_available, host_key_mismatch, ssh_auth_failed, ssh_unreachable, ssh_timeout, ssh_failed, host_offline, agent_silent, exec_failed; for `ai_convert` those of `POST /ai/suggest`).",
    request: { query: WsQuery },
    responses: { 101: { description: "Switching to the WebSocket" }, ...errorResponsesFor("upgrade_required") },
  }),
  async (c) => {
    const p = requirePrincipal(c);
    const q = c.req.valid("query");
    const memberships: { id: string; slug: string; personal: boolean; role: Role | null }[] =
      p.type === "api_key" && p.key.kind === "org"
        ? await findOrgById(c.var.db, p.key.orgId!).then((o) => (o && !p.key.projectId ? [{ id: o.id, slug: o.slug, personal: o.personal, role: p.key.role }] : []))
        : (await listUserOrgs(c.var.db, p.userId)).map((m) => ({ id: m.org.id, slug: m.org.slug, personal: m.org.personal, role: m.role }));
    const may = (role: Role | null, perm: "command:exec" | "host:manage") => role !== null && roleAllows(role, perm) && (p.type !== "api_key" || scopeAllows(p.key.scope, perm));
    const orgs = memberships.map((m) => ({ id: m.id, commandExec: may(m.role, "command:exec"), hostManage: may(m.role, "host:manage") }));
    if (!orgs.some((o) => o.commandExec || o.hostManage)) {
      throw forbidden(p.type === "api_key" ? `This API key's scope (${p.key.scope}) allows neither command:exec nor host:manage` : "Your role allows neither command:exec nor host:manage in any org");
    }
    const chosen = q.org ? memberships.find((m) => m.slug === q.org || m.id === q.org) : (memberships.find((m) => m.personal) ?? memberships[0]);
    if (q.org && !chosen) throw notFound("Organization");
    const named = q.org ? orgs.find((o) => o.id === chosen!.id) : undefined;
    if (named && !named.commandExec && !named.hostManage) throw forbidden("Your role in this org allows neither command:exec nor host:manage");
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new ApiError("upgrade_required", "This endpoint is a WebSocket; connect with an Upgrade: websocket request");
    }
    const ai: WsGrant["ai"] =
      p.type === "user" ? "stored" : p.key.kind === "org" ? "none" : scopeAllowsAccount(p.key.scope, "account:update") ? "stored" : "body";
    const grant: WsGrant = { actor: actorOf(p), userId: p.userId, defaultOrgId: chosen?.id ?? null, orgs, ai };
    if (q.session) {
      const attach: TerminalAttach = { op: "attach", appId: null, grant, actorId: grant.actor.actorId, view: q.view === "1" || q.view === "true", since: q.since ?? null };
      return terminalSession(c.env, q.session).fetch(withAttach(c.req.raw, attach));
    }
    const id = newSessionId();
    return terminalSession(c.env, id).fetch(withAttach(c.req.raw, { op: "ws", id, grant }));
  },
);

function withAttach(request: Request, attach: TerminalAttach): Request {
  const headers = new Headers(request.headers);
  headers.set("x-berth-terminal", JSON.stringify(attach));
  return new Request(request.url, { headers });
}

export default router;
