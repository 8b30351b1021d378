/**
 * The job engine inside workerd: ProjectDO's state machine, log append and
 * deadlines; HostDO's leases, fencing and expiry; the queue consumer's routing
 * and dead-lettering. Real Durable Objects, a real Queue, real D1.
 */
import { createExecutionContext, createMessageBatch, env, getQueueResult, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import type { Env } from "../../src/env";
import type { NewJob } from "../../src/durable/project-do";
import type { JobsQueueMessage } from "../../src/jobs/queue";
import { until } from "./helpers";

const handler = worker as ExportedHandler<Env>;
let n = 0;
const unique = (p: string) => `${p}_${Date.now().toString(36)}${++n}${Math.random().toString(36).slice(2, 6)}`;

function project() {
  const scope = `project:${unique("prj")}`;
  return { scope, stub: env.PROJECT_DO.get(env.PROJECT_DO.idFromName(scope)) };
}
const host = (id = unique("hst")) => ({ id, stub: env.HOST_DO.get(env.HOST_DO.idFromName(id)) });

const exec = (hostId: string, extra: Partial<NewJob> = {}): NewJob => ({
  type: "host.exec",
  hostId,
  payload: { type: "host.exec", command: "echo hi", timeout_seconds: 30 },
  idempotent: false,
  deadlineSeconds: 120,
  ...extra,
});

async function eventsOf(stub: ReturnType<typeof project>["stub"], jobId: string) {
  return runInDurableObject(stub, async (_o, state) =>
    state.storage.sql.exec("SELECT type FROM events WHERE job_id = ? ORDER BY seq", jobId).toArray().map((r) => r.type as string),
  );
}


describe("ProjectDO job state machine", () => {
  it("moves queued → dispatched → running → succeeded once, checked against the attempt", async () => {
    const { scope, stub } = project();
    const job = await stub.createJob(scope, exec(unique("hst")));
    expect(job).toMatchObject({ status: "queued", attempts: 1, type: "host.exec", progress: null, started_at: null });
    expect(job.deadline_at - job.created_at).toBe(120_000);

    // The real Queue consumer may already have dispatched it; either way a second dispatch changes nothing.
    await stub.markDispatched(job.id, 1);
    expect(await stub.markDispatched(job.id, 1)).toBe(false);
    expect(await stub.startJob(job.id, 2)).toBe(false); // no such attempt
    expect(await stub.startJob(job.id, 1)).toBe(true);
    expect(await stub.reportProgress(job.id, 1, { step: 1, total: 2, percent: 50, message: "half way" })).toBe(true);
    expect((await stub.getJob(job.id))!.progress).toEqual({ step: 1, total: 2, percent: 50, message: "half way" });

    expect(await stub.finishJob(job.id, 1, { status: "succeeded", result: { exit_code: 0 } })).toBe(true);
    expect(await stub.finishJob(job.id, 1, { status: "failed", error: "late" })).toBe(false);
    expect(await stub.failJob(job.id, "too late")).toBe(false);
    const done = (await stub.getJob(job.id))!;
    expect(done).toMatchObject({ status: "succeeded", error: null, result: { exit_code: 0 } });
    expect(done.progress).toMatchObject({ percent: 100 });
    expect(done.finished_at).toBeGreaterThanOrEqual(done.started_at!);
    expect(await eventsOf(stub, job.id)).toEqual(["job.queued", "job.dispatched", "job.running", "job.progress", "job.succeeded"]);
  });

  it("hands a job out again after a lease expiry, and gives up after its last attempt", async () => {
    const { scope, stub } = project();
    const job = await stub.createJob(scope, exec(unique("hst"), { maxAttempts: 2 }));
    await stub.startJob(job.id, 1);
    expect(await stub.leaseExpired(job.id, 1, "agent vanished")).toEqual({ redeliver: true, attempt: 2 });
    // The first attempt can no longer move the job.
    expect(await stub.reportProgress(job.id, 1, { step: 1, total: 1, percent: 100, message: "x" })).toBe(false);
    expect(await stub.finishJob(job.id, 1, { status: "succeeded" })).toBe(false);
    expect(await stub.leaseExpired(job.id, 1)).toEqual({ redeliver: false, attempt: 1 }); // stale report of the old attempt
    await stub.startJob(job.id, 2);
    expect(await stub.leaseExpired(job.id, 2, "agent vanished again")).toEqual({ redeliver: false, attempt: 2 });
    const lost = (await stub.getJob(job.id))!;
    expect(lost.status).toBe("lost");
    expect(lost.error).toContain("agent vanished again");
  });

  it("does not give up on a job over hand-outs that no agent started (an agent crash-looping before it got to the work)", async () => {
    const { scope, stub } = project();
    const job = await stub.createJob(scope, exec(unique("hst"), { maxAttempts: 2 }));
    expect(await stub.leaseExpired(job.id, 1, "the agent reconnected without it")).toEqual({ redeliver: true, attempt: 2 });
    expect(await stub.leaseExpired(job.id, 2, "the agent reconnected without it")).toEqual({ redeliver: true, attempt: 3 });
    // Started and lost once: one of its two is used, whatever came before.
    expect(await stub.startJob(job.id, 3)).toBe(true);
    expect(await stub.leaseExpired(job.id, 3, "the agent reconnected without it")).toEqual({ redeliver: true, attempt: 4 });
    expect(await stub.startJob(job.id, 4)).toBe(true);
    expect(await stub.finishJob(job.id, 4, { status: "succeeded" })).toBe(true);
    expect((await stub.getJob(job.id))!).toMatchObject({ status: "succeeded", attempts: 4 });
  });

  it("fails a job past its deadline with a reason, whether it was waiting or running", async () => {
    const { scope, stub } = project();
    const waiting = await stub.createJob(scope, exec(unique("hst")));
    const running = await stub.createJob(scope, exec(unique("hst")));
    await stub.startJob(running.id, 1);
    await runInDurableObject(stub, async (_o, state) => {
      state.storage.sql.exec("UPDATE jobs SET deadline_at = ?", Date.now() - 1);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const a = (await stub.getJob(waiting.id))!;
    const b = (await stub.getJob(running.id))!;
    expect(a.status).toBe("failed");
    expect(a.error).toMatch(/Deadline passed before any host started the job/);
    expect(b.status).toBe("failed");
    expect(b.error).toMatch(/Deadline passed while the job was running/);
  });

  it("cancels an open job once and tells waiters", async () => {
    const { scope, stub } = project();
    const job = await stub.createJob(scope, exec(unique("hst")));
    const waiting = stub.waitForJob(job.id, 10_000);
    const started = Date.now();
    const cancelled = await stub.cancelJob(job.id);
    expect(cancelled!.status).toBe("cancelled");
    expect((await waiting)!.status).toBe("cancelled");
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await stub.cancelJob(job.id))!.status).toBe("cancelled");
    expect((await stub.waitForJob(job.id, 10_000))!.status).toBe("cancelled");
  });

  it("returns an unfinished job when the wait times out", async () => {
    const { scope, stub } = project();
    const job = await stub.createJob(scope, exec(unique("hst")));
    const started = Date.now();
    const after = await stub.waitForJob(job.id, 300);
    expect(after!.status).not.toMatch(/succeeded|failed|cancelled|lost/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it("lists newest first, filtered by subject, at most the limit", async () => {
    const { scope, stub } = project();
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push((await stub.createJob(scope, exec(unique("hst"), { subject: i % 2 ? "ins_a" : "ins_b" }))).id);
    const all = await stub.listJobs({});
    expect(all.map((j) => j.id)).toEqual([...ids].reverse());
    expect((await stub.listJobs({ subject: "ins_a" })).map((j) => j.id)).toEqual([ids[3], ids[1]]);
    expect(await stub.listJobs({ limit: 2 })).toHaveLength(2);
  });
});

describe("ProjectDO log append", () => {
  async function runningJob() {
    const { scope, stub } = project();
    const job = await stub.createJob(scope, exec(unique("hst")));
    await stub.startJob(job.id, 1);
    return { stub, id: job.id };
  }

  it("ignores duplicates, answers a gap with the expected offset, and keeps order", async () => {
    const { stub, id } = await runningJob();
    let res = await stub.appendLogs(id, 1, [{ seq: 0, stream: "stdout", offset: 0, data: "one\n" }]);
    expect(res).toEqual({ ok: true, expected: { stdout: 4, stderr: 0 }, gap: false });
    // A resend of what is held changes nothing.
    res = await stub.appendLogs(id, 1, [{ seq: 0, stream: "stdout", offset: 0, data: "one\n" }]);
    expect(res.expected.stdout).toBe(4);
    // A chunk past the held end is a gap: not stored, and the answer says where to resend from.
    res = await stub.appendLogs(id, 1, [{ seq: 2, stream: "stdout", offset: 8, data: "three\n" }]);
    expect(res).toMatchObject({ ok: true, gap: true, expected: { stdout: 4 } });
    // The resend from there, overlapping what is held, lands once.
    res = await stub.appendLogs(id, 1, [
      { seq: 1, stream: "stdout", offset: 2, data: "e\ntwo\n" },
      { seq: 2, stream: "stdout", offset: 8, data: "three\n" },
      { seq: 3, stream: "stderr", offset: 0, data: "warn\n" },
    ]);
    expect(res).toEqual({ ok: true, expected: { stdout: 14, stderr: 5 }, gap: false });
    const logs = await stub.getLogs(id);
    expect(logs.filter((l) => l.stream === "stdout").map((l) => l.data).join("")).toBe("one\ntwo\nthree\n");
    expect(logs.filter((l) => l.stream === "stderr").map((l) => l.data).join("")).toBe("warn\n");
  });

  it("counts offsets in bytes, so multi-byte text is neither lost nor doubled", async () => {
    const { stub, id } = await runningJob();
    const first = "héllo ✓ "; // 12 bytes
    const res = await stub.appendLogs(id, 1, [{ seq: 0, stream: "stdout", offset: 0, data: first }]);
    expect(res.expected.stdout).toBe(new TextEncoder().encode(first).byteLength);
    await stub.appendLogs(id, 1, [
      { seq: 0, stream: "stdout", offset: 0, data: first },
      { seq: 1, stream: "stdout", offset: res.expected.stdout, data: "wörld" },
    ]);
    expect((await stub.getLogs(id)).map((l) => l.data).join("")).toBe("héllo ✓ wörld");
  });

  it("refuses output from an attempt that no longer owns the job", async () => {
    const { stub, id } = await runningJob();
    await stub.leaseExpired(id, 1);
    const res = await stub.appendLogs(id, 1, [{ seq: 0, stream: "stdout", offset: 0, data: "ghost\n" }]);
    expect(res.ok).toBe(false);
    expect(await stub.getLogs(id)).toEqual([]);
  });
});

describe("HostDO leases", () => {
  /** A job handed to a fresh host through the real Queue. */
  async function leasedJob(extra: Partial<NewJob> = {}) {
    const h = host();
    const { scope, stub } = project();
    const job = await stub.createJob(scope, exec(h.id, extra));
    const leases = await until("a lease", () => h.stub.claim([], 2_000), (l) => l !== null && l.length > 0);
    return { h, p: stub, job, lease: leases![0]! };
  }

  it("leases queued work once and fences reports by lease", async () => {
    const { h, p, job, lease } = await leasedJob();
    expect(lease).toMatchObject({ job_id: job.id, attempt: 1, reconcile: false, payload: { type: "host.exec", command: "echo hi" } });
    expect(lease.lease_id).toMatch(/^lse_/);
    expect((await p.getJob(job.id))!.status).toBe("dispatched");
    // Nothing else to hand out.
    expect(await h.stub.claim([{ job_id: job.id, lease_id: lease.lease_id }], 0)).toEqual([]);

    expect(await h.stub.start("lse_unknown")).toMatchObject({ ok: false });
    expect(await h.stub.start(lease.lease_id)).toEqual({ ok: true });
    expect((await p.getJob(job.id))!.status).toBe("running");
    expect(await h.stub.renew(lease.lease_id, { step: 1, total: 3, percent: 33, message: "pulling" })).toMatchObject({ ok: true });
    expect((await p.getJob(job.id))!.progress?.message).toBe("pulling");
    const logs = await h.stub.appendLogs(lease.lease_id, [{ seq: 0, stream: "stdout", offset: 0, data: "hi\n" }]);
    expect(logs).toMatchObject({ ok: true, expected: { stdout: 3, stderr: 0 } });
    expect(await h.stub.finish(lease.lease_id, { status: "succeeded", result: { exit_code: 0 } })).toEqual({ ok: true });
    expect(await h.stub.finish(lease.lease_id, { status: "succeeded" })).toMatchObject({ ok: false });
    expect((await p.getJob(job.id))!.status).toBe("succeeded");
  });

  it("gives up leases an agent does not name when it reconnects, and hands the work out again for reconciliation", async () => {
    const { h, p, job, lease } = await leasedJob();
    await h.stub.start(lease.lease_id);
    const again = await h.stub.claim([], 0);
    expect(again).toHaveLength(1);
    expect(again![0]).toMatchObject({ job_id: job.id, attempt: 2, reconcile: true });
    expect(again![0]!.lease_id).not.toBe(lease.lease_id);
    expect(await h.stub.renew(lease.lease_id)).toMatchObject({ ok: false });
    expect(await h.stub.finish(lease.lease_id, { status: "succeeded" })).toMatchObject({ ok: false });
    expect(await h.stub.start(again![0]!.lease_id)).toEqual({ ok: true });
    expect(await h.stub.finish(again![0]!.lease_id, { status: "succeeded" })).toEqual({ ok: true });
    const done = (await p.getJob(job.id))!;
    expect(done).toMatchObject({ status: "succeeded", attempts: 2 });
  });

  it("keeps the leases an agent still holds when it reconnects", async () => {
    const { h, lease } = await leasedJob();
    expect(await h.stub.claim([{ job_id: lease.job_id, lease_id: lease.lease_id }], 0)).toEqual([]);
    expect(await h.stub.start(lease.lease_id)).toEqual({ ok: true });
  });

  it("re-sends idempotent work plainly after an expiry", async () => {
    const { h, lease } = await leasedJob({ idempotent: true });
    const again = await h.stub.claim([], 0);
    expect(again![0]).toMatchObject({ job_id: lease.job_id, attempt: 2, reconcile: false });
  });

  it("expires a lease nobody renews, by alarm", async () => {
    const { h, p, job, lease } = await leasedJob();
    await h.stub.start(lease.lease_id);
    await runInDurableObject(h.stub, async (_o, state) => {
      state.storage.sql.exec("UPDATE mailbox SET lease_expires_at = ?", Date.now() - 1);
    });
    expect(await runDurableObjectAlarm(h.stub)).toBe(true);
    expect((await p.getJob(job.id))!.attempts).toBe(2);
    expect(await h.stub.renew(lease.lease_id)).toMatchObject({ ok: false });
    expect((await h.stub.claim([], 0))![0]).toMatchObject({ job_id: job.id, attempt: 2, reconcile: true });
  });

  it("drops the lease of a cancelled job", async () => {
    const { h, p, job, lease } = await leasedJob();
    await h.stub.start(lease.lease_id);
    await p.cancelJob(job.id);
    expect(await h.stub.renew(lease.lease_id)).toMatchObject({ ok: false });
    expect(await h.stub.status()).toMatchObject({ pending: 0, leased: 0 });
  });

  it("fails every job of a deleted host and takes no more", async () => {
    const { h, p, job } = await leasedJob();
    await h.stub.revoke();
    const failed = (await p.getJob(job.id))!;
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatch(/host was deleted/);
    expect(await h.stub.claim([], 0)).toBeNull();
    const msg: JobsQueueMessage = { job_id: "job_x", scope: "project:x", host_id: h.id, attempt: 1, idempotent: true, deadline_at: Date.now() + 1000, payload: { type: "host.exec", command: "true", timeout_seconds: 1 } };
    expect(await h.stub.enqueue(msg)).toBe("host_gone");
  });

  it("hands out the jobs of one app one at a time, in the order they were asked for, also after the agent comes back", async () => {
    const h = host();
    const { scope, stub } = project();
    const deploy = (appId: string, tag: string): NewJob => ({
      type: "app.deploy",
      hostId: h.id,
      subject: appId,
      idempotent: false,
      deadlineSeconds: 120,
      payload: {
        type: "app.deploy", app_id: appId, slug: appId, hostname: `${appId}-app.localhost`, deployment_id: unique("dep"), image: `registry.test/web:${tag}`,
        internal_port: 8080, command: null, cpu_limit: 0.5, memory_limit_mb: 64, has_env: false, has_registry_auth: false, health_timeout_seconds: 60, volumes: [], upload: null, git: null, replicas: 1,
      },
    });
    const pause = () => new Promise((r) => setTimeout(r, 5));
    const first = await stub.createJob(scope, deploy("app_a", "v1"));
    await pause();
    const second = await stub.createJob(scope, deploy("app_a", "v2"));
    await pause();
    const other = await stub.createJob(scope, deploy("app_b", "v1"));
    await until("all three in the mailbox", () => h.stub.status(), (s) => s.pending === 3);

    // The second deploy of app_a waits for the first; app_b's goes out beside it.
    const leases = (await h.stub.claim([], 0))!;
    expect(leases.map((l) => l.job_id)).toEqual([first.id, other.id]);
    await h.stub.start(leases[0]!.lease_id);
    // The agent dies mid-deploy and comes back holding nothing: the first deploy goes out again, still ahead of the second.
    const again = (await h.stub.claim([], 0))!;
    expect(again.map((l) => [l.job_id, l.attempt])).toEqual([[first.id, 2], [other.id, 2]]);
    await h.stub.start(again[0]!.lease_id);
    expect(await h.stub.finish(again[0]!.lease_id, { status: "succeeded" })).toEqual({ ok: true });
    // Only now is the second one handed out.
    const next = (await h.stub.claim([{ job_id: other.id, lease_id: again[1]!.lease_id }], 0))!;
    expect(next.map((l) => l.job_id)).toEqual([second.id]);
  });

  it("pushes leases to a connected agent socket after its hello", async () => {
    const h = host();
    const res = await h.stub.fetch("http://do/agent", { headers: { upgrade: "websocket", "x-berth-host-id": h.id } });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    ws.accept();
    const messages: any[] = [];
    ws.addEventListener("message", (e) => {
      messages.push(JSON.parse(e.data as string));
    });
    ws.send(JSON.stringify({ type: "hello", agent_version: "test", held: [] }));
    await until("hello", async () => messages, (m) => m.some((x) => x.type === "hello"));
    expect(messages[0]).toMatchObject({ type: "hello", host_id: h.id, heartbeat_interval: 15, lease_ttl: 30 });
    const { scope, stub } = project();
    const job = await stub.createJob(scope, exec(h.id));
    const pushed = await until("a pushed lease", async () => messages, (m) => m.some((x) => x.type === "lease"));
    expect(pushed.find((x) => x.type === "lease").lease).toMatchObject({ job_id: job.id, attempt: 1 });
    expect(await h.stub.status()).toMatchObject({ connected: true, leased: 1 });
    await stub.cancelJob(job.id);
    await until("a cancel", async () => messages, (m) => m.some((x) => x.type === "cancel"));
    ws.close(1000, "done");
  });
});

describe("jobs queue consumer", () => {
  const message = (body: JobsQueueMessage, attempts = 1) => ({ id: unique("msg"), timestamp: new Date(), attempts, body });

  it("routes each message into its host's mailbox and marks the job dispatched", async () => {
    const h = host();
    const { scope, stub } = project();
    // Made directly so only this batch delivers it.
    const job = await runInDurableObject(stub, async (instance) => {
      const created = await instance.createJob(scope, exec(h.id));
      return created;
    });
    const body: JobsQueueMessage = { job_id: job.id, scope, host_id: h.id, attempt: 1, idempotent: false, deadline_at: job.deadline_at, payload: { type: "host.exec", command: "echo hi", timeout_seconds: 30 } };
    const batch = createMessageBatch<JobsQueueMessage>("berth-jobs", [message(body), message(body)]);
    const ctx = createExecutionContext();
    await handler.queue!(batch, env, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toHaveLength(2);
    expect(result.retryMessages).toEqual([]);
    expect((await stub.getJob(job.id))!.status).toBe("dispatched");
    // The same message twice made one lease.
    const leases = await h.stub.claim([], 0);
    expect(leases).toHaveLength(1);
  });

  it("fails the job at once when its host was deleted", async () => {
    const h = host();
    await h.stub.revoke();
    const { scope, stub } = project();
    const job = await stub.createJob(scope, exec(h.id));
    const body: JobsQueueMessage = { job_id: job.id, scope, host_id: h.id, attempt: 1, idempotent: false, deadline_at: job.deadline_at, payload: { type: "host.exec", command: "x", timeout_seconds: 1 } };
    const batch = createMessageBatch<JobsQueueMessage>("berth-jobs", [message(body)]);
    const ctx = createExecutionContext();
    await handler.queue!(batch, env, ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toHaveLength(1);
    const failed = (await stub.getJob(job.id))!;
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatch(/deleted/);
  });

  it("asks the Queue to retry a hand-off that fails, with backoff", async () => {
    const h = host();
    const broken = { job_id: "job_broken", scope: "project:x", host_id: h.id, attempt: 1, idempotent: false, deadline_at: Date.now() } as unknown as JobsQueueMessage; // no payload
    const batch = createMessageBatch<JobsQueueMessage>("berth-jobs", [message(broken, 3)]);
    const ctx = createExecutionContext();
    await handler.queue!(batch, env, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages.map((m) => m.msgId)).toEqual([batch.messages[0]!.id]);
  });

  it("fails dead-lettered jobs with a reason a user can read", async () => {
    const h = host();
    const { scope, stub } = project();
    const job = await stub.createJob(scope, exec(h.id));
    const body: JobsQueueMessage = { job_id: job.id, scope, host_id: h.id, attempt: 1, idempotent: false, deadline_at: job.deadline_at, payload: { type: "host.exec", command: "x", timeout_seconds: 1 } };
    const batch = createMessageBatch<JobsQueueMessage>("berth-jobs-dlq", [message(body, 6)]);
    const ctx = createExecutionContext();
    await handler.queue!(batch, env, ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toHaveLength(1);
    const failed = (await stub.getJob(job.id))!;
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatch(/queue gave up/);
  });
});
