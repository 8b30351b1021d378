/**
 * `ssh.exec`: a connection test or one command over SSH from this host (drivers/ssh.ts). The
 * profile's credentials are fetched for the lease (`GET /agent/leases/{lease}/env`, `ssh`) and
 * go only to the SSH server: never into a log line, the job's output or an error. A command's
 * output is sent once, capped, to `POST /agent/leases/{lease}/command-output`, then the job
 * finishes with the key seen, the exit status and the duration.
 */
import { SshSecrets } from "../../../src/protocol/agent.ts";
import { connectSsh, type SshConnection, SshError } from "../drivers/ssh.ts";
import type { PayloadOf, Task, TaskOutcome } from "../jobs/registry.ts";

/** The handshake gets at most this long, or the command's own time limit when that is shorter. */
const READY_TIMEOUT_MS = 20_000;

export const sshTask: Task<PayloadOf<"ssh.exec">> = {
  async run(ctx) {
    const p = ctx.payload;
    if (p.command && ctx.lease.reconcile) {
      // An earlier attempt may have run it: a command with side effects is not run twice.
      return { status: "failed", error: "ssh_failed: the agent lost this command while it ran; it is not run again (rerun it if that is safe)", result: { authenticated: false } };
    }
    const env = await ctx.api.call<{ ssh?: unknown }>("GET", `/agent/leases/${ctx.lease.lease_id}/env`);
    const secrets = SshSecrets.parse(env.ssh ?? {});
    const started = Date.now();
    let conn: SshConnection;
    try {
      conn = await connectSsh({
        host: p.host,
        port: p.port,
        username: p.username,
        expectedFingerprint: p.host_key_fingerprint,
        secrets,
        readyTimeoutMs: Math.min(READY_TIMEOUT_MS, p.timeout_seconds * 1000),
        signal: ctx.signal,
      });
    } catch (err) {
      if (!(err instanceof SshError)) throw err;
      ctx.log.warn("ssh connection failed", { job_id: ctx.lease.job_id, code: err.code });
      return { status: "failed", error: `${err.code}: ${err.message}`, result: { host_key_fingerprint: err.fingerprint, authenticated: false } };
    }
    const connected = { host_key_fingerprint: conn.fingerprint, authenticated: true };
    try {
      if (!p.command) return { status: "succeeded", error: null, result: { ...connected, duration_ms: Date.now() - started } };
      const ran = await conn.exec(p.command, { timeoutMs: p.timeout_seconds * 1000, maxBytes: p.output_max_bytes, signal: ctx.signal });
      const durationMs = Date.now() - started;
      await ctx.api.call("POST", `/agent/leases/${ctx.lease.lease_id}/command-output`, {
        stdout: ran.stdout,
        stderr: ran.stderr,
        truncated: ran.truncated,
        exit_code: ran.exitCode,
        duration_ms: durationMs,
      });
      const result = { ...connected, exit_code: ran.exitCode, duration_ms: durationMs };
      return describe(ran.stopped, ran.exitCode, p.timeout_seconds, result);
    } finally {
      conn.close();
    }
  },
};

function describe(stopped: "timeout" | "cancelled" | null, exitCode: number | null, timeoutSeconds: number, result: NonNullable<TaskOutcome["result"]>): TaskOutcome {
  if (stopped === "timeout") return { status: "failed", error: `ssh_timeout: the command ran past ${timeoutSeconds} s and was stopped`, result };
  if (stopped) return { status: "failed", error: "ssh_failed: the command was cancelled", result };
  if (exitCode === 0) return { status: "succeeded", error: null, result };
  return { status: "failed", error: exitCode === null ? "ssh_failed: the command ended without an exit status" : `The command exited with status ${exitCode}`, result };
}
