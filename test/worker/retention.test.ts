/**
 * A project's job history stays bounded: old output moves to R2 (and is still readable),
 * old and excess finished jobs are forgotten, old events dropped; open jobs are never
 * touched. Real Durable Objects and a real (local) R2 bucket.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { NewJob } from "../../src/durable/project-do";

const DAY = 86_400_000;
let n = 0;
const unique = (p: string) => `${p}_${Date.now().toString(36)}${++n}${Math.random().toString(36).slice(2, 6)}`;

function project() {
  const scope = `project:${unique("prj")}`;
  return { scope, stub: env.PROJECT_DO.get(env.PROJECT_DO.idFromName(scope)) };
}
type Stub = ReturnType<typeof project>["stub"];

const exec: NewJob = {
  type: "host.exec",
  hostId: "hst_retention",
  payload: { type: "host.exec", command: "echo hi", timeout_seconds: 30 },
  idempotent: false,
  deadlineSeconds: 600,
};

/** A job that ran and wrote `text` to stdout; finished unless `open`. */
async function ranJob(scope: string, stub: Stub, text: string, open = false) {
  const job = await stub.createJob(scope, exec);
  await stub.markDispatched(job.id, 1);
  expect(await stub.startJob(job.id, 1)).toBe(true);
  const res = await stub.appendLogs(job.id, 1, [{ seq: 0, stream: "stdout", offset: 0, data: text }]);
  expect(res.ok).toBe(true);
  if (!open) expect(await stub.finishJob(job.id, 1, { status: "succeeded", result: { exit_code: 0 } })).toBe(true);
  return job.id;
}

/** Moves a finished job `days` into the past, and makes a pruning run due, then runs the alarm. */
async function age(stub: Stub, jobIds: string[], days: number) {
  await runInDurableObject(stub, async (_o, state) => {
    for (const id of jobIds) state.storage.sql.exec("UPDATE jobs SET finished_at = ?, created_at = ? WHERE id = ?", Date.now() - days * DAY, Date.now() - days * DAY, id);
  });
}

async function prune(stub: Stub) {
  await runInDurableObject(stub, async (_o, state) => {
    state.storage.sql.exec("INSERT INTO retention (key, value) VALUES ('next_run_at', 0) ON CONFLICT DO UPDATE SET value = 0");
  });
  expect(await runDurableObjectAlarm(stub)).toBe(true);
}

const heldLogRows = (stub: Stub, jobId: string) =>
  runInDurableObject(stub, async (_o, state) => state.storage.sql.exec("SELECT COUNT(*) AS n FROM logs WHERE job_id = ?", jobId).one().n as number);

describe("job history retention", () => {
  it("moves a finished job's output to R2 after a week, and still answers it; recent and running output stays", async () => {
    const { scope, stub } = project();
    const old = await ranJob(scope, stub, "old output line\n");
    const recent = await ranJob(scope, stub, "recent output\n");
    const running = await ranJob(scope, stub, "still running\n", true);
    const before = await stub.getLogs(old);
    await age(stub, [old], 8);
    await age(stub, [running], 30); // an open job is never pruned, however old

    await prune(stub);

    expect(await heldLogRows(stub, old)).toBe(0);
    const key = `job-logs/${encodeURIComponent(scope)}/${old}.jsonl`;
    const archived = await env.ARCHIVE.get(key);
    expect(archived, "the output is in R2").not.toBeNull();
    expect(await archived!.text()).toContain("old output line");
    expect(await stub.getLogs(old)).toEqual(before);

    expect(await heldLogRows(stub, recent)).toBe(1);
    expect(await heldLogRows(stub, running)).toBe(1);
    expect(await stub.getJob(running)).toMatchObject({ status: "running" });
    // The running job still takes output.
    const more = await stub.appendLogs(running, 1, [{ seq: 1, stream: "stdout", offset: 14, data: "more\n" }]);
    expect(more).toMatchObject({ ok: true, gap: false });
  });

  it("forgets finished jobs after 90 days, keeping their archived output; never an open one", async () => {
    const { scope, stub } = project();
    const ancient = await ranJob(scope, stub, "ancient\n");
    const running = await ranJob(scope, stub, "long runner\n", true);
    await age(stub, [ancient, running], 91);
    await prune(stub);
    expect(await stub.getJob(ancient)).toBeNull();
    expect(await env.ARCHIVE.get(`job-logs/${encodeURIComponent(scope)}/${ancient}.jsonl`)).not.toBeNull();
    expect(await stub.getJob(running)).toMatchObject({ status: "running" });
  });

  it("keeps at most JOB_RETENTION_MAX finished jobs (10 in the tests), dropping the oldest; open jobs do not count", async () => {
    const { scope, stub } = project();
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push(await ranJob(scope, stub, `job ${i}\n`));
    const running = await ranJob(scope, stub, "running\n", true);
    // Job 0 finished longest ago.
    for (const [i, id] of ids.entries()) await age(stub, [id], 2 - i * 0.01);
    await prune(stub);
    const kept = (await stub.listJobs({ limit: 200 })).map((j) => j.id);
    expect(kept.sort()).toEqual([...ids.slice(2), running].sort());
  });

  it("moves the oldest output to R2 when the object holds more than JOB_LOG_MAX_MB (1 in the tests)", async () => {
    const { scope, stub } = project();
    const big = "x".repeat(200 * 1024);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await ranJob(scope, stub, big));
    for (const [i, id] of ids.entries()) await age(stub, [id], 1 - i * 0.01);
    await prune(stub);
    // 1.2 MiB held: the oldest job's 200 KiB go to R2, which brings the object under 1 MiB.
    expect(await heldLogRows(stub, ids[0]!)).toBe(0);
    for (const id of ids.slice(1)) expect(await heldLogRows(stub, id)).toBe(1);
    expect((await stub.getLogs(ids[0]!)).map((l) => l.data).join("")).toBe(big);
  });

  it("drops events after a week, and a subscriber resuming from before then gets what is left", async () => {
    const { scope, stub } = project();
    const id = await ranJob(scope, stub, "evented\n");
    await runInDurableObject(stub, async (_o, state) => {
      state.storage.sql.exec("UPDATE events SET at = ? WHERE job_id = ?", Date.now() - 8 * DAY, id);
    });
    await ranJob(scope, stub, "fresh\n");
    await prune(stub);
    const events = await runInDurableObject(stub, async (_o, state) =>
      state.storage.sql.exec("SELECT job_id FROM events").toArray().map((e) => e.job_id as string),
    );
    expect(events).not.toContain(id);
    expect(events.length).toBeGreaterThan(0);
  });
});
