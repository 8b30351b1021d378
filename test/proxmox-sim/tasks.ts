/**
 * UPID tasks as pvedaemon runs them: an id in PVE's format, a log that grows
 * while the work runs, "TASK OK" or "TASK ERROR: <message>" as the last line,
 * and a status that says running until the worker ends.
 */
export interface TaskRecord {
  upid: string;
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: string;
  id: string;
  user: string;
  endtime?: number;
  /** Millisecond start and end, for benchmarks that compare Berth's time with the node's own. */
  startedMs: number;
  endedMs?: number;
  exitstatus?: string;
  log: string[];
  done: Promise<void>;
}

export class TaskFailure extends Error {}

/** What a worker may do: write log lines and wait (the node's slowness applies). */
export interface TaskContext {
  log(line: string): void;
  sleep(ms: number): Promise<void>;
}

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, "0");

export class Tasks {
  readonly byUpid = new Map<string, TaskRecord>();
  private nextPid = 4000 + Math.floor(Math.random() * 1000);
  /** Faults queued by tests: the next task whose type (and id) matches fails with the message. */
  readonly pendingFailures: { type?: string; id?: string; message: string }[] = [];

  private readonly node: string;
  private readonly delay: () => number;

  constructor(node: string, delay: () => number) {
    this.node = node;
    this.delay = delay;
  }

  start(type: string, id: string, user: string, work: (ctx: TaskContext) => Promise<void>, onFail?: () => Promise<void> | void): string {
    const pid = this.nextPid++;
    const pstart = Math.floor(process.uptime() * 100) + 1_000_000;
    const starttime = Math.floor(Date.now() / 1000);
    const upid = `UPID:${this.node}:${hex8(pid)}:${hex8(pstart)}:${hex8(starttime)}:${type}:${id}:${user}:`;
    const rec: TaskRecord = { upid, node: this.node, pid, pstart, starttime, type, id, user, startedMs: Date.now(), log: [], done: Promise.resolve() };
    const ctx: TaskContext = {
      log: (line) => rec.log.push(line),
      sleep: (ms) => new Promise((r) => setTimeout(r, ms + this.delay())),
    };
    const fault = this.pendingFailures.findIndex((f) => (!f.type || f.type === type) && (!f.id || f.id === id));
    const injected = fault >= 0 ? this.pendingFailures.splice(fault, 1)[0] : undefined;
    rec.done = (async () => {
      try {
        await ctx.sleep(0);
        // An injected fault fails the worker before it changes anything, the way a storage or QEMU error aborts it.
        if (injected) throw new TaskFailure(injected.message);
        await work(ctx);
        rec.exitstatus = "OK";
        rec.log.push("TASK OK");
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        rec.exitstatus = message;
        rec.log.push(`TASK ERROR: ${message}`);
        await Promise.resolve(onFail?.()).catch(() => {});
      } finally {
        rec.endedMs = Date.now();
        rec.endtime = Math.floor(rec.endedMs / 1000);
      }
    })();
    this.byUpid.set(upid, rec);
    return upid;
  }

  status(rec: TaskRecord) {
    const base = { upid: rec.upid, node: rec.node, pid: rec.pid, pstart: rec.pstart, starttime: rec.starttime, type: rec.type, id: rec.id, user: rec.user };
    return rec.exitstatus === undefined ? { ...base, status: "running" } : { ...base, status: "stopped", exitstatus: rec.exitstatus, endtime: rec.endtime };
  }

  /** Settles every task (for stop()). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.byUpid.values()].map((t) => t.done));
  }
}
