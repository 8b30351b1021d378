/**
 * Terminal sessions: a program run with a TTY in an app's running container, its bytes
 * carried over a WebSocket of the session's own (`/agent/terminals/{session}`) straight to
 * the session's Durable Object. The host's socket only says "open one"; keystrokes and
 * output never share it with leases and log lines, so a flood in one terminal delays
 * neither the host's work nor another terminal.
 *
 * Output is sent as it comes (no batching timer: a keystroke's echo leaves at once) and
 * the TTY is paused while more than TERMINAL_WINDOW_BYTES are unacknowledged by the
 * session, so a program that writes faster than the user reads blocks on its own terminal,
 * as it would on a slow serial line, and nothing here grows without bound.
 */
import {
  TERMINAL_WINDOW_BYTES, TerminalServerFrame, type ServerMessage, type TerminalAgentFrame,
} from "../../src/protocol/agent.ts";
import type { DockerEngine, ExecSession } from "./drivers/docker.ts";
import type { Logger } from "./log.ts";
import { LABEL_APP } from "./tasks/apps.ts";

type OpenRequest = Extract<ServerMessage, { type: "terminal_open" }>;

/** Where a session's socket is and the credential to open it with. */
export interface TerminalLink {
  url(path: string): string;
  credential: string | null;
}

export class Terminals {
  private readonly docker: DockerEngine;
  private readonly link: TerminalLink;
  private readonly log: Logger;
  private readonly open = new Map<string, WebSocket>();

  constructor(docker: DockerEngine, link: TerminalLink, log: Logger) {
    this.docker = docker;
    this.link = link;
    this.log = log;
  }

  get count() {
    return this.open.size;
  }

  /** Opens the session's socket and starts the program; a second request for one session is ignored. */
  start(req: OpenRequest) {
    if (this.open.has(req.session_id) || !this.link.credential) return;
    const url = this.link.url(`/agent/terminals/${req.session_id}`).replace(/^http/, "ws");
    // Node's WebSocket takes headers in its second argument, which the DOM typing does not know.
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${this.link.credential}` } } as unknown as string[]);
    ws.binaryType = "arraybuffer";
    this.open.set(req.session_id, ws);
    ws.addEventListener("close", () => this.open.delete(req.session_id));
    ws.addEventListener("error", () => {
      /* followed by close */
    });
    ws.addEventListener("open", () => {
      void this.run(req, ws).catch((err: Error) => {
        this.log.warn("terminal session failed", { session: req.session_id, error: err.message });
        ws.close(1011, "agent error");
      });
    });
  }

  stopAll() {
    for (const ws of this.open.values()) ws.close(1001, "agent stopping");
  }

  private async run(req: OpenRequest, ws: WebSocket) {
    const say = (frame: TerminalAgentFrame) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify(frame));
    const containers = await this.docker.list({ [LABEL_APP]: req.app_id }).catch(() => []);
    const running = containers.filter((c) => c.state === "running").sort((a, b) => Date.parse(b.created) - Date.parse(a.created))[0];
    if (!running) {
      say({ type: "error", code: "not_running", message: "The app has no running container" });
      return ws.close(1000, "not running");
    }
    let session: ExecSession;
    try {
      session = await this.docker.exec(running.id, { cmd: req.cmd, cols: req.cols, rows: req.rows });
    } catch (err) {
      say({ type: "error", code: "exec_failed", message: (err as Error).message.slice(0, 2000) });
      return ws.close(1000, "exec failed");
    }
    if (ws.readyState !== WebSocket.OPEN) return session.close();
    say({ type: "started", container_id: running.id });
    this.log.info("terminal opened", { session: req.session_id, app_id: req.app_id });

    const tty = session.stream;
    let sent = 0;
    let acked = 0;
    const fits = () => sent - acked < TERMINAL_WINDOW_BYTES;
    tty.on("data", (chunk: Buffer) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      ws.send(chunk as Buffer<ArrayBuffer>);
      sent += chunk.length;
      if (!fits()) tty.pause();
    });
    ws.addEventListener("message", (event) => {
      if (typeof event.data !== "string") {
        tty.write(Buffer.from(event.data as ArrayBuffer));
        return;
      }
      let frame: ReturnType<typeof TerminalServerFrame.safeParse>;
      try {
        frame = TerminalServerFrame.safeParse(JSON.parse(event.data));
      } catch {
        return;
      }
      if (!frame.success) return;
      const f = frame.data;
      if (f.type === "ack") {
        acked = Math.max(acked, f.bytes);
        if (fits() && tty.isPaused()) tty.resume();
      } else if (f.type === "resize") {
        session.resize(f.cols, f.rows).catch((err: Error) => this.log.debug("terminal resize failed", { session: req.session_id, error: err.message }));
      } else if (f.type === "close") {
        session.close();
      }
    });
    ws.addEventListener("close", () => session.close());
    await new Promise<void>((resolve) => {
      tty.once("close", resolve);
      // A write after the program ended errors the stream; that is its end too, never a crash.
      tty.on("error", () => resolve());
    });
    const code = await exitStatus(session);
    say({ type: "exit", code });
    ws.close(1000, "exited");
    this.log.info("terminal closed", { session: req.session_id, exit_code: code ?? undefined });
  }
}

/** The program's exit status: dockerd may still say it runs for a moment after its TTY closed. */
async function exitStatus(session: ExecSession): Promise<number | null> {
  for (let i = 0; i < 40; i++) {
    const code = await session.exitCode().catch(() => null);
    if (code !== null) return code;
    await new Promise((r) => setTimeout(r, 25));
  }
  return null;
}
