/**
 * One job on this host, across however many leases it takes. A run reports
 * under its current lease; when the control plane hands the same job out
 * again (after a reconnect or restart), the run adopts the new lease and
 * reports from the start, so the control plane sees one complete, ordered
 * output and exactly one outcome.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Lease } from "../../src/protocol/agent.ts";
import { ApiFailure, type ControlPlane } from "./api.ts";
import { sleep } from "./backoff.ts";
import { ExecProcess, type ExecOutcome } from "./drivers/exec.ts";
import type { Logger } from "./log.ts";
import { LogShipper, type Stream } from "./shipper.ts";
import { type StateDir, writeFileAtomic } from "./state.ts";

const TICK_MS = 50;

/** The journal entry of a finished job: what the agent reported, or will report. */
export interface Recorded {
  status: "succeeded" | "failed";
  error: string | null;
  result: Record<string, string | number | boolean | null> | null;
  finished_at: string;
  reported: boolean;
}

interface Meta {
  job_id: string;
  attempt: number;
  lease_id: string;
  lease_ttl: number;
  payload: Lease["payload"];
  started_at: string | null;
}

export class JobRun {
  readonly jobId: string;
  private lease: Lease;
  private readonly api: ControlPlane;
  private readonly log: Logger;
  private readonly dir: string;
  private readonly exec: ExecProcess;
  private shipper: LogShipper;
  private positions: Record<Stream, number> = { stdout: 0, stderr: 0 };
  /** Bumped on every lease change so a late answer about an old lease changes nothing. */
  private generation = 0;
  private stopped = false;
  private lostSince: number | null = null;
  private nextRenewAt = 0;
  /** The generation whose `start` the control plane accepted; reports wait for it. */
  private begun = -1;
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  onEnd: (run: JobRun) => void = () => {};
  onFatal: (err: ApiFailure) => void = () => {};

  constructor(state: StateDir, api: ControlPlane, log: Logger, lease: Lease) {
    this.jobId = lease.job_id;
    this.lease = lease;
    this.api = api;
    this.dir = state.jobDir(lease.job_id);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.exec = new ExecProcess(this.dir);
    this.shipper = new LogShipper(api, lease.lease_id);
    this.log = log;
    this.done = new Promise((r) => (this.resolveDone = r));
    this.saveMeta();
  }

  /** Unfinished runs an earlier agent process left in the state directory. */
  static leftovers(state: StateDir, jobIds: string[]): Lease[] {
    const out: Lease[] = [];
    for (const id of jobIds) {
      const dir = state.jobDir(id);
      const recorded = readRecorded(dir);
      if (recorded?.reported) continue;
      try {
        const meta = JSON.parse(readFileSync(join(dir, "meta.json"), "utf8")) as Meta;
        out.push({ job_id: meta.job_id, attempt: meta.attempt, lease_id: meta.lease_id, lease_ttl: meta.lease_ttl, reconcile: true, payload: meta.payload });
      } catch {
        /* no meta: nothing was started */
      }
    }
    return out;
  }

  get leaseId() {
    return this.lease.lease_id;
  }

  get held(): { job_id: string; lease_id: string } | null {
    return this.lostSince === null && !this.stopped ? { job_id: this.jobId, lease_id: this.lease.lease_id } : null;
  }

  private saveMeta() {
    const previous = existsSync(join(this.dir, "meta.json")) ? (JSON.parse(readFileSync(join(this.dir, "meta.json"), "utf8")) as Meta) : null;
    const meta: Meta = {
      job_id: this.jobId,
      attempt: this.lease.attempt,
      lease_id: this.lease.lease_id,
      lease_ttl: this.lease.lease_ttl,
      payload: this.lease.payload,
      started_at: previous?.started_at ?? null,
    };
    writeFileAtomic(join(this.dir, "meta.json"), JSON.stringify(meta));
  }

  /** The same job under a new lease (a redelivery): report again from the start under it. */
  adopt(lease: Lease) {
    if (lease.lease_id === this.lease.lease_id) return;
    this.log.info("job handed out again; continuing it under the new lease", { job_id: this.jobId, attempt: lease.attempt });
    this.lease = lease;
    this.generation++;
    this.shipper = new LogShipper(this.api, lease.lease_id);
    this.positions = { stdout: 0, stderr: 0 };
    this.lostSince = null;
    this.saveMeta();
    this.lastBeginAt = 0;
    void this.retryBegin(this.generation);
  }

  /** The control plane cancelled the job: stop the command now. */
  cancel() {
    this.log.info("job cancelled by the control plane; stopping it", { job_id: this.jobId });
    this.exec.kill("cancelled");
    this.end();
  }

  private starting = false;
  /** Aborted to cut the loop's pause short when there is something to do now. */
  private kick = new AbortController();
  private lastBeginAt = 0;

  start() {
    void this.retryBegin(this.generation);
    void this.loop();
    return this;
  }

  private async retryBegin(generation: number) {
    if (this.starting || Date.now() - this.lastBeginAt < 500) return;
    this.starting = true;
    this.lastBeginAt = Date.now();
    try {
      await this.begin(generation);
    } finally {
      this.starting = false;
    }
  }

  private async begin(generation: number) {
    try {
      await this.api.report("start", this.lease.lease_id);
    } catch (err) {
      return this.failure(err, generation);
    }
    if (generation !== this.generation) return;
    this.begun = generation;
    this.kick.abort();
    this.nextRenewAt = Date.now() + (this.lease.lease_ttl * 1000) / 3;
    const payload = this.lease.payload;
    if (!this.exec.started && !readRecorded(this.dir)) {
      if (payload.type !== "host.exec") return;
      this.log.info("running command", { job_id: this.jobId, attempt: this.lease.attempt });
      this.exec.start(payload.command);
      const meta = JSON.parse(readFileSync(join(this.dir, "meta.json"), "utf8")) as Meta;
      writeFileAtomic(join(this.dir, "meta.json"), JSON.stringify({ ...meta, started_at: new Date().toISOString() }));
    } else if (this.lease.reconcile || this.exec.started) {
      this.log.info("found this job's earlier run on the host; reporting it instead of running it again", { job_id: this.jobId });
    }
  }

  private failure(err: unknown, generation: number) {
    if (generation !== this.generation) return;
    if (err instanceof ApiFailure && err.kind === "stale") {
      if (this.lostSince === null) {
        this.log.warn("lease is no longer valid; holding the work briefly in case the job is handed back", { job_id: this.jobId, reason: err.message });
        this.lostSince = Date.now();
      }
      return;
    }
    if (err instanceof ApiFailure && err.kind === "fatal") return this.onFatal(err);
    this.log.debug("report failed; will retry", { job_id: this.jobId, error: (err as Error).message });
  }

  private startedAt(): number | null {
    try {
      const meta = JSON.parse(readFileSync(join(this.dir, "meta.json"), "utf8")) as Meta;
      return meta.started_at ? Date.parse(meta.started_at) : null;
    } catch {
      return null;
    }
  }

  private async loop() {
    while (!this.stopped) {
      const generation = this.generation;
      if (this.lostSince !== null) {
        // Nobody handed the job back within a lease's time: it was cancelled or timed out there; stop it here too.
        if (Date.now() - this.lostSince > this.lease.lease_ttl * 1000 * 2) {
          this.log.warn("lease lost and not handed back; stopping the work", { job_id: this.jobId });
          this.exec.kill("cancelled");
          this.end();
          return;
        }
        await sleep(200);
        continue;
      }
      if (this.begun !== generation) {
        // Not started under this lease yet (or the start is being retried).
        if (this.lostSince === null && !this.starting) void this.retryBegin(generation);
        await sleep(TICK_MS, this.kick.signal);
        if (this.kick.signal.aborted) this.kick = new AbortController();
        continue;
      }
      try {
        await this.tick(generation);
      } catch (err) {
        this.failure(err, generation);
        await sleep(500);
      }
      await sleep(TICK_MS, this.kick.signal);
      if (this.kick.signal.aborted) this.kick = new AbortController();
    }
  }

  private async tick(generation: number) {
    const recorded = readRecorded(this.dir);
    const outcome = recorded ? null : this.exec.outcome();
    const finished = Boolean(recorded || outcome);
    // Output first, so it is complete before the outcome is reported.
    if (this.exec.started || recorded) {
      for (const stream of ["stdout", "stderr"] as const) {
        if (this.shipper.rewind === stream) {
          this.shipper.resetStream(stream);
          this.positions[stream] = 0;
        }
        const { text, next } = this.exec.read(stream, this.positions[stream], finished);
        if (text) this.shipper.push(stream, text);
        this.positions[stream] = next;
      }
      if (!this.shipper.idle) await this.shipper.flush();
    }
    if (generation !== this.generation) return;
    if (Date.now() >= this.nextRenewAt) {
      await this.api.report("renew", this.lease.lease_id, {});
      this.nextRenewAt = Date.now() + (this.lease.lease_ttl * 1000) / 3;
    }
    if (!finished) {
      const payload = this.lease.payload;
      const startedAt = this.startedAt();
      if (payload.type === "host.exec" && startedAt && Date.now() - startedAt > payload.timeout_seconds * 1000) {
        this.log.warn("command timed out; stopping it", { job_id: this.jobId, timeout_seconds: payload.timeout_seconds });
        this.exec.kill("timeout");
      }
      return;
    }
    if (!this.shipper.idle) return;
    const entry = recorded ?? this.record(outcome!);
    let reported = true;
    await this.api.report("finish", this.lease.lease_id, { status: entry.status, error: entry.error, result: entry.result }).catch((err) => {
      // The lease is gone: the outcome was recorded already (an answer lost on the way back), or the
      // job ended otherwise. Either way there is nothing more to say under this lease; if the job is
      // handed out again, the journal answers with this same outcome.
      if (!(err instanceof ApiFailure && err.kind === "stale")) throw err;
      reported = false;
    });
    if (!reported) this.log.info("finish refused for a stale lease; outcome kept in the journal", { job_id: this.jobId });
    writeFileAtomic(join(this.dir, "result.json"), JSON.stringify({ ...entry, reported: true }));
    this.log.info("job finished", { job_id: this.jobId, status: entry.status });
    this.end();
  }

  /** Journals the outcome before reporting it, so a restart reports the same one. */
  private record(outcome: ExecOutcome): Recorded {
    const payload = this.lease.payload;
    let entry: Recorded;
    const timeout = payload.type === "host.exec" ? payload.timeout_seconds : 0;
    if (outcome.killed === "timeout") {
      entry = { status: "failed", error: `The command timed out after ${timeout} s and was stopped`, result: { exit_code: null }, finished_at: new Date().toISOString(), reported: false };
    } else if (outcome.killed) {
      entry = { status: "failed", error: `The command was stopped (${outcome.killed})`, result: { exit_code: null }, finished_at: new Date().toISOString(), reported: false };
    } else if (outcome.exitCode === 0) {
      entry = { status: "succeeded", error: null, result: { exit_code: 0 }, finished_at: new Date().toISOString(), reported: false };
    } else {
      // The output itself stays in the job's logs, which only those who may run commands can read.
      entry = {
        status: "failed",
        error: `The command exited with status ${outcome.exitCode}; its output is in the job's logs`,
        result: { exit_code: outcome.exitCode },
        finished_at: new Date().toISOString(),
        reported: false,
      };
    }
    writeFileAtomic(join(this.dir, "result.json"), JSON.stringify(entry));
    return entry;
  }

  private end() {
    if (this.stopped) return;
    this.stopped = true;
    this.onEnd(this);
    this.resolveDone();
  }

  stop() {
    this.stopped = true;
    this.resolveDone();
  }
}

function readRecorded(dir: string): Recorded | null {
  try {
    return JSON.parse(readFileSync(join(dir, "result.json"), "utf8")) as Recorded;
  } catch {
    return null;
  }
}
