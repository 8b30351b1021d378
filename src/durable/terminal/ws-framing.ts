/**
 * DevPocket's `/ws/terminal` framing on a TerminalDO: the socket opens with no session, a
 * `connect_ssh` or `create_pty` message starts one, and every frame both ways is JSON
 * (ws-protocol.ts). This module parses the writer's messages, starts the session through the
 * object that holds the sockets (WsSessionControl), answers `ai_convert`, and shapes the
 * server's frames (`pty_output` decoded as UTF-8 across chunks, `ssh_connected`/`pty_created`,
 * `session_ended`). Inline SSH credentials are forgotten as soon as the agent used them.
 */
import { createDb } from "../../db/client";
import type { Env } from "../../env";
import { ApiError, forbidden } from "../../lib/errors";
import { storedAiKey } from "../../services/ai-keys";
import { suggestCommand } from "../../services/ai-suggest";
import { recordAuditAs } from "../../services/audit";
import { deleteProfile, noteSshConnected } from "../../services/ssh";
import type { Phase, Session } from "./session";
import { WS_ERRORS, WsClientMessage, type WsGrant, type WsServerMessage } from "./ws-protocol";
import { errorFrame, ptyHost, sshTarget } from "./ws-targets";

/** What the framing needs of the session's object. */
export interface WsSessionControl {
  readonly env: Env;
  waitUntil(promise: Promise<unknown>): void;
  session(): Session | null;
  phase(): Phase;
  /** The socket allowed to type (the opener's), if connected. */
  writer(): WebSocket | null;
  /** Takes `session` as this object's session and asks its host to start it. */
  begin(session: Session): Promise<void>;
  input(bytes: Uint8Array): void;
  resize(cols: number, rows: number): void;
  touch(): void;
}

const encoder = new TextEncoder();

export class WsFraming {
  /** A `connect_ssh`/`create_pty` is being looked up or started. */
  private busy = false;
  private aiBusy = false;
  /** `ssh_connected` or `pty_created` once the program runs: the opener got it, and so does every socket that joins later. */
  private startFrame: WsServerMessage | null = null;

  constructor(
    readonly id: string,
    readonly grant: WsGrant,
    private readonly control: WsSessionControl,
  ) {}

  say(ws: WebSocket | null, message: WsServerMessage) {
    if (!ws) return;
    try {
      ws.send(JSON.stringify(message));
    } catch {
      /* closing: its close handler deals with it */
    }
  }

  /** A frame from the writer: every one is a JSON message, answered with an error frame when it is not one. */
  message(ws: WebSocket, data: string | ArrayBuffer) {
    if (typeof data !== "string") return this.say(ws, { type: "error", code: "invalid_message", message: `${WS_ERRORS.invalid_message}: binary frames are not used here` });
    let parsed: ReturnType<typeof WsClientMessage.safeParse>;
    try {
      parsed = WsClientMessage.safeParse(JSON.parse(data));
    } catch {
      return this.say(ws, { type: "error", code: "invalid_message", message: `${WS_ERRORS.invalid_message}: not JSON` });
    }
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? ` (${issue.path.join(".")})` : "";
      return this.say(ws, { type: "error", code: "invalid_message", message: `${WS_ERRORS.invalid_message}: ${issue?.message ?? "invalid"}${where}` });
    }
    const m = parsed.data;
    const c = this.control;
    if (m.type === "connect_ssh" || m.type === "create_pty") {
      if (c.phase() === "ended") return this.say(ws, { type: "error", code: "session_ended", message: WS_ERRORS.session_ended });
      if (c.session() || this.busy) return this.say(ws, { type: "error", code: "session_running", message: WS_ERRORS.session_running });
      this.busy = true;
      void this.start(m).finally(() => {
        this.busy = false;
      });
      return;
    }
    if (m.type === "ai_convert") {
      if (this.aiBusy) return this.say(ws, { type: "error", code: "ai_busy", message: WS_ERRORS.ai_busy });
      this.aiBusy = true;
      void this.aiConvert(m).finally(() => {
        this.aiBusy = false;
      });
      return;
    }
    if (!c.session() || c.phase() === "ended") return this.say(ws, { type: "error", code: "no_session", message: WS_ERRORS.no_session });
    c.touch();
    if (m.type === "resize_pty") c.resize(m.cols, m.rows);
    else if (m.type === "pty_input") c.input(encoder.encode(m.data));
    else c.input(encoder.encode(`${m.data}\n`));
  }

  /** `ai_convert`: one command from the user's own AI key (sent along, or stored), as `POST /ai/suggest`; the key never comes back. */
  private async aiConvert(m: Extract<WsClientMessage, { type: "ai_convert" }>) {
    const grant = this.grant;
    try {
      if (grant.ai === "none") throw forbidden("Org API keys cannot use a person's AI key; connect as the person or with their personal key");
      let key = m.api_key ?? null;
      if (!key) {
        if (grant.ai !== "stored") throw forbidden("This API key's scope may not use the stored AI key; send api_key");
        key = await storedAiKey(createDb(this.control.env.DB), this.control.env, grant.userId);
        if (!key) throw new ApiError("ai_key_missing", "Send api_key, or store one with PUT /ai/key");
      }
      const command = await suggestCommand(this.control.env, key, m.prompt, m.model);
      this.say(this.control.writer(), { type: "ai_suggestion", command });
    } catch (err) {
      this.say(this.control.writer(), errorFrame(err));
    }
  }

  /** Works out where the session runs, audits its start and hands it to the object to start on its host. */
  private async start(m: Extract<WsClientMessage, { type: "connect_ssh" | "create_pty" }>) {
    const c = this.control;
    const db = createDb(c.env.DB);
    const cols = m.cols ?? 80;
    const rows = m.rows ?? 24;
    const base = { id: this.id, appId: "", projectId: "", opener: this.grant.actor, startedAt: Date.now(), cols, rows };
    let s: Session;
    try {
      if (m.type === "connect_ssh") {
        const { profile, via } = await sshTarget(db, c.env, this.grant, m);
        s = {
          ...base,
          kind: "ssh",
          hostId: via,
          orgId: profile.orgId,
          cmd: ["ssh", `${profile.username}@${profile.host}:${profile.port}`],
          ssh: { profileId: profile.id, adhoc: profile.adhoc, host: profile.host, port: profile.port, username: profile.username, fingerprint: profile.hostKeyFingerprint, pinned: profile.hostKeyFingerprint !== null },
        };
      } else {
        const { hostId, orgId } = await ptyHost(db, c.env, this.grant, m);
        s = { ...base, kind: "host", hostId, orgId, cmd: ["/bin/sh"] };
      }
    } catch (err) {
      this.say(c.writer(), errorFrame(err));
      return;
    }
    if (!c.writer() || c.phase() === "ended") {
      // The socket went while the target was looked up: nobody to start it for.
      this.forgetInlineCredentials(s);
      return;
    }
    c.waitUntil(
      recordAuditAs(db, s.opener, {
        orgId: s.orgId,
        action: s.kind === "ssh" ? "terminal.ssh" : "terminal.host",
        targetType: "host",
        targetId: s.hostId,
        metadata: { session_id: s.id, ...(s.ssh ? { target: s.cmd[1], profile_id: s.ssh.adhoc ? null : s.ssh.profileId } : {}) },
      }).catch(() => undefined),
    );
    await c.begin(s);
  }

  /** Inline credentials live only until the agent used them (or never will). */
  forgetInlineCredentials(s: Session | null) {
    const ssh = s?.ssh;
    if (ssh?.adhoc) {
      ssh.adhoc = false;
      this.control.waitUntil(deleteProfile(createDb(this.control.env.DB), ssh.profileId).catch(() => undefined));
    }
  }

  /**
   * The program runs: the frame that says so (`ssh_connected` or `pty_created`), for the object
   * to send to everyone connected; a profile with no pinned key takes the one seen.
   */
  started(s: Session, fingerprint: string | null): WsServerMessage {
    const saved = s.ssh && !s.ssh.adhoc;
    this.forgetInlineCredentials(s);
    if (s.kind === "ssh" && fingerprint && saved && s.ssh) this.control.waitUntil(noteSshConnected(createDb(this.control.env.DB), s.ssh.profileId, fingerprint).catch(() => undefined));
    this.startFrame =
      s.kind === "ssh" ? { type: "ssh_connected", session_id: s.id, host_id: s.hostId, host_key_fingerprint: fingerprint } : { type: "pty_created", session_id: s.id, host_id: s.hostId };
    return this.startFrame;
  }

  /** The session did not start: the socket may try another, which will have its own start frame. */
  notStarted() {
    this.startFrame = null;
  }

  /** Output as a `pty_output` frame, with the socket's own decoder: UTF-8 decoded across frames, invalid bytes as U+FFFD. */
  outputFrame(decoder: TextDecoder, bytes: Uint8Array): string {
    return JSON.stringify({ type: "pty_output", data: decoder.decode(bytes, { stream: true }) } satisfies WsServerMessage);
  }

  /** A socket joining a running session is told what the opener was (`ssh_connected`/`pty_created`), before its replay. */
  greetStart(ws: WebSocket) {
    if (this.startFrame) this.say(ws, this.startFrame);
  }
}
