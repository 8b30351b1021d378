/**
 * Dockup's autoscale settings (`/apps/{appId}/autoscale`): the bounds an app's replica count
 * moves within, the CPU threshold and cool-down that move it, and the idle time after which
 * it sleeps. An app without a row has the defaults of `app_autoscale`'s columns.
 */
import { eq, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { appAutoscale } from "../db/schema";
import { badRequest } from "../lib/errors";
import { type Also, NOTHING, withAlso } from "./audit";

export type AutoscaleRow = typeof appAutoscale.$inferSelect;
export type AutoscalePatch = Partial<Pick<AutoscaleRow, "enabled" | "cpuThreshold" | "minReplicas" | "maxReplicas" | "cooldownSeconds" | "sleepAfterMinutes">>;

/** The most replicas an app may run on its host. */
export const MAX_REPLICAS = 10;

function defaults(appId: string): AutoscaleRow {
  return { appId, enabled: false, cpuThreshold: 80, minReplicas: 1, maxReplicas: 3, cooldownSeconds: 300, sleepAfterMinutes: 0, updatedAt: new Date(0) };
}

/** The app's settings: its row, or the defaults when it has never been set. */
export async function autoscaleOf(db: Database, appId: string): Promise<AutoscaleRow> {
  return (await db.query.appAutoscale.findFirst({ where: eq(appAutoscale.appId, appId) })) ?? defaults(appId);
}

/**
 * Applies `patch` over the app's current settings in one write. The bounds are checked on
 * the result, so `{min_replicas: 4}` against a stored maximum of 3 is refused rather than
 * stored inconsistent.
 */
export async function saveAutoscale(
  db: Database,
  appId: string,
  patch: AutoscalePatch,
  also: (changes: Record<string, unknown>) => Also = () => NOTHING,
): Promise<{ before: AutoscaleRow; after: AutoscaleRow; changes: Record<string, unknown> }> {
  const before = await autoscaleOf(db, appId);
  const next = { ...before, ...definedOnly(patch), appId, updatedAt: new Date() };
  if (next.minReplicas > next.maxReplicas) {
    throw badRequest("invalid_request", `min_replicas (${next.minReplicas}) must not exceed max_replicas (${next.maxReplicas})`, {
      issues: [{ path: "min_replicas", message: "must not exceed max_replicas" }],
    });
  }
  const changes = autoscaleChanges(before, next);
  const { appId: _, ...values } = next;
  const upsert = db
    .insert(appAutoscale)
    .values(next)
    .onConflictDoUpdate({ target: appAutoscale.appId, set: { ...values, updatedAt: sql`(unixepoch('subsec') * 1000)` } })
    .returning();
  const [after] = await withAlso(db, upsert, Object.keys(changes).length > 0 ? also(changes)(appId) : []);
  return { before, after: after!, changes };
}

function definedOnly(patch: AutoscalePatch): AutoscalePatch {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
}

/** Dockup's shape. */
export function presentAutoscale(row: AutoscaleRow) {
  return {
    enabled: row.enabled,
    cpu_threshold: row.cpuThreshold,
    min_replicas: row.minReplicas,
    max_replicas: row.maxReplicas,
    cooldown_seconds: row.cooldownSeconds,
    sleep_after_minutes: row.sleepAfterMinutes,
    updated_at: row.updatedAt.getTime() === 0 ? null : row.updatedAt.toISOString(),
  };
}

/** What changed between two settings, by Dockup's field names (for the audit log and the app's events). */
export function autoscaleChanges(before: AutoscaleRow, after: AutoscaleRow): Record<string, unknown> {
  const a = presentAutoscale(before) as Record<string, unknown>;
  const b = presentAutoscale(after) as Record<string, unknown>;
  return Object.fromEntries(Object.keys(b).filter((k) => k !== "updated_at" && a[k] !== b[k]).map((k) => [k, b[k]]));
}
