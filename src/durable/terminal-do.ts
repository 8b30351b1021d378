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
 * - DevPocket's `/ws/terminal` (op `ws`): the socket opens with no session; a `connect_ssh` or
 *   `create_pty` message starts one (an SSH shell run by a host's agent, or a shell on a Docker
 *   host), and every frame both ways is JSON (terminal/ws-protocol.ts): output as `pty_output`.
 */
import { DurableObject } from "cloudflare:workers";
import { createDb } from "../db/client";
import type { Env } from "../env";
import { TerminalAgentFrame, type TerminalServerFrame } from "../protocol/agent";
import { type Actor, recordAuditAs } from "../services/audit";
import { deleteProfile, findProfile, noteSshConnected, readProfileSecrets } from "../services/ssh";
import { storedAiKey } from "../services/ai-keys";
import { suggestCommand } from "../services/ai-suggest";
import { ApiError, forbidden } from "../lib/errors";
import type { SshSecrets } from "../protocol/agent";
import { terminalSettings } from "../services/terminal-settings";
import { hostMailbox } from "./clients";
import { OutputRing } from "./terminal/output-ring";
import { CLOSE, type TerminalAttach } from "./terminal/protocol";
import { WS_ERRORS, WsClientMessage, type WsGrant, type WsServerMessage } from "./terminal/ws-protocol";
import { errorFrame, ptyHost, sshTarget } from "./terminal/ws-targets";

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
  kind: "app" | "ssh" | "host";
  appId: string;
  hostId: string;
  orgId: string;
  projectId: string;
  opener: Actor;
  cmd: string[];
  startedAt: number;
  cols: number;
  rows: number;
  /** An SSH session: where to, with which profile (an unlisted one for inline credentials, deleted once used). */
  ssh?: { profileId: string; adhoc: boolean; host: string; port: number; username: string; fingerprint: string | null; pinned: boolean };
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
  /** Set for a `/ws/terminal` socket: who opened it and what they may do. */
  private ws: { id: string; grant: WsGrant; decoder: TextDecoder; busy: boolean; aiBusy: boolean } | null = null;

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
    this.ws = { id: attach.id, grant: attach.grant, decoder: new TextDecoder(), busy: false, aiBusy: false };
    this.takeWriter(server, null);
    this.touch();
    return upgraded(client);
  }

  private say(ws: WebSocket | null, message: WsServerMessage) {
    if (ws) safeSend(ws, JSON.stringify(message));
  }

  private fromWsWriter(ws: WebSocket, text: string) {
    let parsed: ReturnType<typeof WsClientMessage.safeParse>;
    try {
      parsed = WsClientMessage.safeParse(JSON.parse(text));
    } catch {
      return this.say(ws, { type: "error", code: "invalid_message", message: `${WS_ERRORS.invalid_message}: not JSON` });
    }
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? ` (${issue.path.join(".")})` : "";
      return this.say(ws, { type: "error", code: "invalid_message", message: `${WS_ERRORS.invalid_message}: ${issue?.message ?? "invalid"}${where}` });
    }
    const m = parsed.data;
    if (m.type === "connect_ssh" || m.type === "create_pty") {
      if (this.phase === "ended") return this.say(ws, { type: "error", code: "session_ended", message: WS_ERRORS.session_ended });
      if (this.session || this.ws!.busy) return this.say(ws, { type: "error", code: "session_running", message: WS_ERRORS.session_running });
      this.ws!.busy = true;
      void this.startWs(m).finally(() => {
        if (this.ws) this.ws.busy = false;
      });
      return;
    }
    if (m.type === "ai_convert") {
      if (this.ws!.aiBusy) return this.say(ws, { type: "error", code: "ai_busy", message: WS_ERRORS.ai_busy });
      this.ws!.aiBusy = true;
      void this.aiConvert(m).finally(() => {
        if (this.ws) this.ws.aiBusy = false;
      });
      return;
    }
    if (!this.session || this.phase === "ended") return this.say(ws, { type: "error", code: "no_session", message: WS_ERRORS.no_session });
    this.touch();
    if (m.type === "resize_pty") {
      this.session.cols = m.cols;
      this.session.rows = m.rows;
      if (this.phase === "running") this.toAgent({ type: "resize", cols: m.cols, rows: m.rows });
    } else if (m.type === "pty_input") this.input(encoder.encode(m.data));
    else this.input(encoder.encode(`${m.data}\n`));
  }

  /** `ai_convert`: one command from the user's own AI key (sent along, or stored), as `POST /ai/suggest`; the key never comes back. */
  private async aiConvert(m: Extract<WsClientMessage, { type: "ai_convert" }>) {
    const grant = this.ws!.grant;
    try {
      if (grant.ai === "none") throw forbidden("Org API keys cannot use a person's AI key; connect as the person or with their personal key");
      let key = m.api_key ?? null;
      if (!key) {
        if (grant.ai !== "stored") throw forbidden("This API key's scope may not use the stored AI key; send api_key");
        key = await storedAiKey(createDb(this.env.DB), this.env, grant.userId);
        if (!key) throw new ApiError("ai_key_missing", "Send api_key, or store one with PUT /ai/key");
      }
      const command = await suggestCommand(this.env, key, m.prompt, m.model);
      this.say(this.writer, { type: "ai_suggestion", command });
    } catch (err) {
      this.say(this.writer, errorFrame(err));
    }
  }

  private async startWs(m: Extract<WsClientMessage, { type: "connect_ssh" | "create_pty" }>) {
    const w = this.ws!;
    const db = createDb(this.env.DB);
    const cols = m.cols ?? 80;
    const rows = m.rows ?? 24;
    const base = { id: w.id, appId: "", projectId: "", opener: w.grant.actor, startedAt: Date.now(), cols, rows };
    try {
      if (m.type === "connect_ssh") {
        const { profile, via } = await sshTarget(db, this.env, w.grant, m);
        this.session = {
          ...base,
          kind: "ssh",
          hostId: via,
          orgId: profile.orgId,
          cmd: ["ssh", `${profile.username}@${profile.host}:${profile.port}`],
          ssh: { profileId: profile.id, adhoc: profile.adhoc, host: profile.host, port: profile.port, username: profile.username, fingerprint: profile.hostKeyFingerprint, pinned: profile.hostKeyFingerprint !== null },
        };
      } else {
        const { hostId, orgId } = await ptyHost(db, this.env, w.grant, m);
        this.session = { ...base, kind: "host", hostId, orgId, cmd: ["/bin/sh"] };
      }
    } catch (err) {
      this.say(this.writer, errorFrame(err));
      return;
    }
    const s = this.session;
    if (!this.writer || this.phase === "ended") {
      // The socket went while the target was looked up: nobody to start it for.
      this.forgetInlineCredentials();
      this.session = null;
      return;
    }
    this.ctx.waitUntil(
      recordAuditAs(db, s.opener, {
        orgId: s.orgId,
        action: s.kind === "ssh" ? "terminal.ssh" : "terminal.host",
        targetType: "host",
        targetId: s.hostId,
        metadata: { session_id: s.id, ...(s.ssh ? { target: s.cmd[1], profile_id: s.ssh.adhoc ? null : s.ssh.profileId } : {}) },
      }).catch(() => undefined),
    );
    await this.startOnHost();
  }

  /**
   * The program did not start. An exec socket closes with the reason; a `/ws/terminal` socket
   * gets an error frame and stays open for another try.
   */
  private failStart(code: number, reason: string, frameCode: string) {
    if (!this.ws || !this.session) return this.end(code, reason);
    this.audit(code, reason);
    this.forgetInlineCredentials();
    if (this.startTimer) clearTimeout(this.startTimer);
    const agent = this.agent;
    this.agent = null;
    agent?.close(1000, "not started");
    this.session = null;
    this.phase = "starting";
    this.pendingInput = [];
    this.pendingBytes = 0;
    this.say(this.writer, { type: "error", code: frameCode, message: reason });
  }

  /** Inline credentials live only until the agent used them (or never will). */
  private forgetInlineCredentials() {
    const ssh = this.session?.ssh;
    if (ssh?.adhoc) {
      ssh.adhoc = false;
      this.ctx.waitUntil(deleteProfile(createDb(this.env.DB), ssh.profileId).catch(() => undefined));
    }
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
    if (this.ws && !this.session) return;
    const { from, chunks } = this.ring.since(since ?? 0);
    const skipped = since !== null && from > since ? from - since : 0;
    ws.send(JSON.stringify({ type: "session", session_id: this.session!.id, mode, offset: from, skipped }));
    if (this.ws) {
      const decoder = new TextDecoder();
      const data = chunks.map((c) => decoder.decode(c, { stream: true })).join("") + decoder.decode();
      if (data) this.say(ws, { type: "pty_output", data });
    } else for (const c of chunks) ws.send(c);
  }

  private fromWriter(ws: WebSocket, data: string | ArrayBuffer) {
    if (ws !== this.writer) return;
    if (this.ws) {
      if (typeof data !== "string") return this.say(ws, { type: "error", code: "invalid_message", message: `${WS_ERRORS.invalid_message}: binary frames are not used here` });
      return this.fromWsWriter(ws, data);
    }
    if (this.phase === "ended") return;
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
      this.broadcastText({ type: "exit", code: f.code });
      this.end(1000, f.code === null ? "exited" : `exited with status ${f.code}`);
    }
  }

  private output(bytes: Uint8Array) {
    this.touch();
    this.ring.push(bytes);
    // `/ws/terminal` output is text: UTF-8 decoded across chunk boundaries, invalid bytes as U+FFFD.
    const out = this.ws ? JSON.stringify({ type: "pty_output", data: this.ws.decoder.decode(bytes, { stream: true }) } satisfies WsServerMessage) : bytes;
    if (this.writer) safeSend(this.writer, out);
    for (const v of this.viewers) {
      if (v.bufferedAmount > VIEWER_MAX_BEHIND) {
        this.viewers.delete(v);
        v.close(CLOSE.viewerBehind.code, CLOSE.viewerBehind.reason);
      } else safeSend(v, out);
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
    for (const t of [this.lagTimer, this.graceTimer, this.startTimer, this.idleTimer]) if (t) clearTimeout(t);
    const why = closeReason(reason);
    if (this.agent) {
      this.toAgent({ type: "close", reason: why });
      this.agent.close(1000, why);
    }
    if (this.ws) {
      const ended: WsServerMessage = { type: "session_ended", session_id: this.session.id, exit_code: this.exitCode, reason: why };
      this.say(this.writer, ended);
      for (const v of this.viewers) this.say(v, ended);
    }
    if (this.writer) this.writer.close(code, why);
    for (const v of this.viewers) v.close(code, why);
    this.viewers.clear();
    this.pendingInput = [];
    this.forgetInlineCredentials();
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

  /** The program runs: a `/ws/terminal` client is told, and a profile with no pinned key takes the one seen. */
  private started(fingerprint: string | null) {
    const s = this.session!;
    if (!this.ws) return;
    const saved = s.ssh && !s.ssh.adhoc;
    this.forgetInlineCredentials();
    if (s.kind === "ssh") {
      this.say(this.writer, { type: "ssh_connected", session_id: s.id, host_id: s.hostId, host_key_fingerprint: fingerprint });
      if (fingerprint && saved && s.ssh) this.ctx.waitUntil(noteSshConnected(createDb(this.env.DB), s.ssh.profileId, fingerprint).catch(() => undefined));
    } else this.say(this.writer, { type: "pty_created", session_id: s.id, host_id: s.hostId });
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
