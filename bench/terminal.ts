/**
 * bench:terminal — a keystroke's round trip through a terminal: typed into Dockup's exec
 * socket (`/apps/{id}/exec`), through the Worker, the session's TerminalDO, the agent's
 * session socket and dockerd's TTY, echoed by the TTY and back the same way. Beside it, in
 * the same run and on the same machine:
 *
 *   bare echo     a WebSocket to a bare Worker on the same workerd (bench/bare) that echoes
 *                 every frame: what a round trip through wrangler dev's runtime costs at least
 *   docker TTY    the same keystroke written straight into a TTY exec on the same container
 *                 through the agent's Docker driver: what dockerd and the TTY cost
 *
 * The same keystroke over DevPocket's `/ws/terminal` (JSON `pty_input` in, `pty_output` out),
 * through the same Worker, a TerminalDO and the agent:
 *
 *   host shell    `create_pty`: a shell on the Docker host (the agent's helper container and
 *                 `nsenter`, through a Docker exec TTY)
 *   SSH shell     `connect_ssh` to the test sshd on 127.0.0.1:2222 (the agent's ssh2 client)
 *
 * One keystroke at a time (the next is typed when the echo of the last arrived), as a person
 * types; p50 and p99 of each and the ratio of its p50 to the bare echo's. The program is
 * `cat`, so the TTY echoes each key at once and nothing else writes; every 64 keys a newline
 * clears the line (not measured).
 *
 * Then a flood: `cat /dev/zero` with a TTY for --flood seconds, straight from dockerd and
 * then through the exec socket, read as fast as this process can while a second socket
 * watches the session and stops reading (a raw TCP client that pauses): bytes a second each,
 * the time a Ctrl-C takes to end it through the flood, and workerd's resident memory before
 * and at its peak (the TerminalDO hands a socket more only while it holds under 1 MiB its peer
 * has not read, so the stalled viewer holds at most that much of workerd's memory; what
 * wrangler dev's own proxy in front of workerd buffers is the proxy's).
 *
 * Needs test/host/setup.sh (dockerd, the registry, Caddy's admin API and the sshd).
 *
 *   npm run bench:terminal [-- --keys 500 --warmup 50 --flood 10]
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DockerEngine } from "../agent/src/drivers/docker.ts";
import { type AgentProcess, startAgent } from "../test/node/support/agent.ts";
import { signedUp, waitForJob } from "../test/node/support/client.ts";
import { type DevServer, freePort, startDevServer } from "../test/node/support/dev-server.ts";
import { cleanupOnExit } from "./cleanup.ts";
import { pct } from "./stats.ts";

const { values } = parseArgs({
  options: {
    keys: { type: "string", default: process.env.BENCH_TERMINAL_KEYS ?? "500" },
    warmup: { type: "string", default: process.env.BENCH_TERMINAL_WARMUP ?? "50" },
    flood: { type: "string", default: process.env.BENCH_TERMINAL_FLOOD ?? "10" },
  },
});
const KEYS = Number(values.keys);
const WARMUP = Number(values.warmup);
const FLOOD_S = Number(values.flood);
const IMAGE = "127.0.0.1:5000/berth/hello:v1";

/** Round trips of single keystrokes: `send` one key, resolve when `echoed` sees it come back. */
interface Typist {
  send(key: string): void;
  /** Registers the one waiter for the next output. */
  next(): Promise<void>;
  close(): void;
}

function socketTypist(url: string): Promise<Typist> {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  let waiter: (() => void) | null = null;
  ws.addEventListener("message", (e) => {
    if (typeof e.data === "string" && !url.includes("/echo")) return; // the session's control messages
    const w = waiter;
    waiter = null;
    w?.();
  });
  return new Promise((resolve, reject) => {
    ws.addEventListener("open", () =>
      resolve({
        send: (k) => ws.send(k),
        next: () => new Promise((r) => (waiter = r)),
        close: () => ws.close(1000),
      }),
    );
    ws.addEventListener("error", () => reject(new Error(`could not open ${url.replace(/token=[^&]+/, "token=…")}`)));
  });
}

/**
 * A `/ws/terminal` socket that starts a session with `start` (create_pty or connect_ssh), runs
 * `cat` in its shell and waits for the shell to go quiet; keys go as `pty_input`, and the next
 * `pty_output` is the echo.
 */
async function wsTerminalTypist(url: string, start: object): Promise<Typist> {
  const ws = new WebSocket(url);
  let waiter: (() => void) | null = null;
  let output = "";
  let lastOutput = 0;
  const started = new Promise<void>((resolve, reject) => {
    setTimeout(() => reject(new Error("the session did not start in 60 s")), 60_000).unref();
    ws.addEventListener("message", (e) => {
      const m = JSON.parse(e.data as string) as { type: string; data?: string; code?: string; message?: string };
      if (m.type === "pty_created" || m.type === "ssh_connected") resolve();
      else if (m.type === "error") reject(new Error(`${m.code}: ${m.message}`));
      else if (m.type === "pty_output") {
        output += m.data;
        lastOutput = performance.now();
        const w = waiter;
        waiter = null;
        w?.();
      }
    });
    ws.addEventListener("close", (e) => reject(new Error(`closed ${e.code} ${e.reason}`)));
  });
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve);
    ws.addEventListener("error", () => reject(new Error("could not open /ws/terminal")));
  });
  ws.send(JSON.stringify(start));
  await started;
  ws.send(JSON.stringify({ type: "command", data: "exec cat" }));
  // The prompt, the echo of the command line: then nothing for 500 ms means cat reads the TTY.
  const end = Date.now() + 15_000;
  while (!output.includes("exec cat") || performance.now() - lastOutput < 500) {
    if (Date.now() > end) throw new Error(`the shell did not start cat: ${JSON.stringify(output.slice(-300))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    send: (k) => ws.send(JSON.stringify({ type: "pty_input", data: k })),
    next: () => new Promise((r) => (waiter = r)),
    close: () => ws.close(1000),
  };
}

/** A WebSocket client that completes the upgrade and then stops reading (its TCP window fills). */
function stalledSocket(url: string): Promise<Socket> {
  const u = new URL(url);
  const socket = connect(Number(u.port), u.hostname);
  socket.write(
    `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.once("data", (head) => {
      if (!head.toString("latin1").startsWith("HTTP/1.1 101")) return reject(new Error(`no upgrade: ${head.toString("latin1").split("\r\n")[0]}`));
      socket.pause();
      resolve(socket);
    });
  });
}

async function dockerTypist(docker: DockerEngine, containerId: string): Promise<Typist> {
  const session = await docker.exec(containerId, { cmd: ["cat"], cols: 80, rows: 24 });
  let waiter: (() => void) | null = null;
  session.stream.on("data", () => {
    const w = waiter;
    waiter = null;
    w?.();
  });
  return { send: (k) => session.write(k), next: () => new Promise((r) => (waiter = r)), close: () => session.close() };
}

/** Types `WARMUP + KEYS` keys one at a time; the round trips of the last KEYS, in ms. */
async function typeKeys(t: Typist): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < WARMUP + KEYS; i++) {
    if (i % 64 === 63) {
      // A newline: cat prints the line back; let that pass before the next measured key.
      const line = t.next();
      t.send("\n");
      await line;
      await new Promise((r) => setTimeout(r, 30));
    }
    const echoed = t.next();
    const start = performance.now();
    t.send(String.fromCharCode(97 + (i % 26)));
    await echoed;
    if (i >= WARMUP) times.push(performance.now() - start);
  }
  t.close();
  return times;
}

/** workerd's resident memory (kB), summed over the dev server's process group. */
function workerdRssKb(pgid: number): number {
  let total = 0;
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) !== pgid || !/workerd/.test(readFileSync(`/proc/${pid}/comm`, "utf8"))) continue;
      total += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      /* gone */
    }
  }
  return total;
}

const servers: DevServer[] = [];
let agent: AgentProcess | null = null;
let appId: string | null = null;
const dirs: string[] = [];
const { cleanup } = cleanupOnExit(async () => {
  if (appId) {
    const ids = execFileSync("docker", ["ps", "-aq", "--filter", `label=berth.app=${appId}`], { encoding: "utf8" }).split("\n").filter(Boolean);
    if (ids.length) execFileSync("docker", ["rm", "-f", ...ids]);
    await fetch(`http://127.0.0.1:2019/id/berth-app-${appId}`, { method: "DELETE" }).catch(() => undefined);
  }
  await agent?.kill("SIGTERM");
  await Promise.all(servers.map((s) => s.stop()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

type Row = [string, number[]];
try {
  const rows: Row[] = [];

  const bare = await startDevServer({ config: "bench/bare/wrangler.toml", production: true });
  servers.push(bare);
  rows.push(["bare Worker echo", await typeKeys(await socketTypist(`${bare.url.replace(/^http/, "ws")}/echo`))]);
  await bare.stop();

  const berth = await startDevServer();
  servers.push(berth);
  const { api, token, slug } = await signedUp(berth.url);
  const projectId = (await api.call("GET", "/projects")).body[0].id;
  const host = await api.call("POST", `/org/${slug}/hosts`, { name: "bench-terminal", kind: "docker" });
  const stateDir = mkdtempSync(join(tmpdir(), "berth-bench-term-"));
  dirs.push(stateDir);
  agent = startAgent([
    "--url", berth.url, "--state-dir", stateDir, "--join-token", host.body.join_token,
    "--ingress-listen", `127.0.0.1:${await freePort()}`, "--host-shell-image", IMAGE,
  ]);
  await agent.waitFor(/connected transport=websocket/);
  const created = await api.call("POST", `/projects/${projectId}/apps`, { name: `Bench term ${Date.now().toString(36)}`, image: IMAGE, internal_port: 8080 });
  if (created.status !== 201) throw new Error(`app: ${created.status} ${JSON.stringify(created.body)}`);
  appId = created.body.id as string;
  const dep = await api.call("POST", `/apps/${appId}/deploy`);
  const job = await waitForJob(api, projectId, dep.body.job.id, { context: () => agent!.output().slice(-2000) });
  if (job.status !== "succeeded") throw new Error(`deploy failed: ${job.error}`);

  const docker = new DockerEngine();
  const container = (await docker.list({ "berth.app": appId })).find((c) => c.state === "running");
  if (!container) throw new Error("the app has no running container");
  rows.push(["docker TTY (agent's driver)", await typeKeys(await dockerTypist(docker, container.id))]);

  const execUrl = (cmd: string) => `${berth.url.replace(/^http/, "ws")}/api/v1/apps/${appId}/exec?token=${encodeURIComponent(token)}&cmd=${encodeURIComponent(cmd)}`;
  rows.push(["terminal (Worker, DO, agent)", await typeKeys(await socketTypist(execUrl("cat")))]);

  const wsUrl = `${berth.url.replace(/^http/, "ws")}/api/v1/ws/terminal?token=${encodeURIComponent(token)}`;
  rows.push(["/ws/terminal host shell", await typeKeys(await wsTerminalTypist(wsUrl, { type: "create_pty" }))]);
  const password = readFileSync("/tmp/berth-host/ssh/password", "utf8").trim();
  rows.push(["/ws/terminal SSH (127.0.0.1:2222)", await typeKeys(await wsTerminalTypist(wsUrl, { type: "connect_ssh", config: { host: "127.0.0.1", port: 2222, username: "berthssh", password } }))]);

  const load = loadavg().map((l) => l.toFixed(2)).join(" ");
  const base = pct(rows[0]![1], 50);
  console.log(`\nkeystroke → echo round trip, one key at a time, ${KEYS} keys after ${WARMUP} warm-up; load average ${load}\n`);
  console.log(`${"".padEnd(36)}${"p50 ms".padStart(9)}${"p99 ms".padStart(9)}${"max ms".padStart(9)}${"p50 ÷ bare".padStart(12)}`);
  for (const [label, xs] of rows) {
    console.log(`${label.padEnd(36)}${pct(xs, 50).toFixed(2).padStart(9)}${pct(xs, 99).toFixed(2).padStart(9)}${Math.max(...xs).toFixed(2).padStart(9)}${(pct(xs, 50) / base).toFixed(2).padStart(12)}`);
  }
  console.log("");
  for (const [label, xs] of rows.slice(2)) {
    const p50 = pct(xs, 50);
    console.log(`goal: p50 under 20 ms, ${label}: ${p50.toFixed(2)} ms (${p50 < 20 ? "met" : "not met"})`);
  }

  if (FLOOD_S > 0) {
    // The flood: `cat /dev/zero` writes as fast as the TTY takes it (busybox's `yes` writes a
    // line per syscall, which measures the program, not the path). First straight from
    // dockerd's TTY through the agent's driver, then through the exec socket.
    const direct = await docker.exec(container.id, { cmd: ["cat", "/dev/zero"], cols: 80, rows: 24 });
    let directBytes = 0;
    direct.stream.on("data", (c: Buffer) => (directBytes += c.length));
    await new Promise((r) => setTimeout(r, FLOOD_S * 1000));
    direct.write("\x03");
    direct.close();
    const directRate = directBytes / FLOOD_S / 1024 / 1024;

    const before = workerdRssKb(berth.pgid);
    let peak = before;
    let bytes = 0;
    const ws = new WebSocket(execUrl("cat /dev/zero"));
    ws.binaryType = "arraybuffer";
    ws.addEventListener("message", (e) => {
      if (typeof e.data !== "string") bytes += (e.data as ArrayBuffer).byteLength;
    });
    let sessionId = "";
    ws.addEventListener("message", (e) => {
      if (typeof e.data === "string" && !sessionId) sessionId = (JSON.parse(e.data) as { session_id: string }).session_id;
    });
    await new Promise((r) => ws.addEventListener("open", r));
    while (!sessionId) await new Promise((r) => setTimeout(r, 10));
    // A viewer that stops reading: the session must not hand it more than its socket's bound.
    const stalled = await stalledSocket(`${berth.url.replace(/^http/, "ws")}/api/v1/apps/${appId}/exec?token=${encodeURIComponent(token)}&session=${sessionId}&view=1`);
    const start = performance.now();
    const sampler = setInterval(() => (peak = Math.max(peak, workerdRssKb(berth.pgid))), 250);
    await new Promise((r) => setTimeout(r, FLOOD_S * 1000));
    // Ctrl-C stops the flood; the keystroke has to get through it.
    const interrupted = performance.now();
    ws.send("\x03");
    const closed = await new Promise<{ code: number; reason: string }>((r) => {
      ws.addEventListener("close", (e) => r({ code: e.code, reason: e.reason }));
      setTimeout(() => r({ code: 0, reason: "not closed within 15 s" }), 15_000);
    });
    const stopMs = performance.now() - interrupted;
    clearInterval(sampler);
    stalled.destroy();
    const seconds = (interrupted - start) / 1000;
    const rate = bytes / seconds / 1024 / 1024;
    console.log(`\nflood: \`cat /dev/zero\` with a TTY for ${FLOOD_S} s, a second viewer of the session not reading`);
    console.log(`  docker TTY (agent's driver)   ${directRate.toFixed(1)} MiB/s`);
    console.log(`  terminal (Worker, DO, agent)  ${rate.toFixed(1)} MiB/s (${(rate / directRate).toFixed(2)} of docker's)`);
    console.log(`  Ctrl-C to close: ${stopMs.toFixed(0)} ms (${closed.code} ${closed.reason})`);
    console.log(`  workerd resident memory: ${(before / 1024).toFixed(0)} MiB before, ${(peak / 1024).toFixed(0)} MiB at peak (+${((peak - before) / 1024).toFixed(0)} MiB)`);
  }
} finally {
  await cleanup();
}
