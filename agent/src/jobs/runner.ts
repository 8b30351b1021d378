/**
 * One job on this host, whatever its kind, across however many leases it
 * takes: the one owner of the lease protocol. It reports `start` and begins
 * the work only once the control plane accepts it, renews at a third of the
 * TTL (with the task's progress), ships the output the journal holds, then
 * journals the outcome before reporting it once. When the job is handed out
 * again (a reconnect, a restart) it adopts the new lease and reports from the
 * start under it, so the control plane sees one complete, ordered output and
 * exactly one outcome.
 *
 * A lease refused as stale is held, not dropped: with one agent per host the
 * control plane hands an expired lease's job back to this same agent as a new
 * attempt within moments, and the work goes on under it; a cancelled job is
 * stopped at once by the `cancel` message. Only when nothing comes back within
 * two TTLs is the work stopped here too.
 */
import type { JobProgress, Lease } from "../../../src/protocol/agent.ts";
import { Backoff } from "../backoff.ts";
import type { Logger } from "../log.ts";
import type { StateDir } from "../state.ts";
import { ApiFailure } from "../transport/http.ts";
import { Wakeup } from "../wakeup.ts";
import { JobJournal, type Recorded } from "./journal.ts";
import type { LeaseReporter, Task, TaskContext, TaskOutcome } from "./registry.ts";
import { LogShipper, type Stream } from "./shipper.ts";

/** How often a running job's output and outcome are looked at. */
const TICK_MS = 50;
/** How often a held job looks whether it was handed back. */
const HELD_TICK_MS = 200;
/** Progress goes out at most this soon after it changed, ahead of the next renewal. */
const PROGRESS_DELAY_MS = 250;
const STREAMS = ["stdout", "stderr"] as const;

export interface RunnerDeps {
  state: StateDir;
  api: LeaseReporter;
  log: Logger;
  /** Runs `fn` after every earlier holder of `key` is done. */
  exclusive: <T>(key: string, fn: () => Promise<T>) => Promise<T>;
}

export class JobRunner {
  readonly jobId: string;
  private lease: Lease;
  private readonly deps: RunnerDeps;
  private readonly task: Task;
  private readonly journal: JobJournal;
  private shipper: LogShipper;
  private positions: Record<Stream, number> = { stdout: 0, stderr: 0 };
  /** The lease whose `start` the control plane accepted; the loop begins again when it is not the current one. */
  private begun: Lease | null = null;
  private nextRenewAt = 0;
  private progress: JobProgress | null = null;
  private progressDueAt: number | null = null;
  /** When the current lease was refused as stale; null while it holds. */
  private lostSince: number | null = null;
  private launched = false;
  private ended = false;
  private readonly abort = new AbortController();
  private readonly wakeup = new Wakeup();
  private readonly backoff = new Backoff(500, 5_000);
  onEnd: (run: JobRunner) => void = () => {};
  onFatal: (err: ApiFailure) => void = () => {};

  constructor(deps: RunnerDeps, lease: Lease, task: Task) {
    this.deps = deps;
    this.jobId = lease.job_id;
    this.lease = lease;
    this.task = task;
    this.journal = new JobJournal(deps.state, lease.job_id);
    this.journal.saveLease(lease);
    this.shipper = new LogShipper(deps.api, lease.lease_id);
  }

  get leaseId() {
    return this.lease.lease_id;
  }

  /** The lease to name when (re)connecting or claiming; none once it was refused or the run ended. */
  get held(): { job_id: string; lease_id: string } | null {
    return this.lostSince === null && !this.ended ? { job_id: this.jobId, lease_id: this.lease.lease_id } : null;
  }

  start() {
    void this.loop().catch((err: Error) => {
      this.deps.log.error("job runner crashed", { job_id: this.jobId, error: err.message });
      this.end();
    });
    return this;
  }

  /** The same job under a new lease (a redelivery): report again from the start under it. */
  adopt(lease: Lease) {
    if (lease.lease_id === this.lease.lease_id) return;
    this.deps.log.info("job handed out again; continuing it under the new lease", { job_id: this.jobId, attempt: lease.attempt });
    this.lease = lease;
    this.shipper = new LogShipper(this.deps.api, lease.lease_id);
    this.positions = { stdout: 0, stderr: 0 };
    this.lostSince = null;
    this.backoff.reset();
    this.journal.saveLease(lease);
    this.wakeup.notify();
  }

  /** The control plane cancelled the job: stop the work now; there is nothing to report. */
  cancel() {
    this.deps.log.info("job cancelled by the control plane; stopping it", { job_id: this.jobId });
    this.drop();
  }

  /** The agent is stopping: work that lives outside it (a command) keeps running for the next start. */
  stop() {
    this.ended = true;
    this.abort.abort();
    this.wakeup.notify();
  }

  private async loop() {
    while (!this.ended) {
      const lease = this.lease;
      if (this.lostSince !== null) {
        if (Date.now() - this.lostSince > lease.lease_ttl * 1000 * 2) {
          this.deps.log.warn("lease lost and not handed back; stopping the work", { job_id: this.jobId });
          return this.drop();
        }
        await this.wakeup.wait(HELD_TICK_MS);
        continue;
      }
      let pause = TICK_MS;
      try {
        if (this.begun !== lease) await this.begin(lease);
        else if (await this.tick(lease)) return;
        this.backoff.reset();
      } catch (err) {
        this.failure(err, lease);
        pause = this.backoff.next();
      }
      await this.wakeup.wait(pause);
    }
  }

  private async begin(lease: Lease) {
    await this.deps.api.report("start", lease.lease_id);
    if (lease !== this.lease) return;
    this.begun = lease;
    this.nextRenewAt = Date.now() + (lease.lease_ttl * 1000) / 3;
    if (!this.launched) this.launch();
  }

  /** Begins the work, once per process: a job whose outcome is in the journal is only reported. */
  private launch() {
    this.launched = true;
    if (this.journal.recorded()) {
      this.deps.log.info("job already finished here; reporting its recorded outcome", { job_id: this.jobId });
      return;
    }
    const { payload, attempt, reconcile } = this.lease;
    this.deps.log.info("running task", { job_id: this.jobId, type: payload.type, attempt, reconcile });
    const ctx = this.context();
    const body = () => (this.abort.signal.aborted ? Promise.resolve<TaskOutcome>({ status: "failed", error: "stopped before it began" }) : this.task.run(ctx));
    const key = this.task.exclusiveKey?.(payload);
    void (key === undefined ? body() : this.deps.exclusive(key, body))
      .catch((err: Error): TaskOutcome => ({ status: "failed", error: err.message, result: null }))
      .then((outcome) => {
        if (this.abort.signal.aborted) {
          // Cancelled, lost for good or stopping: what the task made of that is not its outcome.
          // If the job is handed out again, the next attempt finds what this one left and goes on.
          this.deps.log.info("task stopped; not recording an outcome", { job_id: this.jobId });
          return;
        }
        this.journal.record(outcome);
        this.wakeup.notify();
      });
  }

  /** One pass under a started lease: output, renewal, and the outcome once all output is in. True when the job is done. */
  private async tick(lease: Lease): Promise<boolean> {
    const recorded = this.journal.recorded();
    const allRead = await this.ship(recorded !== null);
    if (lease !== this.lease) return false;
    const now = Date.now();
    if (now >= this.nextRenewAt || (this.progressDueAt !== null && now >= this.progressDueAt)) {
      this.progressDueAt = null;
      await this.deps.api.report("renew", lease.lease_id, this.progress ? { progress: this.progress } : {});
      this.nextRenewAt = Date.now() + (lease.lease_ttl * 1000) / 3;
    }
    if (!recorded || !allRead || !this.shipper.idle) return false;
    await this.finish(lease, recorded);
    return true;
  }

  /** Reads what the journal holds past what was shipped under this lease and sends it; true when nothing is left to read. */
  private async ship(final: boolean): Promise<boolean> {
    let allRead = true;
    for (const stream of STREAMS) {
      if (this.shipper.rewind === stream) {
        this.shipper.resetStream(stream);
        this.positions[stream] = 0;
      }
      const { text, next, atEnd } = this.journal.readOutput(stream, this.positions[stream], final);
      if (text) this.shipper.push(stream, text);
      this.positions[stream] = next;
      allRead &&= atEnd;
    }
    if (!this.shipper.idle) await this.shipper.flush();
    return allRead;
  }

  private async finish(lease: Lease, recorded: Recorded) {
    try {
      await this.deps.api.report("finish", lease.lease_id, { status: recorded.status, error: recorded.error, result: recorded.result });
    } catch (err) {
      // The lease is gone: the outcome was recorded already (an answer lost on the way back), or the
      // job ended otherwise. Either way there is nothing more to say under this lease; if the job is
      // handed out again, the journal answers with this same outcome.
      if (!(err instanceof ApiFailure && err.kind === "stale")) throw err;
      this.deps.log.info("finish refused for a stale lease; outcome kept in the journal", { job_id: this.jobId });
    }
    this.journal.markReported();
    this.deps.log.info("job finished", { job_id: this.jobId, status: recorded.status });
    this.end();
  }

  private failure(err: unknown, lease: Lease) {
    if (lease !== this.lease) return;
    if (err instanceof ApiFailure && err.kind === "stale") {
      if (this.lostSince === null) {
        this.deps.log.warn("lease is no longer valid; holding the work briefly in case the job is handed back", { job_id: this.jobId, reason: err.message });
        this.lostSince = Date.now();
      }
      return;
    }
    if (err instanceof ApiFailure && err.kind === "fatal") return this.onFatal(err);
    this.deps.log.debug("report failed; will retry", { job_id: this.jobId, error: (err as Error).message });
  }

  /** Ends the job here without an outcome: stops the work, and what it left outside the agent. */
  private drop() {
    this.abort.abort();
    this.task.cancel?.(this.journal);
    this.journal.markDropped();
    this.end();
  }

  private end() {
    if (this.ended) return;
    this.ended = true;
    this.wakeup.notify();
    this.onEnd(this);
  }

  private context(): TaskContext {
    const runner = this;
    return {
      get lease() {
        return runner.lease;
      },
      payload: this.lease.payload,
      signal: this.abort.signal,
      journal: this.journal,
      api: this.deps.api,
      log: this.deps.log,
      progress: (step, total, message) => {
        this.progress = { step, total, percent: Math.round((step / total) * 100), message: message.slice(0, 500) };
        this.progressDueAt ??= Date.now() + PROGRESS_DELAY_MS;
        this.deps.log.info(message, { job_id: this.jobId, step, total });
      },
      output: (stream, text) => this.journal.appendOutput(stream, text.endsWith("\n") ? text : `${text}\n`),
    };
  }
}
