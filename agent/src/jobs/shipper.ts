/**
 * Ships a job's output to the control plane as chunks keyed by sequence and
 * byte offset. A chunk stays buffered until the control plane says it holds
 * it; what it already holds (a resend after a reconnect or restart) it
 * ignores, and a gap is answered with the offset to resend from.
 */
import type { LeaseReporter } from "./registry.ts";

export type Stream = "stdout" | "stderr";
interface Chunk {
  seq: number;
  stream: Stream;
  offset: number;
  data: string;
  bytes: number;
}

const MAX_CHUNK_BYTES = 64 * 1024;
const MAX_BATCH_BYTES = 1024 * 1024;
const MAX_BATCH_CHUNKS = 64;

export class LogShipper {
  private readonly api: LeaseReporter;
  private readonly leaseId: string;
  private seq = 0;
  private readonly next: Record<Stream, number> = { stdout: 0, stderr: 0 };
  private pending: Chunk[] = [];
  private inFlight: Promise<void> | null = null;
  /** Set when the control plane holds less than the oldest buffered chunk: the source must be read again from the start. */
  rewind: Stream | null = null;

  constructor(api: LeaseReporter, leaseId: string) {
    this.api = api;
    this.leaseId = leaseId;
  }

  get idle() {
    return this.pending.length === 0 && !this.inFlight;
  }

  push(stream: Stream, data: string) {
    let rest = Buffer.from(data, "utf8");
    while (rest.length) {
      let cut = Math.min(rest.length, MAX_CHUNK_BYTES);
      // Never split a UTF-8 sequence.
      while (cut < rest.length && cut > 0 && (rest[cut]! & 0xc0) === 0x80) cut--;
      const piece = rest.subarray(0, cut);
      this.pending.push({ seq: this.seq++, stream, offset: this.next[stream], data: piece.toString("utf8"), bytes: piece.length });
      this.next[stream] += piece.length;
      rest = rest.subarray(cut);
    }
  }

  /** Starts a stream over from offset 0 (after a rewind); the control plane drops what it already holds. */
  resetStream(stream: Stream) {
    this.pending = this.pending.filter((c) => c.stream !== stream);
    this.next[stream] = 0;
    if (this.rewind === stream) this.rewind = null;
  }

  /** Sends what is buffered; one request at a time, in order. Throws ApiFailure. */
  flush(): Promise<void> {
    if (this.inFlight !== null) return this.inFlight;
    if (!this.pending.length) return Promise.resolve();
    this.inFlight = this.sendBatch().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private async sendBatch() {
    const batch: Chunk[] = [];
    let size = 0;
    for (const c of this.pending) {
      if (batch.length >= MAX_BATCH_CHUNKS || (batch.length && size + c.bytes > MAX_BATCH_BYTES)) break;
      batch.push(c);
      size += c.bytes;
    }
    const res = await this.api.report<{ expected: Record<Stream, number>; gap: boolean }>("logs", this.leaseId, {
      chunks: batch.map(({ seq, stream, offset, data }) => ({ seq, stream, offset, data })),
    });
    this.pending = this.pending.filter((c) => c.offset + c.bytes > res.expected[c.stream]);
    for (const stream of ["stdout", "stderr"] as const) {
      const oldest = this.pending.find((c) => c.stream === stream);
      if (oldest && oldest.offset > res.expected[stream]) this.rewind = stream;
    }
  }
}
