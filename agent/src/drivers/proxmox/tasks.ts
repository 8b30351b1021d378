/**
 * UPID tasks: Proxmox answers long work (clone, start, resize, destroy, ...) with
 * a task id at once and runs the work in a worker. Following one means polling
 * `/nodes/{node}/tasks/{upid}/status` until `stopped` while reading
 * `/tasks/{upid}/log` from the last line seen, so the job log shows Proxmox's own
 * progress; the task's `exitstatus` is its outcome.
 *
 * Most tasks end within seconds, and a status call is one small GET on a kept
 * connection: the status is polled every EARLY_POLL_MS for the task's first
 * EARLY_PHASE_MS, so a power action's task (a second or two on most nodes) is seen
 * ending within a few hundredths of a second, then every FAST_POLL_MS until
 * FAST_PHASE_MS, then less and less often up to MAX_POLL_MS for long ones (a clone of a
 * big disk): at most 80 + 60 status calls in a task's first 5 s. The log is read with the status but at most every LOG_EVERY_MS while the
 * task runs, and to its end once it stopped.
 */
import { sleep } from "../../backoff.ts";
import { type ProxmoxClient, ProxmoxError } from "./client.ts";

/** One line of a task's log, as Proxmox wrote it. */
export type TaskLogSink = (line: string) => void;

const EARLY_POLL_MS = 25;
const EARLY_PHASE_MS = 2_000;
const FAST_POLL_MS = 50;
const FAST_PHASE_MS = 5_000;
const MAX_POLL_MS = 2_000;
const LOG_EVERY_MS = 250;

export interface FollowOptions {
  onLog?: TaskLogSink;
  /** Epoch ms: past it, following stops with an error (the task itself goes on on the node). */
  deadline: number;
  signal?: AbortSignal;
  /** The wait between status polls after the early phase (FAST_POLL_MS); early ones are never longer. */
  pollMs?: number;
}

export interface TaskOutcome {
  upid: string;
  exitstatus: string;
  /** Every log line, "TASK OK" / "TASK ERROR: …" included. */
  log: string[];
}

/** A task that ended with anything but OK; the message is Proxmox's exitstatus. */
export class ProxmoxTaskError extends ProxmoxError {
  readonly upid: string;
  readonly exitstatus: string;
  readonly log: string[];

  constructor(upid: string, exitstatus: string, log: string[]) {
    super(exitstatus, { status: 200, transient: /^VM is locked/.test(exitstatus) });
    this.name = "ProxmoxTaskError";
    this.upid = upid;
    this.exitstatus = exitstatus;
    this.log = log;
  }
}

export interface Upid {
  node: string;
  type: string;
  id: string;
  user: string;
}

/** UPID:node:pid:pstart:starttime:type:id:user: */
export function parseUpid(upid: string): Upid {
  const m = /^UPID:([^:]+):[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:([^:]+):([^:]*):([^:]+):$/.exec(upid);
  if (!m) throw new ProxmoxError(`not a Proxmox task id: ${JSON.stringify(upid)}`);
  return { node: m[1] as string, type: m[2] as string, id: m[3] as string, user: m[4] as string };
}

/** `OK`, or a finished task whose log has warnings (`WARNINGS: 2`), succeeded. */
export function taskSucceeded(exitstatus: string): boolean {
  return exitstatus === "OK" || /^WARNINGS: \d+$/.test(exitstatus);
}

/** Follows a task to its end and throws ProxmoxTaskError unless it succeeded. */
export async function followTask(client: ProxmoxClient, upid: string, opts: FollowOptions): Promise<TaskOutcome> {
  const { node } = parseUpid(upid);
  const base = `/nodes/${encodeURIComponent(node)}/tasks/${encodeURIComponent(upid)}`;
  const call = { deadline: opts.deadline, signal: opts.signal };
  const log: string[] = [];
  let pollMs = opts.pollMs ?? FAST_POLL_MS;
  const began = Date.now();
  let logReadAt = Number.NEGATIVE_INFINITY;

  const readLog = async () => {
    for (;;) {
      const lines = await client.get<{ n: number; t: string }[]>(`${base}/log`, { start: log.length, limit: 500 }, call);
      // pvedaemon answers an empty range with one made-up line, `no content`, numbered past the end.
      const fresh = (lines ?? []).filter((l) => l.n > log.length && !(lines.length === 1 && l.t === "no content"));
      for (const l of fresh.sort((a, b) => a.n - b.n)) {
        if (l.n !== log.length + 1) break; // a gap: read again from where we are
        log.push(l.t);
        opts.onLog?.(l.t);
      }
      if (fresh.length < 500) return;
    }
  };

  for (;;) {
    const st = await client.get<{ status: string; exitstatus?: string }>(`${base}/status`, {}, call);
    if (st.status === "stopped" || Date.now() - logReadAt >= LOG_EVERY_MS) {
      logReadAt = Date.now();
      await readLog();
    }
    if (st.status === "stopped") {
      const exitstatus = st.exitstatus ?? "unknown exit status";
      if (!taskSucceeded(exitstatus)) throw new ProxmoxTaskError(upid, exitstatus, log);
      return { upid, exitstatus, log };
    }
    if (opts.signal?.aborted) throw new ProxmoxError(`stopped following task ${upid}: aborted`, { code: "ABORTED" });
    const wait = Date.now() - began < EARLY_PHASE_MS ? Math.min(EARLY_POLL_MS, pollMs) : pollMs;
    if (Date.now() + wait > opts.deadline) {
      throw new ProxmoxError(`task ${upid} still running at the deadline; it goes on on the node`, { code: "TASK_DEADLINE" });
    }
    await sleep(wait, opts.signal);
    if (Date.now() - began >= FAST_PHASE_MS) pollMs = Math.min(MAX_POLL_MS, Math.round(pollMs * 1.25));
  }
}
