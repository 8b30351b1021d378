/**
 * The real path: `wrangler dev` (workerd with local D1, Durable Objects and
 * the Queue) plus real agent processes running commands on this machine.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "./support/agent";
import { type Client, signedUp } from "./support/client";
import { type DevServer, startDevServer } from "./support/dev-server";

// Short timings so deadlines, offline detection and lease expiry happen within a test.
const HEARTBEAT_SECONDS = 1;
const QUEUE_GRACE_SECONDS = 4;
const LEASE_TTL_SECONDS = 5;

let server: DevServer;
let api: Client;
let slug: string;
const agents: AgentProcess[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  server = await startDevServer({
    env: {
      AGENT_HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS),
      JOB_QUEUE_GRACE_SECONDS: String(QUEUE_GRACE_SECONDS),
      AGENT_LEASE_TTL_SECONDS: String(LEASE_TTL_SECONDS),
    },
  });
  ({ api, slug } = await signedUp(server.url));
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.kill("SIGKILL")));
  await server?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(tag: string) {
  const dir = mkdtempSync(join(tmpdir(), `berth-${tag}-`));
  dirs.push(dir);
  return dir;
}

async function enrol(name: string) {
  const res = await api.call("POST", `/org/${slug}/hosts`, { name, kind: "docker" });
  expect(res.status).toBe(201);
  return { hostId: res.body.host.id as string, joinToken: res.body.join_token as string };
}

function agent(stateDir: string, extra: string[] = []) {
  const a = startAgent(["--url", server.url, "--state-dir", stateDir, "--docker-socket", "/nonexistent.sock", ...extra]);
  agents.push(a);
  return a;
}

async function exec(hostId: string, command: string, timeout_seconds = 30) {
  const res = await api.call("POST", `/org/${slug}/hosts/${hostId}/exec`, { command, timeout_seconds });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.job.id as string;
}

async function waitDone(hostId: string, jobId: string, seconds = 30) {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const res = await api.call("GET", `/org/${slug}/hosts/${hostId}/jobs/${jobId}/wait?timeout=${Math.min(10, seconds)}`);
    expect(res.status).toBe(200);
    if (res.body.done) return res.body.job;
    if (Date.now() > end) throw new Error(`job ${jobId} not done: ${JSON.stringify(res.body.job)}`);
  }
}

async function logsOf(hostId: string, jobId: string) {
  const res = await api.call("GET", `/org/${slug}/hosts/${hostId}/jobs/${jobId}/logs`);
  expect(res.status).toBe(200);
  const lines = res.body.logs as Array<{ stream: string; text: string }>;
  return {
    stdout: lines.filter((l) => l.stream === "stdout").map((l) => l.text).join(""),
    stderr: lines.filter((l) => l.stream === "stderr").map((l) => l.text).join(""),
  };
}

async function eventually<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, seconds = 20): Promise<T> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const hostOf = async (hostId: string) => (await api.call("GET", `/org/${slug}/hosts/${hostId}`)).body.host;

describe("agent on a real control plane", () => {
  it("joins once, reports its facts, runs a job and streams its output in order", async () => {
    const { hostId, joinToken } = await enrol("alpha");
    const state = tempDir("alpha");
    const a = agent(state, ["--join-token", joinToken]);
    await a.waitFor(/connected transport=websocket/);
    expect(statSync(join(state, "identity.json")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(state, "identity.json"), "utf8")).toMatch(/"credential": "bha_/);
    // The join token is in the user's command line, never in the agent's own log.
    expect(a.output()).not.toContain(joinToken);

    const host = await hostOf(hostId);
    expect(host).toMatchObject({ status: "online", agent_version: "0.1.0", connected: true });
    expect(host.facts.cpus).toBeGreaterThan(0);
    expect(host.facts.memory_bytes).toBeGreaterThan(0);
    expect(typeof host.facts.hostname).toBe("string");

    const job = await exec(hostId, 'i=1; while [ $i -le 400 ]; do echo "line $i"; i=$((i+1)); done; echo "to stderr" >&2');
    const done = await waitDone(hostId, job);
    expect(done).toMatchObject({ status: "succeeded", result: { exit_code: 0 }, error: null, attempts: 1 });
    const logs = await logsOf(hostId, job);
    expect(logs.stdout).toBe(Array.from({ length: 400 }, (_, i) => `line ${i + 1}\n`).join(""));
    expect(logs.stderr).toBe("to stderr\n");

    const failing = await exec(hostId, "echo 'disk full' >&2; exit 3");
    const failed = await waitDone(hostId, failing);
    expect(failed.status).toBe("failed");
    expect(failed.result).toEqual({ exit_code: 3 });
    expect(failed.error).toMatch(/exited with status 3/);
    // The output is in the logs (owner and admin only), not in the job, which viewers can read.
    expect(failed.error).not.toContain("disk full");
    expect((await logsOf(hostId, failing)).stderr).toBe("disk full\n");

    // A command that overruns its timeout is stopped and the job says so.
    const slow = await exec(hostId, "sleep 30", 1);
    const stopped = await waitDone(hostId, slow);
    expect(stopped.status).toBe("failed");
    expect(stopped.error).toMatch(/timed out after 1 s/);
  });

  it("ends a job exactly once when the agent is SIGKILLed mid-job and restarted", async () => {
    const { hostId, joinToken } = await enrol("bravo");
    const state = tempDir("bravo");
    const marks = tempDir("bravo-marks");
    const first = agent(state, ["--join-token", joinToken]);
    await first.waitFor(/connected/);

    const job = await exec(hostId, `echo started >> ${marks}/runs; i=1; while [ $i -le 12 ]; do echo "tick $i"; i=$((i+1)); sleep 0.25; done`);
    await eventually("the first ticks", () => logsOf(hostId, job), (l) => l.stdout.includes("tick 2"));
    await first.kill("SIGKILL");

    // Restarted without the join token: the stored credential is reused.
    const second = agent(state);
    await second.waitFor(/resuming a job from before the restart/);
    const done = await waitDone(hostId, job);
    expect(done.status).toBe("succeeded");
    expect((await logsOf(hostId, job)).stdout).toBe(Array.from({ length: 12 }, (_, i) => `tick ${i + 1}\n`).join(""));
    expect(readFileSync(join(marks, "runs"), "utf8")).toBe("started\n");
  });

  it("picks a job up again after the agent stayed away past its lease, without running it twice", async () => {
    const { hostId, joinToken } = await enrol("charlie");
    const state = tempDir("charlie");
    const marks = tempDir("charlie-marks");
    const first = agent(state, ["--join-token", joinToken]);
    await first.waitFor(/connected/);

    const job = await exec(hostId, `echo started >> ${marks}/runs; i=1; while [ $i -le 10 ]; do echo "tock $i"; i=$((i+1)); sleep 1; done`);
    await eventually("the first tocks", () => logsOf(hostId, job), (l) => l.stdout.includes("tock 1"));
    await first.kill("SIGKILL");
    // The lease expires and the job is handed out again, marked for reconciliation.
    await eventually("a second attempt", async () => (await api.call("GET", `/org/${slug}/hosts/${hostId}/jobs/${job}`)).body.job, (j) => j.attempts >= 2, 15);

    const second = agent(state);
    await second.waitFor(/job handed out again|found this job's earlier run/);
    const done = await waitDone(hostId, job);
    expect(done.status, second.output()).toBe("succeeded");
    // At least one more attempt; under load a renewal can miss and add another, which changes nothing below.
    expect(done.attempts).toBeGreaterThanOrEqual(2);
    expect((await logsOf(hostId, job)).stdout).toBe(Array.from({ length: 10 }, (_, i) => `tock ${i + 1}\n`).join(""));
    expect(readFileSync(join(marks, "runs"), "utf8")).toBe("started\n");
  });

  it("fails a job by its deadline when the agent never returns, and shows the host offline", async () => {
    const { hostId, joinToken } = await enrol("delta");
    const a = agent(tempDir("delta"), ["--join-token", joinToken]);
    await a.waitFor(/connected/);
    await a.kill("SIGKILL");

    const job = await exec(hostId, "echo never", 2);
    const failed = await waitDone(hostId, job, 30);
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatch(/Deadline passed/);
    // Deadline: the command's 2 s timeout plus the queue grace.
    const took = Date.parse(failed.finished_at) - Date.parse(failed.created_at);
    expect(took).toBeGreaterThanOrEqual((2 + QUEUE_GRACE_SECONDS) * 1000);
    expect(took).toBeLessThan((2 + QUEUE_GRACE_SECONDS) * 1000 + 10_000);

    const host = await eventually("offline", () => hostOf(hostId), (h) => h.status === "offline", 20);
    expect(host.connected).toBe(false);
  });

  it("refuses for good an agent whose host was deleted or whose join token was used", async () => {
    const { hostId, joinToken } = await enrol("echo");
    const state = tempDir("echo");
    const a = agent(state, ["--join-token", joinToken]);
    await a.waitFor(/connected/);
    const copy = tempDir("echo-copy");
    cpSync(state, copy, { recursive: true });

    expect((await api.call("DELETE", `/org/${slug}/hosts/${hostId}`)).status).toBe(200);
    expect(await a.exited).toBe(2);
    expect(a.output()).toMatch(/refused by the control plane/);

    // A second agent holding the revoked credential is refused at once.
    const b = agent(copy);
    expect(await b.exited).toBe(2);
    expect(b.output()).toMatch(/invalid_host_credential/);

    // The join token was used by the first agent.
    const c = agent(tempDir("echo-fresh"), ["--join-token", joinToken]);
    expect(await c.exited).toBe(2);
    expect(c.output()).toMatch(/could not join: .*invalid_join_token/);
  });

  it("claims work over HTTP when it runs without the socket", async () => {
    const { hostId, joinToken } = await enrol("foxtrot");
    const a = agent(tempDir("foxtrot"), ["--join-token", joinToken, "--no-websocket", "--log-format", "json"]);
    await a.waitFor(/"msg":"berth-agent starting"/);
    const job = await exec(hostId, "echo over http");
    const done = await waitDone(hostId, job);
    expect(done.status).toBe("succeeded");
    expect((await logsOf(hostId, job)).stdout).toBe("over http\n");
    const host = await hostOf(hostId);
    expect(host).toMatchObject({ status: "online", connected: false });
    // Every line the agent wrote is JSON.
    for (const line of a.output().trim().split("\n")) expect(() => JSON.parse(line)).not.toThrow();
  });

  it("reconnects by itself when the control plane restarts, and keeps taking work", async () => {
    // Its own control plane, restarted over the same state, as a deploy of the Worker would.
    const dir = tempDir("restart-state");
    const first = await startDevServer({ persistDir: dir, env: { AGENT_HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS) } });
    let second: DevServer | null = null;
    try {
      const own = await signedUp(first.url);
      const res = await own.api.call("POST", `/org/${own.slug}/hosts`, { name: "hotel", kind: "docker" });
      const hostId = res.body.host.id as string;
      const a = startAgent(["--url", first.url, "--state-dir", tempDir("hotel"), "--join-token", res.body.join_token, "--docker-socket", "/nonexistent.sock"]);
      agents.push(a);
      await a.waitFor(/connected transport=websocket/);
      await first.stop();
      await a.waitFor(/socket closed/);
      second = await startDevServer({ persistDir: dir, port: first.port, env: { AGENT_HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS) } });
      // Back on the socket within the backoff's reach.
      await a.waitFor(/connected transport=websocket[\s\S]*connected transport=websocket/, 45_000);
      const job = await own.api.call("POST", `/org/${own.slug}/hosts/${hostId}/exec`, { command: "echo after restart" });
      expect(job.status).toBe(202);
      const done = await own.api.call("GET", `/org/${own.slug}/hosts/${hostId}/jobs/${job.body.job.id}/wait?timeout=30`);
      expect(done.body.job.status).toBe("succeeded");
      expect(a.child.exitCode).toBeNull();
    } finally {
      await first.stop();
      await second?.stop();
    }
  }, 120_000);

  it("doctor says what is wrong", async () => {
    const { joinToken } = await enrol("golf");
    const state = tempDir("golf");
    const missing = startAgent(["doctor", "--url", server.url, "--state-dir", state, "--docker-socket", "/nonexistent.sock"]);
    expect(await missing.exited).toBe(1);
    expect(missing.output()).toMatch(/ok\s+control plane/);
    expect(missing.output()).toMatch(/FAIL credential\s+none in/);
    expect(missing.output()).toMatch(/FAIL docker\s+no socket at \/nonexistent.sock/);

    const a = agent(state, ["--join-token", joinToken]);
    await a.waitFor(/connected/);
    const good = startAgent(["doctor", "--state-dir", state, "--docker-socket", "/nonexistent.sock"]);
    await good.exited;
    expect(good.output()).toMatch(/ok\s+credential\s+accepted for host hst_/);

    const unreachable = startAgent(["doctor", "--url", "http://127.0.0.1:9", "--state-dir", tempDir("golf2"), "--docker-socket", "/nonexistent.sock"]);
    expect(await unreachable.exited).toBe(1);
    expect(unreachable.output()).toMatch(/FAIL control plane\s+http:\/\/127.0.0.1:9 is unreachable/);
  });
});
