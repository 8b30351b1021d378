/**
 * A job's folder in the state directory, which is its journal: the lease it
 * runs under (meta.json), its output (stdout, stderr), the outcome once there
 * is one (result.json) and whatever its task keeps there (a command's pid and
 * exit status). An agent that restarts reads it to pick the job up where it is
 * and to answer a job handed out again with the outcome it already recorded.
 */
import { appendFileSync, closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync } from "node:fs";
import { join } from "node:path";
import type { Lease } from "../../../src/protocol/agent.ts";
import { type StateDir, writeFileAtomic } from "../state.ts";
import type { Stream } from "./shipper.ts";

export type OutcomeResult = Record<string, string | number | boolean | null>;

/** The journal entry of a finished job: what the agent reported, or will report. */
export interface Recorded {
  status: "succeeded" | "failed";
  error: string | null;
  result: OutcomeResult | null;
  finished_at: string;
  reported: boolean;
}

interface Meta {
  job_id: string;
  attempt: number;
  lease_id: string;
  lease_ttl: number;
  deadline_at?: number;
  payload: Lease["payload"];
  started_at: string | null;
  /** Cancelled or abandoned here: not picked up again on the next start. */
  dropped?: boolean;
}

export class JobJournal {
  readonly dir: string;

  constructor(state: StateDir, jobId: string) {
    this.dir = state.jobDir(jobId);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  /** Unfinished jobs an earlier agent process left in the state directory, under the lease each last had. */
  static leftovers(state: StateDir): Lease[] {
    let ids: string[];
    try {
      ids = readdirSync(join(state.root, "jobs")).filter((d) => d.startsWith("job_"));
    } catch {
      return [];
    }
    const out: Lease[] = [];
    for (const id of ids) {
      const journal = new JobJournal(state, id);
      if (journal.recorded()?.reported) continue;
      const meta = journal.meta();
      if (!meta || meta.dropped) continue;
      out.push({ job_id: meta.job_id, attempt: meta.attempt, lease_id: meta.lease_id, lease_ttl: meta.lease_ttl, reconcile: true, deadline_at: meta.deadline_at, payload: meta.payload });
    }
    return out;
  }

  private meta(): Meta | null {
    try {
      return JSON.parse(readFileSync(join(this.dir, "meta.json"), "utf8")) as Meta;
    } catch {
      return null;
    }
  }

  /** Notes the lease the job now runs under; when the work began is kept. */
  saveLease(lease: Lease) {
    const meta: Meta = {
      job_id: lease.job_id,
      attempt: lease.attempt,
      lease_id: lease.lease_id,
      lease_ttl: lease.lease_ttl,
      deadline_at: lease.deadline_at,
      payload: lease.payload,
      started_at: this.meta()?.started_at ?? null,
    };
    writeFileAtomic(join(this.dir, "meta.json"), JSON.stringify(meta));
  }

  /** When the work first began on this host (across restarts), or null. */
  startedAt(): number | null {
    const at = this.meta()?.started_at;
    return at ? Date.parse(at) : null;
  }

  markStarted() {
    const meta = this.meta();
    if (meta && !meta.started_at) writeFileAtomic(join(this.dir, "meta.json"), JSON.stringify({ ...meta, started_at: new Date().toISOString() }));
  }

  /** The job ended here without an outcome to report (cancelled, or its lease lost for good). */
  markDropped() {
    const meta = this.meta();
    if (meta) writeFileAtomic(join(this.dir, "meta.json"), JSON.stringify({ ...meta, dropped: true }));
  }

  recorded(): Recorded | null {
    try {
      return JSON.parse(readFileSync(join(this.dir, "result.json"), "utf8")) as Recorded;
    } catch {
      return null;
    }
  }

  /** Journals the outcome before it is reported, so a restart reports the same one. */
  record(outcome: { status: "succeeded" | "failed"; error?: string | null; result?: OutcomeResult | null }): Recorded {
    const entry: Recorded = { status: outcome.status, error: outcome.error ?? null, result: outcome.result ?? null, finished_at: new Date().toISOString(), reported: false };
    writeFileAtomic(join(this.dir, "result.json"), JSON.stringify(entry));
    return entry;
  }

  markReported() {
    const entry = this.recorded();
    if (entry && !entry.reported) writeFileAtomic(join(this.dir, "result.json"), JSON.stringify({ ...entry, reported: true }));
  }

  /** Where a stream of the job's output is kept (a command writes to it directly). */
  outputPath(stream: Stream): string {
    return join(this.dir, stream);
  }

  appendOutput(stream: Stream, text: string) {
    appendFileSync(this.outputPath(stream), text, { mode: 0o600 });
  }

  /** Output from `position`, cut at a whole UTF-8 character unless `final`; `atEnd` when it reached the end of what is there. */
  readOutput(stream: Stream, position: number, final: boolean): { text: string; next: number; atEnd: boolean } {
    return readWholeChars(this.outputPath(stream), position, final);
  }
}

/** Bytes of a file from `position`, at most 4 MiB, cut at a whole UTF-8 character unless `final`. */
function readWholeChars(path: string, position: number, final: boolean): { text: string; next: number; atEnd: boolean } {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return { text: "", next: position, atEnd: true };
  }
  try {
    const size = fstatSync(fd).size;
    if (size <= position) return { text: "", next: position, atEnd: true };
    const buf = Buffer.alloc(Math.min(size - position, 4 * 1024 * 1024));
    const n = readSync(fd, buf, 0, buf.length, position);
    let end = n;
    if (!final) {
      // Leave an incomplete trailing UTF-8 sequence for the next read.
      let i = n - 1;
      while (i >= 0 && i > n - 4 && (buf[i]! & 0xc0) === 0x80) i--;
      if (i >= 0) {
        const lead = buf[i]!;
        const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
        if (n - i < need) end = i;
      }
    }
    return { text: buf.subarray(0, end).toString("utf8"), next: position + end, atEnd: position + n >= size };
  } finally {
    closeSync(fd);
  }
}
