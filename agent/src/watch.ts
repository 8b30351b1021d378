/**
 * Keeps the control plane's view of this host's apps true: every container
 * event of an app (start, die, stop, oom, …) is reported within moments, and
 * every 30 s a full pass reports each app's current container with a stats
 * sample, catching anything an event missed.
 */
import type { LeaseReporter } from "./jobs/registry.ts";
import { sleep } from "./backoff.ts";
import type { ContainerSummary } from "./drivers/docker.ts";
import type { Logger } from "./log.ts";
import type { SleepKeeper } from "./sleep.ts";
import { type AppDrivers, evictApp, LABEL_APP } from "./tasks/apps.ts";
import { currentSet, primaryOf, sumStats } from "./tasks/replicas.ts";

const EVENTS = new Set(["start", "die", "stop", "kill", "oom", "pause", "unpause", "restart", "destroy"]);

interface Entry {
  app_id: string;
  container_id: string;
  state: string;
  /** Stopped by sleep on idle, its route at the wake listener. */
  sleeping?: boolean;
  last_request_at?: string | null;
  stats?: { cpu_percent: number; memory_mb: number; memory_max_mb: number; net_rx_bytes: number; net_tx_bytes: number } | null;
  replicas?: { deployment_id: string | null; ids: string[]; running: number };
}

export class AppWatcher {
  private readonly drivers: AppDrivers;
  private readonly api: LeaseReporter;
  private readonly log: Logger;
  private readonly intervalMs: number;

  /** The agent's per-app lock, shared with the app's jobs. */
  private readonly exclusive: <T>(appId: string, fn: () => Promise<T>) => Promise<T>;

  /** Sleep on idle: what reports say of it, and where the control plane's setting goes. */
  private readonly sleep: SleepKeeper | null;

  constructor(drivers: AppDrivers, api: LeaseReporter, log: Logger, exclusive: <T>(appId: string, fn: () => Promise<T>) => Promise<T>, intervalMs = 30_000, sleep: SleepKeeper | null = null) {
    this.drivers = drivers;
    this.sleep = sleep;
    this.exclusive = exclusive;
    this.api = api;
    this.log = log;
    this.intervalMs = intervalMs;
  }

  async run(signal: AbortSignal): Promise<void> {
    try {
      await this.drivers.docker.ping();
    } catch {
      this.log.info("no Docker engine here; not watching apps");
      return;
    }
    await Promise.all([this.sweeps(signal), this.events(signal)]);
  }

  /** Each app's current replicas (the containers of its newest deployment). */
  private async current(): Promise<Map<string, ContainerSummary[]>> {
    const byApp = new Map<string, ContainerSummary[]>();
    for (const c of await this.drivers.docker.list({ [LABEL_APP]: "" })) {
      const appId = c.labels[LABEL_APP];
      if (!appId) continue;
      byApp.set(appId, [...(byApp.get(appId) ?? []), c]);
    }
    return new Map([...byApp].map(([appId, all]) => [appId, currentSet(all).replicas]));
  }

  /** Reports, then removes what the control plane says this host should not run (deleted apps, apps moved away). */
  private async send(entries: Entry[]) {
    if (!entries.length) return;
    const sleep = this.sleep;
    const apps = sleep ? entries.map((e) => ({ ...e, sleeping: sleep.isSleeping(e.app_id), last_request_at: sleep.lastRequestAt(e.app_id) })) : entries;
    const res = await this.api.call<{ orphans?: string[]; sleep_after_minutes?: Record<string, number> }>("POST", "/agent/apps/report", { apps });
    sleep?.learn(
      entries.map((e) => e.app_id),
      res.sleep_after_minutes,
    );
    for (const appId of res.orphans ?? []) {
      const removed = await evictApp(this.drivers, appId).catch(() => []);
      if (removed.length) this.log.info("removed an app this host no longer runs", { app_id: appId, containers: removed.length });
    }
  }

  /**
   * Observes an app's replicas and reports them under the app's lock, so that a
   * report can never describe the containers from before a job of the app and
   * arrive after that job's outcome. The first running replica stands for the
   * app; with none left at all, the container the event was about, as removed.
   */
  private observe(appId: string, containerId: string, stats: Entry["stats"] = undefined) {
    return this.exclusive(appId, async () => {
      const { deploymentId, replicas } = currentSet(await this.drivers.docker.list({ [LABEL_APP]: appId }));
      const primary = primaryOf(replicas);
      if (!primary) {
        await this.send([{ app_id: appId, container_id: containerId, state: "removed", ...(stats !== undefined ? { stats } : {}) }]);
        return;
      }
      const running = replicas.filter((c) => c.state === "running").length;
      await this.send([
        {
          app_id: appId,
          container_id: primary.id,
          state: primary.state,
          ...(stats !== undefined ? { stats } : {}),
          replicas: { deployment_id: deploymentId, ids: replicas.map((c) => c.id).slice(0, 64), running: Math.min(running, 64) },
        },
      ]);
    });
  }

  /** What each app's named volumes hold, so a user sees their size. */
  private async reportVolumes() {
    const volumes = (await this.drivers.docker.volumes({ [LABEL_APP]: "" })).slice(0, 1000);
    if (!volumes.length) return;
    await this.api.call("POST", "/agent/apps/report", { apps: [], volumes: volumes.map((v) => ({ app_id: v.labels[LABEL_APP] ?? "", name: v.name, used_bytes: v.usedBytes })) });
  }

  private async sweeps(signal: AbortSignal) {
    while (!signal.aborted) {
      try {
        await Promise.all(
          [...(await this.current())].map(async ([appId, replicas]) => {
            // Sampled outside the lock (it takes a second); the state is read again inside it.
            const running = replicas.filter((c) => c.state === "running");
            const samples = running.length ? await Promise.all(running.map((c) => this.drivers.docker.stats(c.id))).catch(() => null) : null;
            await this.observe(appId, replicas[0]!.id, samples ? sumStats(samples) : null);
          }),
        );
        await this.reportVolumes();
      } catch (err) {
        this.log.debug("app sweep failed", { error: (err as Error).message });
      }
      await sleep(this.intervalMs, signal);
    }
  }

  private async events(signal: AbortSignal) {
    while (!signal.aborted) {
      try {
        for await (const e of this.drivers.docker.events({ labels: { [LABEL_APP]: "" }, since: new Date(), signal })) {
          const appId = e.labels[LABEL_APP];
          if (!appId || !EVENTS.has(e.action)) continue;
          // Not awaited: an app busy with a long deploy must not hold up other apps' events.
          void this.observe(appId, e.id).catch((err: Error) => this.log.debug("event report failed", { error: err.message }));
        }
      } catch (err) {
        if (signal.aborted) break;
        this.log.debug("docker events stream ended; resubscribing", { error: (err as Error).message });
      }
      await sleep(1_000, signal);
    }
  }
}
