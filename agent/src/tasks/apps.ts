/**
 * App jobs on a Docker host: deploy with zero downtime (the new container
 * must answer on its port before the route moves to it, and only then does
 * the old one stop), start, stop, restart, remove, and live limit updates.
 * Every container is labelled with its app, deployment and job, so a job
 * handed out again finds what an earlier attempt made instead of making it twice.
 */
import { connect } from "node:net";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { JobPayload } from "../../../src/protocol/agent.ts";
import { type BuildSettings, buildFromGit, DEFAULT_BUILD_SETTINGS } from "../build/git-build.ts";
import type { CaddyAdmin } from "../drivers/caddy.ts";
import { sleepingRouteOf, unsleepRoute } from "../drivers/caddy-sleep.ts";
import { openConnectionsTo } from "../drivers/connections.ts";
import type { ContainerSummary, DockerEngine, RegistryAuth } from "../drivers/docker.ts";
import type { PayloadOf, TaskContext, TaskOutcome, TaskRegistry } from "../jobs/registry.ts";
import { appSet, LABEL_REPLICA, launchReplicas, replicaIndex, scaleApp, sumStats, withTail } from "./replicas.ts";

export interface AppDrivers {
  docker: DockerEngine;
  caddy: CaddyAdmin;
  /** How git builds are made on this host (base image registry, limits). */
  build?: BuildSettings;
}

type AppPayload = PayloadOf<Extract<JobPayload["type"], `app.${string}`>>;
type DeployPayload = PayloadOf<"app.deploy">;

export const LABEL_APP = "berth.app";
/** On an app's named volume: the path it is mounted at. */
export const LABEL_VOLUME = "berth.volume.mount_path";
export const LABEL_DEPLOYMENT = "berth.deployment";
export const LABEL_JOB = "berth.job";

const newestFirst = (a: ContainerSummary, b: ContainerSummary) => Date.parse(b.created) - Date.parse(a.created);

/** Registers the app jobs; jobs of one app run one at a time. */
export function registerAppTasks(registry: TaskRegistry, drivers: AppDrivers) {
  const byApp = { exclusiveKey: (p: AppPayload) => p.app_id };
  registry
    .register("app.deploy", { ...byApp, run: (ctx) => deploy(drivers, ctx, ctx.payload) })
    .register(["app.start", "app.restart"], { ...byApp, run: (ctx) => startOrRestart(drivers, ctx, ctx.payload, ctx.payload.type === "app.restart") })
    .register("app.stop", { ...byApp, run: (ctx) => stopApp(drivers, ctx, ctx.payload) })
    .register("app.remove", { ...byApp, run: (ctx) => removeApp(drivers, ctx, ctx.payload) })
    .register("app.update", { ...byApp, run: (ctx) => updateLimits(drivers, ctx, ctx.payload) })
    .register("app.scale", { ...byApp, run: (ctx) => scaleApp(drivers, ctx, ctx.payload) });
}

/** Longest a deploy waits for requests in flight to the previous container before stopping it. */
const DRAIN_TIMEOUT_MS = 5_000;
/** How long "nothing in flight" must hold before the previous container stops. */
const DRAIN_SETTLE_MS = 50;

/**
 * Resolves once nothing more is on its way to `upstream` (the previous
 * container), or after `timeoutMs`. Two witnesses: the host's open TCP
 * connections to it, which see requests Caddy's reload has hidden from Caddy's
 * own count (drivers/connections.ts), and that count where the kernel's tables
 * cannot be read. Idle must hold for DRAIN_SETTLE_MS: a request the old server
 * accepted just before the switch may not have dialled yet.
 */
export async function drained(caddy: Pick<CaddyAdmin, "inFlight">, upstream: string, timeoutMs: number, settleMs = DRAIN_SETTLE_MS): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  let idleSince: number | null = null;
  for (;;) {
    const [tcp, proxied] = await Promise.all([openConnectionsTo(upstream), caddy.inFlight(upstream).catch(() => 0)]);
    const now = Date.now();
    if (Math.max(tcp ?? 0, proxied) > 0) idleSince = null;
    else if (idleSince === null) idleSince = now;
    if (idleSince !== null && now - idleSince >= settleMs) return true;
    if (now >= end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Caddy instances whose ingress server this process has set up; checked again only when a route change fails (Caddy restarted). */
const ingressReady = new WeakSet<CaddyAdmin>();

export async function route(caddy: CaddyAdmin, appId: string, hostname: string, upstream: string | string[]) {
  if (!ingressReady.has(caddy)) {
    await caddy.ensureServer();
    ingressReady.add(caddy);
  }
  try {
    await caddy.setRoute(appId, hostname, upstream);
  } catch {
    ingressReady.delete(caddy);
    await caddy.ensureServer();
    ingressReady.add(caddy);
    await caddy.setRoute(appId, hostname, upstream);
  }
}

export async function appContainers(docker: DockerEngine, appId: string) {
  return (await docker.list({ [LABEL_APP]: appId })).sort(newestFirst);
}

/** Resolves when something answers at `host:port` (the app is up), or rejects after `timeoutMs`. */
export async function waitForPort(host: string, port: number, timeoutMs: number, stillRunning: () => Promise<boolean>, signal: AbortSignal): Promise<void> {
  const end = Date.now() + timeoutMs;
  let pause = 10;
  while (Date.now() < end && !signal.aborted) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host, port });
      socket.setTimeout(1_000);
      socket.once("connect", () => {
        // Accepting is not enough for a proxied port: ask for a response.
        socket.write("GET / HTTP/1.0\r\nHost: health\r\n\r\n");
      });
      socket.once("data", () => {
        socket.destroy();
        resolve(true);
      });
      const fail = () => {
        socket.destroy();
        resolve(false);
      };
      socket.once("error", fail);
      socket.once("timeout", fail);
      socket.once("end", fail);
    });
    if (open) return;
    if (!(await stillRunning())) throw new Error("the container exited or keeps restarting");
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 200);
  }
  throw new Error(`nothing answered on the app's port within ${Math.round(timeoutMs / 1000)} s`);
}

export async function lastLines(docker: DockerEngine, id: string): Promise<string> {
  try {
    const lines = await docker.logs(id, { tail: 10 });
    return lines.map((l) => l.text).join("\n").slice(-1500);
  } catch {
    return "";
  }
}

async function deploy({ docker, caddy, build }: AppDrivers, ctx: TaskContext, p: DeployPayload): Promise<TaskOutcome> {
  const total = 5;
  // The commit a git build cloned, set by the build as soon as it is known.
  const built: { commit: string | null } = { commit: null };
  // Secrets for this deploy only: the app's env vars, the registry's credentials, a private repository's token.
  const secrets =
    p.has_env || p.has_registry_auth || p.git?.has_token
      ? await ctx.api.call<{ env: Record<string, string>; registry_auth: RegistryAuth | null; git_token?: string | null }>("GET", `/agent/leases/${ctx.lease.lease_id}/env`)
      : { env: {}, registry_auth: null, git_token: null };
  try {
    if (p.git) {
      if (ctx.lease.reconcile && (await docker.imageExists(p.image))) {
        // An earlier attempt of this job built it already.
        ctx.progress(1, total, `Using ${p.image}, built by an earlier attempt`);
        ctx.output("stdout", `using ${p.image}, built by an earlier attempt of this deploy`);
      } else {
        ctx.progress(1, total, `Building ${p.git.branch} of ${p.git.repo_url}`);
        await buildFromGit(
          docker,
          build ?? DEFAULT_BUILD_SETTINGS,
          { repoUrl: p.git.repo_url, branch: p.git.branch, tag: p.image, port: p.internal_port, token: secrets.git_token ?? null },
          (line) => ctx.output("stdout", line),
          ctx.signal,
          (sha) => {
            built.commit = sha;
          },
        );
      }
    } else if (p.upload) {
      ctx.progress(1, total, "Loading the uploaded image");
      await loadUpload(docker, ctx, p);
    } else if (p.image.startsWith(`${UPLOAD_REPOSITORY}/`)) {
      // An uploaded image is in no registry: a redeploy runs the copy this host loaded.
      ctx.progress(1, total, `Using the uploaded image ${p.image}`);
      if (!(await docker.imageExists(p.image))) throw new Error(`The uploaded image ${p.image} is not on this host: upload it again (POST /apps/{appId}/upload-image)`);
    } else if (p.image.startsWith(`${BUILD_REPOSITORY}/`)) {
      // A built image is in no registry either (the app has no repository any more): the copy this host built.
      ctx.progress(1, total, `Using the built image ${p.image}`);
      if (!(await docker.imageExists(p.image))) throw new Error(`The built image ${p.image} is not on this host: set the app's git_repo_url to build it again`);
    } else {
      ctx.progress(1, total, `Pulling ${p.image}`);
      await docker.pull(p.image, secrets.registry_auth, { signal: ctx.signal });
    }
  } catch (err) {
    const message = (err as Error).message;
    if (!p.git) return { status: "failed", error: message };
    ctx.output("stderr", message);
    return { status: "failed", error: `The build failed: ${message}. The previous version keeps serving.`, result: built.commit ? { commit: built.commit } : null };
  }

  // Named volumes are made the first time a deploy mounts them and kept after (with their data).
  for (const v of p.volumes) {
    const made = await docker.ensureVolume(v.name, { [LABEL_APP]: p.app_id, [LABEL_VOLUME]: v.mount_path });
    ctx.output("stdout", `${made === "created" ? "created volume" : "using volume"} ${v.name} at ${v.mount_path}`);
  }

  // An earlier attempt of this job may have created some replicas already.
  const earlier = (await docker.list({ [LABEL_JOB]: ctx.lease.job_id })).sort(newestFirst);
  const count = p.replicas ?? 1;
  const name = `berth-${p.slug}-${p.deployment_id.replace(/^dep_/, "").slice(0, 10)}`;
  ctx.progress(2, total, count > 1 ? `Creating ${count} containers` : "Creating the container");
  let started: Array<{ index: number; id: string; upstream: string }>;
  try {
    started = await launchReplicas(
      docker,
      ctx,
      Array.from({ length: count }, (_, i) => i),
      async (index) => {
        const found = earlier.find((c) => replicaIndex(c) === index);
        if (found) {
          ctx.output("stdout", `found container ${found.id.slice(0, 12)} from an earlier attempt; using it`);
          return found.id;
        }
        return docker.create({
          name: index === 0 ? name : `${name}-r${index}`,
          image: p.image,
          env: secrets.env,
          cmd: p.command,
          labels: { [LABEL_APP]: p.app_id, [LABEL_DEPLOYMENT]: p.deployment_id, [LABEL_JOB]: ctx.lease.job_id, [LABEL_REPLICA]: String(index), "berth.slug": p.slug },
          internalPort: p.internal_port,
          cpuLimit: p.cpu_limit,
          memoryLimitMb: p.memory_limit_mb,
          restartPolicy: "unless-stopped",
          publishPort: false,
          volumes: p.volumes.map((v) => ({ name: v.name, target: v.mount_path })),
        });
      },
      p.internal_port,
      p.health_timeout_seconds,
      () => ctx.progress(3, total, count > 1 ? `Waiting for the ${count} replicas to answer` : "Waiting for the app to answer"),
    );
  } catch (err) {
    return { status: "failed", error: withTail(err, `The new container never became healthy: ${(err as Error).message}. The previous version keeps serving.`) };
  }
  const ids = started.map((r) => r.id);
  const upstreams = started.map((r) => r.upstream);
  const id = ids[0]!;
  const upstream = upstreams[0]!;

  ctx.progress(4, total, `Routing ${p.hostname} to the new container${count > 1 ? "s" : ""}`);
  const previous = await caddy.upstreamsFor(p.app_id).catch(() => [] as string[]);
  // A sleeping app's route leads to the wake listener, whose held requests wait for this job and then go to the new containers.
  const asleep = previous.length ? await sleepingRouteOf(caddy, p.app_id).catch(() => null) : null;
  await route(caddy, p.app_id, p.hostname, count > 1 ? upstreams : upstream);
  // Requests already on their way to the previous containers finish before they stop.
  const leaving = asleep ? [] : previous.filter((u) => !upstreams.includes(u));
  const settled = await Promise.all(leaving.map((u) => drained(caddy, u, DRAIN_TIMEOUT_MS)));
  if (settled.includes(false)) {
    ctx.output("stderr", `requests to the previous container were still open after ${DRAIN_TIMEOUT_MS / 1000} s; stopping it anyway`);
  }

  ctx.progress(5, total, "Stopping the previous container");
  for (const old of await appContainers(docker, p.app_id)) {
    if (ids.includes(old.id)) continue;
    await docker.stop(old.id, 10).catch(() => undefined);
    await docker.remove(old.id, { force: true }).catch(() => false);
  }
  if (p.image.startsWith(`${UPLOAD_REPOSITORY}/`) || p.image.startsWith(`${BUILD_REPOSITORY}/`)) await pruneUploads(docker, ctx, p.image);
  return { status: "succeeded", result: { container_id: id, host_port: null, upstream, replicas: count, ...(built.commit ? { commit: built.commit } : {}) } };
}

/** Repository uploaded images are tagged into (src/services/image-uploads.ts names them). */
const UPLOAD_REPOSITORY = "berth-upload";
/** Repository images built from git are tagged into (src/services/deployments.ts names them). */
const BUILD_REPOSITORY = "berth-build";

/**
 * Fetches the deploy's uploaded tarball for its lease and streams it into `docker load`,
 * then tags what it held as the deploy's image. The first image a multi-image tarball holds is the one deployed.
 */
async function loadUpload(docker: DockerEngine, ctx: TaskContext, p: DeployPayload): Promise<void> {
  if (!ctx.api.download) throw new Error("this agent cannot fetch uploaded images");
  const mb = (p.upload!.size_bytes / (1024 * 1024)).toFixed(1);
  ctx.output("stdout", `fetching the uploaded image (${mb} MB)`);
  const started = Date.now();
  const res = await ctx.api.download(`/agent/leases/${ctx.lease.lease_id}/image`, { signal: ctx.signal });
  const loaded = await docker.load(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), { signal: ctx.signal });
  const source = loaded.find((ref) => !ref.startsWith("sha256:")) ?? loaded[0]!;
  ctx.output("stdout", `loaded image ${loaded.join(", ")} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await docker.tag(source, p.image);
  ctx.output("stdout", `tagged ${source} as ${p.image}`);
}

/**
 * Earlier uploaded or built images of the app (`berth-upload/…`, `berth-build/…`): nothing runs
 * them once the new container serves, and only a new upload or build brings them back.
 */
async function pruneUploads(docker: DockerEngine, ctx: TaskContext, image: string) {
  const repo = image.slice(0, image.lastIndexOf(":"));
  const what = repo.startsWith(`${BUILD_REPOSITORY}/`) ? "built" : "uploaded";
  for (const tag of await docker.imageTags(repo).catch(() => [])) {
    if (tag === image) continue;
    if (await docker.removeImage(tag).catch(() => false)) ctx.output("stdout", `removed the earlier ${what} image ${tag}`);
  }
}

async function startOrRestart({ docker, caddy }: AppDrivers, ctx: TaskContext, p: AppPayload, restart: boolean): Promise<TaskOutcome> {
  // Every replica of the current deployment.
  const { replicas } = await appSet(docker, p.app_id);
  if (!replicas.length) return { status: "failed", error: "The app has no container on this host; deploy it" };
  const upstreams: string[] = [];
  for (const c of replicas) {
    if (restart) await docker.restart(c.id, 10);
    else if (c.state !== "running") await docker.start(c.id);
    const info = await docker.inspect(c.id);
    // A restarted container may get a new address: move the route with it.
    if (info?.address && info.exposedPort) upstreams.push(`${info.address}:${info.exposedPort}`);
    ctx.output("stdout", `${restart ? "restarted" : "started"} ${c.id.slice(0, 12)}`);
  }
  if (upstreams.length) await route(caddy, p.app_id, p.hostname, upstreams.length === 1 ? upstreams[0]! : upstreams);
  return { status: "succeeded", result: { container_id: replicas[0]!.id, host_port: null, upstream: upstreams[0] ?? null } };
}

async function stopApp({ docker, caddy }: AppDrivers, ctx: TaskContext, p: AppPayload): Promise<TaskOutcome> {
  // A user stop of a sleeping app: its plain route back, so traffic no longer wakes it.
  if (await unsleepRoute(caddy, p.app_id).catch(() => false)) ctx.output("stdout", "the app was asleep; it stays stopped and requests no longer wake it");
  for (const c of await appContainers(docker, p.app_id)) {
    if (c.state === "running" || c.state === "restarting" || c.state === "paused") await docker.stop(c.id, 10);
    ctx.output("stdout", `stopped ${c.id.slice(0, 12)}`);
  }
  return { status: "succeeded", result: null };
}

async function removeApp(drivers: AppDrivers, ctx: TaskContext, p: AppPayload): Promise<TaskOutcome> {
  for (const id of await evictApp(drivers, p.app_id)) ctx.output("stdout", `removed ${id.slice(0, 12)}`);
  // Its uploaded images go with it: nothing else runs them.
  await pruneUploads(drivers.docker, ctx, `${UPLOAD_REPOSITORY}/${p.slug.toLowerCase()}:`);
  await pruneUploads(drivers.docker, ctx, `${BUILD_REPOSITORY}/${p.slug.toLowerCase()}:`);
  return { status: "succeeded", result: null };
}

/** Removes an app's route and every container of it from this host; answers the ids removed. */
export async function evictApp({ docker, caddy }: AppDrivers, appId: string): Promise<string[]> {
  await caddy.removeRoute(appId).catch(() => false);
  const removed: string[] = [];
  for (const c of await appContainers(docker, appId)) {
    await docker.remove(c.id, { force: true });
    removed.push(c.id);
  }
  return removed;
}

async function updateLimits({ docker }: AppDrivers, ctx: TaskContext, p: PayloadOf<"app.update">): Promise<TaskOutcome> {
  for (const c of await appContainers(docker, p.app_id)) {
    await docker.update(c.id, { cpuLimit: p.cpu_limit, memoryLimitMb: p.memory_limit_mb });
    ctx.output("stdout", `updated ${c.id.slice(0, 12)}: ${p.cpu_limit} CPU, ${p.memory_limit_mb} MB`);
  }
  return { status: "succeeded", result: null };
}

/**
 * Answers about an app's current replicas: their last log lines (merged in time order), or a
 * stats sample summed over the running ones (null when nothing runs).
 */
export async function appQuery({ docker }: AppDrivers, method: "app.logs" | "app.stats" | "host.containers", params: { app_id: string; tail?: number }): Promise<unknown> {
  if (method === "host.containers") {
    return (await docker.list({})).map((c) => ({ id: c.id, name: c.names[0]?.replace(/^\//, "") ?? c.id.slice(0, 12), image: c.image, state: c.state, status: c.status, created: c.created, app_id: c.labels[LABEL_APP] ?? null }));
  }
  const { replicas } = await appSet(docker, params.app_id);
  if (method === "app.logs") {
    const tail = params.tail ?? 100;
    const lines = (await Promise.all(replicas.map((c) => docker.logs(c.id, { tail })))).flat();
    // One replica's lines as they were; several merged by time, the last `tail` of them all.
    if (replicas.length > 1) lines.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
    return lines.slice(-tail).map(({ time, stream, text }) => ({ time, stream, text }));
  }
  const running = replicas.filter((c) => c.state === "running");
  if (!running.length) return null;
  return sumStats(await Promise.all(running.map((c) => docker.stats(c.id))));
}
