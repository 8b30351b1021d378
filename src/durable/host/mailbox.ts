/**
 * A HostDO's mailbox table: one entry per job handed to the host, `pending` until it is
 * leased, `leased` while an agent holds it, `expiring` while an expired lease is being
 * settled with the job's owner. Pure SQL; the lease protocol is in leases.ts.
 *
 * Jobs are handed out in the order they were created (`enqueued_at` is that place in line,
 * kept when a job goes out again), and the jobs of one app one at a time: while one is out,
 * the app's later ones wait. So a deploy handed out again after the agent died cannot run
 * after, and be undone by, a deploy asked for later.
 */
import type { JobsQueueMessage } from "../../jobs/queue";
import { randomString } from "../../lib/ids";
import type { Lease } from "../../protocol/agent";
import type { SchemaComponent } from "../sql-schema";

export type MailboxEntry = {
  job_id: string;
  scope: string;
  attempt: number;
  payload: string;
  idempotent: number;
  reconcile: number;
  deadline_at: number;
  state: "pending" | "leased" | "expiring";
  lease_id: string | null;
  lease_expires_at: number | null;
  /** Its place in line: when the job was created. */
  enqueued_at: number;
};

export const MAILBOX_SCHEMA: SchemaComponent = {
  name: "mailbox",
  steps: [
    `CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS mailbox (
       job_id TEXT PRIMARY KEY, scope TEXT NOT NULL, attempt INTEGER NOT NULL,
       payload TEXT NOT NULL, idempotent INTEGER NOT NULL, reconcile INTEGER NOT NULL DEFAULT 0,
       deadline_at INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
       lease_id TEXT UNIQUE, lease_expires_at INTEGER, enqueued_at INTEGER NOT NULL
     );
     CREATE INDEX IF NOT EXISTS mailbox_state ON mailbox(state, enqueued_at);`,
  ],
};

const entries = (cursor: SqlStorageCursor<Record<string, SqlStorageValue>>) => cursor.toArray() as unknown as MailboxEntry[];

export class Mailbox {
  constructor(private readonly sql: SqlStorage) {}

  meta(key: string): string | null {
    return (this.sql.exec("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value as string | undefined) ?? null;
  }

  setMeta(key: string, value: string) {
    this.sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO UPDATE SET value = excluded.value", key, value);
  }

  /** Takes in one attempt of a job; an attempt already held (or an older one) changes nothing. */
  put(job: JobsQueueMessage): boolean {
    const existing = this.sql.exec("SELECT attempt FROM mailbox WHERE job_id = ?", job.job_id).toArray()[0];
    if (existing && (existing.attempt as number) >= job.attempt) return false;
    this.sql.exec(
      `INSERT INTO mailbox (job_id, scope, attempt, payload, idempotent, reconcile, deadline_at, state, enqueued_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)
       ON CONFLICT (job_id) DO UPDATE SET attempt = excluded.attempt, state = 'pending', lease_id = NULL, lease_expires_at = NULL,
         reconcile = excluded.reconcile, enqueued_at = excluded.enqueued_at`,
      job.job_id, job.scope, job.attempt, JSON.stringify(job.payload), job.idempotent ? 1 : 0,
      job.attempt > 1 && !job.idempotent ? 1 : 0, job.deadline_at, job.created_at ?? Date.now(),
    );
    return true;
  }

  /** Forgets a job; returns its lease, if one was out. */
  remove(jobId: string): { found: boolean; leaseId: string | null } {
    const entry = this.sql.exec("SELECT lease_id FROM mailbox WHERE job_id = ?", jobId).toArray()[0];
    if (!entry) return { found: false, leaseId: null };
    this.sql.exec("DELETE FROM mailbox WHERE job_id = ?", jobId);
    return { found: true, leaseId: (entry.lease_id as string | null) ?? null };
  }

  /** Empties the mailbox (the host was deleted), returning what it held. */
  takeAll(): Array<{ job_id: string; scope: string }> {
    const all = this.sql.exec("SELECT job_id, scope FROM mailbox").toArray().map((e) => ({ job_id: e.job_id as string, scope: e.scope as string }));
    this.sql.exec("DELETE FROM mailbox");
    return all;
  }

  counts(): { pending: number; leased: number } {
    const rows = this.sql.exec("SELECT state, COUNT(*) AS n FROM mailbox GROUP BY state").toArray();
    const count = (s: string) => (rows.find((c) => c.state === s)?.n as number | undefined) ?? 0;
    return { pending: count("pending"), leased: count("leased") };
  }

  /**
   * Leases up to `limit` pending entries, oldest first, for `ttlSeconds`; of an app's jobs only
   * its oldest, and only while none of its others is out.
   */
  lease(limit: number, ttlSeconds: number): Lease[] {
    const expiresAt = Date.now() + ttlSeconds * 1000;
    const leases: Lease[] = [];
    const ready = this.sql.exec(
      `SELECT * FROM mailbox m WHERE m.state = 'pending' AND NOT EXISTS (
         SELECT 1 FROM mailbox o
         WHERE o.job_id <> m.job_id AND json_extract(o.payload, '$.app_id') = json_extract(m.payload, '$.app_id')
           AND (o.state <> 'pending' OR o.enqueued_at < m.enqueued_at OR (o.enqueued_at = m.enqueued_at AND o.rowid < m.rowid))
       )
       ORDER BY m.enqueued_at, m.rowid LIMIT ?`,
      limit,
    );
    for (const e of entries(ready)) {
      const leaseId = `lse_${randomString(20)}`;
      this.sql.exec("UPDATE mailbox SET state = 'leased', lease_id = ?, lease_expires_at = ? WHERE job_id = ?", leaseId, expiresAt, e.job_id);
      leases.push({ job_id: e.job_id, attempt: e.attempt, lease_id: leaseId, lease_ttl: ttlSeconds, reconcile: e.reconcile === 1, deadline_at: e.deadline_at, payload: JSON.parse(e.payload) });
    }
    return leases;
  }

  leased(): MailboxEntry[] {
    return entries(this.sql.exec("SELECT * FROM mailbox WHERE state = 'leased'"));
  }

  expiredBy(now: number): MailboxEntry[] {
    return entries(this.sql.exec("SELECT * FROM mailbox WHERE state = 'leased' AND lease_expires_at <= ?", now));
  }

  byLease(leaseId: string): MailboxEntry | null {
    return entries(this.sql.exec("SELECT * FROM mailbox WHERE lease_id = ? AND state = 'leased'", leaseId))[0] ?? null;
  }

  extend(jobId: string, until: number) {
    this.sql.exec("UPDATE mailbox SET lease_expires_at = ? WHERE job_id = ?", until, jobId);
  }

  /** Deletes the entry of this lease; a newer attempt's entry is left alone. */
  drop(e: MailboxEntry) {
    this.sql.exec("DELETE FROM mailbox WHERE job_id = ? AND lease_id = ?", e.job_id, e.lease_id);
  }

  /** Claims a leased entry for expiry; false when another trigger already did. */
  claimExpiry(e: MailboxEntry): boolean {
    return this.sql.exec("UPDATE mailbox SET state = 'expiring' WHERE job_id = ? AND lease_id = ? AND state = 'leased'", e.job_id, e.lease_id).rowsWritten > 0;
  }

  /** Puts a claimed entry back as leased (already expired), for a later try. */
  unclaimExpiry(e: MailboxEntry) {
    this.sql.exec("UPDATE mailbox SET state = 'leased' WHERE job_id = ? AND lease_id = ? AND state = 'expiring'", e.job_id, e.lease_id);
  }

  /** The job goes out again as `attempt`, in its old place in line; work that must not run twice is marked for reconciling. */
  requeue(e: MailboxEntry, attempt: number) {
    this.sql.exec(
      "UPDATE mailbox SET attempt = ?, state = 'pending', lease_id = NULL, lease_expires_at = NULL, reconcile = ? WHERE job_id = ? AND lease_id = ?",
      attempt, e.idempotent === 1 ? 0 : 1, e.job_id, e.lease_id,
    );
  }

  nextExpiry(): number | null {
    return this.sql.exec("SELECT MIN(lease_expires_at) AS at FROM mailbox WHERE state = 'leased'").one().at as number | null;
  }
}
