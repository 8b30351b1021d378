/**
 * What a kind of work is to the runner: a task registered under the payload
 * types it carries out. The runner owns the lease (start, renewals, output,
 * the outcome, the journal); a task only does the work and says how it ended.
 * Commands (`host.exec`) and app jobs (`app.*`) register here at start-up;
 * Proxmox instance jobs register the same way, from their own module under
 * tasks/, once their payloads join the wire protocol.
 */
import type { JobPayload, Lease } from "../../../src/protocol/agent.ts";
import type { LeaseOp } from "../../../src/protocol/lease-answers.ts";
import type { Logger } from "../log.ts";
import type { JobJournal, OutcomeResult } from "./journal.ts";
import type { Stream } from "./shipper.ts";

/** How the runner reaches the control plane: lease reports, and plain calls (a deploy fetches its env vars). */
export interface LeaseReporter {
  report<T>(op: LeaseOp, leaseId: string, body?: unknown): Promise<T>;
  call<T>(method: string, path: string, body?: unknown): Promise<T>;
  /** A streamed download (a deploy's uploaded image); reporters that cannot are left without it. */
  download?(path: string, opts?: { signal?: AbortSignal }): Promise<Response>;
}

export interface TaskContext<P extends JobPayload = JobPayload> {
  /** The lease the job runs under now (it changes when the job is handed out again). */
  readonly lease: Lease;
  readonly payload: P;
  /** Aborted when the job is cancelled, its lease is lost for good, or the agent stops. */
  readonly signal: AbortSignal;
  /** The job's folder: what a task keeps there survives a restart of the agent. */
  readonly journal: JobJournal;
  readonly api: LeaseReporter;
  readonly log: Logger;
  /** Reports progress with the next renewal. */
  progress(step: number, total: number, message: string): void;
  /** Adds a line to the job's output. */
  output(stream: Stream, text: string): void;
}

export type TaskOutcome = { status: "succeeded" | "failed"; error?: string | null; result?: OutcomeResult | null };

export interface Task<P extends JobPayload = JobPayload> {
  run(ctx: TaskContext<P>): Promise<TaskOutcome>;
  /** Jobs with the same key run one at a time, in the order they came (an app's jobs). */
  exclusiveKey?(payload: P): string;
  /**
   * Stops what the job left outside the agent (a detached command) when it is
   * cancelled or its lease is lost for good, whether or not this process ran it.
   */
  cancel?(journal: JobJournal): void;
}

/** The payload of these job types; a payload shape that several types share is narrowed to these. */
export type PayloadOf<T extends JobPayload["type"]> = JobPayload extends infer P
  ? P extends { type: infer U }
    ? [Extract<U, T>] extends [never]
      ? never
      : P & { type: Extract<U, T> }
    : never
  : never;

export class TaskRegistry {
  private readonly tasks = new Map<JobPayload["type"], Task<never>>();

  register<T extends JobPayload["type"]>(types: T | readonly T[], task: Task<PayloadOf<T>>): this {
    for (const type of typeof types === "string" ? [types] : types) {
      if (this.tasks.has(type)) throw new Error(`a task is registered for ${type} already`);
      this.tasks.set(type, task as Task<never>);
    }
    return this;
  }

  /** The task for this payload, or null when this agent has none (the lease is then left to expire). */
  find<P extends JobPayload>(payload: P): Task<P> | null {
    return (this.tasks.get(payload.type) as Task<P> | undefined) ?? null;
  }
}
