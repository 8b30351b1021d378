/**
 * How a ProjectDO's history stays bounded. On a schedule (the object's alarm), in bounded
 * batches:
 *
 * 1. the output of finished jobs older than JOB_LOG_RETENTION_DAYS, or beyond
 *    JOB_LOG_MAX_MB held in the object (oldest first), moves to R2 as JSON lines; the
 *    job keeps the object key and reads it back from there;
 * 2. finished jobs older than JOB_RETENTION_DAYS, or beyond JOB_RETENTION_MAX, are
 *    forgotten (their archived output stays in R2);
 * 3. events older than JOB_EVENT_RETENTION_DAYS are dropped.
 *
 * Open jobs and their output are never touched.
 */
import type { Env } from "../../env";
import { OPEN_STATES_SQL } from "../../jobs/states";
import { type RetentionSettings, retentionSettings } from "../../services/retention-settings";
import type { SchemaComponent } from "../sql-schema";

export const RETENTION_SCHEMA: SchemaComponent = {
  name: "retention",
  steps: [
    `CREATE TABLE IF NOT EXISTS retention (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
     ALTER TABLE jobs ADD COLUMN logs_archive TEXT;
     ALTER TABLE jobs ADD COLUMN log_bytes INTEGER;
     CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL;
     CREATE INDEX IF NOT EXISTS events_at ON events(at);`,
  ],
};

/** Most jobs archived or forgotten, and events dropped, in one run; the rest waits for the next. */
const BATCH = 100;
const EVENTS_BATCH = 5_000;
/** When a run had more to do than one batch, the next comes this soon. */
const SOON_MS = 30_000;

export type LogLine = { attempt: number; stream: string; offset: number; data: string; at: number };
export interface PruneReport {
  archived: number;
  forgotten: number;
  eventsDropped: number;
  more: boolean;
}

export class Retention {
  private readonly settings: RetentionSettings;

  constructor(
    private readonly sql: SqlStorage,
    private readonly env: Env,
  ) {
    this.settings = retentionSettings(env);
  }

  /** When the next run is due, or null when nothing is kept that could ever need pruning. */
  nextRunAt(): number | null {
    const stored = this.sql.exec("SELECT value FROM retention WHERE key = 'next_run_at'").toArray()[0]?.value as number | undefined;
    if (stored !== undefined) return stored;
    const anything = this.sql.exec("SELECT 1 FROM jobs LIMIT 1").toArray().length > 0;
    return anything ? this.schedule(Date.now() + this.settings.everyMs) : null;
  }

  private schedule(at: number | null): number | null {
    if (at === null) this.sql.exec("DELETE FROM retention WHERE key = 'next_run_at'");
    else this.sql.exec("INSERT INTO retention (key, value) VALUES ('next_run_at', ?) ON CONFLICT DO UPDATE SET value = excluded.value", at);
    return at;
  }

  /** Runs one pruning pass if one is due; answers what it did. */
  async runIfDue(now = Date.now()): Promise<PruneReport | null> {
    const due = this.nextRunAt();
    if (due === null || due > now) return null;
    const report = await this.prune(now);
    const keepsAnything = this.sql.exec("SELECT 1 FROM jobs LIMIT 1").toArray().length > 0;
    this.schedule(report.more ? now + SOON_MS : keepsAnything ? now + this.settings.everyMs : null);
    return report;
  }

  async prune(now: number): Promise<PruneReport> {
    const s = this.settings;
    let more = false;

    // 1. Output to R2: by age, then by size while the object holds more than its share.
    const byAge = this.finishedWithLogs(`finished_at <= ${now - s.logsInObjectMs}`, BATCH + 1);
    if (byAge.length > BATCH) more = true;
    const toArchive = new Set(byAge.slice(0, BATCH));
    let held = this.bytesHeld();
    if (held > s.logsInObjectMaxBytes) {
      for (const { id, bytes } of this.finishedWithLogSizes(BATCH)) {
        if (held <= s.logsInObjectMaxBytes) break;
        toArchive.add(id);
        held -= bytes;
      }
      if (held > s.logsInObjectMaxBytes) more = true;
    }
    let archived = 0;
    for (const id of toArchive) {
      await this.archive(id);
      archived++;
    }

    // 2. Forget old jobs, and the oldest beyond the count.
    const old = this.sql
      .exec(`SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at <= ? AND status NOT IN ${OPEN_STATES_SQL} ORDER BY finished_at LIMIT ?`, now - s.jobsMs, BATCH + 1)
      .toArray()
      .map((r) => r.id as string);
    const finishedCount = this.sql.exec(`SELECT COUNT(*) AS n FROM jobs WHERE status NOT IN ${OPEN_STATES_SQL}`).one().n as number;
    const overCount = Math.max(0, finishedCount - s.jobsMax);
    const excess = overCount
      ? this.sql
          .exec(`SELECT id FROM jobs WHERE status NOT IN ${OPEN_STATES_SQL} ORDER BY finished_at, created_at LIMIT ?`, Math.min(overCount, BATCH + 1))
          .toArray()
          .map((r) => r.id as string)
      : [];
    const forget = [...new Set([...old, ...excess])];
    if (forget.length > BATCH) more = true;
    let forgotten = 0;
    for (const id of forget.slice(0, BATCH)) {
      // Output not yet archived goes to R2 first: a forgotten job's output is still there for an operator.
      if (this.sql.exec("SELECT 1 FROM log_heads WHERE job_id = ? LIMIT 1", id).toArray().length) await this.archive(id);
      this.sql.exec("DELETE FROM jobs WHERE id = ?", id);
      forgotten++;
    }

    // 3. Events past their time.
    const eventsDropped = this.sql.exec(
      "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE at <= ? ORDER BY seq LIMIT ?)",
      now - s.eventsMs,
      EVENTS_BATCH,
    ).rowsWritten;
    if (eventsDropped >= EVENTS_BATCH) more = true;

    return { archived, forgotten, eventsDropped, more };
  }

  private finishedWithLogs(condition: string, limit: number): string[] {
    return this.sql
      .exec(
        `SELECT j.id FROM jobs j WHERE j.finished_at IS NOT NULL AND j.status NOT IN ${OPEN_STATES_SQL} AND ${condition}
           AND EXISTS (SELECT 1 FROM log_heads h WHERE h.job_id = j.id) ORDER BY j.finished_at LIMIT ?`,
        limit,
      )
      .toArray()
      .map((r) => r.id as string);
  }

  private finishedWithLogSizes(limit: number): Array<{ id: string; bytes: number }> {
    return this.sql
      .exec(
        `SELECT j.id, (SELECT COALESCE(SUM(length(CAST(l.data AS BLOB))), 0) FROM logs l WHERE l.job_id = j.id) AS bytes
           FROM jobs j WHERE j.status NOT IN ${OPEN_STATES_SQL} AND EXISTS (SELECT 1 FROM log_heads h WHERE h.job_id = j.id)
           ORDER BY j.finished_at LIMIT ?`,
        limit,
      )
      .toArray()
      .map((r) => ({ id: r.id as string, bytes: r.bytes as number }));
  }

  /** Bytes of output this object holds. */
  bytesHeld(): number {
    return this.sql.exec("SELECT COALESCE(SUM(length(CAST(data AS BLOB))), 0) AS n FROM logs").one().n as number;
  }

  /** Moves one job's output (every attempt) to R2 and drops it here. */
  private async archive(jobId: string) {
    const job = this.sql.exec("SELECT scope FROM jobs WHERE id = ?", jobId).toArray()[0];
    if (!job) return;
    const lines = this.sql
      .exec("SELECT attempt, stream, offset, data, at FROM logs WHERE job_id = ? ORDER BY attempt, seq", jobId)
      .toArray() as unknown as LogLine[];
    const body = lines.map((l) => JSON.stringify(l)).join("\n");
    const key = `job-logs/${encodeURIComponent(job.scope as string)}/${jobId}.jsonl`;
    // Written before anything is dropped: if R2 refuses, the output stays here for the next run.
    await this.env.ARCHIVE.put(key, body, { httpMetadata: { contentType: "application/x-ndjson" }, customMetadata: { job_id: jobId } });
    this.sql.exec("UPDATE jobs SET logs_archive = ?, log_bytes = ? WHERE id = ?", key, new TextEncoder().encode(body).byteLength, jobId);
    this.sql.exec("DELETE FROM logs WHERE job_id = ?", jobId);
    this.sql.exec("DELETE FROM log_heads WHERE job_id = ?", jobId);
  }

  /** A job's archived output, one attempt of it, or null when it was never archived. */
  async readArchived(jobId: string, attempt: number): Promise<LogLine[] | null> {
    const row = this.sql.exec("SELECT logs_archive FROM jobs WHERE id = ?", jobId).toArray()[0];
    const key = row?.logs_archive as string | null | undefined;
    if (!key) return null;
    const object = await this.env.ARCHIVE.get(key);
    if (!object) return [];
    const text = await object.text();
    return text
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as LogLine)
      .filter((l) => l.attempt === attempt);
  }
}
