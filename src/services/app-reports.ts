/**
 * The agent's view of its apps becomes the apps' status and their stats
 * history. Only a report about an app placed on the reporting host, and about
 * its current container, changes anything: during a zero-downtime deploy the
 * old container's stop is not the app stopping.
 */
import { and, desc, eq, gte, inArray, lt } from "drizzle-orm";
import type { Database } from "../db/client";
import { app, appEvent, appStat, type AppStatus, deployment } from "../db/schema";
import { newId } from "../lib/ids";
import type { AppReport } from "../protocol/agent";
import { recordVolumeSizes } from "./volumes";

const KEEP_STATS_MS = 24 * 3600 * 1000;

/** Docker's container state as an app status. */
export function appStatusOf(state: string): AppStatus {
  switch (state) {
    case "running":
      return "running";
    case "paused":
      return "paused";
    case "restarting":
      return "restarting";
    case "created":
      return "starting";
    default:
      return "stopped";
  }
}

/**
 * Applies a report and answers which reported apps the host should not run
 * at all (`orphans`): deleted apps, and apps that moved to another host while
 * this one was away, unless a deploy to this host is under way. The agent
 * removes their containers and routes.
 */
export async function applyAppReport(db: Database, hostId: string, orgId: string, report: AppReport): Promise<{ applied: number; orphans: string[] }> {
  if (report.volumes?.length) await recordVolumeSizes(db, hostId, orgId, report.volumes);
  const ids = [...new Set(report.apps.map((a) => a.app_id))];
  if (!ids.length) return { applied: 0, orphans: [] };
  const all = await db
    .select({ id: app.id, status: app.status, containerId: app.containerId, hostId: app.hostId, deletedAt: app.deletedAt })
    .from(app)
    .where(and(inArray(app.id, ids), eq(app.orgId, orgId)));
  const deploying = new Set(
    (
      await db
        .select({ appId: deployment.appId })
        .from(deployment)
        .where(and(inArray(deployment.appId, ids), eq(deployment.hostId, hostId), inArray(deployment.status, ["pending", "running"])))
    ).map((d) => d.appId),
  );
  const orphans = all.filter((r) => (r.deletedAt !== null || (r.hostId !== null && r.hostId !== hostId)) && !deploying.has(r.id)).map((r) => r.id);
  const rows = all.filter((r) => r.hostId === hostId && r.deletedAt === null);
  const known = new Map(rows.map((r) => [r.id, r]));
  const now = new Date();
  const writes = [];
  let applied = 0;
  for (const a of report.apps) {
    const row = known.get(a.app_id);
    if (!row) continue;
    if (row.containerId !== a.container_id) {
      // Replicas: the app's first replica died or was removed, and another stands for it now.
      if (!a.replicas || !(await sameReplicaSet(db, a.app_id, row.containerId, a.replicas))) continue;
      writes.push(db.update(app).set({ containerId: a.container_id, updatedAt: now }).where(eq(app.id, a.app_id)));
    }
    applied++;
    const status = appStatusOf(a.state);
    if (status !== row.status) {
      writes.push(db.update(app).set({ status, updatedAt: now }).where(eq(app.id, a.app_id)));
      writes.push(db.insert(appEvent).values({ id: newId("aev"), appId: a.app_id, type: "status", message: `Status changed from ${row.status} to ${status}`, data: { from: row.status, to: status, state: a.state } }));
    }
    if (a.stats) {
      writes.push(db.update(app).set({ cpuUsage: a.stats.cpu_percent, memoryUsage: a.stats.memory_mb }).where(eq(app.id, a.app_id)));
      writes.push(
        db.insert(appStat).values({
          appId: a.app_id,
          at: now,
          cpuPercent: a.stats.cpu_percent,
          memoryMb: a.stats.memory_mb,
          memoryMaxMb: a.stats.memory_max_mb,
          netRxBytes: Math.round(a.stats.net_rx_bytes),
          netTxBytes: Math.round(a.stats.net_tx_bytes),
          replicas: a.replicas?.running ?? null,
        }),
      );
      writes.push(db.delete(appStat).where(and(eq(appStat.appId, a.app_id), lt(appStat.at, new Date(now.getTime() - KEEP_STATS_MS)))));
    }
  }
  if (writes.length) await db.batch(writes as [(typeof writes)[number], ...(typeof writes)[number][]]);
  return { applied, orphans };
}

/**
 * Whether a report's replica set is the app's current one although it names another first
 * replica: it still holds the app's container, or it is the app's last successful deployment's.
 */
async function sameReplicaSet(db: Database, appId: string, containerId: string | null, set: NonNullable<AppReport["apps"][number]["replicas"]>): Promise<boolean> {
  if (containerId && set.ids.includes(containerId)) return true;
  if (!set.deployment_id) return false;
  const [last] = await db
    .select({ id: deployment.id })
    .from(deployment)
    .where(and(eq(deployment.appId, appId), eq(deployment.status, "succeeded")))
    .orderBy(desc(deployment.finishedAt))
    .limit(1);
  return last?.id === set.deployment_id;
}

export async function statsHistory(db: Database, appId: string, minutes: number) {
  const rows = await db
    .select()
    .from(appStat)
    .where(and(eq(appStat.appId, appId), gte(appStat.at, new Date(Date.now() - minutes * 60_000))))
    .orderBy(appStat.at);
  return rows.map((r) => ({
    time: r.at.toISOString(),
    cpu_percent: r.cpuPercent,
    memory_mb: r.memoryMb,
    memory_max_mb: r.memoryMaxMb,
    net_rx_bytes: r.netRxBytes,
    net_tx_bytes: r.netTxBytes,
    // Dockup's documented names for the same sample, for its clients.
    cpu_pct: r.cpuPercent,
    net_rx_mb: r.netRxBytes / MB,
    net_tx_mb: r.netTxBytes / MB,
    created_at: r.at.toISOString(),
    // Samples sum over the app's replicas: how many there were.
    replicas: r.replicas ?? 1,
  }));
}

const MB = 1024 * 1024;
