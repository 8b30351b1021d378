/**
 * Sleep on idle end to end on this machine: wrangler dev, a real agent, the real dockerd,
 * the local registry and Caddy (test/host/setup.sh). The agent counts a "minute" of
 * sleep_after_minutes as one second (BERTH_SLEEP_UNIT_SECONDS, test-only), so the app
 * sleeps within seconds; then concurrent requests through Caddy wake it and all get the
 * app's own answer. A user-stopped app is not woken by traffic.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentProcess, startAgent } from "./support/agent";
import { type Client, signedUp, waitForJob } from "./support/client";
import { type DevServer, freePort, startDevServer } from "./support/dev-server";
import { getWithHost } from "./support/http";

const IMAGE = "127.0.0.1:5000/berth/hello:v1";
const IMAGE_V2 = "127.0.0.1:5000/berth/hello:v2";
/** Seconds of idle before the app sleeps (minutes in production). */
const SLEEP_AFTER = 2;
const CONCURRENT = 8;

let server: DevServer;
let api: Client;
let projectId: string;
let ingress: number;
let agent: AgentProcess;
let stateDir: string;
let appId = "";

function docker(...args: string[]): string {
  return execFileSync("docker", args, { encoding: "utf8" }).trim();
}

const states = () => docker("ps", "-a", "--filter", `label=berth.app=${appId}`, "--format", "{{.State}}").split("\n").filter(Boolean);

async function until<T>(what: string, fn: () => Promise<T> | T, check: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (check(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}\n${agent.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  const caddyUp = await fetch("http://127.0.0.1:2019/config/").then((r) => r.ok, () => false);
  if (!caddyUp) throw new Error("caddy is not answering on 127.0.0.1:2019: run test/host/setup.sh first (.ci/run does)");
  server = await startDevServer();
  let slug: string;
  ({ api, slug } = await signedUp(server.url));
  projectId = (await api.call("GET", "/projects")).body[0].id;
  const host = await api.call("POST", `/org/${slug}/hosts`, { name: "docker-sleep", kind: "docker" });
  expect(host.status, JSON.stringify(host.body)).toBe(201);
  ingress = await freePort();
  stateDir = mkdtempSync(join(tmpdir(), "berth-sleep-"));
  agent = startAgent(["--url", server.url, "--state-dir", stateDir, "--join-token", host.body.join_token, "--ingress-listen", `127.0.0.1:${ingress}`], {
    BERTH_APP_SWEEP_SECONDS: "2",
    BERTH_SLEEP_UNIT_SECONDS: "1",
  });
  await agent.waitFor(/connected transport=websocket/);
  await agent.waitFor(/sleep on idle ready/);
}, 180_000);

afterAll(async () => {
  if (appId) {
    const ids = docker("ps", "-aq", "--filter", `label=berth.app=${appId}`).split("\n").filter(Boolean);
    if (ids.length) docker("rm", "-f", ...ids);
    await fetch(`http://127.0.0.1:2019/id/berth-app-${appId}`, { method: "DELETE" }).catch(() => undefined);
  }
  await agent?.kill("SIGTERM");
  await server?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe("sleep on idle on a real Docker host", () => {
  let appSlug = "";
  const viaCaddy = () => getWithHost(ingress, `${appSlug}-app.localhost`, "/", 30_000);
  const settings = async () => (await api.call("GET", `/apps/${appId}/autoscale`)).body;
  const events = async () => (await api.call("GET", `/apps/${appId}/events`)).body as Array<{ type: string; message: string }>;

  it("sleeps when idle, and concurrent requests through Caddy wake it and all get the app's answer", async () => {
    const created = await api.call("POST", `/projects/${projectId}/apps`, { name: `Sleepy ${Date.now().toString(36)}`, image: IMAGE, internal_port: 8080, memory_limit: 64 });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    appId = created.body.id;
    appSlug = created.body.slug;
    expect((await api.call("PUT", `/apps/${appId}/autoscale`, { sleep_after_minutes: SLEEP_AFTER })).status).toBe(200);
    const dep = await api.call("POST", `/apps/${appId}/deploy`);
    expect(dep.status, JSON.stringify(dep.body)).toBe(202);
    const job = await waitForJob(api, projectId, dep.body.job.id, { seconds: 120, context: () => agent.output().slice(-3000) });
    expect(job.status, job.error).toBe("succeeded");
    expect((await viaCaddy()).text).toContain("hello v1");

    // Idle: the container stops (not removed), the control plane learns it.
    await until("the container to stop", states, (s) => s.length === 1 && s[0] === "exited");
    await until("the control plane to see it asleep", settings, (s) => s.sleeping === true);
    expect((await api.call("GET", `/apps/${appId}`)).body.app).toMatchObject({ status: "stopped", sleeping: true });
    expect((await events()).some((e) => e.type === "sleep")).toBe(true);

    // Concurrent requests: all held, all answered by the app.
    const t0 = performance.now();
    const answers = await Promise.all(Array.from({ length: CONCURRENT }, () => viaCaddy()));
    const wakeMs = Math.round(performance.now() - t0);
    expect(states()).toEqual(["running"]);
    for (const a of answers) {
      expect(a.status, a.text).toBe(200);
      expect(a.text).toContain("hello v1");
    }
    await until("the wake event", events, (e) => e.some((x) => x.type === "wake"));
    const woke = /app woke.*start_ms=(\d+).*answered_ms=(\d+)/.exec(agent.output());
    // The same image started as a plain stopped container, for comparison.
    const plain = docker("create", "--label", "berth.test=sleep-plain", IMAGE);
    try {
      const p0 = performance.now();
      docker("start", plain);
      const address = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", plain);
      await until("the plain container to answer", () => getWithHost(8080, "plain", "/", 1_000, address), (r) => r.status === 200, 15_000);
      const plainMs = Math.round(performance.now() - p0);
      console.log(`wake: ${CONCURRENT} requests answered ${wakeMs} ms after the first was sent (agent: container started in ${woke?.[1]} ms, answering after ${woke?.[2]} ms); plain docker start until the port answers: ${plainMs} ms`);
    } finally {
      docker("rm", "-f", plain);
    }
  }, 90_000);

  it("a user stop of a sleeping app keeps it stopped: requests do not wake it; a start does", async () => {
    await until("the app to sleep again", states, (s) => s[0] === "exited");
    await until("the control plane to see it asleep", settings, (s) => s.sleeping === true);
    const stop = await api.call("POST", `/apps/${appId}/stop`);
    expect(stop.status, JSON.stringify(stop.body)).toBe(202);
    expect((await waitForJob(api, projectId, stop.body.job.id, { seconds: 60 })).status).toBe("succeeded");
    expect((await settings()).sleeping).toBe(false);

    const refused = await viaCaddy();
    expect(refused.status).not.toBe(200);
    expect(states()).toEqual(["exited"]);

    const start = await api.call("POST", `/apps/${appId}/start`);
    expect((await waitForJob(api, projectId, start.body.job.id, { seconds: 60 })).status).toBe("succeeded");
    // A start does not wait for the port (as before sleep on idle): the app answers moments later.
    const served = await until("the started app to answer", viaCaddy, (r) => r.status === 200, 15_000);
    expect(served.text).toContain("hello v1");
  }, 60_000);

  it("a deploy of a sleeping app wakes it with the new version", async () => {
    await until("the app to sleep again", states, (s) => s[0] === "exited");
    const dep = await api.call("PUT", `/apps/${appId}`, { image: IMAGE_V2 });
    expect(dep.status, JSON.stringify(dep.body)).toBe(200);
    const deploy = await api.call("POST", `/apps/${appId}/deploy`);
    // A request during the deploy is held, then answered by whichever version serves when it is let through.
    const during = viaCaddy();
    expect((await waitForJob(api, projectId, deploy.body.job.id, { seconds: 120, context: () => agent.output().slice(-3000) })).status).toBe("succeeded");
    const heldAnswer = await during;
    expect(heldAnswer.status, heldAnswer.text).toBe(200);
    expect(heldAnswer.text).toMatch(/hello v[12]/);
    const served = await viaCaddy();
    expect(served.status, served.text).toBe(200);
    expect(served.text).toContain("hello v2");
    expect(states()).toEqual(["running"]);
    await until("the control plane to see it awake", settings, (s) => s.sleeping === false);
  }, 150_000);

  it("stays asleep across an agent restart, and the restarted agent wakes it", async () => {
    await until("the app to sleep again", states, (s) => s[0] === "exited");
    await agent.kill("SIGTERM");
    agent = startAgent(["--url", server.url, "--state-dir", stateDir, "--ingress-listen", `127.0.0.1:${ingress}`], { BERTH_APP_SWEEP_SECONDS: "2", BERTH_SLEEP_UNIT_SECONDS: "1" });
    await agent.waitFor(/sleep on idle ready/);
    // Its route moves to the new process's wake listener.
    await until(
      "the route to point at the new wake listener",
      // Caddy's admin API drops a connection that arrives while it loads a config (the new agent's own): that read is tried again.
      async () => (await fetch(`http://127.0.0.1:2019/id/berth-app-${appId}`).then((r) => r.json(), () => null)) as any,
      (r) => r?.handle?.[0]?.upstreams?.[0]?.dial === /wake_listener=(\S+)/.exec(agent.output())?.[1],
    );
    expect(states()).toEqual(["exited"]);
    const served = await viaCaddy();
    expect(served.status, served.text).toBe(200);
    expect(served.text).toContain("hello v2");
  }, 60_000);

  it("a wake that cannot complete answers 503 with Retry-After, and the next request tries again", async () => {
    await until("the app to sleep again", states, (s) => s[0] === "exited");
    const [id] = docker("ps", "-aq", "--filter", `label=berth.app=${appId}`).split("\n");
    // Without a network the container gets no address: it cannot answer.
    docker("network", "disconnect", "bridge", id!);
    try {
      const failed = await viaCaddy();
      expect(failed.status).toBe(503);
      expect(failed.text).toMatch(/did not start/);
      expect(failed.headers["retry-after"]).toBe("5");
      expect(states()).toEqual(["exited"]);
    } finally {
      docker("network", "connect", "bridge", id!);
    }
    const served = await viaCaddy();
    expect(served.status, served.text).toBe(200);
    expect(served.text).toContain("hello v2");
  }, 60_000);
});
