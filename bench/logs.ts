/**
 * bench:logs — an app's live log stream (`GET /apps/{id}/logs/stream`, WebSocket) with
 * many subscribers while the container writes lines fast, against the same stream with
 * one subscriber, measured in the same run.
 *
 * Starts the control plane (`wrangler dev`, as `npm run dev` does), one agent, and one
 * app from 127.0.0.1:5000/berth/hello:v1 whose command (bench/logs-writer.sh) serves busybox
 * httpd on :8080 (the deploy's health probe) and, when told to (a file written with `docker exec`), writes
 * `rate` lines a second for `seconds` seconds to stdout, each one
 *
 *   bench <phase> <seq> <emit time, µs since the epoch, read from the container's clock as it writes the line>
 *
 * paced against the clock ($EPOCHREALTIME in busybox sh), then one `bench <phase> end` line.
 * Two phases, one after the other, on the same app:
 *
 *   baseline  1 subscriber
 *   fan-out   --subscribers subscribers (100)
 *
 * All subscribers are connected (`?tail=0&token=…`, the 101 means the control plane is
 * following) before the container starts writing, so every one of them should get every
 * line, once, in order. For each subscriber it counts lines lost (never arrived within the
 * drain time; split into skipped, missing before a line that did arrive, and late, after the
 * last that did), reordered (arrived after a later line) and doubled (arrived twice): the
 * goal is 0. Latency of a line: when the subscriber's message event fired minus the emit
 * time in the line (one machine, one clock). What the container really wrote, and so the
 * achieved rate, is counted from dockerd's own log of the container.
 *
 * Memory: Durable Objects report no memory figure of their own, and locally every Durable
 * Object and the Worker run in one workerd process. So this samples that workerd process's
 * resident set (VmRSS in /proc, every 250 ms): before, at peak during, at the end of each
 * phase and after its subscribers left. It is the whole local runtime's memory, with the
 * ProjectDO that fans out in it; its growth during a phase is what the stream costs.
 * (`wrangler dev` runs a second workerd, a proxy in front of the first, which every frame
 * also crosses; its growth is printed apart.) CPU of both, of the agent and of this process
 * (which parses every message of every subscriber) is printed too: on a small host they
 * compete for the same cores.
 *
 * Needs test/host/setup.sh (dockerd, the registry and Caddy's admin API).
 *
 * With --batch the subscribers ask for frames of many lines (`?batch=1`, `{lines: [...]}`)
 * instead of Dockup's one message per line. A subscriber that falls too far behind is sent
 * a notice of how many lines it skipped (`skipped`); those lines count as lost, and the
 * notices are counted apart.
 *
 * With --rounds N the fan-out phase runs N times, one after the other, on the same control
 * plane: whether the memory one round took is used again by the next (or grows each time)
 * is in the lines printed for the rounds after the first.
 *
 * --frames-per-second N runs the control plane with APP_LOG_FRAMES_PER_SECOND=N (the app's
 * frame budget, 10,000 by default).
 *
 *   npm run bench:logs [-- --subscribers 100 --rate 2000 --seconds 30 --baseline-seconds 30 --drain 20 --batch --rounds 1 --frames-per-second N --verbose]
 *   (or BENCH_LOGS_SUBSCRIBERS, BENCH_LOGS_RATE, BENCH_LOGS_SECONDS, BENCH_LOGS_BASELINE_SECONDS, BENCH_LOGS_DRAIN, BENCH_LOGS_BATCH=1, BENCH_LOGS_ROUNDS, BENCH_LOGS_FRAMES_PER_SECOND)
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DockerEngine } from "../agent/src/drivers/docker.ts";
import { type AgentProcess, startAgent } from "../test/node/support/agent.ts";
import { type Client, signedUp } from "../test/node/support/client.ts";
import { type DevServer, freePort, startDevServer } from "../test/node/support/dev-server.ts";
import { pct } from "./stats.ts";
import { cleanupOnExit } from "./cleanup.ts";
import { cpuSeconds, loadAverage, rssBytes, workerdProcesses } from "./proc.ts";

const env = process.env;
const { values } = parseArgs({
  options: {
    subscribers: { type: "string", default: env.BENCH_LOGS_SUBSCRIBERS ?? "100" },
    rate: { type: "string", default: env.BENCH_LOGS_RATE ?? "2000" },
    seconds: { type: "string", default: env.BENCH_LOGS_SECONDS ?? "30" },
    "baseline-seconds": { type: "string", default: env.BENCH_LOGS_BASELINE_SECONDS },
    drain: { type: "string", default: env.BENCH_LOGS_DRAIN ?? "20" },
    batch: { type: "boolean", default: env.BENCH_LOGS_BATCH === "1" },
    rounds: { type: "string", default: env.BENCH_LOGS_ROUNDS ?? "1" },
    "frames-per-second": { type: "string", default: env.BENCH_LOGS_FRAMES_PER_SECOND },
    verbose: { type: "boolean", default: false },
  },
});
const SUBSCRIBERS = Number(values.subscribers);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const BASELINE_SECONDS = Number(values["baseline-seconds"] ?? SECONDS);
const DRAIN_S = Number(values.drain);
const ROUNDS = Number(values.rounds);
for (const [name, v] of [["--subscribers", SUBSCRIBERS], ["--rate", RATE], ["--seconds", SECONDS], ["--baseline-seconds", BASELINE_SECONDS], ["--rounds", ROUNDS]] as const) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a whole number, 1 or more`);
}
if (!(DRAIN_S >= 1)) throw new Error("--drain must be 1 or more (seconds)");

const REGISTRY = "127.0.0.1:5000";
const IMAGE = `${REGISTRY}/berth/hello:v1`;
const INTERNAL_PORT = 8080;
const RUN_ID = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const SAMPLE_MS = 250;

/** The container's command (run by `/bin/sh -c`): see the script. */
const COMMAND = readFileSync(new URL("./logs-writer.sh", import.meta.url), "utf8");
const GO_FILE = "/tmp/berth-bench-go";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Wall-clock now in ms, with sub-millisecond resolution. */
const nowMs = () => performance.timeOrigin + performance.now();
const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : "n/a");
const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;

// ------------------------------------------------------------------ dockerd: exec (to start a phase)

function dockerJson(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: "/var/run/docker.sock", path, method, headers: { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : null }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Runs `cmd` in the container and waits for it to exit 0. */
async function dockerExec(containerId: string, cmd: string[]) {
  const created = await dockerJson("POST", `/containers/${containerId}/exec`, { Cmd: cmd, AttachStdout: false, AttachStderr: false });
  if (created.status !== 201) throw new Error(`docker exec create: ${created.status} ${JSON.stringify(created.json)}`);
  const started = await dockerJson("POST", `/exec/${created.json.Id}/start`, { Detach: true });
  if (started.status !== 200) throw new Error(`docker exec start: ${started.status} ${JSON.stringify(started.json)}`);
  for (let i = 0; i < 200; i++) {
    const info = await dockerJson("GET", `/exec/${created.json.Id}/json`);
    if (!info.json.Running) {
      if (info.json.ExitCode !== 0) throw new Error(`docker exec ${cmd.join(" ")} exited ${info.json.ExitCode}`);
      return;
    }
    await sleep(25);
  }
  throw new Error("docker exec did not finish within 5 s");
}

// ------------------------------------------------------------------ a subscriber

class Subscriber {
  readonly ws: WebSocket;
  /** For each seq, whether it arrived. */
  seen: Uint8Array;
  maxSeq = 0;
  received = 0;
  reordered = 0;
  doubled = 0;
  /** The first few lines (seq) that arrived twice, to tell where doubles come from. */
  readonly doubledSeqs: number[] = [];
  /** Latency of each line as it arrived (ms). */
  latencies: Float64Array;
  ended = false;
  closed = false;
  closeInfo = "";
  /** Lines of no phase of ours, or ones that did not parse. */
  other = 0;
  /** Lines the server said it skipped for this subscriber (it was too far behind). */
  toldSkipped = 0;
  /** For the first subscriber only: emit → dockerd's timestamp of each line (ms; dockerd stamps to the ms here). */
  readonly toDockerd: number[] | null;

  readonly tag: string;
  readonly total: number;

  constructor(url: string, tag: string, total: number, first: boolean) {
    this.toDockerd = first ? [] : null;
    this.tag = tag;
    this.total = total;
    this.seen = new Uint8Array(total + 1);
    this.latencies = new Float64Array(total * 2 + 16);
    this.ws = new WebSocket(url);
    this.ws.addEventListener("message", (e) => this.onMessage(e.data));
    this.ws.addEventListener("close", (e) => {
      this.closed = true;
      this.closeInfo = `${e.code} ${e.reason}`;
    });
  }

  opened(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`subscriber not open after ${timeoutMs} ms`)), timeoutMs);
      this.ws.addEventListener(
        "open",
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
      this.ws.addEventListener(
        "close",
        (e) => {
          clearTimeout(timer);
          reject(new Error(`subscriber closed before open: ${e.code} ${e.reason}`));
        },
        { once: true },
      );
    });
  }

  private onMessage(data: unknown) {
    const at = nowMs();
    const msg = typeof data === "string" ? (JSON.parse(data) as { line?: string; time?: string; skipped?: number; lines?: Array<{ line?: string; time?: string }> }) : {};
    if (typeof msg.skipped === "number") this.toldSkipped += msg.skipped;
    if (Array.isArray(msg.lines)) {
      for (const l of msg.lines) this.onLine(l, at);
    } else if (typeof msg.skipped !== "number") this.onLine(msg, at);
  }

  private onLine(msg: { line?: string; time?: string }, at: number) {
    const line = msg.line;
    // "bench <tag> <seq> <emit µs>", or "bench <tag> start|end …"
    const parts = line?.split(" ") ?? [];
    if (parts[0] !== "bench" || parts[1] !== this.tag) {
      this.other++;
      return;
    }
    if (parts[2] === "end") this.ended = true;
    if (parts[2] === "end" || parts[2] === "start") return;
    const seq = Number(parts[2]);
    const emitMs = Number(parts[3]) / 1000;
    if (!(seq >= 1 && seq <= this.total) || !Number.isFinite(emitMs)) {
      this.other++;
      return;
    }
    if (this.seen[seq]) {
      this.doubled++;
      if (this.doubledSeqs.length < 20) this.doubledSeqs.push(seq);
    }
    else if (seq < this.maxSeq) this.reordered++;
    this.seen[seq] = 1;
    if (seq > this.maxSeq) this.maxSeq = seq;
    if (this.received < this.latencies.length) this.latencies[this.received] = at - emitMs;
    this.toDockerd?.push(Date.parse(msg.time ?? "") - emitMs);
    this.received++;
  }

  /** Lines missing below the newest one this subscriber got: skipped, not merely late. */
  gaps(): number {
    let n = 0;
    for (let s = 1; s < this.maxSeq; s++) if (!this.seen[s]) n++;
    return n;
  }

  /** Lines after the newest one it got: not (yet) arrived when the drain time ran out. */
  behind(): number {
    return this.total - this.maxSeq;
  }

  close() {
    try {
      this.ws.close(1000, "bench done");
    } catch {
      /* already */
    }
  }
}

// ------------------------------------------------------------------ the run

interface PhaseResult {
  label: string;
  subscribers: number;
  /** What the container wrote (dockerd's log of it). */
  written: number;
  writtenMissing: number;
  achievedRate: number;
  writeSeconds: number;
  connectMs: number[];
  lost: number[];
  gaps: number[];
  behind: number[];
  reordered: number[];
  doubled: number[];
  /** The seqs of the lines doubled for the first subscriber with any, and how many subscribers had exactly those. */
  doubledSeqs: number[];
  sameDoubled: number;
  other: number;
  toldSkipped: number;
  ended: number;
  closedEarly: string[];
  latP50: number;
  latP99: number;
  latMax: number;
  worstSubP99: number;
  /** Emit → dockerd's timestamp, p50 and p99, as the first subscriber saw them. */
  dockerdP50: number;
  dockerdP99: number;
  /** Seconds from the container's last line to the last subscriber having it all (or the drain timeout). */
  drainS: number;
  rssIdle: number;
  rssPeak: number;
  rssEnd: number;
  rssAfter: number;
  proxyIdle: number;
  proxyPeak: number;
  cpu: { workerd: number; proxy: number; agent: number; bench: number };
  /** The machine's 1-minute load average at the start and the end of the phase. */
  load: [string, string];
}

const engine = new DockerEngine();
const dirs: string[] = [];
let server: DevServer | undefined;
let agent: AgentProcess | undefined;
let api: Client | undefined;
let appId: string | undefined;
let live: Subscriber[] = [];

async function cleanup() {
  for (const s of live) s.close();
  if (appId && api) {
    try {
      // Bounded: a control plane still swamped by the stream may not answer soon; then the container goes by hand.
      const res = await Promise.race([api.call("DELETE", `/apps/${appId}`), sleep(15_000).then(() => null)]);
      if (!res) console.error(`DELETE /apps/${appId}: no answer within 15 s`);
      else if (res.status !== 200) console.error(`DELETE /apps/${appId}: ${res.status} ${JSON.stringify(res.body)}`);
      const end = Date.now() + (res ? 20_000 : 0);
      while ((await engine.list({ "berth.app": appId })).length && Date.now() < end) await sleep(250);
    } catch (err) {
      console.error(`deleting the app: ${(err as Error).message}`);
    }
    try {
      const left = await engine.list({ "berth.app": appId });
      if (left.length) console.error(`removing ${left.length} container(s) of ${appId} the agent left`);
      for (const c of left) await engine.remove(c.id, { force: true });
      await fetch(`http://127.0.0.1:2019/id/berth-app-${appId}`, { method: "DELETE" }).catch(() => undefined);
    } catch (err) {
      console.error(`cleaning up after the app: ${(err as Error).message}`);
    }
  }
  await agent?.kill("SIGTERM");
  await server?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

const exit = cleanupOnExit(cleanup);
const cleanupOnce = exit.cleanup;

const started = performance.now();
try {
  const registryOk = await fetch(`http://${REGISTRY}/v2/`).then((r) => r.ok, () => false);
  if (!registryOk) throw new Error(`the registry is not answering at http://${REGISTRY}/v2/: run test/host/setup.sh first`);
  await engine.ping();

  // The control plane's app frame budget (APP_LOG_FRAMES_PER_SECOND), when asked: what lifting it does.
  server = await startDevServer(values["frames-per-second"] ? { env: { APP_LOG_FRAMES_PER_SECOND: values["frames-per-second"] } } : {});
  const { runtime: workerdPid, proxy: proxyPid } = workerdProcesses(server.pgid);
  const signed = await signedUp(server.url);
  api = signed.api;
  const projectId = (await api.call("GET", "/projects")).body[0].id as string;
  const host = await api.call("POST", `/org/${signed.slug}/hosts`, { name: "bench", kind: "docker" });
  if (host.status !== 201) throw new Error(`enrolling the host: ${host.status} ${JSON.stringify(host.body)}`);
  const state = mkdtempSync(join(tmpdir(), "berth-bench-logs-"));
  dirs.push(state);
  // Caddy's ingress on a free loopback port (a deploy routes the app; nothing here goes through it).
  agent = startAgent(["--url", server.url, "--state-dir", state, "--join-token", host.body.join_token, "--ingress-listen", `127.0.0.1:${await freePort()}`]);
  await agent.waitFor(/connected transport=websocket/, 60_000);

  const created = await api.call("POST", `/projects/${projectId}/apps`, { name: `Logs ${RUN_ID}`, image: IMAGE, internal_port: INTERNAL_PORT, command: COMMAND, memory_limit: 128, cpu_limit: 1 });
  if (created.status !== 201) throw new Error(`creating the app: ${created.status} ${JSON.stringify(created.body)}`);
  appId = created.body.id as string;
  const deploy = await api.call("POST", `/apps/${appId}/deploy`);
  if (deploy.status !== 202) throw new Error(`deploying: ${deploy.status} ${JSON.stringify(deploy.body)}`);
  for (let end = Date.now() + 90_000; ; ) {
    const res = await api.call("GET", `/projects/${projectId}/jobs/${deploy.body.job.id}/wait?timeout=20`);
    if (res.status !== 200) throw new Error(`waiting for the deploy: ${res.status} ${JSON.stringify(res.body)}`);
    if (res.body.done) {
      if (res.body.job.status !== "succeeded") throw new Error(`deploy ${res.body.job.status}: ${res.body.job.error}`);
      break;
    }
    if (Date.now() > end) throw new Error("the deploy did not finish within 90 s");
  }
  const container = (await engine.list({ "berth.app": appId }))[0];
  if (!container) throw new Error("the app's container is not there after the deploy");

  const streamUrl = `${server.url.replace(/^http/, "ws")}/api/v1/apps/${appId}/logs/stream?tail=0${values.batch ? "&batch=1" : ""}&token=${encodeURIComponent(signed.token)}`;

  async function phase(label: string, tag: string, n: number, seconds: number): Promise<PhaseResult> {
    const total = RATE * seconds;
    // Connect, a few at a time.
    const subs: Subscriber[] = [];
    const connectMs: number[] = [];
    for (let i = 0; i < n; i += 10) {
      await Promise.all(
        Array.from({ length: Math.min(10, n - i) }, async () => {
          const t0 = performance.now();
          const s = new Subscriber(streamUrl, tag, total, subs.length === 0);
          subs.push(s);
          live.push(s);
          await s.opened(30_000);
          connectMs.push(performance.now() - t0);
        }),
      );
    }
    // Idle memory, with everyone connected.
    await sleep(1_000);
    const rssIdle = rssBytes(workerdPid);
    const proxyIdle = rssBytes(proxyPid);
    let rssPeak = rssIdle;
    let proxyPeak = proxyIdle;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, rssBytes(workerdPid));
      proxyPeak = Math.max(proxyPeak, rssBytes(proxyPid));
    }, SAMPLE_MS);
    const cpu0 = { workerd: cpuSeconds(workerdPid), proxy: cpuSeconds(proxyPid), agent: cpuSeconds(agent!.child.pid!), bench: process.cpuUsage() };
    const load0 = loadAverage();
    const wall0 = performance.now();
    const since = new Date(Date.now() - 1_000);

    await dockerExec(container!.id, ["/bin/sh", "-c", `echo ${RATE} ${seconds} ${tag} > ${GO_FILE}.new && /bin/busybox mv ${GO_FILE}.new ${GO_FILE}`]);
    console.log(`  ${label}: ${n} subscriber(s) connected (median ${fmt(pct(connectMs, 50), 0)} ms each); the container writes ${total} lines over ${seconds} s…`);

    // Until every subscriber has had the end line, or the container's end plus the drain time.
    const deadline = performance.now() + (seconds + 5 + DRAIN_S) * 1000;
    let lastEnded = NaN;
    while (performance.now() < deadline) {
      if (subs.every((s) => s.ended || s.closed)) {
        lastEnded = performance.now();
        break;
      }
      if (exit.interrupted) throw new Error("interrupted");
      await sleep(50);
    }
    const wallEnd = performance.now();
    const cpuBench = process.cpuUsage(cpu0.bench);
    const span = (wallEnd - wall0) / 1000;
    const cpu = {
      workerd: (cpuSeconds(workerdPid) - cpu0.workerd) / span,
      proxy: (cpuSeconds(proxyPid) - cpu0.proxy) / span,
      agent: (cpuSeconds(agent!.child.pid!) - cpu0.agent) / span,
      bench: (cpuBench.user + cpuBench.system) / 1e6 / span,
    };
    clearInterval(sampler);
    const rssEnd = rssBytes(workerdPid);

    // What the container really wrote, from dockerd's log.
    const logged = await engine.logs(container!.id, { since });
    let written = 0;
    let firstEmit = NaN;
    let lastEmit = NaN;
    let endAt = NaN;
    const wroteSeq = new Uint8Array(total + 1);
    for (const l of logged) {
      const p = l.text.split(" ");
      if (p[0] !== "bench" || p[1] !== tag) continue;
      if (p[2] === "end") {
        endAt = Number(p[4]) / 1000;
        continue;
      }
      if (p[2] === "start") continue;
      const seq = Number(p[2]);
      if (!(seq >= 1 && seq <= total) || wroteSeq[seq]) continue;
      wroteSeq[seq] = 1;
      written++;
      if (seq === 1) firstEmit = Number(p[3]) / 1000;
      if (seq === total) lastEmit = Number(p[3]) / 1000;
    }
    const writeSeconds = (lastEmit - firstEmit) / 1000;

    const lat = new Float64Array(subs.reduce((a, s) => a + Math.min(s.received, s.latencies.length), 0));
    let k = 0;
    let worstSubP99 = 0;
    for (const s of subs) {
      const mine = s.latencies.subarray(0, Math.min(s.received, s.latencies.length));
      lat.set(mine, k);
      k += mine.length;
      if (mine.length) worstSubP99 = Math.max(worstSubP99, pct(Array.from(mine), 99));
    }
    lat.sort();
    const at = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.max(0, Math.ceil((p / 100) * lat.length) - 1))]! : NaN);

    const result: PhaseResult = {
      label,
      subscribers: n,
      written,
      writtenMissing: total - written,
      achievedRate: (total - 1) / writeSeconds,
      writeSeconds,
      connectMs,
      lost: subs.map((s) => s.gaps() + s.behind()),
      gaps: subs.map((s) => s.gaps()),
      behind: subs.map((s) => s.behind()),
      reordered: subs.map((s) => s.reordered),
      doubled: subs.map((s) => s.doubled),
      doubledSeqs: subs.find((s) => s.doubled)?.doubledSeqs ?? [],
      sameDoubled: subs.filter((s) => s.doubled && s.doubledSeqs.join() === (subs.find((d) => d.doubled)?.doubledSeqs ?? []).join()).length,
      other: subs.reduce((a, s) => a + s.other, 0),
      toldSkipped: subs.reduce((a, s) => a + s.toldSkipped, 0),
      ended: subs.filter((s) => s.ended).length,
      closedEarly: subs.filter((s) => s.closed).map((s) => s.closeInfo),
      latP50: at(50),
      latP99: at(99),
      latMax: lat.length ? lat[lat.length - 1]! : NaN,
      worstSubP99,
      dockerdP50: subs[0]?.toDockerd?.length ? pct(subs[0].toDockerd, 50) : NaN,
      dockerdP99: subs[0]?.toDockerd?.length ? pct(subs[0].toDockerd, 99) : NaN,
      drainS: Number.isFinite(lastEnded) && Number.isFinite(endAt) ? (performance.timeOrigin + lastEnded - endAt) / 1000 : NaN,
      rssIdle,
      rssPeak,
      rssEnd,
      rssAfter: NaN,
      proxyIdle,
      proxyPeak,
      cpu,
      load: [load0, loadAverage()],
    };
    for (const s of subs) s.close();
    live = live.filter((s) => !subs.includes(s));
    await sleep(3_000);
    result.rssAfter = rssBytes(workerdPid);
    if (values.verbose) {
      subs.forEach((s, i) => {
        console.log(`    subscriber ${String(i + 1).padStart(3)}: received ${s.received}, lost ${result.lost[i]}, reordered ${s.reordered}, doubled ${s.doubled}, end line ${s.ended ? "yes" : "no"}`);
      });
    }
    return result;
  }

  console.log(
    `bench:logs — one app's log stream: ${RATE} lines/s for ${SECONDS} s to ${SUBSCRIBERS} WebSocket subscribers, against the same stream (${BASELINE_SECONDS} s) to 1 subscriber; ` +
      `drain allowance ${DRAIN_S} s; ${values.batch ? "frames of many lines (batch=1)" : "one message per line"}; app frame budget ${values["frames-per-second"] ?? "default"}; ${(await engine.list({ "berth.app": appId }))[0]?.id.slice(0, 12)} on dockerd; workerd (Worker and Durable Objects) pid ${workerdPid}, wrangler's proxy workerd pid ${proxyPid}\n`,
  );
  const base = await phase("baseline", `b${RUN_ID}`, 1, BASELINE_SECONDS);
  const fan = await phase("fan-out", `f${RUN_ID}`, SUBSCRIBERS, SECONDS);
  const again: PhaseResult[] = [];
  for (let r = 2; r <= ROUNDS; r++) again.push(await phase(`fan-out, round ${r}`, `f${r}${RUN_ID}`, SUBSCRIBERS, SECONDS));

  // ---------------------------------------------------------------- report
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const perSub = (xs: number[]) => `${sum(xs)} in all, ${xs.filter((x) => x > 0).length} subscriber(s) with any, at most ${Math.max(...xs)} for one`;
  const col = (s: string | number) => String(s).padStart(16);
  const row = (label: string, b: string | number, f: string | number, ratio = "") => console.log(`${label.padEnd(52)}${col(b)}${col(f)}${ratio.padStart(10)}`);
  const ratio = (f: number, b: number) => (Number.isFinite(f / b) ? `${(f / b).toFixed(2)}×` : "n/a");

  console.log("");
  row("", "baseline", "fan-out", "÷ base");
  row("subscribers", base.subscribers, fan.subscribers);
  row("container wrote (lines, dockerd's log)", `${base.written}/${RATE * BASELINE_SECONDS}`, `${fan.written}/${RATE * SECONDS}`);
  row("achieved rate (lines/s, seq 1 → last emit time)", fmt(base.achievedRate, 0), fmt(fan.achievedRate, 0));
  row("lines delivered (all subscribers)", sum(base.lost.map((l) => base.written - l)), sum(fan.lost.map((l) => fan.written - l)), ratio(sum(fan.lost.map((l) => fan.written - l)), sum(base.lost.map((l) => base.written - l))));
  row("lost, all subscribers", sum(base.lost), sum(fan.lost));
  row("  of which skipped (missing before a later line)", sum(base.gaps), sum(fan.gaps));
  row("  of which late (not there by the drain deadline)", sum(base.behind), sum(fan.behind));
  row("  lines the server said it skipped (all subscribers)", base.toldSkipped, fan.toldSkipped);
  row("reordered, all subscribers", sum(base.reordered), sum(fan.reordered));
  row("doubled, all subscribers", sum(base.doubled), sum(fan.doubled));
  row("subscribers that got the end line", `${base.ended}/${base.subscribers}`, `${fan.ended}/${fan.subscribers}`);
  row("line latency p50 (ms, emit → subscriber)", fmt(base.latP50), fmt(fan.latP50), ratio(fan.latP50, base.latP50));
  row("line latency p99 (ms)", fmt(base.latP99), fmt(fan.latP99), ratio(fan.latP99, base.latP99));
  row("line latency max (ms)", fmt(base.latMax), fmt(fan.latMax), ratio(fan.latMax, base.latMax));
  row("worst subscriber's p99 (ms)", fmt(base.worstSubP99), fmt(fan.worstSubP99), ratio(fan.worstSubP99, base.worstSubP99));
  row("  of which emit → dockerd's timestamp, p50 / p99", `${fmt(base.dockerdP50)} / ${fmt(base.dockerdP99)}`, `${fmt(fan.dockerdP50)} / ${fmt(fan.dockerdP99)}`);
  row("last line written → all subscribers had it (s)", fmt(base.drainS, 2), fmt(fan.drainS, 2), ratio(fan.drainS, base.drainS));
  row("workerd RSS before (subscribers connected)", mb(base.rssIdle), mb(fan.rssIdle));
  row("workerd RSS peak during", mb(base.rssPeak), mb(fan.rssPeak));
  row("workerd RSS growth, peak − before", mb(base.rssPeak - base.rssIdle), mb(fan.rssPeak - fan.rssIdle), ratio(fan.rssPeak - fan.rssIdle, base.rssPeak - base.rssIdle));
  row("workerd RSS at the end of the phase", mb(base.rssEnd), mb(fan.rssEnd));
  row("workerd RSS 3 s after the subscribers left", mb(base.rssAfter), mb(fan.rssAfter));
  row("wrangler's proxy workerd RSS growth, peak − before", mb(base.proxyPeak - base.proxyIdle), mb(fan.proxyPeak - fan.proxyIdle));
  row("CPU, workerd (cores, over the phase)", fmt(base.cpu.workerd, 2), fmt(fan.cpu.workerd, 2), ratio(fan.cpu.workerd, base.cpu.workerd));
  row("CPU, wrangler's proxy workerd", fmt(base.cpu.proxy, 2), fmt(fan.cpu.proxy, 2), ratio(fan.cpu.proxy, base.cpu.proxy));
  row("CPU, agent", fmt(base.cpu.agent, 2), fmt(fan.cpu.agent, 2), ratio(fan.cpu.agent, base.cpu.agent));
  row("CPU, this process (the subscribers)", fmt(base.cpu.bench, 2), fmt(fan.cpu.bench, 2), ratio(fan.cpu.bench, base.cpu.bench));
  row(`machine load average, start → end (${availableParallelism()} CPUs)`, `${base.load[0]} → ${base.load[1]}`, `${fan.load[0]} → ${fan.load[1]}`);

  for (const r of [base, fan]) {
    if (r.writtenMissing) console.log(`note (${r.label}): dockerd's log of the container lacks ${r.writtenMissing} of the lines; they count as lost for every subscriber`);
    if (r.other) console.log(`note (${r.label}): ${r.other} message(s) that were not this phase's lines`);
    if (r.closedEarly.length) console.log(`note (${r.label}): ${r.closedEarly.length} subscriber(s) closed by the server: ${[...new Set(r.closedEarly)].join("; ")}`);
  }
  for (const r of [base, fan, ...again]) {
    if (r.doubledSeqs.length) console.log(`note (${r.label}): lines doubled (seq, first subscriber with any): ${r.doubledSeqs.join(", ")}; ${r.sameDoubled} subscriber(s) had exactly these doubled`);
  }
  console.log(`\nper subscriber (fan-out): lost ${perSub(fan.lost)}; reordered ${perSub(fan.reordered)}; doubled ${perSub(fan.doubled)}`);
  if (again.length) {
    console.log("\nthe fan-out phase again, same control plane (workerd RSS: before → peak → 3 s after the subscribers left):");
    for (const r of [fan, ...again]) {
      console.log(
        `  ${r.label.padEnd(20)} delivered ${sum(r.lost.map((l) => r.written - l))}, lost ${sum(r.lost)}, reordered ${sum(r.reordered)}, doubled ${sum(r.doubled)}, p99 ${fmt(r.latP99)} ms; ` +
          `RSS ${mb(r.rssIdle)} → ${mb(r.rssPeak)} → ${mb(r.rssAfter)}; CPU workerd ${fmt(r.cpu.workerd, 2)}, proxy ${fmt(r.cpu.proxy, 2)}, agent ${fmt(r.cpu.agent, 2)}, bench ${fmt(r.cpu.bench, 2)}; load ${r.load[0]} → ${r.load[1]}`,
      );
    }
  }
  const bad = [base, fan, ...again].reduce((n, r) => n + sum(r.lost) + sum(r.reordered) + sum(r.doubled), 0);
  console.log(`goal: 0 lines lost, reordered or doubled for every subscriber: ${bad === 0 ? "met" : "NOT met"}`);
  console.log(
    `(memory: the resident set of the workerd process that runs the Worker and every Durable Object (the ProjectDO that fans out among them), sampled every ${SAMPLE_MS} ms; ` +
      "Durable Objects report no memory of their own. wrangler dev puts a second workerd, a proxy, between the clients and it: every frame passes through that too, which production does not have.)",
  );
} catch (err) {
  process.exitCode = 1;
  if (!exit.interrupted) console.error(`\nbench:logs failed: ${(err as Error).stack ?? err}`);
  if (agent && !exit.interrupted) console.error(`--- agent output (tail) ---\n${agent.output().slice(-4000)}`);
} finally {
  await cleanupOnce();
  console.log(`\n(whole run ${((performance.now() - started) / 1000).toFixed(0)} s)`);
}
