/**
 * Container apps end to end on this machine: wrangler dev, a real agent, the
 * real dockerd, the local registry and Caddy (started by test/host/setup.sh,
 * which .ci/run runs first). Images are pulled from 127.0.0.1:5000.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "./support/agent";
import { type Client, client, signedUp, waitForJob } from "./support/client";
import { type DevServer, freePort, startDevServer } from "./support/dev-server";
import { getWithHost } from "./support/http";

const REGISTRY = "127.0.0.1:5000";
const IMAGE_V1 = `${REGISTRY}/berth/hello:v1`;
const IMAGE_V2 = `${REGISTRY}/berth/hello:v2`;
const BROKEN = `${REGISTRY}/berth/broken:v1`;
// Stats samples every 2 s instead of 30 s, so the history fills within a test.
const AGENT_ENV = { BERTH_APP_SWEEP_SECONDS: "2" };

let server: DevServer;
let api: Client;
let slug: string;
let token: string;
let projectId: string;
let ingress: number;
let agent: AgentProcess;
let stateDir: string;
const dirs: string[] = [];
const createdApps: string[] = [];

function docker(...args: string[]): string {
  return execFileSync("docker", args, { encoding: "utf8" }).trim();
}

async function hostServicesUp() {
  const checks = [
    ["registry", `http://${REGISTRY}/v2/`],
    ["caddy admin", "http://127.0.0.1:2019/config/"],
  ] as const;
  for (const [name, url] of checks) {
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (!ok) throw new Error(`${name} is not answering at ${url}: run test/host/setup.sh first (.ci/run does)`);
  }
  docker("info", "--format", "{{.ServerVersion}}");
}

beforeAll(async () => {
  await hostServicesUp();
  server = await startDevServer();
  ({ api, slug, token } = await signedUp(server.url));
  projectId = (await api.call("GET", "/projects")).body[0].id;
  const host = await api.call("POST", `/org/${slug}/hosts`, { name: "docker-1", kind: "docker" });
  expect(host.status).toBe(201);
  ingress = await freePort();
  stateDir = mkdtempSync(join(tmpdir(), "berth-apps-"));
  dirs.push(stateDir);
  agent = startAgent(["--url", server.url, "--state-dir", stateDir, "--join-token", host.body.join_token, "--ingress-listen", `127.0.0.1:${ingress}`], AGENT_ENV);
  await agent.waitFor(/connected transport=websocket/);
}, 180_000);

afterAll(async () => {
  // Whatever a failed run left on the host goes, so the next run starts clean.
  for (const appId of createdApps) {
    const ids = docker("ps", "-aq", "--filter", `label=berth.app=${appId}`).split("\n").filter(Boolean);
    if (ids.length) docker("rm", "-f", ...ids);
    await fetch(`http://127.0.0.1:2019/id/berth-app-${appId}`, { method: "DELETE" }).catch(() => undefined);
    const volumes = docker("volume", "ls", "-q", "--filter", `label=berth.app=${appId}`).split("\n").filter(Boolean);
    if (volumes.length) docker("volume", "rm", "-f", ...volumes);
  }
  await agent?.kill("SIGTERM");
  await server?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** GET through Caddy by the app's hostname. */
const viaCaddy = (appSlug: string) => getWithHost(ingress, `${appSlug}-app.localhost`);

const waitJob = (jobId: string, seconds = 120) => waitForJob(api, projectId, jobId, { seconds, context: () => agent.output().slice(-3000) });

const containersOf = (appId: string) => docker("ps", "-a", "--filter", `label=berth.app=${appId}`, "--format", "{{.ID}} {{.State}}").split("\n").filter(Boolean);

describe("apps on a real Docker host", () => {
  let appId: string;
  let appSlug: string;

  it("creates an app, deploys it from the registry and serves it through Caddy", async () => {
    const created = await api.call("POST", `/projects/${projectId}/apps`, {
      // Slugs are global and Caddy and dockerd outlive a test run: a fresh name keeps runs apart.
      name: `Hello ${Date.now().toString(36)}`,
      image: IMAGE_V1,
      internal_port: 8080,
      env_vars: { GREETING: "secret-greeting-value" },
      memory_limit: 64,
      cpu_limit: 0.25,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    appId = created.body.id;
    createdApps.push(appId);
    appSlug = created.body.slug;
    expect(created.body.url).toBe(`http://${appSlug}-app.localhost`);

    const dep = await api.call("POST", `/apps/${appId}/deploy`);
    expect(dep.status, JSON.stringify(dep.body)).toBe(202);
    expect(dep.body.status).toBe("pending");
    const job = await waitJob(dep.body.job.id);
    expect(job.status, job.error).toBe("succeeded");

    const app = (await api.call("GET", `/apps/${appId}`)).body.app;
    expect(app).toMatchObject({ status: "running", image: IMAGE_V1 });
    expect(app.container_id).toMatch(/^[0-9a-f]{64}$/);
    const deployments = (await api.call("GET", `/apps/${appId}/deployments`)).body;
    expect(deployments[0]).toMatchObject({ status: "succeeded", image: IMAGE_V1, container_id: app.container_id });
    expect(deployments[0].finished_at).not.toBeNull();

    const page = await viaCaddy(appSlug);
    expect(page.status).toBe(200);
    expect(page.text).toContain("hello v1");

    // The host's containers, as its agent sees them now.
    const listed = await api.call("GET", "/system/containers");
    expect(listed.status).toBe(200);
    expect(listed.body.find((c: any) => c.id === app.container_id)).toMatchObject({ app_id: appId, state: "running" });
    expect((await api.call("GET", "/system/resources")).body).toMatchObject({ containers_running: 1, hosts_online: 1 });

    // The request shows in the app's logs, with ISO times and stdout and stderr kept apart.
    const logs = await api.call("GET", `/apps/${appId}/logs?tail=50`);
    expect(logs.status, JSON.stringify(logs.body)).toBe(200);
    expect(logs.body.some((l: any) => l.stream === "stdout" && l.text.includes("hello v1 listening"))).toBe(true);
    expect(logs.body.some((l: any) => l.stream === "stderr" && /response:200/.test(l.text))).toBe(true);
    for (const l of logs.body) expect(new Date(l.time).toISOString()).toBe(l.time);
    expect((await api.call("GET", `/apps/${appId}/logs?tail=0`)).status).toBe(400);

    const stats = await api.call("GET", `/apps/${appId}/stats`);
    expect(stats.status, JSON.stringify(stats.body)).toBe(200);
    expect(stats.body.memory_max_mb).toBe(64);
    expect(stats.body.memory_mb).toBeGreaterThan(0);
    expect(stats.body.cpu_percent).toBeGreaterThanOrEqual(0);

    // The container carries its labels and limits, and the env var reached it.
    const inspect = JSON.parse(docker("inspect", app.container_id))[0];
    expect(inspect.Config.Labels).toMatchObject({ "berth.app": appId, "berth.deployment": deployments[0].id, "berth.job": job.id });
    expect(inspect.HostConfig.Memory).toBe(64 * 1024 * 1024);
    expect(inspect.HostConfig.NanoCpus).toBe(0.25e9);
    // Not published on the host: Caddy reaches it at its bridge address.
    expect(inspect.HostConfig.PortBindings ?? {}).toEqual({});
    expect(inspect.NetworkSettings.Ports?.["8080/tcp"] ?? null).toBeNull();
    expect(inspect.Config.Env).toContain("GREETING=secret-greeting-value");
    // …and never reached an API response or the agent's log.
    expect(JSON.stringify(await api.call("GET", `/apps/${appId}`))).not.toContain("secret-greeting-value");
    expect(agent.output()).not.toContain("secret-greeting-value");
    expect(server.output()).not.toContain("secret-greeting-value");
  });

  it("streams the app's logs over a WebSocket, across an agent reconnect, without losing or repeating a line", async () => {
    const got: Array<{ stream: string; line: string; time: string }> = [];
    const ws = new WebSocket(`${server.url.replace(/^http/, "ws")}/api/v1/apps/${appSlug}/logs/stream?token=${token}&tail=2`);
    ws.addEventListener("message", (e) => got.push(JSON.parse(String(e.data))));
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve());
      ws.addEventListener("error", () => reject(new Error("log stream did not open")));
    });
    const responses = () => got.filter((m) => m.stream === "stderr" && /response:200/.test(m.line)).length;
    const waitFor = async (what: string, ok: () => boolean, seconds = 15) => {
      const end = Date.now() + seconds * 1000;
      while (!ok()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(got)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    // The history first: the last two lines.
    await waitFor("the tail", () => got.length >= 2);
    expect(got[0]).toHaveProperty("stream");
    expect(got[0]).toHaveProperty("line");

    const before = responses();
    expect((await viaCaddy(appSlug)).status).toBe(200);
    await waitFor("the request's line", () => responses() === before + 1);

    // The agent goes away and comes back; the stream goes on.
    await agent.kill("SIGKILL");
    agent = startAgent(["--url", server.url, "--state-dir", stateDir, "--ingress-listen", `127.0.0.1:${ingress}`], AGENT_ENV);
    await agent.waitFor(/connected transport=websocket/);
    const mark = responses();
    for (let i = 0; i < 3; i++) expect((await viaCaddy(appSlug)).status).toBe(200);
    await waitFor("three more lines", () => responses() >= mark + 3);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(responses()).toBe(mark + 3);
    // Nothing came twice.
    const keys = got.map((m) => `${m.time} ${m.stream} ${m.line}`);
    expect(new Set(keys).size).toBe(keys.length);
    ws.close();
  });

  it("redeploys a new tag by slug from CI with a dkp_ key while a client keeps requesting, with no failed request", async () => {
    const key = await api.call("POST", "/api-keys", { name: "ci" });
    expect(key.status).toBe(201);
    const ci = client(server.url, key.body.key);

    let stop = false;
    const failures: string[] = [];
    let served = 0;
    const poller = (async () => {
      while (!stop) {
        const r = await viaCaddy(appSlug);
        served++;
        if (r.status !== 200) failures.push(`${r.status} ${r.text.slice(0, 100)}`);
      }
    })();

    const res = await ci.call("POST", `/deploy/${appSlug}`, { image: IMAGE_V2 });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body).toMatchObject({ slug: appSlug, app: { image: IMAGE_V2 }, deployment: { status: "pending" } });
    const job = await waitJob(res.body.job.id);
    expect(job.status, job.error).toBe("succeeded");
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await poller;

    expect(failures).toEqual([]);
    expect(served).toBeGreaterThan(5);
    expect((await viaCaddy(appSlug)).text).toContain("hello v2");
    // One container: the old one was stopped and removed once the new one answered.
    expect(containersOf(appId)).toHaveLength(1);
  });

  it("refuses a read-only key on /deploy/{slug}", async () => {
    const ro = await api.call("POST", `/org/${slug}/api-keys`, { name: "ro", scope: "read-only" });
    expect(ro.status).toBe(201);
    const res = await client(server.url, ro.body.key.key).call("POST", `/deploy/${appSlug}`);
    expect(res.status).toBe(403);
  });

  it("stops and starts the app", async () => {
    const stopped = await api.call("POST", `/apps/${appId}/stop`);
    expect(stopped.status).toBe(202);
    expect((await waitJob(stopped.body.job.id)).status).toBe("succeeded");
    expect((await api.call("GET", `/apps/${appId}`)).body.app.status).toBe("stopped");
    expect((await viaCaddy(appSlug)).status).not.toBe(200);

    const started = await api.call("POST", `/apps/${appId}/start`);
    expect(started.status).toBe(202);
    expect((await waitJob(started.body.job.id)).status).toBe("succeeded");
    expect((await api.call("GET", `/apps/${appId}`)).body.app.status).toBe("running");
    const end = Date.now() + 10_000;
    let page = await viaCaddy(appSlug);
    while (page.status !== 200 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 200));
      page = await viaCaddy(appSlug);
    }
    expect(page.text).toContain("hello v2");
  });

  it("notices within seconds a container stopped behind its back, and keeps a stats history", async () => {
    const containerId = (await api.call("GET", `/apps/${appId}`)).body.app.container_id;
    docker("stop", "-t", "1", containerId);
    const status = async () => (await api.call("GET", `/apps/${appId}`)).body.app.status;
    let end = Date.now() + 10_000;
    while ((await status()) !== "stopped" && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
    expect(await status()).toBe("stopped");
    docker("start", containerId);
    end = Date.now() + 10_000;
    while ((await status()) !== "running" && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
    expect(await status()).toBe("running");
    const events = (await api.call("GET", `/apps/${appId}/events`)).body;
    expect(events.some((e: any) => e.type === "status" && /to stopped/.test(e.message))).toBe(true);

    end = Date.now() + 15_000;
    let history: any[] = [];
    while (history.length < 2 && Date.now() < end) {
      history = (await api.call("GET", `/apps/${appId}/stats/history?minutes=5`)).body;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(history.length).toBeGreaterThanOrEqual(2);
    expect(history[0]).toMatchObject({ memory_max_mb: 64 });
    expect(Date.parse(history[1].time)).toBeGreaterThan(Date.parse(history[0].time));
    // A restart gives the container a new loopback port; the route follows it.
    const started = await api.call("POST", `/apps/${appId}/restart`);
    expect((await waitJob(started.body.job.id)).status).toBe("succeeded");
  });

  it("changes the memory limit of the running container live", async () => {
    const before = (await api.call("GET", `/apps/${appId}`)).body.app.container_id;
    const res = await api.call("PUT", `/apps/${appId}`, { memory_limit: 96 });
    expect(res.status).toBe(200);
    expect(res.body.memory_limit).toBe(96);
    const jobs = (await api.call("GET", `/projects/${projectId}/jobs?instance=${appId}`)).body.jobs;
    const update = jobs.find((j: any) => j.type === "app.update");
    expect(update).toBeDefined();
    expect((await waitJob(update.id)).status).toBe("succeeded");
    const inspect = JSON.parse(docker("inspect", before))[0];
    expect(inspect.HostConfig.Memory).toBe(96 * 1024 * 1024);
    expect(inspect.State.Running).toBe(true);
  });

  it("fails a deploy of an image that does not exist, with a readable error, and keeps serving", async () => {
    const res = await api.call("POST", `/deploy/${appSlug}`, { image: `${REGISTRY}/berth/nope:v9` });
    expect(res.status).toBe(202);
    const job = await waitJob(res.body.job.id);
    expect(job.status).toBe("failed");
    const dep = (await api.call("GET", `/apps/${appId}/deployments`)).body[0];
    expect(dep.status).toBe("failed");
    expect(dep.error).toMatch(/nope:v9/);
    expect(dep.error).toMatch(/not found|manifest unknown|does not exist/i);
    expect((await viaCaddy(appSlug)).status).toBe(200);
  });

  it("fails a deploy whose container never becomes healthy, with its last lines, and the previous one keeps serving", async () => {
    const res = await api.call("POST", `/deploy/${appSlug}`, { image: BROKEN });
    const job = await waitJob(res.body.job.id);
    expect(job.status).toBe("failed");
    const dep = (await api.call("GET", `/apps/${appId}/deployments`)).body[0];
    expect(dep.error).toMatch(/never became healthy/);
    expect(dep.error).toMatch(/boom/);
    const page = await viaCaddy(appSlug);
    expect(page.status).toBe(200);
    expect(page.text).toContain("hello v2");
    expect(containersOf(appId)).toHaveLength(1);
    const events = (await api.call("GET", `/apps/${appId}/events`)).body;
    expect(events.some((e: any) => e.type === "error" && /never became healthy/.test(e.message))).toBe(true);
  });

  it("ends with exactly one running container when the agent is killed during a deploy and restarted", async () => {
    const res = await api.call("POST", `/deploy/${appSlug}`, { image: IMAGE_V1 });
    expect(res.status).toBe(202);
    // Kill it once the deploy has made its container, before it finishes.
    const end = Date.now() + 30_000;
    while (!docker("ps", "-aq", "--filter", `label=berth.job=${res.body.job.id}`) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    await agent.kill("SIGKILL");
    agent = startAgent(["--url", server.url, "--state-dir", stateDir, "--ingress-listen", `127.0.0.1:${ingress}`], AGENT_ENV);
    const job = await waitJob(res.body.job.id);
    expect(job.status, job.error).toBe("succeeded");
    const running = containersOf(appId).filter((c) => c.endsWith("running"));
    expect(running).toHaveLength(1);
    expect(containersOf(appId)).toHaveLength(1);
    // The container the first attempt made is the one that serves: it was found, not made twice.
    expect(docker("ps", "-q", "--no-trunc", "--filter", `label=berth.job=${res.body.job.id}`)).toBe((await api.call("GET", `/apps/${appId}`)).body.app.container_id);
    expect((await viaCaddy(appSlug)).text).toContain("hello v1");
  });

  it("pulls from a private registry with the org's credentials, and fails readably without them", async () => {
    const made = await api.call("POST", `/projects/${projectId}/apps`, { name: `Private ${Date.now().toString(36)}`, image: `127.0.0.1:5001/berth/private:v1`, memory_limit: 64 });
    expect(made.status).toBe(201);
    createdApps.push(made.body.id);
    const first = await waitJob((await api.call("POST", `/apps/${made.body.id}/deploy`)).body.job.id);
    expect(first.status).toBe("failed");
    expect(first.error).toMatch(/credentials missing or wrong/);

    const reg = await api.call("POST", "/registries", { name: "private", url: "127.0.0.1:5001", username: "berth", password: "berth-registry-test" });
    expect(reg.status).toBe(201);
    const second = await waitJob((await api.call("POST", `/apps/${made.body.id}/deploy`)).body.job.id);
    expect(second.status, second.error).toBe("succeeded");
    expect((await viaCaddy(made.body.slug)).text).toContain("hello v1");
    expect(agent.output()).not.toContain("berth-registry-test");
    expect(server.output()).not.toContain("berth-registry-test");
    expect((await api.call("DELETE", `/apps/${made.body.id}`)).status).toBe(200);
  });

  it("keeps a volume's data across redeploys, shows its size from the host, and keeps the data when detached", async () => {
    const made = await api.call("POST", `/projects/${projectId}/apps`, { name: `Volume ${Date.now().toString(36)}`, image: IMAGE_V1, memory_limit: 64 });
    expect(made.status).toBe(201);
    const id = made.body.id as string;
    createdApps.push(id);
    const attached = await api.call("POST", `/apps/${id}/volumes`, { mount_path: "/data", size_mb: 64 });
    expect(attached.status, JSON.stringify(attached.body)).toBe(201);
    const volume = attached.body.name as string;

    const first = await waitJob((await api.call("POST", `/apps/${id}/deploy`)).body.job.id);
    expect(first.status, first.error).toBe("succeeded");
    const before = (await api.call("GET", `/apps/${id}`)).body.app.container_id as string;
    docker("exec", before, "sh", "-c", "echo kept > /data/marker && dd if=/dev/zero of=/data/blob bs=1024 count=300 2>/dev/null");
    expect(JSON.parse(docker("volume", "inspect", volume))[0].Labels).toMatchObject({ "berth.app": id, "berth.volume.mount_path": "/data" });

    // A new version: a new container, the same data.
    const second = await waitJob((await api.call("POST", `/deploy/${made.body.slug}`, { image: IMAGE_V2 })).body.job.id);
    expect(second.status, second.error).toBe("succeeded");
    const after = (await api.call("GET", `/apps/${id}`)).body.app.container_id as string;
    expect(after).not.toBe(before);
    expect(docker("exec", after, "cat", "/data/marker")).toBe("kept");

    // The agent measures what the volume holds (every 2 s here, 30 s by default).
    const end = Date.now() + 20_000;
    let shown: any;
    do {
      shown = (await api.call("GET", `/apps/${id}/volumes`)).body[0];
      if ((shown?.used_bytes ?? 0) >= 300 * 1024) break;
      await new Promise((r) => setTimeout(r, 500));
    } while (Date.now() < end);
    expect(shown).toMatchObject({ name: volume, mount_path: "/data", size_mb: 64 });
    expect(shown.used_bytes).toBeGreaterThanOrEqual(300 * 1024);

    // Detached: the next deploy does not mount it, and the data stays on the host for a later attach.
    expect((await api.call("DELETE", `/apps/${id}/volumes?mount_path=/data`)).status).toBe(200);
    const third = await waitJob((await api.call("POST", `/apps/${id}/deploy`)).body.job.id);
    expect(third.status, third.error).toBe("succeeded");
    const bare = (await api.call("GET", `/apps/${id}`)).body.app.container_id as string;
    expect(docker("exec", bare, "sh", "-c", "test -e /data/marker && echo present || echo absent")).toBe("absent");
    expect((await api.call("POST", `/apps/${id}/volumes`, { mount_path: "/data" })).body.name).toBe(volume);
    const fourth = await waitJob((await api.call("POST", `/apps/${id}/deploy`)).body.job.id);
    expect(fourth.status, fourth.error).toBe("succeeded");
    expect(docker("exec", (await api.call("GET", `/apps/${id}`)).body.app.container_id, "cat", "/data/marker")).toBe("kept");
    expect((await api.call("DELETE", `/apps/${id}`)).status).toBe(200);
  });

  it("deploys an uploaded `docker save` tarball: README's one curl, multipart by app id, and a redeploy of it", async () => {
    // An image only this host has, under a name no registry serves: deploying it can only work by upload.
    const local = `berth-test-upload/hello:${Date.now().toString(36)}`;
    docker("pull", "-q", IMAGE_V1);
    docker("pull", "-q", IMAGE_V2);
    docker("tag", IMAGE_V2, local);
    const dir = mkdtempSync(join(tmpdir(), "berth-upload-"));
    dirs.push(dir);
    docker("save", "-o", join(dir, "v1.tar"), IMAGE_V1);
    const created = await api.call("POST", `/projects/${projectId}/apps`, { name: `Upload ${Date.now().toString(36)}`, image: IMAGE_V1, internal_port: 8080, memory_limit: 64 });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { id, slug: upSlug } = created.body;
    createdApps.push(id);
    const key = (await api.call("POST", "/api-keys", { name: "ci-upload" })).body.key as string;

    // README's command, as CI runs it (gzipped, by slug, with a dkp_ key).
    const curl = execFileSync(
      "sh",
      ["-c", `docker save "$IMAGE" | gzip > app.tar.gz && docker rmi "$IMAGE" >/dev/null && curl -fsS -F image=@app.tar.gz -H "Authorization: Bearer $BERTH_KEY" "$BERTH_URL/api/v1/deploy/$APP"`],
      { cwd: dir, encoding: "utf8", env: { ...process.env, IMAGE: local, BERTH_KEY: key, BERTH_URL: server.url, APP: upSlug } },
    );
    const answer = JSON.parse(curl);
    expect(answer).toMatchObject({ slug: upSlug, loaded_image: null, tagged_as: `berth-upload/${upSlug}:${answer.deployment.id}` });
    const job = await waitJob(answer.job.id);
    expect(job.status, job.error).toBe("succeeded");
    const log = JSON.stringify((await api.call("GET", `/projects/${projectId}/jobs/${answer.job.id}/logs`)).body.logs);
    expect(log).toMatch(/fetching the uploaded image \(\d+\.\d MB\)/);
    expect(log).toContain(`loaded image ${local}`);
    expect((await viaCaddy(upSlug)).text).toContain("hello v2");
    expect((await api.call("GET", `/apps/${id}`)).body.app).toMatchObject({ status: "running", image: answer.tagged_as });

    // Multipart by app id, with fetch: Dockup's 200 with the tag it deploys.
    const form = new FormData();
    form.append("image", new Blob([readFileSync(join(dir, "v1.tar"))]), "v1.tar");
    const res = await fetch(`${server.url}/api/v1/apps/${id}/upload-image`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: form });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.tagged_as).toBe(`berth-upload/${upSlug}:${body.deployment.id}`);
    const second = await waitJob(body.job.id);
    expect(second.status, second.error).toBe("succeeded");
    expect((await viaCaddy(upSlug)).text).toContain("hello v1");
    // The earlier upload is no longer kept on the host.
    expect(docker("images", "-q", answer.tagged_as)).toBe("");

    // A plain redeploy runs the uploaded image the host has; no registry is asked.
    const again = await waitJob((await api.call("POST", `/deploy/${upSlug}`)).body.job.id);
    expect(again.status, again.error).toBe("succeeded");
    expect((await viaCaddy(upSlug)).text).toContain("hello v1");
    expect(containersOf(id)).toHaveLength(1);

    expect((await api.call("DELETE", `/apps/${id}`)).status).toBe(200);
    const end = Date.now() + 30_000;
    while (containersOf(id).length && Date.now() < end) await new Promise((r) => setTimeout(r, 250));
    const left = docker("images", "-q", `berth-upload/${upSlug}`).split("\n").filter(Boolean);
    if (left.length) docker("rmi", "-f", ...new Set(left));
    docker("rmi", local);
  });

  it("deletes the app: the container and the route are gone", async () => {
    const res = await api.call("DELETE", `/apps/${appId}`);
    expect(res.status).toBe(200);
    const end = Date.now() + 30_000;
    while (containersOf(appId).length && Date.now() < end) await new Promise((r) => setTimeout(r, 250));
    expect(containersOf(appId)).toEqual([]);
    const route = await fetch(`http://127.0.0.1:2019/id/berth-app-${appId}`);
    expect(route.status).not.toBe(200);
    expect((await viaCaddy(appSlug)).status).not.toBe(200);
  });
});

