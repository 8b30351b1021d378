/**
 * The `jobs` table of a ProjectDO and its state machine:
 *
 *   queued → dispatched → running → succeeded | failed | cancelled | lost
 *
 * Every transition is one conditional UPDATE that names the attempt reporting it, so a
 * report from an attempt whose lease has expired can never move the job. Pure SQL: the
 * object around it (project-do.ts) emits events and talks to the Queue and hosts.
 */
import { randomString } from "../../lib/ids";
import type { FinishRequest, JobPayload, JobProgress } from "../../protocol/agent";
import { isTerminal, type JobStatus, OPEN_STATES_SQL } from "../../jobs/states";
import type { JobsQueueMessage } from "../../jobs/queue";
import type { SchemaComponent } from "../sql-schema";

/** A job's result: flat, so that it types cleanly across the Durable Object RPC boundary. */
export type JobResult = { [key: string]: string | number | boolean | null };

export interface JobRecord {
  id: string;
  type: string;
  status: JobStatus;
  scope: string;
  host_id: string;
  subject: string | null;
  progress: JobProgress | null;
  error: string | null;
  result: JobResult | null;
  attempts: number;
  created_at: number;
  dispatched_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  deadline_at: number;
}

export interface NewJob {
  /** The id to give the job (`job_…`), when the caller must record it before the job can move; one is made otherwise. */
  id?: string;
  type: JobPayload["type"];
  hostId: string;
  payload: JobPayload;
  subject?: string | null;
  /** Work that must not run twice (create, deploy, exec) is reconciled on redelivery rather than repeated. */
  idempotent: boolean;
  /** Total seconds the job may take from submission, queueing included. */
  deadlineSeconds: number;
  maxAttempts?: number;
}

export const JOBS_SCHEMA: SchemaComponent = {
  name: "jobs",
  steps: [
    `CREATE TABLE IF NOT EXISTS jobs (
       id TEXT PRIMARY KEY, type TEXT NOT NULL, status TEXT NOT NULL, scope TEXT NOT NULL,
       host_id TEXT NOT NULL, subject TEXT, payload TEXT NOT NULL, idempotent INTEGER NOT NULL,
       progress TEXT, error TEXT, result TEXT, attempts INTEGER NOT NULL DEFAULT 1,
       max_attempts INTEGER NOT NULL, sent INTEGER NOT NULL DEFAULT 0,
       created_at INTEGER NOT NULL, dispatched_at INTEGER, started_at INTEGER,
       finished_at INTEGER, deadline_at INTEGER NOT NULL
     );
     CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at DESC);
     CREATE INDEX IF NOT EXISTS jobs_open ON jobs(status, deadline_at);`,
    // Hand-outs lost after the agent started them: only those use the job up.
    "ALTER TABLE jobs ADD COLUMN lost_started INTEGER NOT NULL DEFAULT 0",
  ],
};

type Row = Record<string, SqlStorageValue>;

function toRecord(r: Row): JobRecord {
  return {
    id: r.id as string,
    type: r.type as string,
    status: r.status as JobStatus,
    scope: r.scope as string,
    host_id: r.host_id as string,
    subject: (r.subject as string | null) ?? null,
    progress: r.progress ? (JSON.parse(r.progress as string) as JobProgress) : null,
    error: (r.error as string | null) ?? null,
    result: r.result ? (JSON.parse(r.result as string) as JobResult) : null,
    attempts: r.attempts as number,
    created_at: r.created_at as number,
    dispatched_at: (r.dispatched_at as number | null) ?? null,
    started_at: (r.started_at as number | null) ?? null,
    finished_at: (r.finished_at as number | null) ?? null,
    deadline_at: r.deadline_at as number,
  };
}

export class JobStore {
  constructor(private readonly sql: SqlStorage) {}

  private row(id: string): Row | undefined {
    return this.sql.exec("SELECT * FROM jobs WHERE id = ?", id).toArray()[0];
  }

  get(id: string): JobRecord | null {
    const r = this.row(id);
    return r ? toRecord(r) : null;
  }

  list(filter: { subject?: string; limit?: number } = {}): JobRecord[] {
    const limit = Math.min(filter.limit ?? 50, 200);
    const rows = filter.subject
      ? this.sql.exec("SELECT * FROM jobs WHERE subject = ? ORDER BY created_at DESC, id DESC LIMIT ?", filter.subject, limit)
      : this.sql.exec("SELECT * FROM jobs ORDER BY created_at DESC, id DESC LIMIT ?", limit);
    return rows.toArray().map(toRecord);
  }

  /** The jobs with these ids that exist, in no particular order. */
  many(ids: string[]): JobRecord[] {
    const out: JobRecord[] = [];
    // In chunks: SQLite caps the parameters of one statement.
    for (let i = 0; i < ids.length; i += 90) {
      const chunk = ids.slice(i, i + 90);
      out.push(...this.sql.exec(`SELECT * FROM jobs WHERE id IN (${chunk.map(() => "?").join(", ")})`, ...chunk).toArray().map(toRecord));
    }
    return out;
  }

  payload(id: string): JobPayload | null {
    const r = this.row(id);
    return r ? (JSON.parse(r.payload as string) as JobPayload) : null;
  }

  /** What a subscriber sees of the job after a transition. */
  snapshot(id: string): Record<string, unknown> {
    const j = this.get(id)!;
    return { status: j.status, attempts: j.attempts, progress: j.progress, error: j.error };
  }

  create(scope: string, spec: NewJob): string {
    const id = spec.id ?? `job_${randomString(16)}`;
    const now = Date.now();
    this.sql.exec(
      `INSERT INTO jobs (id, type, status, scope, host_id, subject, payload, idempotent, max_attempts, created_at, deadline_at)
       VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)`,
      id, spec.type, scope, spec.hostId, spec.subject ?? null, JSON.stringify(spec.payload), spec.idempotent ? 1 : 0,
      spec.maxAttempts ?? 5, now, now + spec.deadlineSeconds * 1000,
    );
    return id;
  }

  /** The message that hands the job's current attempt to the Queue. */
  queueMessage(id: string): JobsQueueMessage {
    const r = this.row(id)!;
    return {
      job_id: id,
      scope: r.scope as string,
      host_id: r.host_id as string,
      attempt: r.attempts as number,
      idempotent: r.idempotent === 1,
      deadline_at: r.deadline_at as number,
      created_at: r.created_at as number,
      payload: JSON.parse(r.payload as string),
    };
  }

  markSent(id: string) {
    this.sql.exec("UPDATE jobs SET sent = 1 WHERE id = ?", id);
  }

  unsent(): string[] {
    return this.sql.exec("SELECT id FROM jobs WHERE status = 'queued' AND sent = 0").toArray().map((r) => r.id as string);
  }

  dispatched(id: string, attempt: number): boolean {
    return (
      this.sql.exec("UPDATE jobs SET status = 'dispatched', dispatched_at = ? WHERE id = ? AND attempts = ? AND status = 'queued'", Date.now(), id, attempt)
        .rowsWritten > 0
    );
  }

  started(id: string, attempt: number): boolean {
    return (
      this.sql.exec(
        `UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?) WHERE id = ? AND attempts = ? AND status IN ${OPEN_STATES_SQL}`,
        Date.now(), id, attempt,
      ).rowsWritten > 0
    );
  }

  progressed(id: string, attempt: number, progress: JobProgress): boolean {
    return (
      this.sql.exec("UPDATE jobs SET progress = ? WHERE id = ? AND attempts = ? AND status = 'running'", JSON.stringify(progress), id, attempt)
        .rowsWritten > 0
    );
  }

  /** Whether `attempt` is the job's current attempt and it is running (log output is accepted only then). */
  runningAttempt(id: string, attempt: number): boolean {
    const r = this.row(id);
    return Boolean(r && (r.attempts as number) === attempt && r.status === "running");
  }

  /** Ends the job once, with the agent's outcome. A second finish, or one from a stale attempt, changes nothing. */
  finished(id: string, attempt: number, outcome: FinishRequest): boolean {
    return (
      this.sql.exec(
        `UPDATE jobs SET status = ?, error = ?, result = ?, finished_at = ?,
           progress = CASE WHEN ? = 'succeeded' THEN json_object('step', COALESCE(json_extract(progress, '$.total'), 1), 'total', COALESCE(json_extract(progress, '$.total'), 1), 'percent', 100, 'message', 'Done') ELSE progress END
         WHERE id = ? AND attempts = ? AND status IN ${OPEN_STATES_SQL}`,
        outcome.status, outcome.status === "failed" ? (outcome.error ?? "failed") : null, outcome.result ? JSON.stringify(outcome.result) : null,
        Date.now(), outcome.status, id, attempt,
      ).rowsWritten > 0
    );
  }

  /** Ends an open job without the agent: failed or lost with a reason, or cancelled by a user. */
  ended(id: string, status: "failed" | "lost" | "cancelled", reason: string): boolean {
    return (
      this.sql.exec(`UPDATE jobs SET status = ?, error = ?, finished_at = ? WHERE id = ? AND status IN ${OPEN_STATES_SQL}`, status, reason, Date.now(), id)
        .rowsWritten > 0
    );
  }

  /**
   * A lease of `attempt` expired: the job goes out again as the next attempt, or is lost
   * when its host lost it after starting it `max_attempts` times. A hand-out no agent started
   * (it died before it got to the job) never ran the work, so it does not use the job up;
   * the job's deadline still bounds it. Nothing happens for a stale attempt or an ended job.
   */
  leaseExpired(id: string, attempt: number, reason: string): "redeliver" | "lost" | "stale" {
    const r = this.row(id);
    if (!r || (r.attempts as number) !== attempt || isTerminal(r.status as string)) return "stale";
    const lostStarted = (r.lost_started as number) + (r.status === "running" ? 1 : 0);
    if (lostStarted >= (r.max_attempts as number)) {
      this.sql.exec(
        "UPDATE jobs SET status = 'lost', lost_started = ?, error = ?, finished_at = ? WHERE id = ?",
        lostStarted, `The host lost this job ${lostStarted} times after starting it (last: ${reason}); giving up`, Date.now(), id,
      );
      return "lost";
    }
    this.sql.exec("UPDATE jobs SET attempts = attempts + 1, lost_started = ?, status = 'dispatched', dispatched_at = ? WHERE id = ?", lostStarted, Date.now(), id);
    return "redeliver";
  }

  /** Open jobs past their deadline. */
  overdue(now: number): Array<{ id: string; status: JobStatus }> {
    return this.sql
      .exec(`SELECT id, status FROM jobs WHERE status IN ${OPEN_STATES_SQL} AND deadline_at <= ?`, now)
      .toArray()
      .map((r) => ({ id: r.id as string, status: r.status as JobStatus }));
  }

  /** When the alarm must next run: the nearest deadline, or a retry of a hand-off the Queue refused. */
  nextWakeAt(retryAt: number): number | null {
    return this.sql
      .exec(`SELECT MIN(CASE WHEN sent = 0 THEN MIN(deadline_at, ?) ELSE deadline_at END) AS at FROM jobs WHERE status IN ${OPEN_STATES_SQL}`, retryAt)
      .one().at as number | null;
  }
}
