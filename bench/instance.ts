/**
 * bench:instance — what Berth adds to the Proxmox node's own time (issue 9): an instance
 * created through Suble's API until it is `running`, and each power action until its job
 * succeeded, beside what the node itself spent on the same operation, measured in the
 * same run from the Proxmox VE simulator's own records.
 *
 * Starts the Proxmox VE simulator (test/proxmox-sim, in this process; its VMs are
 * containers of 127.0.0.1:5000/berth/hello:v1 on the local dockerd, from a template named
 * `berth-debian-12`), the control plane (`wrangler dev`, as `npm run dev` does) and one
 * agent for the node, started with its --proxmox-* flags as a user does. Then, one
 * instance at a time, --instances times (after --warmup unmeasured rounds):
 *
 *   create    POST /projects/{p}/instances (plan bxs-1, image img_debian12), then the job's
 *             long-poll wait (GET …/jobs/{job}/wait?timeout=20) until it succeeded, then
 *             GET …/instances/{id} (again every 10 ms until it says `running`):
 *             Berth's time is request → the wait answered, when the very next read of
 *             the instance says `running` (the job's rows are written before its waiters
 *             wake, ProjectDO.ended); should that read not say it, request → the read that
 *             does. "instance read" columns give request → that read, for comparison
 *   reboot, reset, stop, start, shutdown   (in that order: start needs `stopped`, the
 *             others `running`) POST …/instances/{id}/actions {type}, then the job's wait:
 *             Berth's time is request → the wait answers `succeeded`
 *   delete    (not measured) DELETE …/instances/{id}, waited for
 *
 * Proxmox's own time for one operation is the length of the union of these intervals,
 * each clipped to the operation's window (request → the job's finished_at):
 *
 *   - every task the job caused: [startedMs, endedMs] of the simulator's tasks whose id
 *     is the VM's vmid (or the template's, for its qmclone) started in the window;
 *   - every synchronous call the job made: [request read, answer sent] of each request
 *     the simulator served in the window, except the agent's heartbeat (the burst of
 *     /version, node status, storage and VM list it sends every 15 s) — the instance sweep
 *     runs once an hour here, so it is never in a window;
 *   - the guest's boot, when the job waited for its guest agent: from the boot the start
 *     task performed until qemu-ga answers (`agentBootMs` later).
 *
 * A union, not a sum: a task-status poll made while the task runs is not counted twice.
 * Everything else in the window is Berth's: the control plane's hand-off, the agent's
 * start-up of the job, its waits between polls, the HTTPS round trips between calls (on
 * kept-alive connections; a call not safe to repeat opens its own), its report, and
 * the instance's update. The plain sum of the task durations (the issue's first
 * definition) is printed beside it.
 *
 * Goal (issue 9): Berth adds under 150 ms at p50 over Proxmox's own time, per operation.
 *
 * The machine's load average is printed with the figures: on a small shared host the
 * simulator's docker calls, workerd and the agent compete for the same cores.
 *
 * Needs the local registry at 127.0.0.1:5000 with berth/hello:v1 (test/host/setup.sh).
 * Touches only loopback and its own containers; removes everything it made, also on
 * error or ^C.
 *
 *   npm run bench:instance [-- --instances 10 --warmup 1 --clone-ms 1500 --agent-boot-ms 500 --task-ms 200 --verbose]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type ProxmoxSim, type RequestRecord, startProxmoxSim } from "../test/proxmox-sim/server.ts";
import { type AgentProcess, startAgent } from "../test/node/support/agent.ts";
import { type Client, signedUp } from "../test/node/support/client.ts";
import { type DevServer, startDevServer } from "../test/node/support/dev-server.ts";
import { pct } from "./stats.ts";
import { cleanupOnExit } from "./cleanup.ts";

const { values } = parseArgs({
  options: {
    instances: { type: "string", default: "10" },
    warmup: { type: "string", default: "1" },
    "clone-ms": { type: "string", default: "1500" },
    "agent-boot-ms": { type: "string", default: "500" },
    "task-ms": { type: "string", default: "200" },
    verbose: { type: "boolean", default: false },
  },
});
const INSTANCES = Number(values.instances);
const WARMUP = Number(values.warmup);
const TIMINGS = { cloneMs: Number(values["clone-ms"]), agentBootMs: Number(values["agent-boot-ms"]), taskMs: Number(values["task-ms"]) };
if (!(Number.isInteger(INSTANCES) && INSTANCES >= 1 && INSTANCES <= 50)) throw new Error("--instances is a whole number from 1 to 50");
if (!(Number.isInteger(WARMUP) && WARMUP >= 0 && WARMUP <= 5)) throw new Error("--warmup is a whole number from 0 to 5");
for (const [k, v] of Object.entries(TIMINGS)) if (!(Number.isFinite(v) && v >= 0 && v <= 60_000)) throw new Error(`${k}: 0 to 60000 ms`);

const REGISTRY = "127.0.0.1:5000";
const IMAGE = `${REGISTRY}/berth/hello:v1`;
const TEMPLATE_VMID = 9003;
const PLAN = "bxs-1";
const OS_IMAGE = "img_debian12";
const GOAL_MS = 150;
/** How often the instance is read once its job ended, until it shows the new status. */
const INSTANCE_POLL_MS = 10;
/** A heartbeat's VM list is the one within this much of its /version call. */
const HEARTBEAT_BURST_MS = 250;

const OPS = ["create", "reboot", "reset", "stop", "start", "shutdown"] as const;
type Op = (typeof OPS)[number];
const AFTER: Record<Op, "running" | "stopped"> = { create: "running", reboot: "running", reset: "running", stop: "stopped", start: "running", shutdown: "stopped" };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : "n/a");
const median = (xs: number[]) => {
  const f = xs.filter(Number.isFinite);
  return f.length ? pct(f, 50) : NaN;
};
const load = () => loadavg().map((l) => l.toFixed(2)).join(" ");

// ------------------------------------------------------------------ intervals

type Interval = [number, number];

/** Length of the union of the intervals, each clipped to [lo, hi]. */
function unionLength(intervals: Interval[], lo: number, hi: number): number {
  const xs = intervals
    .map(([a, b]): Interval => [Math.max(a, lo), Math.min(b, hi)])
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  let total = 0;
  let curA = NaN;
  let curB = NaN;
  for (const [a, b] of xs) {
    if (!(a <= curB)) {
      if (Number.isFinite(curA)) total += curB - curA;
      curA = a;
      curB = b;
    } else curB = Math.max(curB, b);
  }
  if (Number.isFinite(curA)) total += curB - curA;
  return total;
}

// ------------------------------------------------------------------ one measured operation

interface Sample {
  op: Op;
  /** Berth's time: request → instance running (create) / → the wait answered succeeded (power). */
  total: number;
  /** Proxmox's own time: the union described at the top. */
  own: number;
  /** Of `own`, the node answering calls outside the job's tasks and the guest's boot. */
  callsAlone: number;
  /** The plain sum of the durations of the job's tasks. */
  taskSum: number;
  tasks: string;
  requests: number;
  // Where the rest goes (ms; NaN when a timestamp is missing).
  toAccepted: number;
  toCreated: number;
  createdToDispatched: number;
  dispatchedToStarted: number;
  toStarted: number;
  startedToFirstCall: number;
  nodeSpan: number;
  nodeGaps: number;
  taskPollLag: number;
  guestWaitLag: number;
  lastCallToFinished: number;
  finishedToWaitAnswered: number;
  finishedToInstanceShown: number;
  /** request → the wait answered / → the instance shows the status, both kept for every op. */
  toWaitAnswered: number;
  toInstanceShown: number;
  /** The first read of the instance after the wait already showed its new status. */
  shownOnFirstRead: boolean;
}

/** What the simulator did for one job, in [from, to]: its tasks, its calls, the guest boot it waited for. */
function nodeTime(sim: ProxmoxSim, vmid: number, from: number, to: number) {
  const tasks = [...sim.tasks.byUpid.values()].filter(
    (t) => t.startedMs >= from && t.startedMs <= to && (t.id === String(vmid) || (t.type === "qmclone" && t.id === String(TEMPLATE_VMID))),
  );
  const inWindow = sim.requests.filter((r) => r.startedMs >= from && r.startedMs <= to && r.endedMs !== undefined);
  const versions = inWindow.filter((r) => r.path === "/version").map((r) => r.startedMs);
  const heartbeat = (r: RequestRecord) =>
    r.path === "/version" ||
    r.path === `/nodes/${sim.node}/status` ||
    r.path.startsWith(`/nodes/${sim.node}/storage`) ||
    (r.path === `/nodes/${sim.node}/qemu` && versions.some((v) => Math.abs(v - r.startedMs) <= HEARTBEAT_BURST_MS));
  const calls = inWindow.filter((r) => !heartbeat(r));
  const intervals: Interval[] = [
    ...tasks.map((t): Interval => [t.startedMs, t.endedMs ?? to]),
    ...calls.map((r): Interval => [r.startedMs, r.endedMs as number]),
  ];
  // The guest's boot, when the job waited for its agent: the last boot before the first guest-agent call that answered.
  const agentCalls = calls.filter((r) => r.path.startsWith(`/nodes/${sim.node}/qemu/${vmid}/agent/`));
  const firstAnswered = agentCalls.find((r) => r.status === 200);
  const boot = firstAnswered
    ? sim.guestBoots.filter((b) => b.vmid === vmid && b.readyMs - TIMINGS.agentBootMs >= from && b.readyMs - TIMINGS.agentBootMs <= firstAnswered.startedMs).at(-1)
    : undefined;
  if (boot) intervals.push([boot.readyMs - TIMINGS.agentBootMs, boot.readyMs]);
  /** The part of [a, b] in which the node had nothing of this job to do. */
  const idle = (a: number, b: number) => Math.max(0, b - a) - unionLength(intervals, a, b);
  // Idle time after each task ended, until the agent's next status call for it (the follower's polling).
  let taskPollLag = 0;
  for (const t of tasks) {
    if (t.endedMs === undefined) continue;
    const seen = calls.find((r) => r.path.endsWith("/status") && decodeURIComponent(r.path).includes(t.upid) && r.startedMs >= (t.endedMs as number));
    if (seen) taskPollLag += idle(t.endedMs, seen.startedMs);
  }
  // Idle time after qemu-ga came up, until the agent's first ping that it answered.
  const guestWaitLag = boot && firstAnswered ? idle(boot.readyMs, firstAnswered.startedMs) : 0;
  const first = Math.min(...intervals.map((i) => i[0]));
  const last = Math.max(...intervals.map((i) => i[1]));
  const own = unionLength(intervals, from, to);
  // What of it the node spent answering calls while none of the job's tasks ran nor the guest booted.
  const callsAlone = own - unionLength(intervals.slice(0, tasks.length).concat(boot ? [[boot.readyMs - TIMINGS.agentBootMs, boot.readyMs]] : []), from, to);
  return {
    own,
    callsAlone,
    taskSum: tasks.reduce((a, t) => a + ((t.endedMs ?? to) - t.startedMs), 0),
    tasks: tasks.map((t) => `${t.type} ${((t.endedMs ?? to) - t.startedMs).toFixed(0)}`).join(", "),
    requests: calls.length,
    first,
    last,
    span: last - first,
    gaps: last - first - unionLength(intervals, first, last),
    taskPollLag,
    guestWaitLag,
  };
}

// ------------------------------------------------------------------ the run

let sim: ProxmoxSim | undefined;
let server: DevServer | undefined;
let agent: AgentProcess | undefined;
let api: Client | undefined;
let projectId = "";
let stateDir: string | undefined;
/** Instances made and not yet deleted. */
const live = new Set<string>();

async function waitJob(jobId: string, seconds = 120) {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const res = await api!.call("GET", `/projects/${projectId}/jobs/${jobId}/wait?timeout=20`);
    if (res.status !== 200) throw new Error(`waiting for job ${jobId}: ${res.status} ${JSON.stringify(res.body)}`);
    if (res.body.done) return { job: res.body.job, at: Date.now() };
    if (Date.now() > end) throw new Error(`job ${jobId} not done after ${seconds} s: ${JSON.stringify(res.body.job)}`);
  }
}

async function instanceShows(id: string, status: string, seconds = 30): Promise<{ at: number; instance: any; firstRead: boolean }> {
  const started = Date.now();
  const end = started + seconds * 1000;
  let reads = 0;
  for (;;) {
    const res = await api!.call("GET", `/projects/${projectId}/instances/${id}`);
    if (res.status !== 200) throw new Error(`GET instance ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    if (res.body.instance.status === status) return { at: Date.now(), instance: res.body.instance, firstRead: reads === 0 };
    reads++;
    if (Date.now() > end) throw new Error(`instance ${id} not ${status} after ${seconds} s: ${JSON.stringify(res.body.instance)}`);
    await sleep(INSTANCE_POLL_MS);
  }
}

async function deleteInstance(id: string) {
  const res = await api!.call("DELETE", `/projects/${projectId}/instances/${id}`);
  if (res.status !== 202) throw new Error(`DELETE instance ${id}: ${res.status} ${JSON.stringify(res.body)}`);
  if (res.body.job) {
    const { job } = await waitJob(res.body.job.uid);
    if (job.status !== "succeeded") throw new Error(`deleting instance ${id}: job ${job.status}: ${job.error}`);
  }
  live.delete(id);
}

async function cleanup() {
  for (const id of [...live]) {
    try {
      await deleteInstance(id);
    } catch (err) {
      console.error(`deleting instance ${id}: ${(err as Error).message} (the simulator removes its VMs' containers anyway)`);
    }
  }
  await agent?.kill("SIGTERM");
  await server?.stop();
  await sim?.stop().catch((err: Error) => console.error(`stopping the simulator: ${err.message}`));
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
}

const exit = cleanupOnExit(cleanup);

/** One operation, measured: the request, its job, the instance after it, and the node's records of the window. */
async function measure(op: Op, instanceId: string | null, vmidKnown: number | null): Promise<{ sample: Sample; instanceId: string; vmid: number }> {
  const t0 = Date.now();
  const res =
    op === "create"
      ? await api!.call("POST", `/projects/${projectId}/instances`, { name: `bench-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`, plan: PLAN, source: { image: OS_IMAGE } })
      : await api!.call("POST", `/projects/${projectId}/instances/${instanceId}/actions`, { type: op });
  const tAccepted = Date.now();
  if (res.status !== 202) throw new Error(`${op}: ${res.status} ${JSON.stringify(res.body)}`);
  const id: string = op === "create" ? res.body.instance.uid : (instanceId as string);
  if (op === "create") live.add(id);
  const { job, at: tWait } = await waitJob(res.body.job.uid);
  if (job.status !== "succeeded") throw new Error(`${op} of ${id}: job ${job.status}: ${job.error}\n${agent!.output().slice(-3000)}`);
  const shown = await instanceShows(id, AFTER[op]);
  const vmid: number = vmidKnown ?? shown.instance.vmid;
  const at = (s: string | null) => (s ? Date.parse(s) : NaN);
  const created = at(job.created_at);
  const dispatched = at(job.dispatched_at);
  const started = at(job.started_at);
  const finished = at(job.finished_at);
  // The window closes when the control plane recorded the end (a little later, should workerd's clock lag).
  const node = nodeTime(sim!, vmid, t0, Math.max(finished, tWait));
  // A create counts to the wait's answer when the next read already shows the instance running.
  const total = op === "create" && !shown.firstRead ? shown.at - t0 : tWait - t0;
  return {
    instanceId: id,
    vmid,
    sample: {
      op,
      total,
      own: node.own,
      callsAlone: node.callsAlone,
      taskSum: node.taskSum,
      tasks: node.tasks,
      requests: node.requests,
      toAccepted: tAccepted - t0,
      toCreated: created - t0,
      createdToDispatched: dispatched - created,
      dispatchedToStarted: started - dispatched,
      toStarted: started - t0,
      startedToFirstCall: node.first - started,
      nodeSpan: node.span,
      nodeGaps: node.gaps,
      taskPollLag: node.taskPollLag,
      guestWaitLag: node.guestWaitLag,
      lastCallToFinished: finished - node.last,
      finishedToWaitAnswered: tWait - finished,
      finishedToInstanceShown: shown.at - finished,
      toWaitAnswered: tWait - t0,
      toInstanceShown: shown.at - t0,
      shownOnFirstRead: shown.firstRead,
    },
  };
}

/** One instance's round: create, every power action once, delete. */
async function round(): Promise<Sample[]> {
  const out: Sample[] = [];
  const c = await measure("create", null, null);
  out.push(c.sample);
  for (const op of OPS.slice(1)) {
    if (exit.interrupted) throw new Error("interrupted");
    out.push((await measure(op, c.instanceId, c.vmid)).sample);
  }
  await deleteInstance(c.instanceId);
  return out;
}

const startedAt = Date.now();
try {
  const registry = await fetch(`http://${REGISTRY}/v2/berth/hello/manifests/v1`, {
    headers: { accept: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json" },
  }).then((r) => r.ok, () => false);
  if (!registry) throw new Error(`the registry at ${REGISTRY} does not answer with ${IMAGE}: run test/host/setup.sh first (.ci/run does)`);

  sim = await startProxmoxSim({ port: 0, templates: [{ vmid: TEMPLATE_VMID, name: "berth-debian-12", image: IMAGE, disk: "8G" }], timings: TIMINGS });
  server = await startDevServer();
  const signed = await signedUp(server.url);
  api = signed.api;
  projectId = (await api.call("GET", "/projects")).body[0].id;
  const host = await api.call("POST", `/org/${signed.slug}/hosts`, { name: "pve-bench", kind: "proxmox" });
  if (host.status !== 201) throw new Error(`enrolling the node: ${host.status} ${JSON.stringify(host.body)}`);
  const hostId: string = host.body.host?.id ?? host.body.id;
  stateDir = mkdtempSync(join(tmpdir(), "berth-bench-instance-"));
  agent = startAgent(
    [
      "--url", server.url, "--state-dir", stateDir, "--join-token", host.body.join_token,
      "--docker-socket", join(stateDir, "no-docker.sock"),
      "--proxmox-url", sim.url, "--proxmox-token-id", sim.tokenId, "--proxmox-fingerprint", sim.fingerprint, "--proxmox-node", sim.node,
    ],
    // The sweep once an hour: its VM list would otherwise land in the jobs' windows.
    { BERTH_PROXMOX_TOKEN_SECRET: sim.tokenSecret, BERTH_INSTANCE_SWEEP_SECONDS: "3600" },
  );
  await agent.waitFor(/connected transport=websocket/, 60_000);
  {
    const end = Date.now() + 60_000;
    for (;;) {
      const h = (await api.call("GET", `/org/${signed.slug}/hosts/${hostId}`)).body;
      const row = h.host ?? h;
      if (row.status === "online" && row.facts?.proxmox?.templates?.includes("berth-debian-12")) break;
      if (Date.now() > end) throw new Error(`the node never reported its template: ${JSON.stringify(row)}\n${agent.output().slice(-3000)}`);
      await sleep(250);
    }
  }

  console.log(`bench:instance — ${INSTANCES} instance(s), one at a time (after ${WARMUP} warm-up round(s)): create → running, then reboot, reset, stop, start, shutdown, each → job succeeded`);
  console.log(`simulator timings: clone ${TIMINGS.cloneMs} ms, guest agent up ${TIMINGS.agentBootMs} ms after boot, other tasks ${TIMINGS.taskMs} ms; plan ${PLAN}, template berth-debian-12 = ${IMAGE}`);
  console.log(`load average at start: ${load()} (${availableParallelism()} cores)\n`);

  for (let i = 0; i < WARMUP; i++) await round();
  const samples: Sample[] = [];
  for (let i = 0; i < INSTANCES; i++) {
    if (exit.interrupted) throw new Error("interrupted");
    const got = await round();
    samples.push(...got);
    console.log(`  instance ${String(i + 1).padStart(2)}/${INSTANCES}  ${got.map((s) => `${s.op} ${ms(s.total)} (own ${ms(s.own)})`).join("  ")}   load ${load()}`);
    if (values.verbose) for (const s of got) console.log(`      ${s.op}: tasks [${s.tasks}], ${s.requests} calls; ${Object.entries(s).filter(([, v]) => typeof v === "number").map(([k, v]) => `${k}=${(v as number).toFixed(0)}`).join(" ")}`);
  }

  // The floor every step above stands on: one authenticated request through the local control plane.
  const floor: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t = performance.now();
    const res = await api!.call("GET", `/projects/${projectId}`);
    if (res.status !== 200) throw new Error(`GET project: ${res.status}`);
    floor.push(performance.now() - t);
  }

  const of = (op: Op) => samples.filter((s) => s.op === op);
  const head = `${"".padEnd(10)}${"n".padStart(4)}${"berth p50".padStart(11)}${"p95".padStart(9)}${"tasks p50".padStart(11)}${"own p50".padStart(10)}${"overhead p50".padStart(14)}${"p95".padStart(9)}${"  goal <150 ms p50"}`;
  console.log(`\nBerth = request → the job's wait answered succeeded (for a create, with the next read of the instance showing it running); own = Proxmox's own time (union of tasks, sync calls, guest boot waited for);`);
  console.log(`tasks = plain sum of the job's task durations; overhead = Berth − own, per sample. p95 is nearest-rank (with 10 samples: the largest).\n`);
  console.log(head);
  const verdicts: string[] = [];
  for (const op of OPS) {
    const xs = of(op);
    const over = xs.map((s) => s.total - s.own);
    const o50 = pct(over, 50);
    const met = o50 < GOAL_MS;
    verdicts.push(`${op} ${met ? "met" : "NOT met"}`);
    console.log(
      `${op.padEnd(10)}${String(xs.length).padStart(4)}${ms(pct(xs.map((s) => s.total), 50)).padStart(11)}${ms(pct(xs.map((s) => s.total), 95)).padStart(9)}${ms(pct(xs.map((s) => s.taskSum), 50)).padStart(11)}${ms(pct(xs.map((s) => s.own), 50)).padStart(10)}${ms(o50).padStart(14)}${ms(pct(over, 95)).padStart(9)}  ${met ? "met" : "NOT met"}`,
    );
  }
  console.log(`\ngoal (Berth adds under ${GOAL_MS} ms p50 over Proxmox's own time): ${verdicts.join(", ")}`);
  console.log(`(overhead over the plain task sum instead, p50: ${OPS.map((op) => `${op} ${ms(pct(of(op).map((s) => s.total - s.taskSum), 50))}`).join(", ")})`);

  console.log(`\nwhere Berth's overhead goes (median of each step; steps need not add up to the median total):`);
  const cols = `${"".padEnd(66)}${OPS.map((o) => o.padStart(9)).join("")}`;
  console.log(cols);
  const step = (label: string, f: (s: Sample) => number) => console.log(`  ${label.padEnd(64)}${OPS.map((op) => ms(median(of(op).map(f))).padStart(9)).join("")}`);
  step("request → 202 Accepted", (s) => s.toAccepted);
  step("request → job created (created_at)", (s) => s.toCreated);
  step("job created → dispatched to the host (dispatched_at)", (s) => s.createdToDispatched);
  step("dispatched → started on the agent (started_at)", (s) => s.dispatchedToStarted);
  step("= request → job started on the agent", (s) => s.toStarted);
  step("job started → the agent's first call to the node", (s) => s.startedToFirstCall);
  step("first call → last answer or task end on the node (node span)", (s) => s.nodeSpan);
  step("  of it, Proxmox's own time", (s) => s.own);
  step("    of which answering calls outside tasks and the guest's boot", (s) => s.callsAlone);
  step("  of it, gaps where the node had nothing of this job to do", (s) => s.nodeGaps);
  step("    of those, after a task ended, until the agent's next poll of it", (s) => s.taskPollLag);
  step("    of those, after qemu-ga came up, until the agent's next ping", (s) => s.guestWaitLag);
  step("    the rest: between calls (round trips, the agent's own work)", (s) => s.nodeGaps - s.taskPollLag - s.guestWaitLag);
  step("last answer from the node → job finished (finished_at)", (s) => s.lastCallToFinished);
  step("job finished → the wait answered", (s) => s.finishedToWaitAnswered);
  step("job finished → the instance shows its new status", (s) => s.finishedToInstanceShown);
  step("(request → the wait answered)", (s) => s.toWaitAnswered);
  step("(request → the instance shows its new status)", (s) => s.toInstanceShown);
  const creates = of("create");
  console.log(
    `create: the first read after the wait showed the instance running in ${creates.filter((s) => s.shownOnFirstRead).length} of ${creates.length} samples; overhead p50 measured to that read instead of the wait: ${ms(pct(creates.map((s) => s.toInstanceShown - s.own), 50))}`,
  );
  console.log(`one authenticated API request from this process (GET /projects/{id}, 30 in a row): p50 ${ms(pct(floor, 50))}, p95 ${ms(pct(floor, 95))}; the client's wait and the instance read each stand on it`);
  console.log(`calls to the node per operation (median): ${OPS.map((op) => `${op} ${median(of(op).map((s) => s.requests))}`).join(", ")}`);
  console.log(`tasks of the last round: ${OPS.map((op) => `${op}: ${of(op).at(-1)?.tasks}`).join("; ")}`);
  if (sim.violations.length || sim.unsupported.length) console.log(`the simulator refused ${sim.violations.length} and did not model ${sim.unsupported.length} request(s): ${JSON.stringify([...sim.violations, ...sim.unsupported].slice(0, 5))}`);
  console.log(`\nload average at the end: ${load()}`);
} catch (err) {
  process.exitCode = 1;
  if (!exit.interrupted) console.error(`\nbench:instance failed: ${(err as Error).stack ?? err}`);
  if (agent && !exit.interrupted) console.error(`--- agent output (tail) ---\n${agent.output().slice(-4000)}`);
} finally {
  await exit.cleanup();
  console.log(`(whole run ${((Date.now() - startedAt) / 1000).toFixed(0)} s)`);
}
