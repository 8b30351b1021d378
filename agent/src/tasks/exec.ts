/**
 * `host.exec`: a shell command, run detached from the agent (drivers/exec.ts)
 * so that it survives the agent being killed or upgraded. An agent that
 * restarts finds the command by its pid in the job's folder and waits for it
 * instead of running it again; a command past its time limit is stopped.
 */
import { sleep } from "../backoff.ts";
import { ExecProcess, type ExecOutcome } from "../drivers/exec.ts";
import type { PayloadOf, Task, TaskOutcome } from "../jobs/registry.ts";

/** How often the command's exit status is looked for. */
const POLL_MS = 50;

export const execTask: Task<PayloadOf<"host.exec">> = {
  async run(ctx) {
    const { payload, journal } = ctx;
    const exec = new ExecProcess(journal.dir);
    if (exec.started) {
      ctx.log.info("found this job's earlier run on the host; reporting it instead of running it again", { job_id: ctx.lease.job_id });
    } else {
      ctx.log.info("running command", { job_id: ctx.lease.job_id, attempt: ctx.lease.attempt });
      exec.start(payload.command);
      journal.markStarted();
    }
    for (;;) {
      const outcome = exec.outcome();
      if (outcome) return describe(outcome, payload.timeout_seconds);
      // The agent is stopping (or the job ended here): the command goes on; the next start picks it up.
      if (ctx.signal.aborted) return { status: "failed", error: "stopped" };
      const startedAt = journal.startedAt();
      if (startedAt && Date.now() - startedAt > payload.timeout_seconds * 1000) {
        ctx.log.warn("command timed out; stopping it", { job_id: ctx.lease.job_id, timeout_seconds: payload.timeout_seconds });
        exec.kill("timeout");
        continue;
      }
      await sleep(POLL_MS, ctx.signal);
    }
  },
  cancel(journal) {
    new ExecProcess(journal.dir).kill("cancelled");
  },
};

function describe(outcome: ExecOutcome, timeoutSeconds: number): TaskOutcome {
  if (outcome.killed === "timeout") return { status: "failed", error: `The command timed out after ${timeoutSeconds} s and was stopped`, result: { exit_code: null } };
  if (outcome.killed) return { status: "failed", error: `The command was stopped (${outcome.killed})`, result: { exit_code: null } };
  if (outcome.exitCode === 0) return { status: "succeeded", error: null, result: { exit_code: 0 } };
  // The output itself stays in the job's logs, which only those who may run commands can read.
  return { status: "failed", error: `The command exited with status ${outcome.exitCode}; its output is in the job's logs`, result: { exit_code: outcome.exitCode } };
}
