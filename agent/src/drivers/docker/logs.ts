/** A container's log lines, with their time and stream: the last N, or followed as they come. */
import type { IncomingMessage } from "node:http";
import { chunks, type DockerApi, DockerError, enc, type Query } from "./api.ts";

export interface LogLine {
  /** ISO 8601, millisecond precision (Docker's own has nanoseconds). */
  time: string;
  stream: "stdout" | "stderr";
  text: string;
  /**
   * The nanoseconds of Docker's timestamp beyond `time`'s millisecond (0–999,999), when Docker
   * gave one. Docker stamps every line with its own clock reading, so two lines of one stream
   * never share (time, subMs) unless one is the other sent again.
   */
  subMs?: number;
}

export interface LogOptions {
  /** Last N lines (before `since` filtering by Docker); default all. */
  tail?: number;
  /** Only lines at or after this time (inclusive): a Date, an ISO string or Unix seconds. */
  since?: Date | string | number;
  follow?: boolean;
  signal?: AbortSignal;
}

/** With `follow`, lines as they come until the container stops or `signal` aborts; else the lines there are now. */
export async function* containerLogs(api: DockerApi, id: string, opts: LogOptions = {}): AsyncGenerator<LogLine> {
  const query: Query = { stdout: 1, stderr: 1, timestamps: 1, follow: opts.follow ? 1 : undefined, tail: opts.tail ?? "all", since: sinceParam(opts.since) };
  const res = await api.open("GET", `/containers/${enc(id)}/logs`, { query, signal: opts.signal, timeoutMs: opts.follow ? 0 : api.timeoutMs });
  yield* demuxLines(res);
}

function sinceParam(since: LogOptions["since"]): string | undefined {
  if (since === undefined) return undefined;
  const ms = since instanceof Date ? since.getTime() : typeof since === "number" ? since * 1000 : Date.parse(since);
  if (!Number.isFinite(ms)) throw new DockerError(400, `invalid since: ${String(since)}`);
  return (ms / 1000).toFixed(3);
}

/**
 * Docker's log stream: frames of an 8-byte header (stream byte, 3 zero bytes,
 * big-endian length) and a payload; lines may span frames and chunks. A
 * container with a TTY sends raw bytes instead (all stdout).
 */
async function* demuxLines(res: IncomingMessage): AsyncGenerator<LogLine> {
  let buf: Buffer = Buffer.alloc(0);
  let raw: boolean | null = null;
  const pending: Record<"stdout" | "stderr", Buffer> = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };

  function* take(stream: "stdout" | "stderr", data: Buffer, final: boolean): Generator<LogLine> {
    let b: Buffer = pending[stream].length ? Buffer.concat([pending[stream], data]) : data;
    for (let nl = b.indexOf(0x0a); nl >= 0; nl = b.indexOf(0x0a)) {
      yield parseLogLine(stream, b.subarray(0, nl).toString("utf8"));
      b = b.subarray(nl + 1);
    }
    if (final && b.length) {
      yield parseLogLine(stream, b.toString("utf8"));
      b = Buffer.alloc(0);
    }
    pending[stream] = Buffer.from(b);
  }

  for await (const c of chunks(res)) {
    buf = buf.length ? Buffer.concat([buf, c]) : c;
    if (raw === null && buf.length >= 4) raw = !(buf[0]! <= 2 && buf[1] === 0 && buf[2] === 0 && buf[3] === 0);
    if (raw === null) continue;
    if (raw) {
      yield* take("stdout", buf, false);
      buf = Buffer.alloc(0);
      continue;
    }
    while (buf.length >= 8) {
      const size = buf.readUInt32BE(4);
      if (buf.length < 8 + size) break;
      const stream = buf[0] === 2 ? "stderr" : "stdout";
      yield* take(stream, buf.subarray(8, 8 + size), false);
      buf = buf.subarray(8 + size);
    }
  }
  if (raw) yield* take("stdout", buf, true);
  yield* take("stdout", Buffer.alloc(0), true);
  yield* take("stderr", Buffer.alloc(0), true);
}

function parseLogLine(stream: "stdout" | "stderr", line: string): LogLine {
  const text = line.endsWith("\r") ? line.slice(0, -1) : line;
  const sp = text.indexOf(" ");
  const stamp = sp > 0 ? text.slice(0, sp) : text;
  const ms = Date.parse(stamp);
  if (/^\d{4}-\d\d-\d\dT/.test(stamp) && Number.isFinite(ms)) {
    return { time: new Date(ms).toISOString(), stream, text: sp > 0 ? text.slice(sp + 1) : "", subMs: subMillisecond(stamp) };
  }
  return { time: new Date().toISOString(), stream, text };
}

/** "…T10:00:00.123456789Z" → 456789: the fraction's digits after the millisecond, as nanoseconds. */
function subMillisecond(stamp: string): number {
  const fraction = /\.(\d+)/.exec(stamp)?.[1] ?? "";
  return Number(fraction.slice(3, 9).padEnd(6, "0"));
}
