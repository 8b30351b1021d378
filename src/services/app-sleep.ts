/**
 * Sleep on idle, as the control plane sees it. The host decides and acts (the
 * agent's sleep.ts): it counts requests from Caddy's access log, stops an app
 * idle for `sleep_after_minutes` and wakes it on the next request without
 * asking anyone. The control plane hands the setting out with its answer to app
 * reports, and records what reports say: `sleeping` (an app event on each
 * change) and the last request's time. The app's status stays Docker's
 * ("stopped" while asleep), so existing clients read it as they always did.
 */
import { and, eq, inArray, isNull } from "drizzle-orm";
import type { Database } from "../db/client";
import { app, appAutoscale, appEvent, appSleep } from "../db/schema";
import { newId } from "../lib/ids";
import type { AppReport } from "../protocol/agent";

export type SleepRow = typeof appSleep.$inferSelect;

/**
 * Records the reported sleep state of the host's apps and answers each reported
 * app's `sleep_after_minutes` (0 for none), which is how the agent learns it.
 */
export async function applySleepReport(db: Database, hostId: string, orgId: string, report: AppReport): Promise<Record<string, number>> {
  const ids = [...new Set(report.apps.map((a) => a.app_id))];
  if (!ids.length) return {};
  const rows = await db
    .select({ id: app.id, sleepAfter: appAutoscale.sleepAfterMinutes, sleeping: appSleep.sleeping, lastRequestAt: appSleep.lastRequestAt, hasSleep: appSleep.appId })
    .from(app)
    .leftJoin(appAutoscale, eq(appAutoscale.appId, app.id))
    .leftJoin(appSleep, eq(appSleep.appId, app.id))
    .where(and(inArray(app.id, ids), eq(app.orgId, orgId), eq(app.hostId, hostId), isNull(app.deletedAt)));
  const known = new Map(rows.filter((r) => r.id).map((r) => [r.id, r]));
  const now = new Date();
  const writes = [];
  const done = new Set<string>();
  for (const a of report.apps) {
    const row = known.get(a.app_id);
    if (!row || done.has(a.app_id) || a.sleeping === undefined) continue;
    done.add(a.app_id);
    const lastRequestAt = a.last_request_at ? new Date(a.last_request_at) : null;
    const wasSleeping = row.sleeping ?? false;
    // The agent forgets requests when it restarts: an older time the control plane has stays.
    const newerRequest = lastRequestAt && (!row.lastRequestAt || lastRequestAt > row.lastRequestAt) ? lastRequestAt : null;
    if (a.sleeping === wasSleeping && !newerRequest) continue;
    const values = {
      sleeping: a.sleeping,
      ...(a.sleeping !== wasSleeping ? { changedAt: now } : {}),
      ...(newerRequest ? { lastRequestAt: newerRequest } : {}),
      updatedAt: now,
    };
    writes.push(
      db
        .insert(appSleep)
        .values({ appId: a.app_id, ...values })
        .onConflictDoUpdate({ target: appSleep.appId, set: values }),
    );
    if (a.sleeping !== wasSleeping) {
      const minutes = row.sleepAfter ?? 0;
      writes.push(
        db.insert(appEvent).values({
          id: newId("aev"),
          appId: a.app_id,
          type: a.sleeping ? "sleep" : "wake",
          message: a.sleeping ? `Asleep after ${minutes} minute${minutes === 1 ? "" : "s"} without requests; the next request wakes it` : "Awake",
          data: { sleeping: a.sleeping, sleep_after_minutes: minutes, last_request_at: (newerRequest ?? row.lastRequestAt)?.toISOString() ?? null },
        }),
      );
    }
  }
  if (writes.length) await db.batch(writes as [(typeof writes)[number], ...(typeof writes)[number][]]);
  return Object.fromEntries(rows.map((r) => [r.id, r.sleepAfter ?? 0]));
}

/** A job that started, stopped or deployed the app leaves it awake (or stopped by its user): no longer asleep. */
export async function settleSleepAfterJob(db: Database, appId: string): Promise<void> {
  const now = new Date();
  const [row] = await db.update(appSleep).set({ sleeping: false, changedAt: now, updatedAt: now }).where(and(eq(appSleep.appId, appId), eq(appSleep.sleeping, true))).returning({ appId: appSleep.appId });
  if (row) await db.insert(appEvent).values({ id: newId("aev"), appId, type: "wake", message: "No longer asleep: a job started, stopped or deployed it", data: { sleeping: false } });
}

export async function sleepOf(db: Database, appId: string): Promise<SleepRow | null> {
  return (await db.query.appSleep.findFirst({ where: eq(appSleep.appId, appId) })) ?? null;
}

/** Which of a project's apps their hosts have put to sleep: one read for the project's app list. */
export async function sleepingAppsOf(db: Database, projectId: string): Promise<Set<string>> {
  const rows = await db
    .select({ appId: appSleep.appId })
    .from(appSleep)
    .innerJoin(app, eq(app.id, appSleep.appId))
    .where(and(eq(app.projectId, projectId), eq(appSleep.sleeping, true)));
  return new Set(rows.map((r) => r.appId));
}

/** The sleep fields of an app's autoscale answer. */
export function presentSleep(row: SleepRow | null) {
  return {
    sleeping: row?.sleeping ?? false,
    slept_at: row?.sleeping && row.changedAt ? row.changedAt.toISOString() : null,
    last_request_at: row?.lastRequestAt?.toISOString() ?? null,
  };
}
