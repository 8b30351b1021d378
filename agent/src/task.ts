/**
 * A job the agent carries out in its own process (the app jobs), under the
 * same lease rules as a command: report `start`, renew at a third of the TTL
 * with progress, ship output, report the outcome once. The outcome is
 * journalled before it is reported, so a job handed out again answers with it
 * instead of acting twice; a task itself looks for what an earlier attempt
 * left (containers carry the job's id) before it acts.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Lease } from "../../src/protocol/agent.ts";
import { ApiFailure, type ControlPlane } from "./api.ts";
import { sleep } from "./backoff.ts";
import type { Logger } from "./log.ts";
import type { Recorded } from "./run.ts";
import { LogShipper, type Stream } from "./shipper.ts";
import { type StateDir, writeFileAtomic } from "./state.ts";

export interface TaskContext {
  lease: Lease;
  signal: AbortSignal;
  /** Reports progress with the next renewal. */
  progress(step: number, total: number, message: string): void;
  /** Adds a line to the job's output. */
  output(stream: Stream, text: string): void;
  api: ControlPlane;
}

export type TaskOutcome = { status: "succeeded" | "failed"; error?: string | null; result?: Record<string, string | number | boolean | null> | null };
export type Task = (ctx: TaskContext) => Promise<TaskOutcome>;

export class TaskRun {
  readonly jobId: string;
  private lease: Lease;
  private readonly api: ControlPlane;
  private readonly log: Logger;
  private readonly dir: string;
  private readonly task: Task;
  private shipper: LogShipper;
  private readonly abort = new AbortController();
  private progressNote: { step: number; total: number; percent: number; message: string } | undefined;
  private lost = false;
  private progressTimer: NodeJS.Timeout | null = null;
  onEnd: (run: TaskRun) => void = () => {};
  onFatal: (err: ApiFailure) => void = () => {};

  /** Runs the task body; the agent passes one that takes the app's lock, so jobs of one app never overlap. */
  private readonly exclusive: <T>(fn: () => Promise<T>) => Promise<T>;

  constructor(state: StateDir, api: ControlPlane, log: Logger, lease: Lease, task: Task, exclusive: <T>(fn: () => Promise<T>) => Promise<T> = (fn) => fn()) {
    this.exclusive = exclusive;
    this.jobId = lease.job_id;
    this.lease = lease;
    this.api = api;
    this.log = log;
    this.task = task;
    this.dir = state.jobDir(lease.job_id);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.shipper = new LogShipper(api, lease.lease_id);
  }

  get leaseId() {
    return this.lease.lease_id;
  }

  get held() {
    return this.lost ? null : { job_id: this.jobId, lease_id: this.lease.lease_id };
  }

  /** The job was handed out again while this run still works on it: go on under the new lease. */
  adopt(lease: Lease) {
    if (lease.lease_id === this.lease.lease_id) return;
    this.lease = lease;
    this.lost = false;
    this.shipper = new LogShipper(this.api, lease.lease_id);
    void this.report("start").catch(() => undefined);
  }

  cancel() {
    this.log.info("job cancelled by the control plane; stopping it", { job_id: this.jobId });
    this.abort.abort();
  }

  stop() {
    this.abort.abort();
  }

  start() {
    void this.run()
      .catch((err: Error) => this.log.error("task crashed", { job_id: this.jobId, error: err.message }))
      .finally(() => this.onEnd(this));
    return this;
  }

  /** A report under the current lease, retried while the control plane is unreachable. */
  private async report<T>(op: "start" | "renew" | "logs" | "finish", body: unknown = {}): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.api.report<T>(op, this.lease.lease_id, body);
      } catch (err) {
        if (!(err instanceof ApiFailure) || err.kind !== "retry" || attempt >= 20 || this.abort.signal.aborted) throw err;
        await sleep(Math.min(500 * 2 ** attempt, 5_000));
      }
    }
  }

  private async run() {
    try {
      await this.report("start");
    } catch (err) {
      return this.failed(err);
    }
    const renewals = this.renewLoop();
    const recorded = readRecorded(this.dir);
    let outcome: TaskOutcome;
    if (recorded) {
      this.log.info("job already finished here; reporting its recorded outcome", { job_id: this.jobId });
      outcome = recorded;
    } else {
      this.log.info("running task", { job_id: this.jobId, type: this.lease.payload.type, attempt: this.lease.attempt, reconcile: this.lease.reconcile });
      outcome = await this.exclusive(() => (this.abort.signal.aborted ? Promise.resolve({ status: "failed" as const, error: "stopped before it began" }) : this.task(this.context()))).catch(
        (err: Error) => ({ status: "failed" as const, error: err.message, result: null }),
      );
      if (this.abort.signal.aborted) {
        // Cancelled, or the lease was lost mid-way: what the task made of that is not its outcome.
        // If the job is handed out again, the next attempt finds what this one left and goes on.
        this.log.info(this.lost ? "lease lost mid-task; not recording an outcome" : "task stopped", { job_id: this.jobId });
        return;
      }
      const entry: Recorded = { status: outcome.status, error: outcome.error ?? null, result: outcome.result ?? null, finished_at: new Date().toISOString(), reported: false };
      writeFileAtomic(join(this.dir, "result.json"), JSON.stringify(entry));
    }
    try {
      while (!this.shipper.idle) await this.shipper.flush();
      await this.report("finish", { status: outcome.status, error: outcome.error ?? null, result: outcome.result ?? null });
      this.log.info("job finished", { job_id: this.jobId, status: outcome.status });
    } catch (err) {
      if (!(err instanceof ApiFailure && err.kind === "stale")) return this.failed(err);
      this.log.info("finish refused for a stale lease; outcome kept in the journal", { job_id: this.jobId });
    } finally {
      this.abort.abort();
      await renewals;
    }
    const entry = readRecorded(this.dir);
    if (entry) writeFileAtomic(join(this.dir, "result.json"), JSON.stringify({ ...entry, reported: true }));
  }

  private failed(err: unknown) {
    if (err instanceof ApiFailure && err.kind === "fatal") return this.onFatal(err);
    this.lost = true;
    this.abort.abort();
    this.log.warn("lost the lease; dropping the work", { job_id: this.jobId, reason: (err as Error).message });
  }

  private async renewLoop() {
    while (!this.abort.signal.aborted) {
      await sleep((this.lease.lease_ttl * 1000) / 3, this.abort.signal);
      if (this.abort.signal.aborted) break;
      try {
        await this.report("renew", this.progressNote ? { progress: this.progressNote } : {});
        if (!this.shipper.idle) await this.shipper.flush();
      } catch (err) {
        if (err instanceof ApiFailure && (err.kind === "stale" || err.kind === "fatal")) return this.failed(err);
      }
    }
  }

  private context(): TaskContext {
    return {
      lease: this.lease,
      signal: this.abort.signal,
      api: this.api,
      progress: (step, total, message) => {
        this.progressNote = { step, total, percent: Math.round((step / total) * 100), message: message.slice(0, 500) };
        this.log.info(message, { job_id: this.jobId, step, total });
        // Coalesced: one report per quarter second at most, so quick steps do not compete with the work.
        this.progressTimer ??= setTimeout(() => {
          this.progressTimer = null;
          if (!this.abort.signal.aborted) void this.report("renew", { progress: this.progressNote }).catch(() => undefined);
        }, 250);
      },
      output: (stream, text) => {
        this.shipper.push(stream, text.endsWith("\n") ? text : `${text}\n`);
        void this.shipper.flush().catch(() => undefined);
      },
    };
  }
}

function readRecorded(dir: string): Recorded | null {
  try {
    return JSON.parse(readFileSync(join(dir, "result.json"), "utf8")) as Recorded;
  } catch {
    return null;
  }
}
