/**
 * A ProjectDO's job output: chunks per job and attempt, keyed by sequence and byte
 * offset per stream, so an agent's resends are ignored, a gap is answered with the offset
 * to resend from, and nothing is lost or doubled.
 */
import type { LogChunk } from "../../protocol/agent";
import type { SchemaComponent } from "../sql-schema";

export type Streams = { stdout: number; stderr: number };

export const JOB_LOGS_SCHEMA: SchemaComponent = {
  name: "job_logs",
  steps: [
    `CREATE TABLE IF NOT EXISTS logs (
       job_id TEXT NOT NULL, attempt INTEGER NOT NULL, seq INTEGER NOT NULL, stream TEXT NOT NULL,
       offset INTEGER NOT NULL, data TEXT NOT NULL, at INTEGER NOT NULL,
       PRIMARY KEY (job_id, attempt, seq)
     );
     CREATE TABLE IF NOT EXISTS log_heads (
       job_id TEXT NOT NULL, attempt INTEGER NOT NULL, stream TEXT NOT NULL, next_offset INTEGER NOT NULL,
       PRIMARY KEY (job_id, attempt, stream)
     );`,
  ],
};

const utf8 = new TextEncoder();

export class JobLogs {
  constructor(private readonly sql: SqlStorage) {}

  /** Where each stream of an attempt ends: the offset the next chunk must start at. */
  heads(jobId: string, attempt: number): Streams {
    const heads = { stdout: 0, stderr: 0 };
    for (const h of this.sql.exec("SELECT stream, next_offset FROM log_heads WHERE job_id = ? AND attempt = ?", jobId, attempt)) {
      heads[h.stream as keyof Streams] = h.next_offset as number;
    }
    return heads;
  }

  /**
   * Appends chunks of one attempt, calling `onAppended` with each stretch of new text. A
   * chunk already held is skipped; one that starts past the held end is a gap.
   */
  append(jobId: string, attempt: number, chunks: LogChunk[], onAppended: (stream: LogChunk["stream"], text: string) => void): { expected: Streams; gap: boolean } {
    const heads = this.heads(jobId, attempt);
    let gap = false;
    const now = Date.now();
    for (const chunk of [...chunks].sort((a, b) => a.seq - b.seq)) {
      const head = heads[chunk.stream];
      const bytes = utf8.encode(chunk.data);
      if (chunk.offset + bytes.byteLength <= head) continue; // already held: a resend
      if (chunk.offset > head) {
        gap = true; // something before this chunk is missing
        continue;
      }
      // The chunk overlaps the held end: keep only its new tail.
      const fresh = chunk.offset < head ? new TextDecoder().decode(bytes.slice(head - chunk.offset)) : chunk.data;
      const seq = this.sql.exec("SELECT COALESCE(MAX(seq), -1) + 1 AS next FROM logs WHERE job_id = ? AND attempt = ?", jobId, attempt).one().next as number;
      this.sql.exec(
        "INSERT INTO logs (job_id, attempt, seq, stream, offset, data, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        jobId, attempt, seq, chunk.stream, head, fresh, now,
      );
      heads[chunk.stream] = chunk.offset + bytes.byteLength;
      this.sql.exec(
        "INSERT INTO log_heads (job_id, attempt, stream, next_offset) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET next_offset = excluded.next_offset",
        jobId, attempt, chunk.stream, heads[chunk.stream],
      );
      onAppended(chunk.stream, fresh);
    }
    return { expected: heads, gap };
  }

  /** One attempt's output, in order. */
  read(jobId: string, attempt: number): Array<{ stream: string; offset: number; data: string; at: number }> {
    return this.sql
      .exec("SELECT stream, offset, data, at FROM logs WHERE job_id = ? AND attempt = ? ORDER BY seq", jobId, attempt)
      .toArray()
      .map((l) => ({ stream: l.stream as string, offset: l.offset as number, data: l.data as string, at: l.at as number }));
  }
}
