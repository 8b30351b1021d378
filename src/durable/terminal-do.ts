/**
 * TerminalDO: one per terminal session (`trm_…`). It holds the user's socket (the writer),
 * any read-only viewers, and the agent's own socket for this session, and passes bytes
 * between them in memory: keystrokes and output never touch D1, the Queue or the host's
 * mailbox. The host's HostDO is asked once, to tell its agent to open the session.
 *
 * Sockets are accepted without hibernation: a live session is live state (the output ring,
 * the flow-control window), and it exists only while someone is connected or within the
 * grace period, bounded by the idle timeout.
 *
 * - Output goes to the writer and viewers and into a ring (OUTPUT_RING_BYTES); the agent is
 *   acknowledged only while the writer keeps up (its socket's bufferedAmount), so a flood
 *   waits in the program's own TTY, not here. A viewer that falls too far behind is closed.
 * - The writer leaving starts a grace period; the opener reconnecting with `?session=` (and
 *   `since`, the output bytes it had) resumes it and gets what it missed from the ring.
 * - No input and no output for the idle time, or nobody back within the grace period, ends it
 *   with a close code and reason; every end writes its audit row (who, where, how long).
 */
import { DurableObject } from "cloudflare:workers";
import { createDb } from "../db/client";
import type { Env } from "../env";
import { TerminalAgentFrame, type TerminalServerFrame } from "../protocol/agent";
import { type Actor, recordAuditAs } from "../services/audit";
import { terminalSettings } from "../services/terminal-settings";
import { hostMailbox } from "./clients";
import { OutputRing } from "./terminal/output-ring";
import { CLOSE, type TerminalAttach } from "./terminal/protocol";

const OUTPUT_RING_BYTES = 256 * 1024;
/** Acknowledge the agent after this much output passed on (it pauses at TERMINAL_WINDOW_BYTES, src/protocol/agent.ts). */
const ACK_EVERY_BYTES = 16 * 1024;
/** The writer's socket may hold this much unsent before the agent is no longer acknowledged. */
const WRITER_HIGH_WATER = 128 * 1024;
/** A viewer further behind than this is closed (it may reconnect and catch up from the ring). */
const VIEWER_MAX_BEHIND = 1024 * 1024;
/** Input typed before the program started, kept until it does. */
const PENDING_INPUT_MAX = 64 * 1024;
const LAG_POLL_MS = 20;

interface Session {
  id: string;
  appId: string;
  hostId: string;
  orgId: string;
  projectId: string;
  opener: Actor;
  cmd: string[];
  startedAt: number;
  cols: number;
  rows: number;
}

type Phase = "starting" | "running" | "ended";

const encoder = new TextEncoder();

export class TerminalDO extends DurableObject<Env> {
  private session: Session | null = null;
  private phase: Phase = "starting";
  private writer: WebSocket | null = null;
  private readonly viewers = new Set<WebSocket>();
  private agent: WebSocket | null = null;
  private readonly ring = new OutputRing(OUTPUT_RING_BYTES);
  private pendingInput: Uint8Array[] = [];
  private pendingBytes = 0;
  private acked = 0;
  private lagTimer: ReturnType<typeof setTimeout> | null = null;
  private graceTimer: ReturnType<typeof setTimeout> | null = null;
  private startTimer: ReturnType<typeof setTimeout> | null = null;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  private lastActivity = Date.now();
  private exitCode: number | null = null;

  private get settings() {
    return terminalSettings(this.env);
  }

  /** The user's upgrade (from the exec route, already authorized) or the agent's (from the agent route). */
  async fetch(request: Request): Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") return new Response("expected a WebSocket upgrade", { status: 426 });
    const agentHost = request.headers.get("x-berth-host-id");
    if (agentHost) return this.acceptAgent(agentHost);
    const attach = JSON.parse(request.headers.get("x-berth-terminal") ?? "null") as TerminalAttach | null;
    if (!attach) return new Response("missing session details", { status: 400 });
    return attach.op === "open" ? this.open(attach) : this.attach(attach);
  }

  // ------------------------------------------------------------ users

  private async open(attach: Extract<TerminalAttach, { op: "open" }>): Promise<Response> {
    const { client, server } = pair();
    if (this.session) {
      // Ids are 128 random bits: a second open of one id is a bug, not a race to serve.
      return refused(server, client, CLOSE.sessionGone.code, "session id in use");
    }
    this.session = { ...attach.session, startedAt: Date.now() };
    this.takeWriter(server, 0);
    const sent = await hostMailbox(this.env, attach.session.hostId).openTerminal({
      type: "terminal_open",
      session_id: attach.session.id,
      app_id: attach.session.appId,
      cmd: attach.session.cmd,
      cols: attach.session.cols,
      rows: attach.session.rows,
    });
    if (!sent) this.end(CLOSE.hostOffline.code, CLOSE.hostOffline.reason);
    else this.startTimer = setTimeout(() => this.phase === "starting" && this.end(CLOSE.agentSilent.code, CLOSE.agentSilent.reason), this.settings.startMs);
    this.touch();
    return upgraded(client);
  }

  private attach(attach: Extract<TerminalAttach, { op: "attach" }>): Response {
    const { client, server } = pair();
    const s = this.session;
    if (!s || this.phase === "ended" || s.appId !== attach.appId) return refused(server, client, CLOSE.sessionGone.code, CLOSE.sessionGone.reason);
    const asWriter = !attach.view && attach.actorId === s.opener.actorId;
    if (asWriter) this.takeWriter(server, attach.since);
    else this.addViewer(server, attach.since);
    return upgraded(client);
  }

  private takeWriter(ws: WebSocket, since: number | null) {
    ws.accept();
    const previous = this.writer;
    this.writer = ws;
    if (previous) previous.close(CLOSE.replaced.code, CLOSE.replaced.reason);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = null;
    this.greet(ws, "write", since);
    ws.addEventListener("message", (e) => this.fromWriter(ws, e.data as string | ArrayBuffer));
    ws.addEventListener("close", () => this.writerLeft(ws));
    ws.addEventListener("error", () => this.writerLeft(ws));
    this.ackIfKeepingUp();
  }

  private addViewer(ws: WebSocket, since: number | null) {
    ws.accept();
    this.viewers.add(ws);
    this.greet(ws, "view", since);
    ws.addEventListener("close", () => this.viewers.delete(ws));
    ws.addEventListener("error", () => this.viewers.delete(ws));
  }

  /** Says which session this is and where its output starts, then replays what the ring holds from `since`. */
  private greet(ws: WebSocket, mode: "write" | "view", since: number | null) {
    const { from, chunks } = this.ring.since(since ?? 0);
    const skipped = since !== null && from > since ? from - since : 0;
    ws.send(JSON.stringify({ type: "session", session_id: this.session!.id, mode, offset: from, skipped }));
    for (const c of chunks) ws.send(c);
  }

  private fromWriter(ws: WebSocket, data: string | ArrayBuffer) {
    if (ws !== this.writer || this.phase === "ended") return;
    this.touch();
    if (typeof data === "string") {
      const resize = parseResize(data);
      if (resize) {
        this.session!.cols = resize.cols;
        this.session!.rows = resize.rows;
        if (this.phase === "running") this.toAgent(resize);
        return;
      }
      this.input(encoder.encode(data));
    } else {
      this.input(new Uint8Array(data));
    }
  }

  private input(bytes: Uint8Array) {
    if (!bytes.length) return;
    if (this.phase === "running" && this.agent) {
      safeSend(this.agent, bytes);
      return;
    }
    // Typed ahead of the program's start: kept (bounded) until it runs.
    if (this.pendingBytes + bytes.length > PENDING_INPUT_MAX) return;
    this.pendingInput.push(bytes);
    this.pendingBytes += bytes.length;
  }

  private writerLeft(ws: WebSocket) {
    if (ws !== this.writer) return;
    this.writer = null;
    if (this.phase === "ended") return;
    this.graceTimer = setTimeout(() => this.end(CLOSE.abandoned.code, CLOSE.abandoned.reason), this.settings.graceMs);
  }

  // ------------------------------------------------------------ the agent

  private acceptAgent(hostId: string): Response {
    const { client, server } = pair();
    const s = this.session;
    if (!s || s.hostId !== hostId || this.phase !== "starting" || this.agent) return refused(server, client, CLOSE.sessionGone.code, CLOSE.sessionGone.reason);
    server.accept();
    this.agent = server;
    server.addEventListener("message", (e) => this.fromAgent(e.data as string | ArrayBuffer));
    server.addEventListener("close", () => this.agentLeft(server));
    server.addEventListener("error", () => this.agentLeft(server));
    return upgraded(client);
  }

  private fromAgent(data: string | ArrayBuffer) {
    if (this.phase === "ended") return;
    if (typeof data !== "string") return this.output(new Uint8Array(data));
    let frame: ReturnType<typeof TerminalAgentFrame.safeParse>;
    try {
      frame = TerminalAgentFrame.safeParse(JSON.parse(data));
    } catch {
      return;
    }
    if (!frame.success) return;
    const f = frame.data;
    if (f.type === "started") {
      this.phase = "running";
      if (this.startTimer) clearTimeout(this.startTimer);
      for (const bytes of this.pendingInput) safeSend(this.agent!, bytes);
      this.pendingInput = [];
      this.pendingBytes = 0;
    } else if (f.type === "error") {
      const close = f.code === "not_running" ? CLOSE.notRunning : CLOSE.execFailed;
      this.end(close.code, f.code === "not_running" ? close.reason : `${close.reason}: ${f.message}`);
    } else if (f.type === "exit") {
      this.exitCode = f.code;
      this.broadcastText({ type: "exit", code: f.code });
      this.end(1000, f.code === null ? "exited" : `exited with status ${f.code}`);
    }
  }

  private output(bytes: Uint8Array) {
    this.touch();
    this.ring.push(bytes);
    if (this.writer) safeSend(this.writer, bytes);
    for (const v of this.viewers) {
      if (v.bufferedAmount > VIEWER_MAX_BEHIND) {
        this.viewers.delete(v);
        v.close(CLOSE.viewerBehind.code, CLOSE.viewerBehind.reason);
      } else safeSend(v, bytes);
    }
    if (this.ring.end - this.acked >= ACK_EVERY_BYTES) this.ackIfKeepingUp();
  }

  /**
   * Lets the agent send more, but only while the writer's socket keeps up; otherwise looks
   * again shortly. With nobody writing (the grace period), the program waits for them.
   */
  private ackIfKeepingUp() {
    if (!this.agent || !this.writer || this.phase === "ended" || this.lagTimer) return;
    if (this.writer.bufferedAmount > WRITER_HIGH_WATER) {
      this.lagTimer = setTimeout(() => {
        this.lagTimer = null;
        this.ackIfKeepingUp();
      }, LAG_POLL_MS);
      return;
    }
    if (this.acked === this.ring.end) return;
    this.acked = this.ring.end;
    this.toAgent({ type: "ack", bytes: this.acked });
  }

  private agentLeft(ws: WebSocket) {
    if (ws !== this.agent) return;
    this.agent = null;
    if (this.phase !== "ended") this.end(CLOSE.agentGone.code, CLOSE.agentGone.reason);
  }

  private toAgent(frame: TerminalServerFrame) {
    if (this.agent) safeSend(this.agent, JSON.stringify(frame));
  }

  // ------------------------------------------------------------ idle and the end

  private touch() {
    this.lastActivity = Date.now();
    if (this.idleTimer || this.phase === "ended") return;
    const check = () => {
      const quietFor = Date.now() - this.lastActivity;
      if (quietFor >= this.settings.idleMs) {
        this.idleTimer = null;
        this.end(CLOSE.idle.code, `${CLOSE.idle.reason} (${Math.round(this.settings.idleMs / 1000)} s)`);
      } else this.idleTimer = setTimeout(check, this.settings.idleMs - quietFor);
    };
    this.idleTimer = setTimeout(check, this.settings.idleMs);
  }

  private broadcastText(message: unknown) {
    const text = JSON.stringify(message);
    if (this.writer) safeSend(this.writer, text);
    for (const v of this.viewers) safeSend(v, text);
  }

  /** Ends the session for everyone, once: users and the agent are told why, and the audit log gets its length. */
  private end(code: number, reason: string) {
    if (this.phase === "ended" || !this.session) return;
    this.phase = "ended";
    for (const t of [this.lagTimer, this.graceTimer, this.startTimer, this.idleTimer]) if (t) clearTimeout(t);
    const why = closeReason(reason);
    if (this.agent) {
      this.toAgent({ type: "close", reason: why });
      this.agent.close(1000, why);
    }
    if (this.writer) this.writer.close(code, why);
    for (const v of this.viewers) v.close(code, why);
    this.viewers.clear();
    this.pendingInput = [];
    const s = this.session;
    const durationMs = Date.now() - s.startedAt;
    this.ctx.waitUntil(
      recordAuditAs(createDb(this.env.DB), s.opener, {
        orgId: s.orgId,
        action: "app.exec.end",
        targetType: "app",
        targetId: s.appId,
        metadata: {
          session_id: s.id,
          host_id: s.hostId,
          cmd: s.cmd.join(" "),
          started_at: new Date(s.startedAt).toISOString(),
          duration_ms: durationMs,
          close_code: code,
          reason: why,
          exit_code: this.exitCode,
          output_bytes: this.ring.end,
        },
      }).catch(() => undefined),
    );
  }
}

function pair() {
  const p = new WebSocketPair();
  // Binary frames as ArrayBuffers (the standard default is Blob, which would need an await per frame).
  p[1].binaryType = "arraybuffer";
  return { client: p[0], server: p[1] };
}

/** Accepts and closes at once: how the other end learns why it may not connect. */
function refused(server: WebSocket, client: WebSocket, code: number, reason: string) {
  server.accept();
  server.close(code, reason);
  return upgraded(client);
}

function upgraded(client: WebSocket) {
  return new Response(null, { status: 101, webSocket: client });
}

function safeSend(ws: WebSocket, data: string | Uint8Array) {
  try {
    ws.send(data);
  } catch {
    /* closing: its close handler deals with it */
  }
}

/** A close reason is at most 123 bytes of UTF-8. */
function closeReason(reason: string): string {
  let r = reason;
  while (encoder.encode(r).length > 123) r = r.slice(0, -1);
  return r;
}

/** Dockup's `{type:"resize",cols,rows}`; anything else in a text frame is input. */
function parseResize(text: string): { type: "resize"; cols: number; rows: number } | null {
  if (!text.startsWith("{") || !text.includes("resize")) return null;
  try {
    const m = JSON.parse(text) as { type?: unknown; cols?: unknown; rows?: unknown };
    const ok = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 1000;
    if (m.type === "resize" && ok(m.cols) && ok(m.rows)) return { type: "resize", cols: m.cols, rows: m.rows };
  } catch {
    /* not JSON: input */
  }
  return null;
}
