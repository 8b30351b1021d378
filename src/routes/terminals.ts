/**
 * Dockup's terminal: `GET /apps/{appId}/exec`, a WebSocket into the app's running
 * container. The route authorizes (`app:exec`), audits the connection and hands the socket
 * to the session's TerminalDO; the bytes never come back through here.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { actorOf } from "../auth/principal";
import { createRouter } from "../app";
import { hostMailbox, terminalSession } from "../durable/clients";
import { CLOSE, type TerminalAttach } from "../durable/terminal/protocol";
import { ApiError, errorResponsesFor } from "../lib/errors";
import { TERMINAL_SESSION_ID } from "../protocol/agent";
import { recordAudit } from "../services/audit";
import { AppParams, loadApp } from "./apps/index";

const router = createRouter();

const size = (name: string) =>
  z.coerce.number().int().min(1).max(1000).optional().openapi({ param: { name, in: "query" }, description: `The terminal's ${name} at the start (then \`resize\`)` });

const ExecQuery = z.object({
  cmd: z.string().min(1).max(1024).default("/bin/sh").openapi({ param: { name: "cmd", in: "query" }, description: "The program to run, split at spaces (default /bin/sh)" }),
  cols: size("cols"),
  rows: size("rows"),
  session: z.string().regex(TERMINAL_SESSION_ID).optional().openapi({ param: { name: "session", in: "query" }, description: "Join this session instead of opening one: its opener resumes it, anyone else watches" }),
  since: z.coerce.number().int().min(0).optional().openapi({ param: { name: "since", in: "query" }, description: "With `session`: output bytes already received; only the rest is replayed" }),
  view: z.enum(["0", "1", "true", "false"]).optional().openapi({ param: { name: "view", in: "query" }, description: "With `session`: watch read-only even as its opener" }),
});

/** A WebSocket that closes at once with a code and reason: how a browser learns why (it cannot read an HTTP error on an upgrade). */
function closedSocket(code: number, reason: string): Response {
  const pair = new WebSocketPair();
  pair[1].accept();
  pair[1].close(code, reason);
  return new Response(null, { status: 101, webSocket: pair[0] });
}

const newSessionId = () => `trm_${[...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;

router.openapi(
  createRoute({
    method: "get",
    path: "/apps/{appId}/exec",
    tags: ["Apps"],
    summary: "WebSocket: an interactive shell in the app's running container",
    description:
      "Upgrade to a WebSocket; pass the credential as `?token=` (or cookie or bearer). Needs `app:exec` (owner, admin, developer; " +
      "never a read-only or deploy key). Text frames are stdin (`{type:\"resize\",cols,rows}` resizes the terminal), binary frames " +
      "are the TTY's output. The server's own text frames: `{type:\"session\",session_id,mode,offset,skipped}` first, " +
      "`{type:\"exit\",code}` when the program ends.\n\n" +
      "A dropped connection can be resumed within the grace period (60 s) with `?session=<session_id>&since=<output bytes received>`: " +
      "what was missed is replayed from the last 1 MiB. Anyone else with `app:exec` who joins a session watches it read-only. " +
      "Close codes: 1000 the program exited; " +
      Object.values(CLOSE)
        .map((c) => `${c.code} ${c.reason}`)
        .join("; ") +
      ".",
    request: { params: AppParams, query: ExecQuery },
    responses: { 101: { description: "Switching to the WebSocket" }, ...errorResponsesFor("app_not_found", "upgrade_required") },
  }),
  async (c) => {
    const { app: row, project, principal } = await loadApp(c, c.req.valid("param").appId, "app:exec");
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new ApiError("upgrade_required", "This endpoint is a WebSocket; connect with an Upgrade: websocket request");
    }
    const q = c.req.valid("query");
    const actor = actorOf(principal);
    const audit = (action: string, sessionId: string, extra: Record<string, unknown> = {}) =>
      recordAudit(c, { orgId: project.orgId, action, targetType: "app", targetId: row.id, metadata: { session_id: sessionId, host_id: row.hostId, ...extra } });

    if (q.session) {
      const view = q.view === "1" || q.view === "true";
      await audit("app.exec.attach", q.session, { view });
      const attach: TerminalAttach = { op: "attach", appId: row.id, actorId: actor.actorId, view, since: q.since ?? null };
      return terminalSession(c.env, q.session).fetch(withAttach(c.req.raw, attach));
    }

    if (!row.hostId) return closedSocket(CLOSE.notRunning.code, "the app is not running: it was never deployed");
    if (!(await hostMailbox(c.env, row.hostId).status()).connected) return closedSocket(CLOSE.hostOffline.code, CLOSE.hostOffline.reason);
    const id = newSessionId();
    const cmd = q.cmd.split(/\s+/).filter(Boolean);
    await audit("app.exec", id, { cmd: cmd.join(" ") });
    const attach: TerminalAttach = {
      op: "open",
      session: { id, appId: row.id, hostId: row.hostId, orgId: project.orgId, projectId: project.id, opener: actor, cmd, cols: q.cols ?? 80, rows: q.rows ?? 24 },
    };
    return terminalSession(c.env, id).fetch(withAttach(c.req.raw, attach));
  },
);

function withAttach(request: Request, attach: TerminalAttach): Request {
  const headers = new Headers(request.headers);
  headers.set("x-berth-terminal", JSON.stringify(attach));
  return new Request(request.url, { headers });
}

export default router;
