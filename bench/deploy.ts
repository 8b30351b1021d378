/**
 * bench:deploy — how long a deploy takes, from the request to the new version
 * answering through Caddy, against the bare Docker floor on the same host.
 *
 * Starts the control plane (`wrangler dev`, as `npm run dev` does), one agent
 * routing apps through Caddy on a free loopback port, and one app running
 * 127.0.0.1:5000/berth/hello (busybox httpd). Both tags are pulled onto the host
 * first, so every deploy is of an image already there. Then, interleaved in the
 * same process, N times each:
 *
 *   berth           POST /deploy/{slug} {image} (alternating hello:v1 and :v2), then
 *                   GET through Caddy (Host: <slug>-app.localhost) every 5 ms until
 *                   the body says the new version ("hello vN")
 *   bare            Docker Engine API: create (the agent's configuration: limits,
 *                   init, restart policy, log rotation, labels, no published port),
 *                   start, inspect, GET the container's address every 5 ms until 200
 *   bare with pull  the same, after pulling the tag (a deploy always pulls: with the
 *                   image present that is one registry round trip)
 *   bare, polled    bare again, while a client polls the app through Caddy every 5 ms
 *                   as the berth measurement does from its request on: on a 2-core host
 *                   that polling (Caddy, the old container answering) slows dockerd's
 *                   start by a third, so this is the floor the goal is measured against;
 *                   the unpolled ratios are printed too
 *
 * Then, interleaved, --upload-runs times each (the image tarballs `docker save` wrote,
 * alternating hello:v1 and :v2):
 *
 *   berth upload    POST /deploy/{slug} with the tarball as the body (what CI's one curl
 *                   sends), then GET through Caddy every 5 ms until the new version answers
 *   docker CLI      `docker load -i` + `docker create` (same limits and label) + `docker start`,
 *                   then GET the container's address every 5 ms until it answers
 *
 * Then, interleaved, --git-runs times each (a repository with a Dockerfile on
 * 127.0.0.1:5000/berth/busybox, served over git's smart HTTP by a loopback git server; each
 * run pushes a new commit, which both sides build):
 *
 *   berth git       POST /apps/{appId}/deploy of the git app (the agent clones the branch,
 *                   builds through dockerd's builder, deploys), then GET through Caddy
 *                   every 5 ms until the new commit's page answers
 *   git + docker    `git clone --depth 1` + `docker build` + `docker create` + `docker
 *                   start`, then GET the container's address every 5 ms until it answers
 *
 * and prints p50/p95/min/max of each, Berth ÷ bare as ratios, and where Berth's
 * time goes (the job's timestamps from the control plane, the container's
 * create/start events from dockerd, the image's pull event, and the app's own
 * log: its "listening" line and the first request it served, which is the
 * agent's health probe).
 *
 * Needs test/host/setup.sh (dockerd, the registry and Caddy's admin API).
 *
 *   npm run bench:deploy [-- --runs 20 --warmup 2 --upload-runs 5 --git-runs 3 --verbose]   (--verbose: every run's steps)
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type ContainerSpec, DockerEngine } from "../agent/src/drivers/docker.ts";
import { type AgentProcess, startAgent } from "../test/node/support/agent.ts";
import { type Client, client, signedUp } from "../test/node/support/client.ts";
import { type DevServer, freePort, startDevServer } from "../test/node/support/dev-server.ts";
import { startGitServer } from "../test/node/support/git-server.ts";
import { getWithHost } from "../test/node/support/http.ts";
import { watchDockerEvents } from "./docker-events.ts";
import { pct } from "./stats.ts";
import { cleanupOnExit } from "./cleanup.ts";

const { values } = parseArgs({ options: { "git-runs": { type: "string", default: "3" }, "upload-runs": { type: "string", default: "5" }, runs: { type: "string", default: "20" }, warmup: { type: "string", default: "2" }, verbose: { type: "boolean", default: false } } });
const RUNS = Number(values.runs);
const WARMUP = Number(values.warmup);
const UPLOAD_RUNS = Number(values["upload-runs"]);
const GIT_RUNS = Number(values["git-runs"]);
if (!(RUNS >= 1) || !(WARMUP >= 0)) throw new Error("--runs must be 1 or more, --warmup 0 or more");

const REGISTRY = "127.0.0.1:5000";
const IMAGES = [`${REGISTRY}/berth/hello:v1`, `${REGISTRY}/berth/hello:v2`] as const;
const versionOf = (image: string) => `hello ${image.slice(image.lastIndexOf(":") + 1)}`;
const INTERNAL_PORT = 8080;
const MEMORY_MB = 64;
const CPU = 0.5;
const POLL_MS = 5;
const CADDY_ADMIN = "http://127.0.0.1:2019";
const RUN_ID = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const BENCH_LABEL = "berth.bench";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => (xs.length ? pct(xs, 50) : NaN);
const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : "n/a");

/** Polls every POLL_MS until `ok`; returns performance.now() of the first good answer. */
async function pollUntil(
  port: number,
  host: string,
  ok: (r: { status: number; text: string }) => boolean,
  timeoutMs: number,
  what: () => string,
  address?: string,
  seen?: (r: { status: number; text: string }) => void,
): Promise<number> {
  const end = performance.now() + timeoutMs;
  let last = { status: 0, text: "" };
  for (;;) {
    last = await getWithHost(port, host, "/", 5_000, address);
    seen?.(last);
    if (ok(last)) return performance.now();
    if (performance.now() > end) throw new Error(`${what()}: no good answer within ${timeoutMs / 1000} s (last: ${last.status} ${last.text.slice(0, 120).trim()})`);
    await sleep(POLL_MS);
  }
}

// ------------------------------------------------------------------ the bench

interface BerthRun {
  total: number;
  /** Requests through Caddy from the deploy request until its job ended, and how many of them failed. */
  requests: number;
  failures: string[];
  // Steps, in ms (NaN when a timestamp was missing).
  toAccepted: number;
  toJobCreated: number;
  createdToDispatched: number;
  dispatchedToStarted: number;
  toJobStarted: number;
  startedToPulled: number;
  pulledToCreated: number;
  createdToStarted: number;
  startedToListening: number;
  listeningToProbe: number;
  probeToCaddy: number;
  answerToJobFinished: number;
  // From the agent's log (its progress steps).
  agentLeased: number;
  agentPull: number;
  agentCreateStart: number;
  agentHealth: number;
  agentRoute: number;
  agentStopOld: number;
}

interface BareRun {
  total: number;
  pull: number;
  create: number;
  start: number;
  inspect: number;
  startToAnswer: number;
}

const engine = new DockerEngine();
const dirs: string[] = [];
let server: DevServer | undefined;
let agent: AgentProcess | undefined;
let api: Client | undefined;
let appId: string | undefined;
let ingress = 0;
const watcher = watchDockerEvents();

async function hostServicesUp() {
  for (const [name, url] of [
    ["registry", `http://${REGISTRY}/v2/`],
    ["caddy admin", `${CADDY_ADMIN}/config/`],
  ] as const) {
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (!ok) throw new Error(`${name} is not answering at ${url}: run test/host/setup.sh first`);
  }
  await engine.ping();
}

/** Where Caddy's berth server listens now (another agent on this host could have moved it). */
async function caddyListen(): Promise<string> {
  try {
    return JSON.stringify(await (await fetch(`${CADDY_ADMIN}/config/apps/http/servers/berth/listen`)).json());
  } catch (err) {
    return `unknown (${(err as Error).message})`;
  }
}

async function appContainers(id: string) {
  return engine.list({ "berth.app": id });
}

async function cleanup() {
  watcher.stop();
  // The app: through the API (the agent removes its container and route), then whatever is left, by hand.
  if (appId && api) {
    try {
      const res = await api.call("DELETE", `/apps/${appId}`);
      if (res.status !== 200) console.error(`DELETE /apps/${appId}: ${res.status} ${JSON.stringify(res.body)}`);
      const end = Date.now() + 30_000;
      while ((await appContainers(appId)).length && Date.now() < end) await sleep(250);
    } catch (err) {
      console.error(`deleting the app: ${(err as Error).message}`);
    }
    try {
      const left = await appContainers(appId);
      if (left.length) console.error(`removing ${left.length} container(s) of ${appId} the agent left`);
      for (const c of left) await engine.remove(c.id, { force: true });
      await fetch(`${CADDY_ADMIN}/id/berth-app-${appId}`, { method: "DELETE" }).catch(() => undefined);
    } catch (err) {
      console.error(`cleaning up after the app: ${(err as Error).message}`);
    }
  }
  await removeBareContainers();
  await agent?.kill("SIGTERM");
  await server?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  // Again: after an interrupt, a bare run in flight may have created one since.
  await removeBareContainers();
}

async function removeBareContainers() {
  try {
    for (const c of await engine.list({ [BENCH_LABEL]: RUN_ID })) await engine.remove(c.id, { force: true });
  } catch (err) {
    console.error(`removing bare containers: ${(err as Error).message}`);
  }
}

const exit = cleanupOnExit(cleanup);
const cleanupOnce = exit.cleanup;

const started = performance.now();
try {
  await hostServicesUp();
  // Both sides start with both tags on the host.
  for (const image of IMAGES) await engine.pull(image);

  server = await startDevServer();
  const signed = await signedUp(server.url);
  api = signed.api;
  const projectId = (await api.call("GET", "/projects")).body[0].id as string;
  const host = await api.call("POST", `/org/${signed.slug}/hosts`, { name: "bench", kind: "docker" });
  if (host.status !== 201) throw new Error(`enrolling the host: ${host.status} ${JSON.stringify(host.body)}`);
  ingress = await freePort();
  const state = mkdtempSync(join(tmpdir(), "berth-bench-deploy-"));
  dirs.push(state);
  agent = startAgent(["--url", server.url, "--state-dir", state, "--join-token", host.body.join_token, "--ingress-listen", `127.0.0.1:${ingress}`]);
  await agent.waitFor(/connected transport=websocket/, 60_000);

  const key = await api.call("POST", "/api-keys", { name: "bench-ci" });
  if (key.status !== 201) throw new Error(`creating an API key: ${key.status} ${JSON.stringify(key.body)}`);
  const ci = client(server.url, key.body.key);

  const created = await api.call("POST", `/projects/${projectId}/apps`, {
    name: `Bench ${RUN_ID}`,
    image: IMAGES[0],
    internal_port: INTERNAL_PORT,
    memory_limit: MEMORY_MB,
    cpu_limit: CPU,
  });
  if (created.status !== 201) throw new Error(`creating the app: ${created.status} ${JSON.stringify(created.body)}`);
  appId = created.body.id as string;
  const appSlug = created.body.slug as string;
  const appHost = `${appSlug}-app.localhost`;
  let current: string = IMAGES[0];

  const waitJob = async (jobId: string, seconds = 90) => {
    const end = Date.now() + seconds * 1000;
    for (;;) {
      const res = await api!.call("GET", `/projects/${projectId}/jobs/${jobId}/wait?timeout=20`);
      if (res.status !== 200) throw new Error(`waiting for job ${jobId}: ${res.status} ${JSON.stringify(res.body)}`);
      if (res.body.done) {
        if (res.body.job.status !== "succeeded") throw new Error(`job ${jobId} ${res.body.job.status}: ${res.body.job.error}\n${agent!.output().slice(-3000)}`);
        return res.body.job;
      }
      if (Date.now() > end) throw new Error(`job ${jobId} not done after ${seconds} s: ${JSON.stringify(res.body.job)}`);
    }
  };

  // First deploy (not measured).
  const first = await api.call("POST", `/apps/${appId}/deploy`);
  if (first.status !== 202) throw new Error(`first deploy: ${first.status} ${JSON.stringify(first.body)}`);
  await waitJob(first.body.job.id);
  await pollUntil(ingress, appHost, (r) => r.status === 200 && r.text.includes(versionOf(current)), 30_000, () => `first deploy through Caddy on 127.0.0.1:${ingress}`);

  /** One measured redeploy to the other tag: request → the new version answers through Caddy. */
  async function berthRun(): Promise<BerthRun> {
    const image = current === IMAGES[0] ? IMAGES[1] : IMAGES[0];
    const want = versionOf(image);
    const wall0 = Date.now();
    const t0 = performance.now();
    const res = await ci.call("POST", `/deploy/${appSlug}`, { image });
    const tAccepted = performance.now();
    if (res.status !== 202) throw new Error(`POST /deploy/${appSlug}: ${res.status} ${JSON.stringify(res.body)}`);
    const jobId = res.body.job.id as string;
    // Every answer from the request until the job has ended (old container drained and stopped) must be a 200.
    let requests = 0;
    const failures: string[] = [];
    const count = (r: { status: number; text: string }) => {
      requests++;
      if (r.status !== 200) failures.push(`${r.status} ${r.text.slice(0, 80).trim()}`);
    };
    const t1 = await pollUntil(ingress, appHost, (r) => r.status === 200 && r.text.includes(want), 60_000, () => `deploy of ${image} (job ${jobId})`, undefined, count).catch(async (err) => {
      throw new Error(`${(err as Error).message}\ncaddy berth listen: ${await caddyListen()} (ours: 127.0.0.1:${ingress})\n${agent!.output().slice(-3000)}`);
    });
    const wall1 = wall0 + (t1 - t0);
    let jobDone = false;
    const keepPolling = (async () => {
      while (!jobDone) {
        count(await getWithHost(ingress, appHost, "/", 5_000));
        await sleep(POLL_MS);
      }
    })();
    const job = await waitJob(jobId).finally(() => {
      jobDone = true;
    });
    await keepPolling;
    current = image;

    // Timestamps of the steps, all on this machine's clock (Unix ms).
    const containerId = job.result?.container_id as string | undefined;
    const ev = (action: string) => watcher.events.find((e) => e.type === "container" && e.id === containerId && e.action === action)?.at ?? NaN;
    const pulled = watcher.events.filter((e) => e.type === "image" && e.action === "pull" && e.id === image && e.at >= wall0 - 5 && e.at <= wall1).at(-1)?.at ?? NaN;
    let listening = NaN;
    let probe = NaN;
    if (containerId) {
      const lines = await engine.logs(containerId, { tail: 200 });
      listening = Date.parse(lines.find((l) => l.stream === "stdout" && l.text.includes("listening"))?.time ?? "");
      probe = Date.parse(lines.find((l) => l.stream === "stderr")?.time ?? ""); // the first request it served: the agent's health probe
    }
    const at = (s: string | null) => (s ? Date.parse(s) : NaN);
    // The agent logs "<ISO time> INFO  <message> job_id=… step=…" for each progress step.
    const agentLines = agent!.output().split("\n").filter((l) => l.includes(`job_id=${jobId}`));
    const logged = (re: RegExp) => {
      const line = agentLines.find((l) => re.test(l.slice(l.indexOf(" ") + 1)));
      return line ? Date.parse(line.slice(0, line.indexOf(" "))) : NaN;
    };
    const leased = logged(/job leased/);
    const pulling = logged(/\bPulling /);
    const creating = logged(/Creating the container/);
    const waiting = logged(/Waiting for the app to answer/);
    const routing = logged(/\bRouting /);
    const stopping = logged(/Stopping the previous container/);
    const finished = logged(/job finished/);
    return {
      total: t1 - t0,
      requests,
      failures,
      toAccepted: tAccepted - t0,
      toJobCreated: at(job.created_at) - wall0,
      createdToDispatched: at(job.dispatched_at) - at(job.created_at),
      dispatchedToStarted: at(job.started_at) - at(job.dispatched_at),
      toJobStarted: at(job.started_at) - wall0,
      startedToPulled: pulled - at(job.started_at),
      pulledToCreated: ev("create") - pulled,
      createdToStarted: ev("start") - ev("create"),
      startedToListening: listening - ev("start"),
      listeningToProbe: probe - listening,
      probeToCaddy: wall1 - probe,
      answerToJobFinished: at(job.finished_at) - wall1,
      agentLeased: leased - wall0,
      agentPull: creating - pulling,
      agentCreateStart: waiting - creating,
      agentHealth: routing - waiting,
      agentRoute: stopping - routing,
      agentStopOld: finished - stopping,
    };
  }

  /** The floor: what the agent asks dockerd for, with nothing around it. */
  async function bareRun(image: string, withPull: boolean, n: number | string): Promise<BareRun> {
    const spec: ContainerSpec = {
      name: `berth-bench-bare-${RUN_ID}-${n}${withPull ? "-pull" : ""}`,
      image,
      env: {},
      cmd: null,
      labels: { [BENCH_LABEL]: RUN_ID },
      internalPort: INTERNAL_PORT,
      cpuLimit: CPU,
      memoryLimitMb: MEMORY_MB,
      restartPolicy: "unless-stopped",
      // As the agent makes an app's container: not published, reached at its bridge address.
      publishPort: false,
    };
    const t0 = performance.now();
    if (withPull) await engine.pull(image);
    const tPulled = performance.now();
    const id = await engine.create(spec);
    try {
      const tCreated = performance.now();
      await engine.start(id);
      const tStarted = performance.now();
      const address = (await engine.inspect(id))?.address;
      if (!address) throw new Error(`bare container ${spec.name} has no address`);
      const tInspected = performance.now();
      const t1 = await pollUntil(INTERNAL_PORT, "bare", (r) => r.status === 200 && r.text.includes(versionOf(image)), 30_000, () => `bare container ${spec.name}`, address);
      return { total: t1 - t0, pull: tPulled - t0, create: tCreated - tPulled, start: tStarted - tCreated, inspect: tInspected - tStarted, startToAnswer: t1 - tStarted };
    } finally {
      await engine.remove(id, { force: true });
    }
  }

  console.log(`bench:deploy — ${RUNS} measured runs of each, interleaved (after ${WARMUP} warm-up deploys); images ${IMAGES.join(", ")} on the host; ${MEMORY_MB} MB, ${CPU} CPU; polling every ${POLL_MS} ms\n`);
  for (let i = 0; i < WARMUP; i++) {
    await berthRun();
    await bareRun(IMAGES[i % 2]!, i % 2 === 1, -1 - i);
  }

  /** Diagnostic: the bare floor while a client polls the app through Caddy, as the Berth measurement does (2 cores: the polling competes with dockerd). */
  async function bareLoadedRun(image: string, n: number): Promise<BareRun> {
    let stop = false;
    const poller = (async () => {
      while (!stop) {
        await getWithHost(ingress, appHost);
        await sleep(POLL_MS);
      }
    })();
    try {
      return await bareRun(image, false, `${n}-loaded`);
    } finally {
      stop = true;
      await poller;
    }
  }

  const berth: BerthRun[] = [];
  const bare: BareRun[] = [];
  const barePull: BareRun[] = [];
  const bareLoaded: BareRun[] = [];
  for (let i = 0; i < RUNS; i++) {
    // Rotate the order so that none of the three always follows another.
    const steps = [
      async () => berth.push(await berthRun()),
      async () => bare.push(await bareRun(IMAGES[i % 2]!, false, i)),
      async () => barePull.push(await bareRun(IMAGES[i % 2]!, true, i)),
      async () => bareLoaded.push(await bareLoadedRun(IMAGES[i % 2]!, i)),
    ];
    for (let k = 0; k < steps.length; k++) {
      if (exit.interrupted) throw new Error("interrupted");
      await steps[(i + k) % steps.length]!();
    }
    if (values.verbose) console.log(`  ${Object.entries(berth.at(-1)!).map(([k, v]) => `${k}=${v.toFixed(0)}`).join(" ")}`);
    console.log(`  run ${String(i + 1).padStart(2)}/${RUNS}  berth ${ms(berth.at(-1)!.total).padStart(7)}   bare ${ms(bare.at(-1)!.total).padStart(7)}   bare with pull ${ms(barePull.at(-1)!.total).padStart(7)}   bare under polling ${ms(bareLoaded.at(-1)!.total).padStart(7)}`);
  }

  const row = (label: string, xs: number[]) =>
    `${label.padEnd(44)}${ms(pct(xs, 50)).padStart(9)}${ms(pct(xs, 95)).padStart(9)}${ms(Math.min(...xs)).padStart(9)}${ms(Math.max(...xs)).padStart(9)}`;
  const b = berth.map((r) => r.total);
  const f = bare.map((r) => r.total);
  const fp = barePull.map((r) => r.total);
  console.log(`\n${"".padEnd(44)}${"p50".padStart(9)}${"p95".padStart(9)}${"min".padStart(9)}${"max".padStart(9)}`);
  console.log(row("berth: deploy request → answers via Caddy", b));
  console.log(row("bare: create + start → first answer", f));
  console.log(row("bare with pull: pull + create + start → answer", fp));
  const fl = bareLoaded.map((r) => r.total);
  console.log(row("bare, polled via Caddy as berth is", fl));
  const ratio = (x: number[], y: number[], p: number) => `${(pct(x, p) / pct(y, p)).toFixed(2)}×`;
  console.log(`\nberth ÷ bare, polled as berth is   p50 ${ratio(b, fl, 50)}   p95 ${ratio(b, fl, 95)}`);
  console.log(`berth ÷ bare                       p50 ${ratio(b, f, 50)}   p95 ${ratio(b, f, 95)}`);
  console.log(`berth ÷ bare with pull             p50 ${ratio(b, fp, 50)}   p95 ${ratio(b, fp, 95)}`);
  const requests = berth.reduce((n, r) => n + r.requests, 0);
  const failures = berth.flatMap((r) => r.failures);
  console.log(
    `\nrequests through Caddy during berth's deploys (request → job ended, old container stopped): ${requests}, failed: ${failures.length}${failures.length ? ` (${[...new Set(failures)].slice(0, 5).join("; ")})` : ""}`,
  );
  const r50 = pct(b, 50) / pct(fl, 50);
  console.log(
    `goal: at most 1.3× the bare floor under the same polling at p50: ${r50 <= 1.3 ? "met" : "NOT met"} (${r50.toFixed(3)}×; against the unpolled floor ${(pct(b, 50) / pct(f, 50)).toFixed(3)}×)`,
  );

  const step = (label: string, xs: number[]) => console.log(`  ${label.padEnd(62)}${ms(median(xs.filter(Number.isFinite))).padStart(8)}`);
  console.log(`\nwhere berth's time goes (median of each step; they need not add up to the median total):`);
  step("request → 202 Accepted", berth.map((r) => r.toAccepted));
  step("request → job created (control plane created_at)", berth.map((r) => r.toJobCreated));
  step("job created → dispatched to the agent (dispatched_at)", berth.map((r) => r.createdToDispatched));
  step("dispatched → started on the agent (started_at)", berth.map((r) => r.dispatchedToStarted));
  step("= request → job started on the agent", berth.map((r) => r.toJobStarted));
  step("job started → pull done (registry round trip; dockerd pull event)", berth.map((r) => r.startedToPulled));
  step("pull done → container created (dockerd create event)", berth.map((r) => r.pulledToCreated));
  step("created → started (dockerd start event)", berth.map((r) => r.createdToStarted));
  step("started → app listening (its first log line)", berth.map((r) => r.startedToListening));
  step("listening → agent's health probe served (first request in its log)", berth.map((r) => r.listeningToProbe));
  step("probe served → answers via Caddy (route switch)", berth.map((r) => r.probeToCaddy));
  step("(after) answers via Caddy → job finished (old container stopped)", berth.map((r) => r.answerToJobFinished));
  console.log(`the agent's own log (time between its progress lines):`);
  step("request → agent logs \"job leased\"", berth.map((r) => r.agentLeased));
  step("Pulling → Creating (pull; list containers of this job)", berth.map((r) => r.agentPull));
  step("Creating → Waiting (create, inspect, start, inspect)", berth.map((r) => r.agentCreateStart));
  step("Waiting → Routing (health probe)", berth.map((r) => r.agentHealth));
  step("Routing → Stopping (Caddy: read config, read route, patch route)", berth.map((r) => r.agentRoute));
  step("Stopping → job finished (stop + remove old, report)", berth.map((r) => r.agentStopOld));
  console.log(`bare, for comparison:`);
  step("pull (bare with pull)", barePull.map((r) => r.pull));
  step("create", bare.map((r) => r.create));
  step("start", bare.map((r) => r.start));
  step("start, while a client polls the app via Caddy every 5 ms", bareLoaded.map((r) => r.start));
  step("inspect", bare.map((r) => r.inspect));
  step("start returned → first answer", bare.map((r) => r.startToAnswer));

  // ---------------------------------------------------------------- uploads
  if (UPLOAD_RUNS > 0) {
    const run = promisify(execFile);
    const dockerCli = async (...args: string[]) => (await run("docker", args, { maxBuffer: 16 * 1024 * 1024 })).stdout.trim();
    const tarDir = mkdtempSync(join(tmpdir(), "berth-bench-upload-"));
    dirs.push(tarDir);
    const tarballs = IMAGES.map((image, i) => ({ image, path: join(tarDir, `v${i + 1}.tar`) }));
    for (const t of tarballs) await dockerCli("save", "-o", t.path, t.image);
    const sizeMb = readFileSync(tarballs[0]!.path).length / (1024 * 1024);

    /** Berth: the tarball as CI's curl sends it → the new version answers through Caddy. */
    const uploadRun = async (t: (typeof tarballs)[number]) => {
      const body = readFileSync(t.path);
      const t0 = performance.now();
      const res = await fetch(`${server!.url}/api/v1/deploy/${appSlug}`, { method: "POST", headers: { authorization: `Bearer ${key.body.key}`, "content-type": "application/octet-stream" }, body });
      const answer = (await res.json()) as any;
      if (res.status !== 202) throw new Error(`upload to /deploy/${appSlug}: ${res.status} ${JSON.stringify(answer)}`);
      const t1 = await pollUntil(ingress, appHost, (r) => r.status === 200 && r.text.includes(versionOf(t.image)), 60_000, () => `upload deploy of ${t.image} (job ${answer.job.id})`);
      await waitJob(answer.job.id);
      current = t.image;
      return t1 - t0;
    };
    /** The docker CLI doing the same on the same host: load, create, start, first answer. */
    const cliRun = async (t: (typeof tarballs)[number], n: number) => {
      const name = `berth-bench-cli-${RUN_ID}-${n}`;
      const t0 = performance.now();
      await dockerCli("load", "-q", "-i", t.path);
      const id = await dockerCli("create", "--name", name, "--label", `${BENCH_LABEL}=${RUN_ID}`, "--memory", `${MEMORY_MB}m`, "--cpus", String(CPU), "--restart", "unless-stopped", t.image);
      try {
        await dockerCli("start", id);
        const address = (await engine.inspect(id))?.address;
        if (!address) throw new Error(`docker CLI container ${name} has no address`);
        return (await pollUntil(INTERNAL_PORT, "cli", (r) => r.status === 200 && r.text.includes(versionOf(t.image)), 30_000, () => `CLI container ${name}`, address)) - t0;
      } finally {
        await engine.remove(id, { force: true });
      }
    };

    const up: number[] = [];
    const cli: number[] = [];
    console.log(`\nupload deploys: ${UPLOAD_RUNS} runs of each, interleaved; tarball ${sizeMb.toFixed(1)} MB (docker save of ${IMAGES.join(", ")})`);
    for (let i = 0; i < UPLOAD_RUNS; i++) {
      if (exit.interrupted) throw new Error("interrupted");
      // The other tag than the one serving, so the deploy is seen to land.
      const t = tarballs[current === IMAGES[0] ? 1 : 0]!;
      if (i % 2 === 0) {
        up.push(await uploadRun(t));
        cli.push(await cliRun(t, i));
      } else {
        cli.push(await cliRun(t, i));
        up.push(await uploadRun(t));
      }
      console.log(`  run ${String(i + 1).padStart(2)}/${UPLOAD_RUNS}  berth upload ${ms(up.at(-1)!).padStart(7)}   docker load + create + start ${ms(cli.at(-1)!).padStart(7)}`);
    }
    console.log(`\n${"".padEnd(44)}${"p50".padStart(9)}${"p95".padStart(9)}${"min".padStart(9)}${"max".padStart(9)}`);
    console.log(row("berth: upload request → answers via Caddy", up));
    console.log(row("docker CLI: load + create + start → answer", cli));
    console.log(`berth upload ÷ docker CLI          p50 ${ratio(up, cli, 50)}   p95 ${ratio(up, cli, 95)}`);
  }

  // ---------------------------------------------------------------- git builds
  if (GIT_RUNS > 0) {
    const run = promisify(execFile);
    const sh = async (cmd: string, args: string[], cwd?: string) =>
      (await run(cmd, args, { cwd, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" } })).stdout.trim();
    const root = mkdtempSync(join(tmpdir(), "berth-bench-git-"));
    dirs.push(root);
    const git = await startGitServer(join(root, "repos"));
    const gitUrl = `http://127.0.0.1:${(git.address() as { port: number }).port}/site.git`;
    const work = join(root, "work");
    mkdirSync(work);
    await sh("git", ["init", "-q", "--bare", "-b", "main", join(root, "repos", "site.git")]);
    await sh("git", ["init", "-q", "-b", "main"], work);
    await sh("git", ["remote", "add", "origin", join(root, "repos", "site.git")], work);
    let version = 0;
    /** A new commit on main: the page says its version, so both sides are seen to serve it. */
    const pushVersion = async () => {
      version++;
      writeFileSync(join(work, "index.html"), `site v${version}\n`);
      writeFileSync(join(work, "Dockerfile"), [`FROM ${REGISTRY}/berth/busybox:1.36`, "COPY index.html /www/index.html", `EXPOSE ${INTERNAL_PORT}`, `CMD ["httpd", "-f", "-p", "${INTERNAL_PORT}", "-h", "/www"]`, ""].join("\n"));
      await sh("git", ["add", "-A"], work);
      await sh("git", ["-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-q", "-m", `v${version}`], work);
      await sh("git", ["push", "-q", "origin", "main"], work);
      return `site v${version}`;
    };
    await engine.pull(`${REGISTRY}/berth/busybox:1.36`);
    const gitApp = await api.call("POST", `/projects/${projectId}/apps`, { name: `bench git ${RUN_ID}`, git_repo_url: gitUrl, internal_port: INTERNAL_PORT, memory_limit: MEMORY_MB, cpu_limit: CPU });
    if (gitApp.status !== 201) throw new Error(`creating the git app: ${gitApp.status} ${JSON.stringify(gitApp.body)}`);
    const gitAppId = gitApp.body.id as string;
    const gitHost = `${gitApp.body.slug}-app.localhost`;
    try {
      /** Berth: deploy the app → the agent clones, builds and deploys → the new commit answers through Caddy. */
      const berthGitRun = async (want: string) => {
        const t0 = performance.now();
        const res = await api!.call("POST", `/apps/${gitAppId}/deploy`);
        if (res.status !== 202) throw new Error(`deploying the git app: ${res.status} ${JSON.stringify(res.body)}`);
        const t1 = await pollUntil(ingress, gitHost, (r) => r.status === 200 && r.text.includes(want), 180_000, () => `git deploy (job ${res.body.job.id})`);
        await waitJob(res.body.job.id);
        return t1 - t0;
      };
      /** The same by hand on the same host: clone, build, create, start, first answer. */
      const cliGitRun = async (want: string, n: number) => {
        const name = `berth-bench-git-${RUN_ID}-${n}`;
        const dir = join(root, `clone-${n}`);
        const tag = `berth-bench-git:${RUN_ID}-${n}`;
        const t0 = performance.now();
        await sh("git", ["clone", "-q", "--depth", "1", "--single-branch", "--branch", "main", gitUrl, dir]);
        await sh("docker", ["build", "-q", "-t", tag, dir]);
        const id = await sh("docker", ["create", "--name", name, "--label", `${BENCH_LABEL}=${RUN_ID}`, "--memory", `${MEMORY_MB}m`, "--cpus", String(CPU), "--restart", "unless-stopped", tag]);
        try {
          await sh("docker", ["start", id]);
          const address = (await engine.inspect(id))?.address;
          if (!address) throw new Error(`container ${name} has no address`);
          return (await pollUntil(INTERNAL_PORT, "cli", (r) => r.status === 200 && r.text.includes(want), 60_000, () => `git CLI container ${name}`, address)) - t0;
        } finally {
          await engine.remove(id, { force: true });
          await sh("docker", ["rmi", "-f", tag]).catch(() => "");
          rmSync(dir, { recursive: true, force: true });
        }
      };
      // One deploy first, so both sides start with the base image and the build cache as warm as each other.
      await berthGitRun(await pushVersion());
      const bg: number[] = [];
      const cg: number[] = [];
      console.log(`\ngit build deploys: ${GIT_RUNS} runs of each, interleaved; a Dockerfile on ${REGISTRY}/berth/busybox:1.36, a new commit each run`);
      for (let i = 0; i < GIT_RUNS; i++) {
        if (exit.interrupted) throw new Error("interrupted");
        const want = await pushVersion();
        if (i % 2 === 0) {
          bg.push(await berthGitRun(want));
          cg.push(await cliGitRun(want, i));
        } else {
          cg.push(await cliGitRun(want, i));
          bg.push(await berthGitRun(want));
        }
        console.log(`  run ${String(i + 1).padStart(2)}/${GIT_RUNS}  berth git ${ms(bg.at(-1)!).padStart(7)}   git clone + docker build + create + start ${ms(cg.at(-1)!).padStart(7)}`);
      }
      console.log(`\n${"".padEnd(44)}${"p50".padStart(9)}${"p95".padStart(9)}${"min".padStart(9)}${"max".padStart(9)}`);
      console.log(row("berth: git deploy request → answers via Caddy", bg));
      console.log(row("CLI: clone + build + create + start → answer", cg));
      console.log(`berth git ÷ git + docker CLI       p50 ${ratio(bg, cg, 50)}   p95 ${ratio(bg, cg, 95)}`);
    } finally {
      await api.call("DELETE", `/apps/${gitAppId}`).catch(() => undefined);
      const end = Date.now() + 30_000;
      while ((await appContainers(gitAppId)).length && Date.now() < end) await sleep(250);
      for (const c of await appContainers(gitAppId)) await engine.remove(c.id, { force: true });
      await fetch(`${CADDY_ADMIN}/id/berth-app-${gitAppId}`, { method: "DELETE" }).catch(() => undefined);
      const built = await sh("docker", ["images", "-q", `berth-build/${gitApp.body.slug}`]).catch(() => "");
      if (built) await sh("docker", ["rmi", "-f", ...built.split("\n")]).catch(() => "");
      await new Promise((r) => git.close(r));
    }
  }
} catch (err) {
  process.exitCode = 1;
  if (!exit.interrupted) console.error(`\nbench:deploy failed: ${(err as Error).stack ?? err}`);
  if (agent && !exit.interrupted) console.error(`--- agent output (tail) ---\n${agent.output().slice(-4000)}`);
} finally {
  await cleanupOnce();
  console.log(`\n(whole run ${((performance.now() - started) / 1000).toFixed(0)} s)`);
}
