/**
 * An app as N containers (replicas) behind its one Caddy route: which containers
 * make up its current set, starting replicas and waiting until each answers, and
 * the `app.scale` job that brings the set to a count (replacing replicas that died,
 * adding copies of a running one, draining and stopping extra ones).
 *
 * The current set is the containers of the app's newest deployment (label
 * `berth.deployment`); each carries its index (`berth.replica`, 0 for containers
 * made before replicas existed). The first running one stands for the app where
 * one container is expected (the app's `container_id`, terminals).
 */
import type { ContainerStats, ContainerSummary, DockerEngine } from "../drivers/docker.ts";
import type { PayloadOf, TaskContext, TaskOutcome } from "../jobs/registry.ts";
import { type AppDrivers, drained, LABEL_APP, LABEL_DEPLOYMENT, LABEL_JOB, lastLines, route, waitForPort } from "./apps.ts";

export const LABEL_REPLICA = "berth.replica";

/** Longest a scale-down waits for requests in flight to a replica before stopping it. */
const DRAIN_TIMEOUT_MS = 5_000;

type ScalePayload = PayloadOf<"app.scale">;

export function replicaIndex(c: { labels: Record<string, string> }): number {
  const n = Number(c.labels[LABEL_REPLICA] ?? 0);
  return Number.isInteger(n) && n >= 0 ? n : 0;
}

const newestFirst = (a: ContainerSummary, b: ContainerSummary) => Date.parse(b.created) - Date.parse(a.created);

/** The containers of the newest deployment among `all` (one app's), by replica index. */
export function currentSet(all: ContainerSummary[]): { deploymentId: string | null; replicas: ContainerSummary[] } {
  const newest = [...all].sort(newestFirst)[0];
  if (!newest) return { deploymentId: null, replicas: [] };
  const deploymentId = newest.labels[LABEL_DEPLOYMENT] ?? null;
  const replicas = all.filter((c) => (c.labels[LABEL_DEPLOYMENT] ?? null) === deploymentId).sort((a, b) => replicaIndex(a) - replicaIndex(b) || newestFirst(b, a));
  return { deploymentId, replicas };
}

export async function appSet(docker: DockerEngine, appId: string) {
  return currentSet(await docker.list({ [LABEL_APP]: appId }));
}

/** An app's use as one sample: the sum over its replicas (memory_max_mb the sum of their limits). */
export function sumStats(samples: ContainerStats[]): ContainerStats {
  const sum = (k: keyof ContainerStats) => samples.reduce((n, s) => n + s[k], 0);
  const r2 = (n: number) => Math.round(n * 100) / 100;
  return { cpu_percent: r2(sum("cpu_percent")), memory_mb: r2(sum("memory_mb")), memory_max_mb: r2(sum("memory_max_mb")), net_rx_bytes: sum("net_rx_bytes"), net_tx_bytes: sum("net_tx_bytes") };
}

/** The replica that stands for the app: the first running one, else the first. */
export function primaryOf(replicas: ContainerSummary[]): ContainerSummary | null {
  return replicas.find((c) => c.state === "running") ?? replicas[0] ?? null;
}

/** A replica that did not answer: why, and its last log lines (kept apart, for the error's end). */
export class ReplicaFailure extends Error {
  readonly tail: string;
  constructor(message: string, tail: string) {
    super(message);
    this.tail = tail;
  }
}

/** `message`, then the failed replica's last lines, as a job error ends. */
export function withTail(err: unknown, message: string): string {
  const tail = err instanceof ReplicaFailure ? err.tail : "";
  return `${message}${tail ? ` Last lines:\n${tail}` : ""}`;
}

/**
 * Starts each container (made by `make`) and waits until every one answers on `port`. On the
 * first that does not, removes them all and throws a readable reason with its last lines.
 */
export async function launchReplicas(
  docker: DockerEngine,
  ctx: TaskContext,
  indexes: number[],
  make: (index: number) => Promise<string>,
  port: number,
  healthTimeoutSeconds: number,
  beforeProbe: () => void = () => undefined,
): Promise<Array<{ index: number; id: string; upstream: string }>> {
  const made: Array<{ index: number; id: string; upstream: string }> = [];
  const ids: string[] = [];
  try {
    for (const index of indexes) {
      const id = await make(index);
      ids.push(id);
      const info0 = await docker.inspect(id);
      if (!info0?.state.running) await docker.start(id);
    }
    beforeProbe();
    await Promise.all(
      ids.map(async (id, i) => {
        const info = await docker.inspect(id);
        const address = info?.state.running ? info.address : null;
        try {
          if (!address) throw new Error("the container exited");
          // Restarting counts as down: under its restart policy a crashing container is "running" between crashes.
          const healthy = async () => {
            const s = (await docker.inspect(id))?.state;
            return Boolean(s?.running && s.status !== "restarting" && s.restartCount === 0);
          };
          await waitForPort(address, port, healthTimeoutSeconds * 1000, healthy, ctx.signal);
        } catch (err) {
          const tail = await lastLines(docker, id);
          const state = await docker.inspect(id);
          const exit = state && !state.state.running ? ` (exit status ${state.state.exitCode}${state.state.oomKilled ? ", out of memory" : ""})` : "";
          const which = indexes.length > 1 ? `replica ${indexes[i]}: ` : "";
          throw new ReplicaFailure(`${which}${(err as Error).message}${exit}`, tail);
        }
        made[i] = { index: indexes[i]!, id, upstream: `${address}:${port}` };
      }),
    );
    return made;
  } catch (err) {
    for (const id of ids) await docker.remove(id, { force: true }).catch(() => false);
    throw err;
  }
}

/** The address Caddy reaches each running replica at. */
async function upstreamsOf(docker: DockerEngine, replicas: ContainerSummary[], port: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const c of replicas) {
    const info = await docker.inspect(c.id);
    if (info?.state.running && info.address) out.set(c.id, `${info.address}:${port}`);
  }
  return out;
}

/** `app.scale`: exactly `p.replicas` healthy replicas of the current deployment behind the route. */
export async function scaleApp({ docker, caddy }: AppDrivers, ctx: TaskContext, p: ScalePayload): Promise<TaskOutcome> {
  const { deploymentId, replicas } = await appSet(docker, p.app_id);
  const running = replicas.filter((c) => c.state === "running");
  if (!running.length) return { status: "failed", error: "The app has no running container on this host to copy: start or deploy it" };
  ctx.progress(1, 3, `Scaling to ${p.replicas} replica${p.replicas === 1 ? "" : "s"} (${running.length} running)`);

  // Replicas that died (exited, dead, crash-looping) go first: they serve nothing.
  for (const c of replicas) {
    if (c.state === "running") continue;
    await docker.remove(c.id, { force: true }).catch(() => false);
    ctx.output("stdout", `removed replica ${replicaIndex(c)} (${c.id.slice(0, 12)}, ${c.state})`);
  }

  const keep = running.slice(0, p.replicas);
  const extra = running.slice(p.replicas);
  const used = new Set(keep.map(replicaIndex));
  const indexes: number[] = [];
  for (let i = 0; indexes.length < p.replicas - keep.length; i++) if (!used.has(i)) indexes.push(i);

  const template = keep[0]!;
  const jobTag = ctx.lease.job_id.replace(/^job_/, "").slice(0, 10);
  const baseName = (template.names[0] ?? `berth-${p.slug}`).replace(/-r\d+(-[0-9a-z]+)?$/, "");
  let added: Array<{ index: number; id: string; upstream: string }> = [];
  if (indexes.length) {
    ctx.progress(2, 3, `Starting ${indexes.length} replica${indexes.length === 1 ? "" : "s"}`);
    try {
      added = await launchReplicas(
        docker,
        ctx,
        indexes,
        async (index) => {
          // An earlier attempt of this job may have made this replica already.
          const earlier = (await docker.list({ [LABEL_JOB]: ctx.lease.job_id, [LABEL_APP]: p.app_id })).find((c) => replicaIndex(c) === index);
          if (earlier) return earlier.id;
          return docker.clone(template.id, `${baseName}-r${index}-${jobTag}`, { [LABEL_REPLICA]: String(index), [LABEL_JOB]: ctx.lease.job_id, ...(deploymentId ? { [LABEL_DEPLOYMENT]: deploymentId } : {}) });
        },
        p.internal_port,
        p.health_timeout_seconds,
      );
    } catch (err) {
      return { status: "failed", error: withTail(err, `A new replica never became healthy: ${(err as Error).message}. The running replicas keep serving.`) };
    }
    for (const a of added) ctx.output("stdout", `replica ${a.index} (${a.id.slice(0, 12)}) answers at ${a.upstream}`);
  }

  const serving = await upstreamsOf(docker, keep, p.internal_port);
  const upstreams = [...serving.values(), ...added.map((a) => a.upstream)];
  ctx.progress(3, 3, `Routing ${p.hostname} to ${upstreams.length} replica${upstreams.length === 1 ? "" : "s"}`);
  await route(caddy, p.app_id, p.hostname, upstreams.length === 1 ? upstreams[0]! : upstreams);

  if (extra.length) {
    const leaving = await upstreamsOf(docker, extra, p.internal_port);
    await Promise.all([...leaving.values()].map((u) => drained(caddy, u, DRAIN_TIMEOUT_MS)));
    for (const c of extra) {
      await docker.stop(c.id, 10).catch(() => undefined);
      await docker.remove(c.id, { force: true }).catch(() => false);
      ctx.output("stdout", `stopped replica ${replicaIndex(c)} (${c.id.slice(0, 12)})`);
    }
  }
  const all = [...keep.map((c) => ({ index: replicaIndex(c), id: c.id })), ...added].sort((a, b) => a.index - b.index);
  return { status: "succeeded", result: { container_id: all[0]!.id, replicas: all.length, upstream: upstreams[0] ?? null } };
}
