/**
 * Replicas end to end on this machine (wrangler dev, a real agent, dockerd, the local
 * registry and Caddy, as test/node/apps.test.ts): min_replicas through the API becomes two
 * containers that both serve through Caddy; a replica killed behind Berth's back is replaced;
 * a new tag deploys to two new replicas with no failed request; and a busy loop in the app
 * drives a scale-up from its CPU samples (taken every second here instead of every 30 s).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "./support/agent";
import { type Client, signedUp, waitForJob } from "./support/client";
import { type DevServer, freePort, startDevServer } from "./support/dev-server";
import { getWithHost } from "./support/http";

const REGISTRY = "127.0.0.1:5000";
const IMAGE_V1 = `${REGISTRY}/berth/hello:v1`;
const IMAGE_V2 = `${REGISTRY}/berth/hello:v2`;
// Stats samples every second, so three samples after a change come within seconds.
const AGENT_ENV = { BERTH_APP_SWEEP_SECONDS: "1" };
// The image's own command, with a busy loop beside the server (a tenth of a core each, by the limit).
const BUSY = "while :; do :; done & echo busy listening on :8080; exec /bin/httpd -f -v -p 8080 -h /www";

let server: DevServer;
let api: Client;
let slug: string;
let projectId: string;
let ingress: number;
let agent: AgentProcess;
let stateDir: string;
let appId: string | undefined;

function docker(...args: string[]): string {
  return execFileSync("docker", args, { encoding: "utf8" }).trim();
}

/** The app's containers: id, state and replica index. */
const replicasOf = (id: string) =>
  docker("ps", "-a", "--filter", `label=berth.app=${id}`, "--format", '{{.ID}} {{.State}} {{.Label "berth.replica"}} {{.Image}}')
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [cid, state, replica, image] = l.split(" ");
      return { id: cid!, state: state!, replica: Number(replica), image: image! };
    });
const running = (id: string) => replicasOf(id).filter((c) => c.state === "running");

async function until<T>(what: string, fn: () => T | Promise<T>, ok: (v: T) => boolean, seconds = 30): Promise<T> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}\n${agent.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  for (const url of [`http://${REGISTRY}/v2/`, "http://127.0.0.1:2019/config/"]) {
    if (!(await fetch(url).then((r) => r.ok, () => false))) throw new Error(`${url} is not answering: run test/host/setup.sh first (.ci/run does)`);
  }
  server = await startDevServer();
  ({ api, slug } = await signedUp(server.url));
  projectId = (await api.call("GET", "/projects")).body[0].id;
  const host = await api.call("POST", `/org/${slug}/hosts`, { name: "docker-1", kind: "docker" });
  expect(host.status).toBe(201);
  ingress = await freePort();
  stateDir = mkdtempSync(join(tmpdir(), "berth-replicas-"));
  agent = startAgent(["--url", server.url, "--state-dir", stateDir, "--join-token", host.body.join_token, "--ingress-listen", `127.0.0.1:${ingress}`], AGENT_ENV);
  await agent.waitFor(/connected transport=websocket/);
}, 180_000);

afterAll(async () => {
  // The agent first: it would replace the replicas removed below one by one.
  await agent?.kill("SIGTERM");
  if (appId) {
    const ids = docker("ps", "-aq", "--filter", `label=berth.app=${appId}`).split("\n").filter(Boolean);
    if (ids.length) docker("rm", "-f", ...ids);
    await fetch(`http://127.0.0.1:2019/id/berth-app-${appId}`, { method: "DELETE" }).catch(() => undefined);
  }
  await server?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

const waitJob = (jobId: string) => waitForJob(api, projectId, jobId, { seconds: 90, context: () => agent.output().slice(-3000) });
const scaleJobs = async () => ((await api.call("GET", `/projects/${projectId}/jobs?instance=${appId}`)).body.jobs as any[]).filter((j) => j.type === "app.scale");

describe("an app as several replicas on a real Docker host", () => {
  let appSlug: string;
  const viaCaddy = () => getWithHost(ingress, `${appSlug}-app.localhost`);

  it("runs min_replicas containers behind one Caddy route, both serving, from a PUT that applies at once", async () => {
    const created = await api.call("POST", `/projects/${projectId}/apps`, { name: `Replicas ${Date.now().toString(36)}`, image: IMAGE_V1, internal_port: 8080, memory_limit: 32, cpu_limit: 0.1 });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    appId = created.body.id;
    appSlug = created.body.slug;
    const dep = await api.call("POST", `/apps/${appId}/deploy`);
    expect((await waitJob(dep.body.job.id)).status).toBe("succeeded");
    expect(running(appId!)).toHaveLength(1);

    const put = await api.call("PUT", `/apps/${appId}/autoscale`, { min_replicas: 2 });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body).toMatchObject({ min_replicas: 2, replicas: 2, scaling: true });
    const [job] = await scaleJobs();
    const done = await waitJob(job.id);
    expect(done.status, done.error).toBe("succeeded");
    expect(done.result).toMatchObject({ replicas: 2 });

    const replicas = running(appId!);
    expect(replicas.map((r) => r.replica).sort()).toEqual([0, 1]);
    const route = await (await fetch(`http://127.0.0.1:2019/id/berth-app-${appId}`)).json();
    expect(route.handle[0].upstreams).toHaveLength(2);
    expect(route.handle[0].health_checks.active).toMatchObject({ uri: "/" });

    // Round robin: every replica logs some of twenty requests.
    for (let i = 0; i < 20; i++) expect((await viaCaddy()).text).toContain("hello v1");
    // busybox httpd logs each request on stderr.
    const served = replicas.map((r) => execFileSync("sh", ["-c", `docker logs ${r.id} 2>&1 | grep -c response:200 || true`], { encoding: "utf8" }).trim());
    for (const [i, n] of served.entries()) expect(Number(n), `replica ${replicas[i]!.replica} got no request`).toBeGreaterThan(0);

    // Dockup's clients: one container_id (a running replica), stats summed over both, logs of both.
    const app = (await api.call("GET", `/apps/${appId}`)).body.app;
    expect(app.status).toBe("running");
    expect(replicas.map((r) => r.id)).toContain(app.container_id.slice(0, 12));
    const stats = await api.call("GET", `/apps/${appId}/stats`);
    expect(stats.status).toBe(200);
    expect(stats.body.memory_max_mb).toBe(64);
    const logs = (await api.call("GET", `/apps/${appId}/logs?tail=200`)).body as any[];
    expect(logs.filter((l) => l.text.includes("hello v1 listening")).length).toBe(2);
  });

  it("replaces a replica killed behind its back, and serves meanwhile", async () => {
    const app = (await api.call("GET", `/apps/${appId}`)).body.app;
    const before = new Set((await scaleJobs()).map((j) => j.id));
    docker("kill", app.container_id);
    // The other replica answers at once: Caddy tries a failed dial again on it.
    for (let i = 0; i < 5; i++) expect((await viaCaddy()).status).toBe(200);
    const jobs = await until("a replace job", scaleJobs, (j) => j.some((x) => !before.has(x.id)));
    const replace = jobs.find((j) => !before.has(j.id));
    expect((await waitJob(replace.id)).status).toBe("succeeded");
    const now = await until("two running replicas", () => running(appId!), (r) => r.length === 2 && !r.some((x) => app.container_id.startsWith(x.id)));
    expect(now.map((r) => r.replica).sort()).toEqual([0, 1]);
    // The killed one is gone, the app names a live replica, and the event says what happened.
    expect(replicasOf(appId!)).toHaveLength(2);
    const after = (await api.call("GET", `/apps/${appId}`)).body.app;
    expect(now.map((r) => r.id)).toContain(after.container_id.slice(0, 12));
    const events = (await api.call("GET", `/apps/${appId}/events`)).body as any[];
    expect(events.some((e) => e.type === "scale" && /^Replacing 1 replica that stopped/.test(e.message))).toBe(true);
    for (let i = 0; i < 4; i++) expect((await viaCaddy()).status).toBe(200);
  });

  it("deploys a new tag to two new replicas while a client keeps requesting, with no failed request", async () => {
    const old = running(appId!).map((r) => r.id);
    // The busy loop comes with this deploy, for the next test.
    expect((await api.call("PUT", `/apps/${appId}`, { command: BUSY })).status).toBe(200);
    let stop = false;
    const failures: string[] = [];
    let served = 0;
    const poller = (async () => {
      while (!stop) {
        const r = await viaCaddy();
        served++;
        if (r.status !== 200) failures.push(`${r.status} ${r.text.slice(0, 100)}`);
      }
    })();
    const res = await api.call("POST", `/deploy/${appSlug}`, { image: IMAGE_V2 });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const job = await waitJob(res.body.job.id);
    expect(job.status, job.error).toBe("succeeded");
    expect(job.result).toMatchObject({ replicas: 2 });
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await poller;
    expect(failures).toEqual([]);
    expect(served).toBeGreaterThan(5);
    const now = replicasOf(appId!);
    expect(now).toHaveLength(2);
    expect(now.every((r) => r.state === "running" && r.image === IMAGE_V2 && !old.includes(r.id))).toBe(true);
    expect((await viaCaddy()).text).toContain("hello v2");
  });

  it("scales up from the replicas' CPU, as a job audited as the system, and no further than max_replicas", async () => {
    const before = new Set((await scaleJobs()).map((j) => j.id));
    const put = await api.call("PUT", `/apps/${appId}/autoscale`, { enabled: true, cpu_threshold: 20, max_replicas: 3, cooldown_seconds: 30 });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    // Each replica busy at its 0.1-core limit is far above 20 % of it.
    const up = (await until("an autoscale job", scaleJobs, (j) => j.some((x) => !before.has(x.id)), 30)).find((x) => !before.has(x.id));
    const job = await waitJob(up.id);
    expect(job.status, job.error).toBe("succeeded");
    expect(job.result).toMatchObject({ replicas: 3 });
    expect(running(appId!)).toHaveLength(3);
    const route = await (await fetch(`http://127.0.0.1:2019/id/berth-app-${appId}`)).json();
    expect(route.handle[0].upstreams).toHaveLength(3);
    expect((await viaCaddy()).text).toContain("hello v2");
    const events = (await api.call("GET", `/apps/${appId}/events`)).body as any[];
    expect(events.find((e) => e.type === "scale" && /^Scaling from 2 to 3 replicas: average CPU/.test(e.message))).toBeDefined();
    const audit = (await api.call("GET", `/org/${slug}/audit?action=app.scale`)).body.events as any[];
    expect(audit.some((a) => a.actor.type === "system" && a.actor.id === "autoscale" && a.target.id === appId)).toBe(true);
    // At max (and within the cool-down) more hot samples ask for nothing more.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await scaleJobs()).toHaveLength(before.size + 1);
    expect((await api.call("GET", `/apps/${appId}/autoscale`)).body).toMatchObject({ replicas: 3, replicas_running: 3 });
  });
});
