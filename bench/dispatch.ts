/**
 * bench:dispatch — how fast a job reaches a host and comes back.
 *
 * Starts the control plane (`wrangler dev`, as `npm run dev` does) and one
 * agent, submits `host.exec` jobs through the API and prints p50/p99 of
 * submit → agent start and submit → finished, and jobs per second with
 * several in flight; then the same with the agent's WebSocket off (HTTP
 * long-poll claims only), and the ratio between the two.
 *
 *   npm run bench:dispatch [-- --jobs 100 --concurrency 8]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startAgent } from "../test/node/support/agent.ts";
import { signedUp } from "../test/node/support/client.ts";
import { startDevServer } from "../test/node/support/dev-server.ts";
import { pct } from "./stats.ts";

const { values } = parseArgs({ options: { jobs: { type: "string", default: "60" }, concurrency: { type: "string", default: "8" } } });
const JOBS = Number(values.jobs);
const CONCURRENCY = Number(values.concurrency);

const ms = (x: number) => `${x.toFixed(1)} ms`;

interface Result {
  startP50: number;
  startP99: number;
  endP50: number;
  endP99: number;
  jobsPerSecond: number;
}

const server = await startDevServer();
const stateDirs: string[] = [];
try {
  const { api, slug } = await signedUp(server.url);
  const hostRes = await api.call("POST", `/org/${slug}/hosts`, { name: "bench", kind: "docker" });
  const hostId = hostRes.body.host.id as string;
  const state = mkdtempSync(join(tmpdir(), "berth-bench-"));
  stateDirs.push(state);

  async function one(): Promise<{ start: number; end: number }> {
    const t0 = Date.now();
    const res = await api.call("POST", `/org/${slug}/hosts/${hostId}/exec`, { command: "true", timeout_seconds: 30 });
    if (res.status !== 202) throw new Error(`submit failed: ${res.status} ${JSON.stringify(res.body)}`);
    const id = res.body.job.id;
    for (;;) {
      const w = await api.call("GET", `/org/${slug}/hosts/${hostId}/jobs/${id}/wait?timeout=30`);
      if (w.body.done) {
        const end = Date.now() - t0;
        if (w.body.job.status !== "succeeded") throw new Error(`job ${id} ${w.body.job.status}: ${w.body.job.error}`);
        return { start: Date.parse(w.body.job.started_at) - t0, end };
      }
    }
  }

  async function measure(label: string, args: string[]): Promise<Result> {
    const agent = startAgent(["--url", server.url, "--state-dir", state, "--docker-socket", "/nonexistent.sock", ...args]);
    await agent.waitFor(/berth-agent starting/);
    await new Promise((r) => setTimeout(r, 1_000));
    for (let i = 0; i < 5; i++) await one(); // warm up isolates, Durable Objects and the queue
    const starts: number[] = [];
    const ends: number[] = [];
    for (let i = 0; i < JOBS; i++) {
      const r = await one();
      starts.push(r.start);
      ends.push(r.end);
    }
    // Throughput: JOBS jobs with CONCURRENCY in flight.
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next++ < JOBS) await one();
      }),
    );
    const jobsPerSecond = JOBS / ((performance.now() - t0) / 1000);
    await agent.kill("SIGTERM");
    const r = { startP50: pct(starts, 50), startP99: pct(starts, 99), endP50: pct(ends, 50), endP99: pct(ends, 99), jobsPerSecond };
    console.log(
      `${label.padEnd(22)} submit→start p50 ${ms(r.startP50).padStart(9)}  p99 ${ms(r.startP99).padStart(9)}   ` +
        `submit→finished p50 ${ms(r.endP50).padStart(9)}  p99 ${ms(r.endP99).padStart(9)}   ${r.jobsPerSecond.toFixed(1)} jobs/s (${CONCURRENCY} in flight)`,
    );
    return r;
  }

  const joinToken = hostRes.body.join_token as string;
  // Join once; both runs reuse the credential.
  const joiner = startAgent(["--url", server.url, "--state-dir", state, "--join-token", joinToken, "--docker-socket", "/nonexistent.sock"]);
  await joiner.waitFor(/joined/);
  await joiner.kill("SIGTERM");

  console.log(`bench:dispatch — ${JOBS} sequential jobs per mode, then ${JOBS} with ${CONCURRENCY} in flight; command: true\n`);
  const ws = await measure("websocket push", []);
  const http = await measure("http claim (baseline)", ["--no-websocket"]);
  console.log(
    `\nratio http/websocket   submit→start p50 ${(http.startP50 / ws.startP50).toFixed(2)}×  p99 ${(http.startP99 / ws.startP99).toFixed(2)}×   ` +
      `submit→finished p50 ${(http.endP50 / ws.endP50).toFixed(2)}×   throughput ${(ws.jobsPerSecond / http.jobsPerSecond).toFixed(2)}×`,
  );
  console.log(`target: submit→start p50 < 50 ms with the socket: ${ws.startP50 < 50 ? "met" : "NOT met"} (${ms(ws.startP50)}).`);
  console.log(`a 5 s polling agent (Portainer edge default) waits 2500 ms on average before it even sees a job: ${(2500 / ws.startP50).toFixed(0)}× the socket's p50.`);
} finally {
  await server.stop();
  for (const d of stateDirs) rmSync(d, { recursive: true, force: true });
}
