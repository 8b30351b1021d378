/**
 * Replicas and autoscaling in the control plane: the decision rule on its own, then the
 * whole loop through the API as the agent drives it (stats reports posted as the agent
 * posts them, leases claimed and finished): the scale job, its events and audit rows,
 * the cool-down, and a replica that died being replaced.
 */
import { describe, expect, it } from "vitest";
import type { AutoscaleRow } from "../../src/services/autoscale";
import { averageLoad, decideReplicas, deployCount } from "../../src/services/replicas";
import { api, env, signUp, type TestUser } from "./helpers";

const cfg = (over: Partial<AutoscaleRow> = {}): AutoscaleRow => ({
  appId: "app_x",
  enabled: true,
  cpuThreshold: 80,
  minReplicas: 1,
  maxReplicas: 3,
  cooldownSeconds: 300,
  sleepAfterMinutes: 0,
  updatedAt: new Date(0),
  ...over,
});
/** `n` samples of an app with `replicas` replicas each at `pct` % of a 0.5-core limit (as the agent sums them). */
const samples = (n: number, replicas: number, pct: number) => Array.from({ length: n }, () => ({ cpuPercent: replicas * pct * 0.5, replicas }));
const now = new Date("2026-01-01T12:00:00Z");

describe("the scaling rule", () => {
  it("holds a disabled app at min_replicas, and moves an enabled one into its bounds at once", () => {
    expect(decideReplicas(cfg({ enabled: false, minReplicas: 2 }), 1, [], 0.5, null, now)).toMatchObject({ replicas: 2, reason: "config" });
    expect(decideReplicas(cfg({ enabled: false, minReplicas: 1 }), 3, samples(3, 3, 99), 0.5, null, now)).toMatchObject({ replicas: 1, reason: "config" });
    expect(decideReplicas(cfg({ enabled: false }), 1, samples(3, 1, 99), 0.5, null, now)).toBeNull();
    expect(decideReplicas(cfg({ maxReplicas: 2 }), 4, [], 0.5, null, now)).toMatchObject({ replicas: 2, reason: "config" });
    // The cool-down does not hold back the user's own bounds.
    expect(decideReplicas(cfg({ minReplicas: 3 }), 1, [], 0.5, new Date(now.getTime() - 1000), now)).toMatchObject({ replicas: 3 });
    expect(deployCount(cfg({ enabled: false, minReplicas: 2 }), 5)).toBe(2);
    expect(deployCount(cfg({ minReplicas: 2, maxReplicas: 4 }), 3)).toBe(3);
    expect(deployCount(cfg(), null)).toBe(1);
  });

  it("steps up above the threshold, one at a time, not past max, and only with enough samples", () => {
    expect(averageLoad(samples(3, 2, 90), 0.5)).toBeCloseTo(90);
    expect(decideReplicas(cfg(), 1, samples(3, 1, 90), 0.5, null, now)).toMatchObject({ replicas: 2, reason: "autoscale", cpu: 90 });
    expect(decideReplicas(cfg(), 2, samples(3, 2, 100), 0.5, null, now)).toMatchObject({ replicas: 3 });
    expect(decideReplicas(cfg(), 3, samples(3, 3, 100), 0.5, null, now)).toBeNull();
    expect(decideReplicas(cfg(), 1, samples(2, 1, 100), 0.5, null, now)).toBeNull();
    expect(decideReplicas(cfg(), 1, samples(3, 1, 80), 0.5, null, now)).toBeNull();
    // An app with no CPU limit counts against one core.
    expect(decideReplicas(cfg(), 1, [{ cpuPercent: 85, replicas: 1 }, { cpuPercent: 85, replicas: 1 }, { cpuPercent: 85, replicas: null }], 0, null, now)).toMatchObject({ replicas: 2 });
  });

  it("steps down only when one replica fewer would stay well under the threshold, and waits out the cool-down", () => {
    // 2 replicas at 35 %: on one they would be at 70 %, above 80 % × 0.8 = 64 %: stay.
    expect(decideReplicas(cfg(), 2, samples(3, 2, 35), 0.5, null, now)).toBeNull();
    // At 30 %: 60 % on one, under 64 %: step down.
    expect(decideReplicas(cfg(), 2, samples(3, 2, 30), 0.5, null, now)).toMatchObject({ replicas: 1, reason: "autoscale" });
    expect(decideReplicas(cfg({ minReplicas: 2 }), 2, samples(3, 2, 1), 0.5, null, now)).toBeNull();
    const justScaled = new Date(now.getTime() - 299_000);
    expect(decideReplicas(cfg(), 2, samples(3, 2, 1), 0.5, justScaled, now)).toBeNull();
    expect(decideReplicas(cfg(), 2, samples(3, 2, 99), 0.5, justScaled, now)).toBeNull();
    expect(decideReplicas(cfg(), 2, samples(3, 2, 1), 0.5, new Date(now.getTime() - 300_000), now)).toMatchObject({ replicas: 1 });
  });
});

async function onlineHost(owner: TestUser) {
  const created = await api(`/org/${owner.orgSlug}/hosts`, { token: owner.token, body: { name: "box", kind: "docker" } });
  expect(created.status, created.text).toBe(201);
  const joined = await api("/agent/join", { body: { join_token: created.body.join_token, agent_version: "test", facts: { cpus: 2, memory_bytes: 8192 * 1024 * 1024 } } });
  expect(joined.status, joined.text).toBe(201);
  return { id: created.body.host.id as string, credential: joined.body.credential as string };
}

/** Claims the lease of `jobId` as the agent does; answers it (with its payload). */
async function claim(credential: string, jobId: string) {
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    const res = await api("/agent/claim", { token: credential, body: { held: [], wait: 1 } });
    const lease = res.body.leases.find((l: any) => l.job_id === jobId);
    if (lease) return lease;
  }
  throw new Error(`no lease for ${jobId}`);
}

async function finish(credential: string, lease: any, result: Record<string, unknown>) {
  expect((await api(`/agent/leases/${lease.lease_id}/start`, { token: credential, method: "POST" })).status).toBe(200);
  const done = await api(`/agent/leases/${lease.lease_id}/finish`, { token: credential, body: { status: "succeeded", result } });
  expect(done.status, done.text).toBe(200);
}

const cid = (c: string) => c.repeat(64);

/** One report of the app's replicas as the agent's watcher sends it (stats summed over the running ones). */
function report(credential: string, appId: string, opts: { primary: string; ids: string[]; running: number; deployment?: string | null; cpu?: number }) {
  return api("/agent/apps/report", {
    token: credential,
    body: {
      apps: [
        {
          app_id: appId,
          container_id: opts.primary,
          state: opts.running > 0 ? "running" : "exited",
          replicas: { deployment_id: opts.deployment ?? null, ids: opts.ids, running: opts.running },
          ...(opts.cpu === undefined ? {} : { stats: { cpu_percent: opts.cpu, memory_mb: 10, memory_max_mb: 128, net_rx_bytes: 0, net_tx_bytes: 0 } }),
        },
      ],
    },
  });
}

async function appJobs(owner: TestUser, appId: string) {
  const res = await api(`/projects/${owner.projectId}/jobs?instance=${appId}`, { token: owner.token });
  expect(res.status, res.text).toBe(200);
  return res.body.jobs as Array<{ id: string; type: string; status: string }>;
}

const scaleJobs = async (owner: TestUser, appId: string) => (await appJobs(owner, appId)).filter((j) => j.type === "app.scale");
const events = async (owner: TestUser, appId: string) => (await api(`/apps/${appId}/events`, { token: owner.token })).body as Array<{ type: string; message: string; data: any }>;

describe("replicas through the API", () => {
  it("scale with min_replicas at once, then with the CPU within max and the cool-down, as jobs with events and system audit rows", async () => {
    const owner = await signUp();
    const host = await onlineHost(owner);
    const created = await api(`/projects/${owner.projectId}/apps`, { token: owner.token, body: { name: "Scaled", image: "127.0.0.1:5000/berth/hello:v1", cpu_limit: 0.5 } });
    expect(created.status, created.text).toBe(201);
    const appId = created.body.id as string;

    // Settings before the first deploy: nothing runs, so no job, and the deploy starts two.
    const early = await api(`/apps/${appId}/autoscale`, { token: owner.token, method: "PUT", body: { min_replicas: 2 } });
    expect(early.status, early.text).toBe(200);
    expect(early.body).toMatchObject({ min_replicas: 2, replicas: 2, replicas_running: null, scaling: false });
    expect(await scaleJobs(owner, appId)).toEqual([]);
    const dep = await api(`/apps/${appId}/deploy`, { token: owner.token, method: "POST" });
    expect(dep.status, dep.text).toBe(202);
    const deployLease = await claim(host.credential, dep.body.job.id);
    expect(deployLease.payload).toMatchObject({ type: "app.deploy", replicas: 2 });
    await finish(host.credential, deployLease, { container_id: cid("a"), host_port: null, replicas: 2 });
    expect((await api(`/apps/${appId}/autoscale`, { token: owner.token })).body).toMatchObject({ replicas: 2, replicas_running: 2, scaling: false });

    // Autoscale on with a low threshold: two samples are not enough, the third is.
    const on = await api(`/apps/${appId}/autoscale`, { token: owner.token, method: "PUT", body: { enabled: true, cpu_threshold: 50, max_replicas: 3, cooldown_seconds: 30 } });
    expect(on.status, on.text).toBe(200);
    const set = { primary: cid("a"), ids: [cid("a"), cid("b")], running: 2, deployment: dep.body.deployment.id };
    // Two replicas at 45 % of one core each: 90 % of their 0.5-core limit.
    for (let i = 0; i < 2; i++) expect((await report(host.credential, appId, { ...set, cpu: 90 })).status).toBe(200);
    expect(await scaleJobs(owner, appId)).toEqual([]);
    await report(host.credential, appId, { ...set, cpu: 90 });
    const up = await scaleJobs(owner, appId);
    expect(up).toHaveLength(1);
    expect((await api(`/apps/${appId}/autoscale`, { token: owner.token })).body).toMatchObject({ replicas: 3, scaling: true });
    // More hot samples while the job is under way ask for nothing more.
    await report(host.credential, appId, { ...set, cpu: 95 });
    expect(await scaleJobs(owner, appId)).toHaveLength(1);

    const upEvent = (await events(owner, appId)).find((e) => e.type === "scale");
    expect(upEvent?.message).toMatch(/^Scaling from 2 to 3 replicas: average CPU 90% of the limit over the last 3 samples is above 50%/);
    expect(upEvent?.data).toMatchObject({ job_id: up[0]!.id, from: 2, to: 3, reason: "autoscale", cpu_percent: 90 });
    const audit = await api(`/org/${owner.orgSlug}/audit?action=app.scale`, { token: owner.token });
    expect(audit.status, audit.text).toBe(200);
    expect(audit.body.events).toEqual(
      expect.arrayContaining([expect.objectContaining({ actor: { type: "system", id: "autoscale", userId: null }, target: { type: "app", id: appId } })]),
    );

    const scaleLease = await claim(host.credential, up[0]!.id);
    expect(scaleLease.payload).toMatchObject({ type: "app.scale", app_id: appId, replicas: 3, reason: "autoscale", internal_port: 8080 });
    await finish(host.credential, scaleLease, { container_id: cid("a"), replicas: 3, upstream: "172.17.0.2:8080" });
    expect((await api(`/apps/${appId}/autoscale`, { token: owner.token })).body).toMatchObject({ replicas: 3, replicas_running: 3, scaling: false });
    expect((await events(owner, appId))[0]).toMatchObject({ type: "scale", message: "Running 3 replicas" });

    // At max: hot samples change nothing. Cold ones wait out the cool-down, then step down one.
    const three = { ...set, ids: [cid("a"), cid("b"), cid("c")], running: 3 };
    for (let i = 0; i < 3; i++) await report(host.credential, appId, { ...three, cpu: 150 });
    expect(await scaleJobs(owner, appId)).toHaveLength(1);
    for (let i = 0; i < 3; i++) await report(host.credential, appId, { ...three, cpu: 3 });
    expect(await scaleJobs(owner, appId)).toHaveLength(1);
    await env.DB.prepare("UPDATE app_replicas SET auto_changed_at = auto_changed_at - 31000 WHERE app_id = ?").bind(appId).run();
    await report(host.credential, appId, { ...three, cpu: 3 });
    const down = await scaleJobs(owner, appId);
    expect(down).toHaveLength(2);
    const downLease = await claim(host.credential, down[0]!.id === up[0]!.id ? down[1]!.id : down[0]!.id);
    expect(downLease.payload).toMatchObject({ replicas: 2, reason: "autoscale" });
    await finish(host.credential, downLease, { container_id: cid("a"), replicas: 2 });

    // The stats history says how many replicas each sample sums over.
    const history = await api(`/apps/${appId}/stats/history?minutes=5`, { token: owner.token });
    expect(history.status).toBe(200);
    expect(history.body.map((s: any) => s.replicas)).toContain(3);

    // Lowering max below the count applies at once, as the user's change (no system audit row for it).
    const capped = await api(`/apps/${appId}/autoscale`, { token: owner.token, method: "PUT", body: { min_replicas: 1, max_replicas: 1 } });
    expect(capped.status, capped.text).toBe(200);
    expect(capped.body).toMatchObject({ replicas: 1, scaling: true });
    const all = await scaleJobs(owner, appId);
    expect(all).toHaveLength(3);
    const systemRows = (await api(`/org/${owner.orgSlug}/audit?action=app.scale`, { token: owner.token })).body;
    expect(JSON.stringify(systemRows).match(/"type":"system"/g)).toHaveLength(2);

    // Another org sees none of it.
    const stranger = await signUp();
    expect((await api(`/apps/${appId}/autoscale`, { token: stranger.token })).status).toBe(404);
    expect(JSON.stringify((await api(`/org/${stranger.orgSlug}/audit`, { token: stranger.token })).body)).not.toContain(appId);
  });

  it("replace a replica that died while others run, once, and follow the app's first replica", async () => {
    const owner = await signUp();
    const host = await onlineHost(owner);
    const created = await api(`/projects/${owner.projectId}/apps`, { token: owner.token, body: { name: "Mended", image: "127.0.0.1:5000/berth/hello:v1" } });
    const appId = created.body.id as string;
    await api(`/apps/${appId}/autoscale`, { token: owner.token, method: "PUT", body: { min_replicas: 2 } });
    const dep = await api(`/apps/${appId}/deploy`, { token: owner.token, method: "POST" });
    await finish(host.credential, await claim(host.credential, dep.body.job.id), { container_id: cid("a"), host_port: null, replicas: 2 });

    // Replica a is removed outside Berth: b stands for the app now, and one more is asked for.
    const gone = { primary: cid("b"), ids: [cid("b")], running: 1, deployment: dep.body.deployment.id };
    expect((await report(host.credential, appId, gone)).body).toMatchObject({ applied: 1, orphans: [] });
    expect((await api(`/apps/${appId}`, { token: owner.token })).body.app).toMatchObject({ container_id: cid("b"), status: "running" });
    await report(host.credential, appId, gone);
    const jobs = await scaleJobs(owner, appId);
    expect(jobs).toHaveLength(1);
    const lease = await claim(host.credential, jobs[0]!.id);
    expect(lease.payload).toMatchObject({ type: "app.scale", replicas: 2, reason: "replace" });
    const replaced = (await events(owner, appId)).find((e) => e.type === "scale");
    expect(replaced?.message).toBe("Replacing 1 replica that stopped: 1 of 2 running");
    const audit = (await api(`/org/${owner.orgSlug}/audit?action=app.scale`, { token: owner.token })).body;
    expect(JSON.stringify(audit)).toContain('"id":"replica-supervisor"');
    await finish(host.credential, lease, { container_id: cid("b"), replicas: 2 });
    expect((await api(`/apps/${appId}/autoscale`, { token: owner.token })).body).toMatchObject({ replicas: 2, replicas_running: 2, scaling: false });

    // A set from another deployment, or naming none of the app's containers, is not the app's.
    expect((await report(host.credential, appId, { primary: cid("e"), ids: [cid("e")], running: 1, deployment: "dep_other" })).body.applied).toBe(0);
    // Every replica down: the app reads stopped and nothing is replaced (someone stopped it on the host).
    expect((await report(host.credential, appId, { primary: cid("b"), ids: [cid("b"), cid("c")], running: 0, deployment: dep.body.deployment.id })).body.applied).toBe(1);
    expect((await api(`/apps/${appId}`, { token: owner.token })).body.app.status).toBe("stopped");
    expect(await scaleJobs(owner, appId)).toHaveLength(1);

    // A report from another org's host changes nothing here.
    const other = await signUp();
    const theirs = await onlineHost(other);
    expect((await report(theirs.credential, appId, gone)).body).toMatchObject({ applied: 0, orphans: [] });
    expect(await scaleJobs(owner, appId)).toHaveLength(1);
  });

  it("fall back to the running count when a CPU step fails, without taking it for dead replicas", async () => {
    const owner = await signUp();
    const host = await onlineHost(owner);
    const created = await api(`/projects/${owner.projectId}/apps`, { token: owner.token, body: { name: "Stuck", image: "127.0.0.1:5000/berth/hello:v1", cpu_limit: 0.5 } });
    const appId = created.body.id as string;
    const dep = await api(`/apps/${appId}/deploy`, { token: owner.token, method: "POST" });
    await finish(host.credential, await claim(host.credential, dep.body.job.id), { container_id: cid("a"), host_port: null, replicas: 1 });
    await api(`/apps/${appId}/autoscale`, { token: owner.token, method: "PUT", body: { enabled: true, cpu_threshold: 50, max_replicas: 2, cooldown_seconds: 30 } });
    const one = { primary: cid("a"), ids: [cid("a")], running: 1, deployment: dep.body.deployment.id };
    for (let i = 0; i < 3; i++) await report(host.credential, appId, { ...one, cpu: 45 });
    const [job] = await scaleJobs(owner, appId);
    expect(job).toBeDefined();
    const lease = await claim(host.credential, job!.id);
    expect((await api(`/agent/leases/${lease.lease_id}/start`, { token: host.credential, method: "POST" })).status).toBe(200);
    const failed = await api(`/agent/leases/${lease.lease_id}/finish`, { token: host.credential, body: { status: "failed", error: "A new replica never became healthy: nothing answered" } });
    expect(failed.status, failed.text).toBe(200);
    expect((await api(`/apps/${appId}/autoscale`, { token: owner.token })).body).toMatchObject({ replicas: 1, scaling: false });
    expect((await events(owner, appId))[0]).toMatchObject({ type: "error", message: expect.stringMatching(/^Scaling to 2 replicas failed: A new replica never became healthy/) });
    // Still hot, but within the cool-down, and one running of one is not a death: nothing more.
    for (let i = 0; i < 3; i++) await report(host.credential, appId, { ...one, cpu: 45 });
    expect(await scaleJobs(owner, appId)).toHaveLength(1);
  });
});
