/**
 * SSH client for DevPocket's profiles and commands, on the maintained `ssh2` package (pure
 * JavaScript, the client most Node tools use). One connection per job: connect, check the
 * server's host key against the pinned fingerprint, authenticate, optionally run one command,
 * close. Fingerprints are OpenSSH's (`SHA256:` and unpadded base64 of the key's SHA-256).
 */
import { createHash } from "node:crypto";
import { Client, type ClientChannel, type ConnectConfig } from "ssh2";
import type { SshFailure, SshSecrets } from "../../../src/protocol/agent.ts";

export class SshError extends Error {
  readonly code: SshFailure;
  /** The server key seen, when the handshake got that far. */
  readonly fingerprint: string | null;

  constructor(code: SshFailure, message: string, fingerprint: string | null = null) {
    super(message);
    this.code = code;
    this.fingerprint = fingerprint;
  }
}

export const fingerprintOf = (key: Buffer) => `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  /** The pinned key; null accepts the first key seen (and reports it). */
  expectedFingerprint: string | null;
  secrets: SshSecrets;
  /** Milliseconds for the TCP connection, handshake and authentication together. */
  readyTimeoutMs: number;
  signal?: AbortSignal;
}

export interface SshConnection {
  fingerprint: string;
  exec(command: string, opts: ExecOptions): Promise<ExecResult>;
  /** An interactive login shell with a PTY (`/ws/terminal`); the channel is its terminal, stdout and stderr merged as on any TTY. */
  shell(cols: number, rows: number): Promise<ClientChannel>;
  close(): void;
}

export interface ExecOptions {
  timeoutMs: number;
  /** Bytes kept of each stream; the rest is read and dropped. */
  maxBytes: number;
  signal?: AbortSignal;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  truncated: boolean;
  exitCode: number | null;
  /** Set when the command did not end by itself. */
  stopped: "timeout" | "cancelled" | null;
}

const UNREACHABLE = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "ECONNRESET", "ETIMEDOUT"]);

export function connectSsh(target: SshTarget): Promise<SshConnection> {
  const client = new Client();
  let seen: string | null = null;
  let mismatch = false;
  const config: ConnectConfig = {
    host: target.host,
    port: target.port,
    username: target.username,
    readyTimeout: target.readyTimeoutMs,
    // No agent forwarding, no keyboard-interactive prompts: only what the profile holds.
    tryKeyboard: false,
    hostVerifier: (key: Buffer) => {
      seen = fingerprintOf(key);
      mismatch = target.expectedFingerprint !== null && seen !== target.expectedFingerprint;
      return !mismatch;
    },
  };
  if (target.secrets.private_key) {
    config.privateKey = target.secrets.private_key;
    if (target.secrets.passphrase) config.passphrase = target.secrets.passphrase;
  }
  if (target.secrets.password) config.password = target.secrets.password;

  return new Promise<SshConnection>((resolve, reject) => {
    let settled = false;
    const fail = (err: SshError) => {
      if (settled) return;
      settled = true;
      target.signal?.removeEventListener("abort", onAbort);
      client.end();
      reject(err);
    };
    const onAbort = () => fail(new SshError("ssh_failed", "The job was cancelled", seen));
    target.signal?.addEventListener("abort", onAbort, { once: true });

    client.on("ready", () => {
      if (settled) return;
      settled = true;
      target.signal?.removeEventListener("abort", onAbort);
      resolve({
        fingerprint: seen!,
        exec: (command, opts) => runCommand(client, command, opts),
        shell: (cols, rows) => openShell(client, cols, rows),
        close: () => client.end(),
      });
    });
    client.on("error", (err: Error & { level?: string; code?: string }) => {
      if (mismatch) {
        fail(new SshError("host_key_mismatch", `The server's host key is ${seen}, not the pinned ${target.expectedFingerprint}: refused`, seen));
      } else if (err.level === "client-authentication") {
        fail(new SshError("ssh_auth_failed", `The server refused ${target.username}'s credentials`, seen));
      } else if (err.level === "client-timeout") {
        fail(new SshError("ssh_timeout", `No SSH handshake with ${target.host}:${target.port} within ${Math.round(target.readyTimeoutMs / 1000)} s`, seen));
      } else if (err.code && UNREACHABLE.has(err.code)) {
        fail(new SshError("ssh_unreachable", `${target.host}:${target.port} is unreachable from this host (${err.code})`, seen));
      } else {
        fail(new SshError("ssh_failed", err.message.slice(0, 500), seen));
      }
    });
    client.on("close", () => fail(new SshError(mismatch ? "host_key_mismatch" : "ssh_failed", mismatch ? `The server's host key is ${seen}, not the pinned ${target.expectedFingerprint}: refused` : "The server closed the connection", seen)));
    try {
      client.connect(config);
    } catch (err) {
      // ssh2 parses the key before connecting: a bad key or passphrase throws here.
      fail(new SshError("ssh_failed", `Cannot use the profile's private key: ${(err as Error).message.slice(0, 300)}`));
    }
  });
}

function openShell(client: Client, cols: number, rows: number): Promise<ClientChannel> {
  // A shell is typed into a key at a time: without Nagle's algorithm, as OpenSSH's own client does
  // for a session with a TTY. With it, ssh2's small writes waited for the server's delayed ACK
  // (bench:terminal: an SSH keystroke's echo took 47 ms at p50).
  client.setNoDelay(true);
  return new Promise<ClientChannel>((resolve, reject) => {
    client.shell({ term: "xterm-256color", cols, rows }, (err, channel) => {
      if (err) reject(new SshError("ssh_failed", `The server would not open a shell: ${err.message}`));
      else resolve(channel);
    });
  });
}

function runCommand(client: Client, command: string, opts: ExecOptions): Promise<ExecResult> {
  return new Promise<ExecResult>((resolve, reject) => {
    client.exec(command, (err, stream: ClientChannel) => {
      if (err) return reject(new SshError("ssh_failed", `The server would not run the command: ${err.message}`));
      const out = { stdout: [] as Buffer[], stderr: [] as Buffer[], sizes: { stdout: 0, stderr: 0 }, truncated: false };
      const keep = (which: "stdout" | "stderr") => (chunk: Buffer) => {
        const room = opts.maxBytes - out.sizes[which];
        if (room <= 0) {
          out.truncated = true;
          return;
        }
        const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
        if (part.length < chunk.length) out.truncated = true;
        out[which].push(part);
        out.sizes[which] += part.length;
      };
      stream.on("data", keep("stdout"));
      stream.stderr.on("data", keep("stderr"));
      let exitCode: number | null = null;
      let stopped: ExecResult["stopped"] = null;
      stream.on("exit", (code: number | null) => {
        exitCode = typeof code === "number" ? code : null;
      });
      const stop = (why: "timeout" | "cancelled") => {
        stopped = why;
        // OpenSSH ignores most signal requests; closing the connection ends the session's processes.
        stream.signal("KILL");
        client.end();
      };
      const timer = setTimeout(() => stop("timeout"), opts.timeoutMs);
      const onAbort = () => stop("cancelled");
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      const finish = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
        resolve({
          stdout: Buffer.concat(out.stdout).toString("utf8"),
          stderr: Buffer.concat(out.stderr).toString("utf8"),
          truncated: out.truncated,
          exitCode: stopped ? null : exitCode,
          stopped,
        });
      };
      stream.on("close", finish);
      client.once("close", finish);
    });
  });
}
