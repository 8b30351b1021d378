/**
 * The job runner against a stand-in control plane that can refuse a lease on
 * demand (the real one refuses only once a lease expired or the job was
 * cancelled, which takes a TTL to set up and cannot be timed to a step of the
 * work). The work is a task whose middle waits for the test.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Lease } from "../../src/protocol/agent.ts";
import type { LeaseOp } from "../../src/protocol/lease-answers.ts";
import { JobJournal } from "../src/jobs/journal.ts";
import type { LeaseReporter, Task } from "../src/jobs/registry.ts";
import { JobRunner } from "../src/jobs/runner.ts";
import type { Logger } from "../src/log.ts";
import { StateDir } from "../src/state.ts";
import { execTask } from "../src/tasks/exec.ts";
import { ApiFailure } from "../src/transport/http.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Holds the output it is sent per lease, and refuses the leases in `stale` as the control plane would. */
class StandIn implements LeaseReporter {
  readonly reports: { op: LeaseOp; leaseId: string; body: unknown }[] = [];
  readonly stale = new Set<string>();
  readonly output = new Map<string, string>();

  async report<T>(op: LeaseOp, leaseId: string, body: unknown = {}): Promise<T> {
    this.reports.push({ op, leaseId, body });
    if (this.stale.has(leaseId)) throw new ApiFailure("stale", 409, "lease_stale", "This lease is no longer valid; drop the work");
    if (op !== "logs") return {} as T;
    let held = this.output.get(leaseId) ?? "";
    for (const c of (body as { chunks: { stream: string; offset: number; data: string }[] }).chunks) {
      if (c.stream === "stdout" && c.offset === Buffer.byteLength(held)) held += c.data;
    }
    this.output.set(leaseId, held);
    return { expected: { stdout: Buffer.byteLength(held), stderr: 0 }, gap: false } as T;
  }

  async call<T>(): Promise<T> {
    throw new Error("not used here");
  }

  did(op: LeaseOp, leaseId: string) {
    return this.reports.some((r) => r.op === op && r.leaseId === leaseId);
  }
}

/** A task that writes "one", waits for `release()`, writes "two" and succeeds; counts its runs and cancels. */
function gatedTask() {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const seen = { runs: 0, cancels: 0, aborted: false };
  const task: Task = {
    async run(ctx) {
      seen.runs++;
      ctx.output("stdout", "one");
      await Promise.race([gate, new Promise((r) => ctx.signal.addEventListener("abort", r))]);
      seen.aborted = ctx.signal.aborted;
      ctx.output("stdout", "two");
      return { status: "succeeded", result: { n: 1 } };
    },
    cancel() {
      seen.cancels++;
    },
  };
  return { task, seen, release };
}

function lease(leaseId: string, attempt = 1): Lease {
  return { job_id: "job_runner1", attempt, lease_id: leaseId, lease_ttl: 1, reconcile: attempt > 1, payload: { type: "host.exec", command: "true", timeout_seconds: 60 } };
}

async function until(what: string, probe: () => boolean, timeoutMs = 5_000) {
  const end = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function setUp() {
  const root = mkdtempSync(join(tmpdir(), "berth-runner-"));
  dirs.push(root);
  const state = new StateDir(root);
  const api = new StandIn();
  const { task, seen, release } = gatedTask();
  let ended = false;
  const start = (l: Lease) => {
    const run = new JobRunner({ state, api, log: quiet, exclusive: (_key, fn) => fn() }, l, task);
    run.onEnd = () => (ended = true);
    return run.start();
  };
  return { state, api, seen, release, start, ended: () => ended };
}

describe("job runner", () => {
  it("holds the work when its lease goes stale and finishes it once under the lease the job comes back with", async () => {
    const t = setUp();
    const run = t.start(lease("lse_a"));
    await until("the first output", () => t.api.output.get("lse_a") === "one\n");
    t.api.stale.add("lse_a");
    await until("the lease to be refused", () => run.held === null);

    run.adopt(lease("lse_b", 2));
    expect(run.held).toEqual({ job_id: "job_runner1", lease_id: "lse_b" });
    t.release();
    await until("the job to end", t.ended);

    expect(t.seen).toEqual({ runs: 1, cancels: 0, aborted: false });
    // The output is whole under the new lease, and the outcome went out once, under it.
    expect(t.api.output.get("lse_b")).toBe("one\ntwo\n");
    expect(t.api.reports.filter((r) => r.op === "finish")).toEqual([{ op: "finish", leaseId: "lse_b", body: { status: "succeeded", error: null, result: { n: 1 } } }]);
    expect(JobJournal.leftovers(t.state)).toEqual([]);
  });

  it("stops the work, and what it left outside the agent, when a stale lease is not handed back within two TTLs", async () => {
    const t = setUp();
    const run = t.start(lease("lse_c"));
    await until("the first output", () => t.api.output.get("lse_c") === "one\n");
    t.api.stale.add("lse_c");
    const refusedAt = Date.now();
    await until("the work to be stopped", t.ended, 5_000);

    expect(Date.now() - refusedAt).toBeGreaterThanOrEqual(1_900);
    expect(t.seen).toMatchObject({ runs: 1, cancels: 1, aborted: true });
    expect(run.held).toBeNull();
    expect(t.api.did("finish", "lse_c")).toBe(false);
    // Not resumed by the next start of the agent either.
    expect(JobJournal.leftovers(t.state)).toEqual([]);
  });

  it("renews at a third of the TTL while the work runs, and stops at once when cancelled", async () => {
    const t = setUp();
    const run = t.start(lease("lse_d"));
    await until("the first output", () => t.api.output.get("lse_d") === "one\n");
    await new Promise((r) => setTimeout(r, 1_100));
    const renewals = t.api.reports.filter((r) => r.op === "renew").length;
    expect(renewals).toBeGreaterThanOrEqual(2);
    expect(renewals).toBeLessThanOrEqual(4);

    run.cancel();
    expect(t.ended()).toBe(true);
    await until("the task to see the cancel", () => t.seen.aborted);
    expect(t.seen.cancels).toBe(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(t.api.did("finish", "lse_d")).toBe(false);
  });

  it("does not begin the work before the control plane accepts the start", async () => {
    const t = setUp();
    t.api.stale.add("lse_e");
    t.start(lease("lse_e"));
    await until("the work to be given up", t.ended, 5_000);
    expect(t.seen.runs).toBe(0);
    // What an earlier process may have left (a command) is stopped all the same.
    expect(t.seen.cancels).toBe(1);
  });

  it("runs a command once when the agent was killed just as it spawned it, and a restarted agent resumes the job", async () => {
    const root = mkdtempSync(join(tmpdir(), "berth-runner-"));
    dirs.push(root);
    const state = new StateDir(root);
    const marks = join(root, "marks");
    const command = `echo start >> ${marks}; echo out; sleep 0.3; echo end >> ${marks}`;
    const l: Lease = { ...lease("lse_k"), payload: { type: "host.exec", command, timeout_seconds: 60 } };
    new JobJournal(state, l.job_id).saveLease(l);

    // An agent process that starts the command and is SIGKILLed the moment spawn returns: the shell
    // runs, and the agent writes nothing after it (the chaos bench lands kills here after a restart).
    const agentDies = join(root, "dies.ts");
    writeFileSync(
      agentDies,
      `import cp from "node:child_process";
import { syncBuiltinESMExports } from "node:module";
const spawn = cp.spawn;
cp.spawn = (...args) => {
  const child = spawn(...args);
  process.kill(process.pid, "SIGKILL");
  return child;
};
syncBuiltinESMExports();
const { ExecProcess } = await import(${JSON.stringify(new URL("../src/drivers/exec.ts", import.meta.url).pathname)});
new ExecProcess(process.argv[2]).start(process.argv[3]);
`,
    );
    const died = spawnSync(process.execPath, [agentDies, new JobJournal(state, l.job_id).dir, command], { encoding: "utf8" });
    expect(died.signal, died.stderr).toBe("SIGKILL");
    await until("the command to begin", () => existsSync(marks));

    // The next agent process picks the job up from the journal, under the same lease.
    const [resumed] = JobJournal.leftovers(state);
    expect(resumed?.lease_id).toBe("lse_k");
    const api = new StandIn();
    let ended = false;
    const run = new JobRunner({ state, api, log: quiet, exclusive: (_key, fn) => fn() }, resumed!, execTask);
    run.onEnd = () => (ended = true);
    run.start();
    await until("the job to end", () => ended);
    // Let a second run, if one was started, get as far as its mark.
    await new Promise((r) => setTimeout(r, 200));

    expect(readFileSync(marks, "utf8")).toBe("start\nend\n");
    expect(api.output.get("lse_k")).toBe("out\n");
    expect(api.reports.filter((r) => r.op === "finish")).toEqual([{ op: "finish", leaseId: "lse_k", body: { status: "succeeded", error: null, result: { exit_code: 0 } } }]);
  });
});
