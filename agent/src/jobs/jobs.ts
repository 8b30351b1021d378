/**
 * The jobs this agent works on, one runner each: takes the leases the control
 * plane hands out (a redelivery goes to the job's runner), cancels, names the
 * leases it holds, and picks up what an earlier agent process left.
 */
import { type HeldLease, Lease } from "../../../src/protocol/agent.ts";
import type { ApiFailure } from "../transport/http.ts";
import { JobJournal } from "./journal.ts";
import type { TaskRegistry } from "./registry.ts";
import { JobRunner, type RunnerDeps } from "./runner.ts";

export class Jobs {
  private readonly runs = new Map<string, JobRunner>();
  private readonly deps: RunnerDeps;
  private readonly registry: TaskRegistry;
  private readonly onFatal: (err: ApiFailure) => void;

  constructor(deps: RunnerDeps, registry: TaskRegistry, onFatal: (err: ApiFailure) => void) {
    this.deps = deps;
    this.registry = registry;
    this.onFatal = onFatal;
  }

  held(): HeldLease[] {
    return [...this.runs.values()].map((r) => r.held).filter((h): h is HeldLease => h !== null);
  }

  /** Jobs an earlier agent process left running or unreported: picked up under their recorded lease. */
  resumeLeftovers() {
    for (const lease of JobJournal.leftovers(this.deps.state)) {
      this.deps.log.info("resuming a job from before the restart", { job_id: lease.job_id, attempt: lease.attempt });
      this.accept(lease);
    }
  }

  /** Takes a lease; one the agent cannot take (an unknown job type from a newer control plane, a bad id) is logged and left to expire. */
  accept(raw: unknown) {
    const parsed = Lease.safeParse(raw);
    if (!parsed.success) {
      this.deps.log.warn("ignoring a lease this agent does not understand; upgrade the agent", { error: parsed.error.issues[0]?.message });
      return;
    }
    try {
      this.take(parsed.data);
    } catch (err) {
      this.deps.log.error("could not take a lease", { job_id: parsed.data.job_id, error: (err as Error).message });
    }
  }

  private take(lease: Lease) {
    const existing = this.runs.get(lease.job_id);
    if (existing) return existing.adopt(lease);
    const task = this.registry.find(lease.payload);
    if (!task) {
      this.deps.log.warn("no task for this kind of job here; leaving it", { job_id: lease.job_id, type: lease.payload.type });
      return;
    }
    const run = new JobRunner(this.deps, lease, task);
    run.onEnd = (r) => {
      if (this.runs.get(r.jobId) === r) this.runs.delete(r.jobId);
    };
    run.onFatal = this.onFatal;
    this.runs.set(lease.job_id, run);
    this.deps.log.info("job leased", { job_id: lease.job_id, attempt: lease.attempt, type: lease.payload.type, reconcile: lease.reconcile });
    run.start();
  }

  cancel(jobId: string, leaseId: string) {
    const run = this.runs.get(jobId);
    if (run && run.leaseId === leaseId) run.cancel();
  }

  stopAll() {
    for (const run of this.runs.values()) run.stop();
  }
}
