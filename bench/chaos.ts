/**
 * chaos — the agent SIGKILLed at random moments during a stream of jobs and deploys
 * (issue 8): are jobs lost, run twice or stuck, and how long does the host take to recover?
 *
 * Starts the control plane (`wrangler dev`, as `npm run dev` does, with the agent timings
 * users get: 15 s heartbeats, 30 s leases), one agent on this Docker host routing apps
 * through Caddy on a free loopback port, and --apps apps running 127.0.0.1:5000/berth/hello.
 * Draws one job stream from a seeded RNG: --jobs jobs submitted open-loop (exponential
 * gaps, --rate a second on average), each one of
 *
 *   command  POST /org/{slug}/hosts/{id}/exec: appends "start <nonce>" to a marks file
 *            on the host, prints "out <nonce>", sleeps 0.2–2 s, appends "end <nonce>"
 *   deploy   POST /deploy/{slug} of one of the apps, to its other tag (hello:v1 ↔ v2)
 *
 * and runs that stream twice against the same control plane and agent: first untouched
 * (the baseline), then while a controller SIGKILLs the agent --kills times, at moments
 * drawn uniformly over the stream's submission window, restarting it at once each time
 * (as a supervisor would). A kill drawn while the last restart has not connected yet waits
 * for it and then a random 0–1.5 s more, so every kill hits an agent that was up (and the
 * kills can run past the last submission; the report says how many). Every figure is measured:
 *
 *   lost       accepted (202) but never reached a terminal state by the end of the run
 *   run twice  a job's work done more than once, counted on the host: "start <nonce>"
 *              lines in the marks file (commands), containers dockerd created with the
 *              job's `berth.job` label, from dockerd's event stream (deploys)
 *   stuck      not terminal STUCK_SECONDS after the last kill (or after its submission,
 *              if later), by the control plane's own finished_at
 *   recovery   agent restart → the next job progress the control plane recorded after it
 *              (a job succeeding, by its finished_at; a deploy started or reporting a step,
 *              from the project's event feed); a restart killed again before any progress
 *              is counted, not timed
 *
 * plus jobs that ended without success, succeeded without their work on the host, whose
 * output is not exactly what the command printed once, apps not left on their last
 * requested deploy, and the chaos stream beside the baseline (created → finished p50/p99,
 * throughput) with ratios.
 *
 * Needs test/host/setup.sh (dockerd, the registry and Caddy's admin API). Touches only
 * loopback and its own containers, and removes everything it made, also on error or ^C.
 *
 *   npm run chaos [-- --kills 50 --seed 1234 --jobs 150 --rate 2 --apps 3 --verbose]
 *
 * --verbose prints each kill and the slowest jobs, and keeps every agent's and wrangler's
 * output in the system's temporary directory (the path is printed).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DockerEngine } from "../agent/src/drivers/docker.ts";
import { type AgentProcess, startAgent } from "../test/node/support/agent.ts";
import { type Client, client, signedUp } from "../test/node/support/client.ts";
import { type DevServer, freePort, startDevServer } from "../test/node/support/dev-server.ts";
import { watchDockerEvents } from "./docker-events.ts";
import { pct } from "./stats.ts";
import { cleanupOnExit } from "./cleanup.ts";

const { values } = parseArgs({
  options: {
    kills: { type: "string", default: "50" },
    seed: { type: "string" },
    jobs: { type: "string", default: "150" },
    rate: { type: "string", default: "2" },
    apps: { type: "string", default: "3" },
    "deploy-share": { type: "string", default: "0.25" },
    verbose: { type: "boolean", default: false },
  },
});
const KILLS = Number(values.kills);
const SEED = values.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(values.seed);
const JOBS = Number(values.jobs);
const RATE = Number(values.rate);
const APPS = Number(values.apps);
const DEPLOY_SHARE = Number(values["deploy-share"]);
if (!(Number.isInteger(KILLS) && KILLS >= 0 && KILLS <= 500)) throw new Error("--kills is a whole number from 0 to 500");
if (!(Number.isInteger(SEED) && SEED >= 0 && SEED < 2 ** 32)) throw new Error("--seed is a whole number from 0 to 2^32-1");
if (!(Number.isInteger(JOBS) && JOBS >= 1 && JOBS <= 2000)) throw new Error("--jobs is a whole number from 1 to 2000");
if (!(RATE > 0 && RATE <= 20)) throw new Error("--rate is jobs a second, above 0 and at most 20");
if (!(Number.isInteger(APPS) && APPS >= 1 && APPS <= 10)) throw new Error("--apps is a whole number from 1 to 10");
if (!(DEPLOY_SHARE >= 0 && DEPLOY_SHARE <= 1)) throw new Error("--deploy-share is from 0 to 1");

const REGISTRY = "127.0.0.1:5000";
const IMAGES = [`${REGISTRY}/berth/hello:v1`, `${REGISTRY}/berth/hello:v2`] as const;
const CADDY_ADMIN = "http://127.0.0.1:2019";
/** A job not terminal this long after the last kill (or its submission, if later) is stuck: a lease's 30 s and then some. */
const STUCK_SECONDS = 45;
/** After the stuck deadline, how much longer the run waits for stragglers before calling them lost. */
const LOST_GRACE_SECONDS = 15;
const COMMAND_TIMEOUT_SECONDS = 60;
const RUN_ID = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmtMs = (x: number) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : "n/a");

/** A small seeded generator (a 32-bit counter through a mixing function): the same seed draws the same stream and kills. */
function seeded(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 2 ** 32;
  };
}

// ------------------------------------------------------------------ the plan: one stream, one kill schedule

interface Planned {
  /** ms after the phase starts. */
  at: number;
  kind: "command" | "deploy";
  /** Deploys: which app, and which tag it goes to. */
  app: number;
  image: string;
  /** Commands: how long they sleep, in seconds. */
  sleep: number;
}

const random = seeded(SEED);
const plan: Planned[] = [];
{
  let at = 0;
  const tag = Array.from({ length: APPS }, () => 0); // every app starts on v1 (its first deploy)
  for (let i = 0; i < JOBS; i++) {
    if (i > 0) at += (-Math.log(1 - random()) / RATE) * 1000;
    const deploy = random() < DEPLOY_SHARE;
    const app = Math.floor(random() * APPS);
    const sleepSeconds = 0.2 + Math.round(random() * 18) / 10;
    let image: string = IMAGES[0];
    if (deploy) {
      tag[app] = 1 - tag[app]!;
      image = IMAGES[tag[app]!]!;
    }
    plan.push({ at, kind: deploy ? "deploy" : "command", app, image, sleep: sleepSeconds });
  }
}
const windowMs = plan.at(-1)!.at;
const killPlan = Array.from({ length: KILLS }, () => random() * windowMs).sort((a, b) => a - b);
/** For a kill that had to wait for the last restart to connect: how long after that it comes (0–1.5 s). */
const killJitter = Array.from({ length: KILLS }, () => random() * 1_500);
// A deploy back to where the previous phase left an app must still be a change: each phase ends with every app on the tag
// the plan's last deploy of it names, and the next phase's first deploy of it toggles from v1; so before each phase every
// app is put back on v1 (not measured).

// ------------------------------------------------------------------ one phase's records

interface JobRec {
  n: number;
  planned: Planned;
  nonce: string;
  submittedAt: number;
  /** Set on 202. */
  id: string | null;
  refused: string | null;
  /** The control plane's job as the last wait returned it. */
  job: any;
  /** Client time when the wait said done. */
  doneAt: number | null;
  vanished: boolean;
}

interface Restart {
  killedAt: number;
  restartedAt: number;
  /** How much later than planned the kill came, waiting for the previous restart to connect. */
  delayedMs: number;
  /** What the bench knew to be open when it killed: accepted, not yet seen to end. */
  openCommands: number;
  openDeploys: number;
  agent: AgentProcess;
}

interface FeedEvent {
  job_id: string;
  type: string;
  /** The control plane's time (Unix ms). */
  at: number;
  reason?: string;
}

interface Phase {
  name: string;
  jobs: JobRec[];
  restarts: Restart[];
  startedAt: number;
  lastKillAt: number | null;
  endedAt: number;
}

// ------------------------------------------------------------------ the bench

const engine = new DockerEngine();
const dirs: string[] = [];
const agents: AgentProcess[] = [];
let server: DevServer | undefined;
let api: Client | undefined;
const appIds: string[] = [];
const watcher = watchDockerEvents();

function agentOutput() {
  return agents.map((a) => a.output()).join("");
}

/** Kills the detached commands the agent started (their process groups), should any still run. */
function killCommands(stateDir: string) {
  let ids: string[] = [];
  try {
    ids = readdirSync(join(stateDir, "jobs"));
  } catch {
    return;
  }
  for (const id of ids) {
    try {
      const pid = Number(readFileSync(join(stateDir, "jobs", id, "pid"), "utf8"));
      if (pid > 1) process.kill(-pid, "SIGKILL");
    } catch {
      /* no pid, or gone */
    }
  }
}

let stateDir = "";

async function cleanup() {
  watcher.stop();
  if (api) {
    for (const id of appIds) await api.call("DELETE", `/apps/${id}`).catch(() => undefined);
    const end = Date.now() + 15_000;
    while (Date.now() < end) {
      const left = (await Promise.all(appIds.map((id) => engine.list({ "berth.app": id }).catch(() => [])))).flat();
      if (!left.length) break;
      await sleep(250);
    }
  }
  for (const a of agents) await a.kill("SIGKILL");
  for (const id of appIds) {
    try {
      const left = await engine.list({ "berth.app": id });
      if (left.length) console.error(`removing ${left.length} container(s) of ${id} the agent left`);
      for (const c of left) await engine.remove(c.id, { force: true });
      await fetch(`${CADDY_ADMIN}/id/berth-app-${id}`, { method: "DELETE" }).catch(() => undefined);
    } catch (err) {
      console.error(`cleaning up after app ${id}: ${(err as Error).message}`);
    }
  }
  if (stateDir) killCommands(stateDir);
  await server?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

const exit = cleanupOnExit(cleanup);
const cleanupOnce = exit.cleanup;

const started = performance.now();
try {
  for (const [name, url] of [
    ["registry", `http://${REGISTRY}/v2/`],
    ["caddy admin", `${CADDY_ADMIN}/config/`],
  ] as const) {
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (!ok) throw new Error(`${name} is not answering at ${url}: run test/host/setup.sh first`);
  }
  await engine.ping();
  await watcher.ready;
  for (const image of IMAGES) await engine.pull(image);

  server = await startDevServer();
  const signed = await signedUp(server.url);
  api = signed.api;
  const slug = signed.slug;
  const projectId = (await api.call("GET", "/projects")).body[0].id as string;
  const host = await api.call("POST", `/org/${slug}/hosts`, { name: "chaos", kind: "docker" });
  if (host.status !== 201) throw new Error(`enrolling the host: ${host.status} ${JSON.stringify(host.body)}`);
  const hostId = host.body.host.id as string;
  const ingress = await freePort();
  stateDir = mkdtempSync(join(tmpdir(), "berth-chaos-agent-"));
  dirs.push(stateDir);
  const marksDir = mkdtempSync(join(tmpdir(), "berth-chaos-marks-"));
  dirs.push(marksDir);
  const marks = join(marksDir, "runs");
  const agentArgs = ["--url", server.url, "--state-dir", stateDir, "--ingress-listen", `127.0.0.1:${ingress}`];
  let agent = startAgent([...agentArgs, "--join-token", host.body.join_token]);
  agents.push(agent);
  await agent.waitFor(/connected transport=websocket/, 60_000);

  const key = await api.call("POST", "/api-keys", { name: "chaos-ci" });
  if (key.status !== 201) throw new Error(`creating an API key: ${key.status} ${JSON.stringify(key.body)}`);
  const ci = client(server.url, key.body.key);

  const waitPath = (r: JobRec) =>
    r.planned.kind === "command" ? `/org/${slug}/hosts/${hostId}/jobs/${r.id}/wait` : `/projects/${projectId}/jobs/${r.id}/wait`;

  async function waitSucceeded(jobId: string, what: string) {
    const end = Date.now() + 120_000;
    for (;;) {
      const res = await api!.call("GET", `/projects/${projectId}/jobs/${jobId}/wait?timeout=20`);
      if (res.status !== 200) throw new Error(`waiting for ${what}: ${res.status} ${JSON.stringify(res.body)}`);
      if (res.body.done) {
        if (res.body.job.status !== "succeeded") throw new Error(`${what} ${res.body.job.status}: ${res.body.job.error}`);
        return;
      }
      if (Date.now() > end) throw new Error(`${what} not done after 120 s`);
    }
  }

  const appSlugs: string[] = [];
  for (let i = 0; i < APPS; i++) {
    const made = await api.call("POST", `/projects/${projectId}/apps`, { name: `Chaos ${RUN_ID} ${i}`, image: IMAGES[0], internal_port: 8080, memory_limit: 32, cpu_limit: 0.25 });
    if (made.status !== 201) throw new Error(`creating an app: ${made.status} ${JSON.stringify(made.body)}`);
    appIds.push(made.body.id);
    appSlugs.push(made.body.slug);
  }

  /** Puts every app on v1 (not measured), so each phase's deploys are the same changes. */
  async function resetApps() {
    for (let i = 0; i < APPS; i++) {
      const res = await ci.call("POST", `/deploy/${appSlugs[i]}`, { image: IMAGES[0] });
      if (res.status !== 202) throw new Error(`deploying app ${i}: ${res.status} ${JSON.stringify(res.body)}`);
      await waitSucceeded(res.body.job.id, `the set-up deploy of app ${i}`);
    }
  }

  const commandFor = (nonce: string, seconds: number) =>
    `echo "start ${nonce}" >> ${marks}; echo "out ${nonce}"; sleep ${seconds}; echo "end ${nonce}" >> ${marks}`;

  async function runPhase(name: string, kills: number[]): Promise<Phase> {
    const jobs: JobRec[] = [];
    const restarts: Restart[] = [];
    const waiters: Promise<void>[] = [];
    /** Waiters give up here; set once every submission and kill is done. */
    let giveUpAt = Number.POSITIVE_INFINITY;
    const t0 = Date.now();
    const open = () => jobs.filter((j) => j.id && j.doneAt === null);

    async function follow(r: JobRec) {
      while (Date.now() < giveUpAt && !exit.interrupted) {
        const seconds = Math.max(1, Math.min(20, Math.ceil((giveUpAt - Date.now()) / 1000)));
        const res = await api!.call("GET", `${waitPath(r)}?timeout=${seconds}`).catch((err: Error) => ({ status: 0, body: { error: err.message } }));
        if (res.status === 404) {
          r.vanished = true;
          return;
        }
        if (res.status !== 200) {
          await sleep(500);
          continue;
        }
        r.job = res.body.job;
        if (res.body.done) {
          r.doneAt = Date.now();
          return;
        }
      }
    }

    async function submit(p: Planned, n: number) {
      const nonce = `${RUN_ID}-${name}-${n}`;
      const r: JobRec = { n, planned: p, nonce, submittedAt: Date.now(), id: null, refused: null, job: null, doneAt: null, vanished: false };
      jobs.push(r);
      const res =
        p.kind === "command"
          ? await api!.call("POST", `/org/${slug}/hosts/${hostId}/exec`, { command: commandFor(nonce, p.sleep), timeout_seconds: COMMAND_TIMEOUT_SECONDS })
          : await ci.call("POST", `/deploy/${appSlugs[p.app]}`, { image: p.image });
      if (res.status !== 202) {
        r.refused = `${res.status} ${JSON.stringify(res.body).slice(0, 300)}`;
        return;
      }
      r.id = res.body.job.id;
      r.job = res.body.job;
      await follow(r);
    }

    const submissions = (async () => {
      for (let n = 0; n < plan.length; n++) {
        if (exit.interrupted) throw new Error("interrupted");
        const wait = t0 + plan[n]!.at - Date.now();
        if (wait > 0) await sleep(wait);
        waiters.push(submit(plan[n]!, n));
      }
    })();

    const killer = (async () => {
      for (let k = 0; k < kills.length; k++) {
        const wait = t0 + kills[k]! - Date.now();
        if (wait > 0) await sleep(wait);
        // Each kill hits an agent that came up: one still starting from the last restart is let connect first,
        // and then lives a random while longer (a kill at once would always land in the same moment, its hello).
        if (!/connected transport=websocket/.test(agent.output())) {
          await agent.waitFor(/connected transport=websocket/, 60_000).catch(() => undefined);
          await sleep(killJitter[k]!);
        }
        if (exit.interrupted) return;
        const inFlight = open();
        const killedAt = Date.now();
        await agent.kill("SIGKILL");
        if (exit.interrupted) return;
        const restartedAt = Date.now();
        agent = startAgent(agentArgs);
        agents.push(agent);
        restarts.push({
          killedAt,
          restartedAt,
          delayedMs: Math.max(0, killedAt - (t0 + kills[k]!)),
          openCommands: inFlight.filter((j) => j.planned.kind === "command").length,
          openDeploys: inFlight.filter((j) => j.planned.kind === "deploy").length,
          agent,
        });
        if (values.verbose) console.log(`  kill ${String(k + 1).padStart(2)} at +${((killedAt - t0) / 1000).toFixed(1)} s, ${inFlight.length} job(s) open`);
      }
    })();

    await Promise.all([submissions, killer]);
    const lastKillAt = restarts.at(-1)?.restartedAt ?? null;
    const lastSubmitAt = Math.max(...jobs.map((j) => j.submittedAt));
    giveUpAt = Math.max(lastKillAt ?? 0, lastSubmitAt) + (STUCK_SECONDS + LOST_GRACE_SECONDS) * 1000;
    // Waiters past giveUpAt return on their own (their last wait is cut to the time left).
    await Promise.all(waiters);
    return { name, jobs, restarts, startedAt: t0, lastKillAt, endedAt: Date.now() };
  }

  /** The project's event feed from the start (deploys' running, progress and end events, with the control plane's times). */
  async function projectEvents(): Promise<FeedEvent[]> {
    const got: FeedEvent[] = [];
    const ws = new WebSocket(`${server!.url.replace(/^http/, "ws")}/api/v1/projects/${projectId}/events?since=0&token=${signed.token}`);
    let last = Date.now();
    ws.addEventListener("message", (e) => {
      last = Date.now();
      const m = JSON.parse(String(e.data));
      got.push({ job_id: m.job_id, type: m.type, at: m.at, reason: m.data?.reason });
    });
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve());
      ws.addEventListener("error", () => reject(new Error("the project's event feed did not open")));
    });
    while (Date.now() - last < 1_000) await sleep(100);
    ws.close();
    return got;
  }

  /** Right after a phase: each app has one container, the one its last accepted deploy of the phase made, serving. */
  async function appsNotOnLastDeploy(phase: Phase): Promise<string[]> {
    const off: string[] = [];
    const accepted = phase.jobs.filter((j) => j.id);
    for (let i = 0; i < APPS; i++) {
      // Last in the control plane's order (its created_at): requests sent a moment apart may arrive the other way round.
      const last = accepted
        .filter((j) => j.planned.kind === "deploy" && j.planned.app === i)
        .sort((x, y) => Date.parse(x.job.created_at) - Date.parse(y.job.created_at))
        .at(-1);
      if (!last) continue;
      const containers = await engine.list({ "berth.app": appIds[i]! });
      const app = (await api!.call("GET", `/apps/${appIds[i]}`)).body.app;
      const ok = containers.length === 1 && containers[0]!.state === "running" && containers[0]!.labels["berth.job"] === last.id && app?.container_id === containers[0]!.id;
      if (!ok) {
        const made = containers.map((c) => `${c.id.slice(0, 12)} ${c.state} job=${c.labels["berth.job"]}`).join(", ");
        off.push(`app ${i}: last deploy ${last.id} (${last.job?.status}); containers [${made}]; the API says ${app?.container_id?.slice(0, 12) ?? "none"} ${app?.image ?? ""}`);
      }
    }
    return off;
  }

  // ---------------------------------------------------------------- measure one phase

  interface Figures {
    accepted: number;
    refused: number;
    succeeded: number;
    endedOtherwise: JobRec[];
    lost: JobRec[];
    runTwice: JobRec[];
    stuck: JobRec[];
    noWork: JobRec[];
    badOutput: JobRec[];
    appsOff: string[];
    runsKnown: boolean;
    latency: { all: number[]; command: number[]; deploy: number[] };
    throughput: number;
    recovery: number[];
    connect: number[];
    censored: number;
    idle: number;
  }

  async function measure(phase: Phase, appsOff: string[], runs: Map<string, number>, creates: Map<string, number>, events: FeedEvent[]): Promise<Figures> {
    const accepted = phase.jobs.filter((j) => j.id);
    const fin = (j: JobRec) => (j.job?.finished_at ? Date.parse(j.job.finished_at) : null);
    const terminal = (j: JobRec) => j.doneAt !== null && !j.vanished;
    const succeeded = accepted.filter((j) => terminal(j) && j.job.status === "succeeded");
    const runCount = (j: JobRec) => (j.planned.kind === "command" ? (runs.get(j.nonce) ?? 0) : (creates.get(j.id!) ?? 0));

    const stuck = accepted.filter((j) => {
      const deadline = Math.max(phase.lastKillAt ?? 0, j.submittedAt) + STUCK_SECONDS * 1000;
      const f = fin(j);
      return !terminal(j) || f === null || f > deadline;
    });

    // Command output: exactly what it printed, once.
    const badOutput: JobRec[] = [];
    const commands = succeeded.filter((j) => j.planned.kind === "command");
    for (let i = 0; i < commands.length; i += 8) {
      await Promise.all(
        commands.slice(i, i + 8).map(async (j) => {
          const res = await api!.call("GET", `/org/${slug}/hosts/${hostId}/jobs/${j.id}/logs`);
          const stdout = res.status === 200 ? (res.body.logs as Array<{ stream: string; text: string }>).filter((l) => l.stream === "stdout").map((l) => l.text).join("") : null;
          if (stdout !== `out ${j.nonce}\n`) badOutput.push(j);
        }),
      );
    }

    const lat = (js: JobRec[]) => js.map((j) => fin(j)! - Date.parse(j.job.created_at));
    const first = Math.min(...accepted.map((j) => Date.parse(j.job.created_at)));
    const lastFin = Math.max(...succeeded.map((j) => fin(j)!));

    // Recovery: restart → the next progress the control plane recorded.
    const progress = [
      ...succeeded.map((j) => fin(j)!),
      ...events.filter((e) => e.type === "job.running" || e.type === "job.progress" || e.type === "job.succeeded").map((e) => e.at),
    ].sort((a, b) => a - b);
    const recovery: number[] = [];
    const connect: number[] = [];
    let censored = 0;
    let idle = 0;
    phase.restarts.forEach((r, i) => {
      const line = r.agent.output().split("\n").find((l) => l.includes("connected transport=websocket"));
      if (line) connect.push(Date.parse(line.slice(0, line.indexOf(" "))) - r.restartedAt);
      const workWaiting = accepted.some((j) => j.submittedAt < r.restartedAt && (fin(j) === null || fin(j)! > r.restartedAt));
      if (!workWaiting) {
        idle++;
        return;
      }
      const next = progress.find((t) => t > r.restartedAt);
      const nextKill = phase.restarts[i + 1]?.killedAt ?? Number.POSITIVE_INFINITY;
      if (next === undefined || next > nextKill) censored++;
      else recovery.push(next - r.restartedAt);
    });

    return {
      accepted: accepted.length,
      refused: phase.jobs.filter((j) => j.refused).length,
      succeeded: succeeded.length,
      endedOtherwise: accepted.filter((j) => terminal(j) && j.job.status !== "succeeded"),
      lost: accepted.filter((j) => !terminal(j)),
      runTwice: accepted.filter((j) => runCount(j) > 1),
      stuck,
      noWork: succeeded.filter((j) => runCount(j) === 0),
      badOutput,
      appsOff,
      runsKnown: watcher.broken() === null,
      latency: { all: lat(succeeded), command: lat(succeeded.filter((j) => j.planned.kind === "command")), deploy: lat(succeeded.filter((j) => j.planned.kind === "deploy")) },
      throughput: succeeded.length / ((lastFin - first) / 1000),
      recovery,
      connect,
      censored,
      idle,
    };
  }

  function hostCounts() {
    const runs = new Map<string, number>();
    let text = "";
    try {
      text = readFileSync(marks, "utf8");
    } catch {
      /* nothing ran yet */
    }
    for (const line of text.split("\n")) {
      const m = /^start (\S+)$/.exec(line);
      if (m) runs.set(m[1]!, (runs.get(m[1]!) ?? 0) + 1);
    }
    const creates = new Map<string, number>();
    for (const e of watcher.events) {
      if (e.type !== "container" || e.action !== "create") continue;
      const job = e.attributes["berth.job"];
      if (job) creates.set(job, (creates.get(job) ?? 0) + 1);
    }
    return { runs, creates };
  }

  const commandsPlanned = plan.filter((p) => p.kind === "command").length;
  console.log(
    `chaos — ${KILLS} SIGKILLs of the agent during a stream of ${JOBS} jobs (${commandsPlanned} commands, ${JOBS - commandsPlanned} deploys over ${APPS} apps), ` +
      `${RATE}/s on average over ${(windowMs / 1000).toFixed(0)} s; seed ${SEED}`,
  );
  console.log(`  the same stream first without kills (baseline); re-run: npm run chaos -- --seed ${SEED} --kills ${KILLS} --jobs ${JOBS} --rate ${RATE} --apps ${APPS}\n`);

  await resetApps();
  console.log(`baseline: ${JOBS} jobs, no kills…`);
  const baseline = await runPhase("base", []);
  const baseApps = await appsNotOnLastDeploy(baseline);
  const baseEvents = await projectEvents();

  await resetApps();
  console.log(`chaos: ${JOBS} jobs, ${KILLS} kills…`);
  const chaos = await runPhase("chaos", killPlan);
  // The agent of the last restart must be up for the end-state checks to mean anything.
  await agent.waitFor(/connected transport=websocket/, 60_000);
  const chaosApps = await appsNotOnLastDeploy(chaos);
  const chaosEvents = await projectEvents();

  const { runs, creates } = hostCounts();
  const b = await measure(baseline, baseApps, runs, creates, baseEvents);
  const c = await measure(chaos, chaosApps, runs, creates, chaosEvents);

  // ---------------------------------------------------------------- report
  const col = (x: string | number) => String(x).padStart(12);
  const row = (label: string, bv: string | number, cv: string | number, goal = "") => console.log(`${label.padEnd(64)}${col(bv)}${col(cv)}${goal.padStart(8)}`);
  console.log(`\n${"".padEnd(64)}${col("baseline")}${col(`${KILLS} kills`)}${"goal".padStart(8)}`);
  row("jobs accepted (202)", b.accepted, c.accepted);
  row("  refused at submission", b.refused, c.refused, "0");
  row("  succeeded", b.succeeded, c.succeeded);
  row("  ended without success (failed, lost, cancelled)", b.endedOtherwise.length, c.endedOtherwise.length, "0");
  row("lost: accepted, never reached a terminal state", b.lost.length, c.lost.length, "0");
  const twice = (f: Figures) => (f.runsKnown ? f.runTwice.length : "unknown");
  row("run twice: work done more than once, counted on the host", twice(b), twice(c), "0");
  row(`stuck: not terminal ${STUCK_SECONDS} s after the last kill (or its submission)`, b.stuck.length, c.stuck.length, "0");
  row("succeeded without its work on the host", b.noWork.length, c.noWork.length, "0");
  row("command output not exactly what it printed, once", b.badOutput.length, c.badOutput.length, "0");
  row(`apps not left on their last deploy (of ${APPS})`, b.appsOff.length, c.appsOff.length, "0");

  const killsWithCommands = chaos.restarts.filter((r) => r.openCommands > 0).length;
  const killsWithDeploys = chaos.restarts.filter((r) => r.openDeploys > 0).length;
  console.log(`\nkills: ${chaos.restarts.length}; with a command open ${killsWithCommands}, with a deploy open ${killsWithDeploys}, with nothing open ${chaos.restarts.filter((r) => !r.openCommands && !r.openDeploys).length}`);
  const delayed = chaos.restarts.filter((r) => r.delayedMs > 0).map((r) => r.delayedMs);
  const lastSubmit = Math.max(...chaos.jobs.map((j) => j.submittedAt));
  console.log(
    `  ${delayed.length} came later than drawn, waiting for the previous restart to connect (by p50 ${fmtMs(delayed.length ? pct(delayed, 50) : NaN)}); ` +
      `${chaos.restarts.filter((r) => r.killedAt > lastSubmit).length} after the last submission`,
  );
  const rec = c.recovery;
  console.log(
    `time to recover (restart → next job progress the control plane recorded), ${rec.length} restarts timed: ` +
      `p50 ${fmtMs(rec.length ? pct(rec, 50) : NaN)}  p99 ${fmtMs(rec.length ? pct(rec, 99) : NaN)}  max ${fmtMs(rec.length ? Math.max(...rec) : NaN)}`,
  );
  console.log(
    `  not timed: ${c.censored} killed again before any progress, ${c.idle} with no work waiting; ` +
      `restart → agent connected p50 ${fmtMs(c.connect.length ? pct(c.connect, 50) : NaN)}, max ${fmtMs(c.connect.length ? Math.max(...c.connect) : NaN)}`,
  );

  const lrow = (label: string, bx: number[], cx: number[]) => {
    if (!bx.length || !cx.length) return;
    const [b50, b99, c50, c99] = [pct(bx, 50), pct(bx, 99), pct(cx, 50), pct(cx, 99)];
    console.log(`${label.padEnd(22)}${fmtMs(b50).padStart(10)}${fmtMs(b99).padStart(10)}${fmtMs(c50).padStart(10)}${fmtMs(c99).padStart(10)}${`${(c50 / b50).toFixed(2)}×`.padStart(9)}${`${(c99 / b99).toFixed(2)}×`.padStart(9)}`);
  };
  console.log(`\ncreated → finished      baseline p50     p99  chaos p50     p99  ratio p50   p99`);
  lrow("all jobs", b.latency.all, c.latency.all);
  lrow("commands", b.latency.command, c.latency.command);
  lrow("deploys", b.latency.deploy, c.latency.deploy);
  console.log(`throughput (first created → last finished): baseline ${b.throughput.toFixed(2)} jobs/s, chaos ${c.throughput.toFixed(2)} jobs/s, ratio ${(c.throughput / b.throughput).toFixed(2)}×`);

  // What went wrong, job by job, with the agent's lines about it.
  const defects = [
    ...c.endedOtherwise.map((j) => ["ended without success", j] as const),
    ...c.lost.map((j) => ["lost", j] as const),
    ...c.runTwice.map((j) => ["run twice", j] as const),
    ...c.stuck.map((j) => ["stuck", j] as const),
    ...c.noWork.map((j) => ["succeeded without work", j] as const),
    ...c.badOutput.map((j) => ["output not intact", j] as const),
    ...b.endedOtherwise.map((j) => ["baseline: ended without success", j] as const),
    ...b.lost.map((j) => ["baseline: lost", j] as const),
    ...b.runTwice.map((j) => ["baseline: run twice", j] as const),
  ];
  for (const s of [...b.appsOff, ...c.appsOff]) console.log(`\napp not on its last deploy: ${s}`);
  for (const j of [...baseline.jobs, ...chaos.jobs].filter((x) => x.refused)) console.log(`\nrefused: ${j.planned.kind} #${j.n}: ${j.refused}`);
  // At most three of each kind, so one kind cannot hide another.
  const shown = new Map<string, number>();
  for (const [what, j] of defects) {
    if ((shown.get(what) ?? 0) >= 3) continue;
    shown.set(what, (shown.get(what) ?? 0) + 1);
    const runsOf = j.planned.kind === "command" ? runs.get(j.nonce) ?? 0 : creates.get(j.id!) ?? 0;
    const job = j.job ?? {};
    console.log(`\n${what}: ${j.planned.kind} ${j.id} status=${job.status} attempts=${job.attempts} runs on host=${runsOf} error=${JSON.stringify(job.error)}`);
    console.log(`  created ${job.created_at} started ${job.started_at} finished ${job.finished_at}`);
    if (values.verbose) for (const l of agentOutput().split("\n").filter((l) => l.includes(j.id!))) console.log(`  | ${l}`);
  }
  if (values.verbose) {
    // The slowest jobs of the chaos stream: what the control plane and the agents said about them.
    const slow = chaos.jobs.filter((j) => j.job?.finished_at).sort((x, y) => (Date.parse(y.job.finished_at) - Date.parse(y.job.created_at)) - (Date.parse(x.job.finished_at) - Date.parse(x.job.created_at))).slice(0, 3);
    for (const j of slow) {
      console.log(`
slow: ${j.planned.kind} ${j.id} ${Date.parse(j.job.finished_at) - Date.parse(j.job.created_at)} ms, attempts=${j.job.attempts}, created ${j.job.created_at}`);
      for (const e of chaosEvents.filter((e) => e.job_id === j.id)) console.log(`  event ${new Date(e.at).toISOString()} ${e.type}${e.reason ? ` (${e.reason})` : ""}`);
      for (const r of chaos.restarts) console.log(`  restart ${new Date(r.restartedAt).toISOString()}`);
      for (const l of agentOutput().split("\n").filter((l) => l.includes(j.id!))) console.log(`  | ${l}`);
    }
  }
  if (values.verbose) {
    const file = join(tmpdir(), `berth-chaos-${RUN_ID}-agents.log`);
    writeFileSync(file, agents.map((a, i) => `===== agent process ${i}\n${a.output()}`).join("\n"));
    writeFileSync(file.replace(/agents\.log$/, "server.log"), server.output());
    console.log(`\n(--verbose: every agent process's output is in ${file}, wrangler's beside it; not removed)`);
  }
  if (defects.length || b.appsOff.length || c.appsOff.length) process.exitCode = 1;
} catch (err) {
  process.exitCode = 1;
  if (!exit.interrupted) console.error(`\nchaos failed: ${(err as Error).stack ?? err}`);
  if (agents.length && !exit.interrupted) console.error(`--- agent output (tail) ---\n${agentOutput().slice(-4000)}`);
} finally {
  await cleanupOnce();
  console.log(`\n(whole run ${((performance.now() - started) / 1000).toFixed(0)} s)`);
}
