/**
 * What one app-log subscriber has yet to be sent, and the rules that keep it bounded.
 *
 * Lines arrive as chunks (one per batch from the agent), serialised once and shared by every
 * subscriber of the app: a subscriber's backlog is a list of references, not copies. A
 * subscriber is sent at most its share of the app's frame budget, so one object's socket
 * writes stay within what it can push however many subscribers there are, and only while its
 * socket holds less than MAX_QUEUED_BYTES its peer has not taken (`bufferedAmount`), so a peer
 * that stops reading holds a bounded part of the runtime's memory. A subscriber that falls more than
 * `MAX_LAG_MS` or `MAX_BACKLOG_BYTES` behind loses its oldest lines and is told how many, so
 * it can fetch them with GET /apps/{id}/logs.
 */
import type { AppLogLine } from "../../protocol/agent";

/**
 * Frames a second one ProjectDO hands to all the sockets of one app, shared by its subscribers
 * (APP_LOG_FRAMES_PER_SECOND overrides it). bench:logs on a 2-core host: each frame costs about
 * 70 µs of CPU between workerd, wrangler's dev proxy and the clients, and without this budget
 * the frames the machine cannot carry queue inside workerd (+255 MB, lines 53 s late) instead
 * of being skipped and told.
 */
export const APP_FRAMES_PER_SECOND = 10_000;

/** The app frame budget: APP_LOG_FRAMES_PER_SECOND when it is a sensible number, else the default. */
export function appFramesPerSecond(configured: string | undefined): number {
  const n = Number(configured);
  return configured && Number.isFinite(n) && n >= 100 && n <= 10_000_000 ? n : APP_FRAMES_PER_SECOND;
}
/** However many subscribers, each may be sent this many frames a second. */
export const MIN_FRAMES_PER_SECOND = 20;
/** A subscriber's budget may build up for this long (a burst after a quiet spell). */
const BURST_MS = 250;
/** Lines waiting longer than this for a subscriber are skipped. */
export const MAX_LAG_MS = 5_000;
/** A subscriber's backlog beyond this (bytes of its messages) loses its oldest lines. */
export const MAX_BACKLOG_BYTES = 1 << 20;
/** What a subscriber's socket may hold that its peer has not read; beyond it, lines wait in the backlog (and its rules). */
export const MAX_QUEUED_BYTES = 1 << 20;
/** Lines per batched frame, at most. */
export const MAX_LINES_PER_FRAME = 1_000;

/** A batch of lines, each as its `{stream, line, time}` message. */
export interface LogChunk {
  times: string[];
  messages: string[];
  bytes: number;
  /** When the chunk reached this object (ms), for the lag rule. */
  at: number;
}

export function chunkOf(lines: AppLogLine[], at: number): LogChunk {
  const messages = lines.map((l) => JSON.stringify({ stream: l.stream, line: l.text, time: l.time }));
  return { times: lines.map((l) => l.time), messages, bytes: messages.reduce((n, m) => n + m.length, 0), at };
}

/** The lines of `chunk` from index `from` on (a subscriber that already has the others). */
function sliceChunk(chunk: LogChunk, from: number): LogChunk {
  const messages = chunk.messages.slice(from);
  return { times: chunk.times.slice(from), messages, bytes: messages.reduce((n, m) => n + m.length, 0), at: chunk.at };
}

/** Where a subscriber's history ends: lines before `time`, and the first `count` at `time`, it already has. */
export interface Cursor {
  time: string;
  count: number;
}

export class LogOutbox {
  private backlog: LogChunk[] = [];
  /** Lines of the first chunk already sent (a chunk can be sent in parts). */
  private offset = 0;
  private backlogBytes = 0;
  private skipped = 0;
  private tokens: number;
  private refilledAt: number;
  /** While joining (its history is being fetched), lines wait here unsent. */
  holding = true;

  constructor(
    readonly ws: WebSocket,
    /** Many lines per frame (`{lines: [...]}`), or one `{stream, line, time}` message per line as Dockup documents. */
    readonly batched: boolean,
    now: number,
  ) {
    this.tokens = 1;
    this.refilledAt = now;
  }

  get pending(): boolean {
    return this.backlog.length > 0 || this.skipped > 0;
  }

  /** Bytes this subscriber alone keeps alive at most (its backlog; chunks are shared with others). */
  get backlogSize(): number {
    return this.backlogBytes;
  }

  push(chunk: LogChunk) {
    this.backlog.push(chunk);
    this.backlogBytes += chunk.bytes;
    // While joining nothing is dropped: the join decides what of it the subscriber already has.
    if (!this.holding) this.trim(chunk.at);
  }

  /** The history it was sent ends at `cursor`: drop what it already has from the lines that waited, and start sending. */
  release(cursor: Cursor | null, now: number) {
    this.holding = false;
    if (cursor) {
      let seenAtTime = 0;
      let kept: LogChunk[] = [];
      for (let i = 0; i < this.backlog.length; i++) {
        const chunk = this.backlog[i]!;
        let from = 0;
        for (; from < chunk.times.length; from++) {
          const t = chunk.times[from]!;
          if (t > cursor.time || (t === cursor.time && seenAtTime++ >= cursor.count)) break;
        }
        // The first line newer than the history: it and every line after it are new.
        if (from < chunk.times.length) {
          kept = [from ? sliceChunk(chunk, from) : chunk, ...this.backlog.slice(i + 1)];
          break;
        }
      }
      this.backlog = kept;
      this.backlogBytes = kept.reduce((n, c) => n + c.bytes, 0);
    }
    this.trim(now);
  }

  /** Drops the oldest lines while it is too far behind, counting them as skipped. */
  private trim(now: number) {
    while (this.backlog.length > 1 && (this.backlogBytes > MAX_BACKLOG_BYTES || now - this.backlog[0]!.at > MAX_LAG_MS)) this.dropFirst();
    if (this.backlog.length === 1 && now - this.backlog[0]!.at > MAX_LAG_MS) this.dropFirst();
  }

  private dropFirst() {
    const first = this.backlog.shift()!;
    this.skipped += first.times.length - this.offset;
    this.backlogBytes -= first.bytes;
    this.offset = 0;
  }

  /** Sends what its share of the budget allows (`framesPerSecond`); true while something is still waiting. */
  flush(now: number, framesPerSecond: number): boolean {
    if (this.holding) return true;
    this.trim(now);
    const rate = Math.max(framesPerSecond, MIN_FRAMES_PER_SECOND) / 1000;
    this.tokens = Math.min(this.tokens + (now - this.refilledAt) * rate, Math.max(rate * BURST_MS, 1));
    this.refilledAt = now;
    try {
      if (this.skipped && !this.batched && this.tokens >= 1) {
        this.ws.send(this.skipNotice(now));
        this.skipped = 0;
        this.tokens--;
      }
      while (this.backlog.length && this.tokens >= 1 && !this.queueFull()) {
        const chunk = this.backlog[0]!;
        if (this.batched) {
          const take = Math.min(chunk.messages.length - this.offset, MAX_LINES_PER_FRAME);
          const lines = this.offset === 0 && take === chunk.messages.length ? chunk.messages : chunk.messages.slice(this.offset, this.offset + take);
          const skipped = this.skipped ? `"skipped":${this.skipped},` : "";
          this.ws.send(`{${skipped}"lines":[${lines.join(",")}]}`);
          this.skipped = 0;
          this.offset += take;
          this.tokens--;
        } else {
          while (this.offset < chunk.messages.length && this.tokens >= 1 && !this.queueFull()) {
            this.ws.send(chunk.messages[this.offset++]!);
            this.tokens--;
          }
        }
        if (this.offset >= chunk.messages.length) {
          this.backlog.shift();
          this.backlogBytes -= chunk.bytes;
          this.offset = 0;
        }
      }
      if (this.skipped && this.batched && !this.backlog.length && this.tokens >= 1) {
        this.ws.send(`{"skipped":${this.skipped},"lines":[]}`);
        this.skipped = 0;
        this.tokens--;
      }
    } catch {
      // The socket is closing; its close event forgets it.
      return false;
    }
    return this.pending;
  }

  /** Whether the socket holds as much as its peer may leave unread (a runtime without `bufferedAmount`: never). */
  private queueFull(): boolean {
    return (Number(this.ws.bufferedAmount) || 0) >= MAX_QUEUED_BYTES;
  }

  private skipNotice(now: number): string {
    const line = `[berth] ${this.skipped} log line(s) skipped: this connection was more than ${MAX_LAG_MS / 1000} s behind; GET /apps/{id}/logs has them`;
    return JSON.stringify({ stream: "stderr", line, time: new Date(now).toISOString(), skipped: this.skipped });
  }
}
