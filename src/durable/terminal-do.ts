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
 * - Output goes into a ring (OUTPUT_RING_BYTES) and from there to the writer and each viewer,
 *   each while what its peer has not taken yet stays under a bound (terminal/output-allowance.ts,
 *   from the socket's `bufferedAmount`); what waits goes later as one frame.
 *   The agent is acknowledged only for what the writer was handed, so a flood waits in the
 *   program's own TTY, not here. A viewer whose place fell out of the ring is closed.
 * - The writer leaving starts a grace period; the opener reconnecting with `?session=` (and
 *   `since`, the output bytes it had) resumes it and gets what it missed from the ring.
 * - No input and no output for the idle time, or nobody back within the grace period, ends it
 *   with a close code and reason; every end writes its audit row (who, where, how long).
 * - DevPocket's `/ws/terminal` (op `ws`): the socket opens with no session and every frame
 *   both ways is JSON; terminal/ws-framing.ts reads its messages and shapes its frames, and
 *   starts its session here.
 */
import { DurableObject } from "cloudflare:workers";
import { createDb } from "../db/client";
import type { Env } from "../env";
import { TerminalAgentFrame, type TerminalServerFrame } from "../protocol/agent";
import { recordAuditAs } from "../services/audit";
import { findProfile, readProfileSecrets } from "../services/ssh";
import type { SshSecrets } from "../protocol/agent";
import { terminalSettings } from "../services/terminal-settings";
import { hostMailbox } from "./clients";
import { OutputAllowance } from "./terminal/output-allowance";
import { OutputRing } from "./terminal/output-ring";
import { CLOSE, type TerminalAttach } from "./terminal/protocol";
import type { Phase, Session } from "./terminal/session";
import { WsFraming } from "./terminal/ws-framing";
import type { WsServerMessage } from "./terminal/ws-protocol";

/**
 * What a rejoining socket can be replayed. Larger than the agent's window (TERMINAL_WINDOW_BYTES,
 * which one TTY read may overshoot), so the writer's place never falls out of it and a viewer
 * a little behind the writer still finds its own.
 */
const OUTPUT_RING_BYTES = 1024 * 1024;
/** Output is handed to a socket in frames of at most this much. */
const OUTPUT_FRAME_BYTES = 256 * 1024;
/** Acknowledge the agent after this much output passed on (it pauses at TERMINAL_WINDOW_BYTES, src/protocol/agent.ts). */
const ACK_EVERY_BYTES = 16 * 1024;
/** Input typed before the program started, kept until it does. */
const PENDING_INPUT_MAX = 64 * 1024;
/** How soon output held back for a socket whose peer has not taken what it was sent is looked at again. */
const OUTPUT_TICK_MS = 20;

/** Where a user socket is in the output, and how much it may be handed now. */
interface Outlet {
  /** Ring offset up to which it was handed output. */
  at: number;
  allowance: OutputAllowance;
  /** `/ws/terminal`: its own UTF-8 decoder, as its frames split the output at their own places. */
  decoder: TextDecoder | null;
}

const encoder = new TextEncoder();

export class TerminalDO extends DurableObject<Env> {
  private session: Session | null = null;
  private phase: Phase = "starting";
  private writer: WebSocket | null = null;
  private readonly viewers = new Set<WebSocket>();
  private readonly outlets = new Map<WebSocket, Outlet>();
  private agent: WebSocket | null = null;
  private readonly ring = new OutputRing(OUTPUT_RING_BYTES);
  private pendingInput: Uint8Array[] = [];
  private pendingBytes = 0;
  private acked = 0;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private graceTimer: ReturnType<typeof setTimeout> | null = null;
  private startTimer: ReturnType<typeof setTimeout> | null = null;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  private lastActivity = Date.now();
  private exitCode: number | null = null;
  /** Set for a `/ws/terminal` socket: its JSON framing, and who opened it and what they may do. */
  private ws: WsFraming | null = null;

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
    if (attach.op === "ws") return this.openWs(attach);
    return attach.op === "open" ? this.open(attach) : this.attach(attach);
  }

  /** An SSH session's credentials, for the agent of the host it runs on while it starts (never in a message or a log). */
  async sshSecrets(hostId: string): Promise<SshSecrets | null> {
    const s = this.session;
    if (!s?.ssh || s.hostId !== hostId || this.phase !== "starting") return null;
    const row = await findProfile(createDb(this.env.DB), s.ssh.profileId);
    return row && row.orgId === s.orgId ? readProfileSecrets(this.env, row) : null;
  }

  // ------------------------------------------------------------ users

  private async open(attach: Extract<TerminalAttach, { op: "open" }>): Promise<Response> {
    const { client, server } = pair();
    if (this.session) {
      // Ids are 128 random bits: a second open of one id is a bug, not a race to serve.
      return refused(server, client, CLOSE.sessionGone.code, "session id in use");
    }
    this.session = { ...attach.session, kind: "app", startedAt: Date.now() };
    this.takeWriter(server, 0);
    await this.startOnHost();
    return upgraded(client);
  }

  /** Asks the session's host to open it; a host with no agent connected ends it at once. */
  private async startOnHost() {
    const s = this.session!;
    const sent = await hostMailbox(this.env, s.hostId).openTerminal({
      type: "terminal_open",
      session_id: s.id,
      kind: s.kind,
      app_id: s.appId,
      ...(s.ssh && { ssh: { host: s.ssh.host, port: s.ssh.port, username: s.ssh.username, host_key_fingerprint: s.ssh.fingerprint } }),
      cmd: s.cmd,
      cols: s.cols,
      rows: s.rows,
    });
    if (!sent) this.failStart(CLOSE.hostOffline.code, s.kind === "app" ? CLOSE.hostOffline.reason : "the host is offline", "host_offline");
    else
      this.startTimer = setTimeout(
        () => this.phase === "starting" && this.failStart(CLOSE.agentSilent.code, CLOSE.agentSilent.reason, "agent_silent"),
        this.settings.startMs,
      );
    this.touch();
  }

  // ------------------------------------------------------------ /ws/terminal

  private openWs(attach: Extract<TerminalAttach, { op: "ws" }>): Response {
    const { client, server } = pair();
    if (this.ws || this.session) return refused(server, client, CLOSE.sessionGone.code, "session id in use");
    this.ws = new WsFraming(attach.id, attach.grant, {
      env: this.env,
      waitUntil: (p) => this.ctx.waitUntil(p),
      session: () => this.session,
      phase: () => this.phase,
      writer: () => this.writer,
      begin: (session) => {
        this.session = session;
        return this.startOnHost();
      },
      input: (bytes) => this.input(bytes),
      resize: (cols, rows) => this.resize(cols, rows),
      touch: () => this.touch(),
    });
    this.takeWriter(server, null);
    this.touch();
    return upgraded(client);
  }

  /**
   * The program did not start. An exec socket closes with the reason; a `/ws/terminal` socket
   * gets an error frame and stays open for another try.
   */
  private failStart(code: number, reason: string, frameCode: string) {
    if (!this.ws || !this.session) return this.end(code, reason);
    this.audit(code, reason);
    this.ws.forgetInlineCredentials(this.session);
    if (this.startTimer) clearTimeout(this.startTimer);
    const agent = this.agent;
    this.agent = null;
    agent?.close(1000, "not started");
    this.session = null;
    this.phase = "starting";
    this.pendingInput = [];
    this.pendingBytes = 0;
    this.ws.notStarted();
    this.ws.say(this.writer, { type: "error", code: frameCode, message: reason });
  }

  private attach(attach: Extract<TerminalAttach, { op: "attach" }>): Response {
    const { client, server } = pair();
    const s = this.session;
    const reachable =
      s &&
      this.phase !== "ended" &&
      (attach.appId !== null
        ? s.kind === "app" && s.appId === attach.appId
        : s.kind !== "app" && attach.grant?.orgs.some((o) => o.id === s.orgId && (s.kind === "ssh" ? o.commandExec : o.hostManage)));
    if (!s || !reachable) return refused(server, client, CLOSE.sessionGone.code, CLOSE.sessionGone.reason);
    const asWriter = !attach.view && attach.actorId === s.opener.actorId;
    if (asWriter) this.takeWriter(server, attach.since);
    else this.addViewer(server, attach.since);
    return upgraded(client);
  }

  private takeWriter(ws: WebSocket, since: number | null) {
    ws.accept();
    const previous = this.writer;
    this.writer = ws;
    if (previous) {
      this.outlets.delete(previous);
      previous.close(CLOSE.replaced.code, CLOSE.replaced.reason);
    }
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = null;
    this.greet(ws, "write", since);
    ws.addEventListener("message", (e) => this.fromWriter(ws, e.data as string | ArrayBuffer));
    ws.addEventListener("close", () => this.writerLeft(ws));
    ws.addEventListener("error", () => this.writerLeft(ws));
    this.ackWriter(true);
  }

  private addViewer(ws: WebSocket, since: number | null) {
    ws.accept();
    this.viewers.add(ws);
    this.greet(ws, "view", since);
    const gone = () => {
      this.viewers.delete(ws);
      this.outlets.delete(ws);
    };
    ws.addEventListener("close", gone);
    ws.addEventListener("error", gone);
  }

  /** Says which session this is and where its output starts, then replays what the ring holds from `since`. */
  private greet(ws: WebSocket, mode: "write" | "view", since: number | null) {
    const outlet: Outlet = { at: this.ring.end, allowance: new OutputAllowance(ws, Date.now()), decoder: this.ws ? new TextDecoder() : null };
    this.outlets.set(ws, outlet);
    if (this.ws && !this.session) return;
    const { from } = this.ring.since(since ?? 0);
    const skipped = since !== null && from > since ? from - since : 0;
    ws.send(JSON.stringify({ type: "session", session_id: this.session!.id, mode, offset: from, skipped }));
    this.ws?.greetStart(ws);
    outlet.at = from;
    this.flush(ws, outlet);
  }

  private fromWriter(ws: WebSocket, data: string | ArrayBuffer) {
    if (ws !== this.writer) return;
    if (this.ws) return this.ws.message(ws, data);
    if (this.phase === "ended") return;
    this.touch();
    if (typeof data === "string") {
      const resize = parseResize(data);
      if (resize) return this.resize(resize.cols, resize.rows);
      this.input(encoder.encode(data));
    } else {
      this.input(new Uint8Array(data));
    }
  }

  private resize(cols: number, rows: number) {
    this.session!.cols = cols;
    this.session!.rows = rows;
    if (this.phase === "running") this.toAgent({ type: "resize", cols, rows });
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
    this.outlets.delete(ws);
    if (this.phase === "ended") return;
    if (this.ws && !this.session) {
      this.phase = "ended";
      return;
    }
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
      this.started(f.host_key_fingerprint ?? null);
      for (const bytes of this.pendingInput) safeSend(this.agent!, bytes);
      this.pendingInput = [];
      this.pendingBytes = 0;
    } else if (f.type === "error") {
      if (this.ws) return this.failStart(CLOSE.execFailed.code, f.message, f.code);
      const close = f.code === "not_running" ? CLOSE.notRunning : CLOSE.execFailed;
      this.end(close.code, f.code === "not_running" ? close.reason : `${close.reason}: ${f.message}`);
    } else if (f.type === "exit") {
      this.exitCode = f.code;
      // Everything the program wrote goes out before the end (at most the ring: bounded).
      this.flushAll(true);
      this.broadcastText({ type: "exit", code: f.code });
      this.end(1000, f.code === null ? "exited" : `exited with status ${f.code}`);
    }
  }

  private output(bytes: Uint8Array) {
    this.touch();
    this.ring.push(bytes);
    this.flushAll(false);
  }

  /** Hands every socket what it may have of the output it has not had yet. */
  private flushAll(all: boolean) {
    for (const [ws, outlet] of this.outlets) this.flush(ws, outlet, all);
    this.ackWriter(false);
  }

  /**
   * Hands one socket the output after its place, as much as its allowance lets it have now
   * (`all`: everything, at the end), in frames of at most OUTPUT_FRAME_BYTES; looks again shortly if some had to wait. A
   * viewer whose place fell out of the ring is closed: it may reconnect and catch up.
   */
  private flush(ws: WebSocket, outlet: Outlet, all = false) {
    if (outlet.at < this.ring.start) {
      if (ws !== this.writer) {
        this.viewers.delete(ws);
        this.outlets.delete(ws);
        ws.close(CLOSE.viewerBehind.code, CLOSE.viewerBehind.reason);
        return;
      }
      outlet.at = this.ring.start; // the agent's last chunk may overshoot its window: the writer skips it
    }
    const pending = this.ring.end - outlet.at;
    if (!pending) return;
    const n = all ? pending : outlet.allowance.take(pending, Date.now());
    for (let left = n; left > 0; ) {
      const bytes = this.ring.read(outlet.at, Math.min(left, OUTPUT_FRAME_BYTES));
      outlet.at += bytes.length;
      left -= bytes.length;
      // `/ws/terminal` output is text: UTF-8 decoded across frame boundaries, invalid bytes as U+FFFD.
      safeSend(ws, outlet.decoder ? this.ws!.outputFrame(outlet.decoder, bytes) : bytes);
    }
    if (outlet.at < this.ring.end && !this.flushTimer && this.phase !== "ended") {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        this.flushAll(false);
      }, OUTPUT_TICK_MS);
    }
  }

  /**
   * Lets the agent send more, for what the writer was handed (every ACK_EVERY_BYTES, or `now`).
   * With nobody writing (the grace period), the program waits for them.
   */
  private ackWriter(now: boolean) {
    if (!this.agent || !this.writer || this.phase === "ended") return;
    const at = this.outlets.get(this.writer)?.at ?? this.acked;
    if (at <= this.acked || (!now && at - this.acked < ACK_EVERY_BYTES)) return;
    this.acked = at;
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
    if (this.phase === "ended") return;
    if (!this.session) {
      // A `/ws/terminal` socket that never started a session.
      if (this.ws) {
        this.phase = "ended";
        this.writer?.close(code, closeReason(reason));
      }
      return;
    }
    this.phase = "ended";
    for (const t of [this.flushTimer, this.graceTimer, this.startTimer, this.idleTimer]) if (t) clearTimeout(t);
    const why = closeReason(reason);
    if (this.agent) {
      this.toAgent({ type: "close", reason: why });
      this.agent.close(1000, why);
    }
    if (this.ws) {
      const ended: WsServerMessage = { type: "session_ended", session_id: this.session.id, exit_code: this.exitCode, reason: why };
      this.ws.say(this.writer, ended);
      for (const v of this.viewers) this.ws.say(v, ended);
    }
    if (this.writer) this.writer.close(code, why);
    for (const v of this.viewers) v.close(code, why);
    this.viewers.clear();
    this.outlets.clear();
    this.pendingInput = [];
    this.ws?.forgetInlineCredentials(this.session);
    this.audit(code, why);
  }

  /** The session's end in the audit log: who, where, how long, and why. */
  private audit(code: number, reason: string) {
    const s = this.session!;
    const app = s.kind === "app";
    this.ctx.waitUntil(
      recordAuditAs(createDb(this.env.DB), s.opener, {
        orgId: s.orgId,
        action: app ? "app.exec.end" : `terminal.${s.kind}.end`,
        targetType: app ? "app" : "host",
        targetId: app ? s.appId : s.hostId,
        metadata: {
          session_id: s.id,
          host_id: s.hostId,
          cmd: s.cmd.join(" "),
          started_at: new Date(s.startedAt).toISOString(),
          duration_ms: Date.now() - s.startedAt,
          close_code: code,
          reason: closeReason(reason),
          exit_code: this.exitCode,
          output_bytes: this.ring.end,
        },
      }).catch(() => undefined),
    );
  }

  /** The program runs: a `/ws/terminal` writer and its viewers are told (and a profile with no pinned key takes the one seen). */
  private started(fingerprint: string | null) {
    if (!this.ws) return;
    const frame = this.ws.started(this.session!, fingerprint);
    this.ws.say(this.writer, frame);
    for (const v of this.viewers) this.ws.say(v, frame);
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
