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
 *
 * Three kinds of TTY (`terminal_open.kind`): `app`, a Docker exec in the app's running
 * container; `ssh`, an interactive shell over SSH (drivers/ssh.ts) with credentials fetched
 * for the session (`GET /agent/terminals/{session}/secrets`, never logged); `host`, a shell on
 * this host: a throwaway helper container in the host's PID namespace, with every capability
 * the agent itself holds, runs `nsenter -t <the agent's pid> -m -u -i -n -p -- /bin/sh` through
 * a Docker exec, and is removed at the end. The agent's own namespaces rather than PID 1's: on
 * a host they are the same, and a sandbox may hide PID 1's. The image is the agent's
 * `--host-shell-image`; it needs `nsenter` (busybox's applet will do).
 */
import { readFileSync } from "node:fs";
import type { Duplex } from "node:stream";
import {
  SshSecrets, TERMINAL_WINDOW_BYTES, TerminalServerFrame, type ServerMessage, type TerminalAgentFrame,
} from "../../src/protocol/agent.ts";
import type { DockerEngine, ExecSession } from "./drivers/docker.ts";
import { connectSsh, SshError } from "./drivers/ssh.ts";
import type { Logger } from "./log.ts";
import { LABEL_APP } from "./tasks/apps.ts";

type OpenRequest = Extract<ServerMessage, { type: "terminal_open" }>;

/** Where a session's socket is and the credential to open it with. */
export interface TerminalLink {
  url(path: string): string;
  credential: string | null;
  call<T>(method: string, path: string, body?: unknown): Promise<T>;
}

/** A running program's terminal, whatever it runs in. */
interface Pty {
  stream: Duplex;
  resize(cols: number, rows: number): Promise<void>;
  /** Hangs up: the program sees its terminal close. */
  close(): void;
  exitCode(): Promise<number | null>;
  /** Removes what was made for the session (the host shell's helper container). */
  cleanup(): Promise<void>;
}

/** The image of the host shell's helper container when the agent names none. */
export const DEFAULT_HOST_SHELL_IMAGE = "busybox:1.36";
const SSH_READY_TIMEOUT_MS = 20_000;

export class Terminals {
  private readonly docker: DockerEngine;
  private readonly link: TerminalLink;
  private readonly log: Logger;
  private readonly open = new Map<string, WebSocket>();

  private readonly hostShellImage: string;

  constructor(docker: DockerEngine, link: TerminalLink, log: Logger, hostShellImage = DEFAULT_HOST_SHELL_IMAGE) {
    this.docker = docker;
    this.hostShellImage = hostShellImage;
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
    ws.addEventListener("close", () => this.release(req.session_id, ws));
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

  /**
   * Forgets a session's socket (only that one): a `/ws/terminal` session that failed to start may
   * be tried again under the same id at once, before this socket's close handshake is over.
   */
  private release(sessionId: string, ws: WebSocket) {
    if (this.open.get(sessionId) === ws) this.open.delete(sessionId);
  }

  stopAll() {
    for (const ws of this.open.values()) ws.close(1001, "agent stopping");
  }

  private async run(req: OpenRequest, ws: WebSocket) {
    const say = (frame: TerminalAgentFrame) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify(frame));
    let opened: { pty: Pty; started: Extract<TerminalAgentFrame, { type: "started" }> } | null;
    try {
      opened = req.kind === "ssh" ? await this.openSsh(req) : req.kind === "host" ? await this.openHostShell(req) : await this.openApp(req);
    } catch (err) {
      const code = err instanceof SshError ? err.code : "exec_failed";
      this.release(req.session_id, ws);
      say({ type: "error", code, message: (err as Error).message.slice(0, 2000) });
      return ws.close(1000, "could not start");
    }
    if (!opened) {
      this.release(req.session_id, ws);
      say({ type: "error", code: "not_running", message: "The app has no running container" });
      return ws.close(1000, "not running");
    }
    const session = opened.pty;
    if (ws.readyState !== WebSocket.OPEN) {
      session.close();
      return void session.cleanup();
    }
    say(opened.started);
    this.log.info("terminal opened", { session: req.session_id, kind: req.kind, app_id: req.app_id || undefined });

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
    const code = await session.exitCode();
    await session.cleanup();
    say({ type: "exit", code });
    ws.close(1000, "exited");
    this.log.info("terminal closed", { session: req.session_id, exit_code: code ?? undefined });
  }

  /** A shell in the app's newest running container; null when none runs. */
  private async openApp(req: OpenRequest) {
    const containers = await this.docker.list({ [LABEL_APP]: req.app_id }).catch(() => []);
    const running = containers.filter((c) => c.state === "running").sort((a, b) => Date.parse(b.created) - Date.parse(a.created))[0];
    if (!running) return null;
    const exec = await this.docker.exec(running.id, { cmd: req.cmd, cols: req.cols, rows: req.rows });
    return { pty: dockerPty(exec), started: { type: "started" as const, container_id: running.id } };
  }

  /** A shell on this host, through a privileged helper container that enters PID 1's namespaces. */
  private async openHostShell(req: OpenRequest) {
    const image = this.hostShellImage;
    if (!(await this.docker.imageExists(image))) await this.docker.pull(image);
    const id = await this.docker.create({
      name: `berth-host-shell-${req.session_id.slice(4, 16)}`,
      image,
      env: {},
      // Lives while this agent does (it sees the agent's pid): one orphaned by a dead agent ends and removes itself.
      cmd: ["/bin/sh", "-c", `while kill -0 ${process.pid} 2>/dev/null; do sleep 5; done`],
      labels: { [LABEL_HOST_SHELL]: req.session_id },
      internalPort: 1,
      publishPort: false,
      cpuLimit: 0,
      memoryLimitMb: 0,
      restartPolicy: "no",
      logMaxSize: null,
      hostAccess: { capAdd: ownCapabilities(), autoRemove: true },
    });
    const remove = async () => void (await this.docker.remove(id, { force: true }).catch(() => false));
    try {
      await this.docker.start(id);
      const enter = ["-t", String(process.pid), "-m", "-u", "-i", "-n", "-p", "--", ...req.cmd];
      // `nsenter` itself, or busybox's applet where the image has no link to it.
      const cmd = ["/bin/sh", "-c", 'if command -v nsenter >/dev/null; then exec nsenter "$@"; else exec busybox nsenter "$@"; fi', "nsenter", ...enter];
      const exec = await this.docker.exec(id, { cmd, cols: req.cols, rows: req.rows });
      return { pty: { ...dockerPty(exec), cleanup: remove }, started: { type: "started" as const, container_id: id } };
    } catch (err) {
      await remove();
      throw err;
    }
  }

  /** An interactive SSH shell from this host, with the session's credentials. */
  private async openSsh(req: OpenRequest) {
    const target = req.ssh;
    if (!target) throw new SshError("ssh_failed", "The session names no SSH server");
    const answer = await this.link.call<{ ssh?: unknown }>("GET", `/agent/terminals/${req.session_id}/secrets`);
    const conn = await connectSsh({
      host: target.host,
      port: target.port,
      username: target.username,
      expectedFingerprint: target.host_key_fingerprint,
      secrets: SshSecrets.parse(answer.ssh ?? {}),
      readyTimeoutMs: SSH_READY_TIMEOUT_MS,
    });
    let channel: Awaited<ReturnType<typeof conn.shell>>;
    try {
      channel = await conn.shell(req.cols, req.rows);
    } catch (err) {
      conn.close();
      throw err;
    }
    let exit: number | null = null;
    channel.on("exit", (code: unknown) => {
      exit = typeof code === "number" ? code : null;
    });
    const pty: Pty = {
      stream: channel,
      resize: async (cols, rows) => void channel.setWindow(rows, cols, 0, 0),
      close: () => {
        channel.close();
        conn.close();
      },
      exitCode: async () => exit,
      cleanup: async () => conn.close(),
    };
    return { pty, started: { type: "started" as const, host_key_fingerprint: conn.fingerprint } };
  }
}

export const LABEL_HOST_SHELL = "berth.host-shell";

/**
 * Linux capabilities by bit number (linux/capability.h), up to AUDIT_READ: the newer ones
 * (PERFMON, BPF, CHECKPOINT_RESTORE) are refused as unknown by older dockerd releases.
 */
const CAPABILITIES = [
  "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE",
  "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT",
  "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE",
  "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
];

/** The capabilities in this process's bounding set: what the host shell may have, no more. */
function ownCapabilities(): string[] {
  let mask = 0n;
  try {
    const line = readFileSync("/proc/self/status", "utf8").match(/^CapBnd:\s*([0-9a-f]+)$/m);
    mask = line ? BigInt(`0x${line[1]}`) : 0n;
  } catch {
    /* not Linux: none added */
  }
  return CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

function dockerPty(exec: ExecSession): Pty {
  return {
    stream: exec.stream,
    resize: (cols, rows) => exec.resize(cols, rows),
    close: () => exec.close(),
    exitCode: () => exitStatus(exec),
    cleanup: async () => undefined,
  };
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
