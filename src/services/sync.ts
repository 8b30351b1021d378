/**
 * DevPocket's multi-device sync: items with per-item versions, conflicts kept for the user.
 *
 * Every item (an SSH profile, a command, the settings, …) has a version that starts at 1 and
 * grows by one with every accepted write. A device uploads an item with the version it last
 * saw (`version`); the write is taken when that is still the item's version. When another
 * device wrote in between (two devices writing from the same base), the upload does not
 * overwrite it: a conflict is kept with both sides until the user resolves it (`local`
 * keeps the uploading device's data, `remote` the server's, `merge` what the user gives or
 * both combined). An upload identical to what the server holds is no conflict.
 */
import { and, count, desc, eq, gt, inArray, isNull, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Database } from "../db/client";
import { device, SYNC_DATA_TYPES, type SyncDataType, syncConflict, syncEvent, syncItem } from "../db/schema";
import { ApiError, notFound } from "../lib/errors";
import { newId } from "../lib/ids";

type ItemRow = typeof syncItem.$inferSelect;
type ConflictRow = typeof syncConflict.$inferSelect;

export interface UploadItem {
  dataType: SyncDataType;
  key: string;
  /** The version the device based this write on; absent for an item it believes is new. */
  baseVersion: number | undefined;
  deleted: boolean;
  data: Record<string, unknown>;
}

export interface DeviceInfo {
  deviceId: string;
  deviceName?: string | undefined;
  deviceType?: string | undefined;
}

export async function touchDevice(db: Database, userId: string, info: DeviceInfo) {
  const now = new Date();
  await db
    .insert(device)
    .values({ id: newId("dev"), userId, deviceId: info.deviceId, deviceName: info.deviceName ?? null, deviceType: info.deviceType ?? "other", lastActiveAt: now })
    .onConflictDoUpdate({
      target: [device.userId, device.deviceId],
      set: {
        lastActiveAt: now,
        ...(info.deviceName ? { deviceName: info.deviceName } : {}),
        ...(info.deviceType ? { deviceType: info.deviceType } : {}),
      },
    });
}

export function listDevices(db: Database, userId: string) {
  return db.select().from(device).where(eq(device.userId, userId)).orderBy(desc(device.lastActiveAt));
}

/** An item as a device reads it: its own fields, its id, the version to base the next write on. */
export function presentItem(row: ItemRow) {
  return { ...row.data, id: row.itemKey, version: row.version, modified_at: row.updatedAt.toISOString(), deleted: row.deletedAt !== null };
}

export async function deviceNames(db: Database, userId: string): Promise<Map<string, string | null>> {
  const rows = await db.select({ deviceId: device.deviceId, name: device.deviceName }).from(device).where(eq(device.userId, userId));
  return new Map(rows.map((r) => [r.deviceId, r.name]));
}

export function presentConflict(row: ConflictRow, names: Map<string, string | null>) {
  const localModified = typeof row.localData.modified_at === "string" ? row.localData.modified_at : row.createdAt.toISOString();
  return {
    conflict_id: row.id,
    conflict_type: row.conflictType,
    data_type: row.dataType,
    item_id: row.itemKey,
    local_data: row.localData,
    remote_data: row.remoteData,
    local_version: row.localVersion,
    remote_version: row.remoteVersion,
    local_timestamp: localModified,
    remote_timestamp: row.remoteUpdatedAt.toISOString(),
    timestamp: row.createdAt.toISOString(),
    device_info: {
      local_device_id: row.localDeviceId,
      local_device_name: row.localDeviceId ? (names.get(row.localDeviceId) ?? null) : null,
      remote_device_id: row.remoteDeviceId,
      remote_device_name: row.remoteDeviceId ? (names.get(row.remoteDeviceId) ?? null) : null,
    },
    resolution_options: ["local", "remote", "merge"] as Array<"local" | "remote" | "merge">,
    status: row.resolvedAt ? ("resolved" as const) : ("open" as const),
    resolution: row.resolution,
  };
}

export function openConflicts(db: Database, userId: string) {
  return db
    .select()
    .from(syncConflict)
    .where(and(eq(syncConflict.userId, userId), isNull(syncConflict.resolvedAt)))
    .orderBy(syncConflict.createdAt)
    .limit(200);
}

export async function pullItems(db: Database, userId: string, types: readonly SyncDataType[], since: Date | undefined, includeDeleted: boolean) {
  const rows = await db
    .select()
    .from(syncItem)
    .where(
      and(
        eq(syncItem.userId, userId),
        inArray(syncItem.dataType, [...types]),
        since ? gt(syncItem.updatedAt, since) : undefined,
        includeDeleted ? undefined : isNull(syncItem.deletedAt),
      ),
    )
    .orderBy(syncItem.updatedAt)
    .limit(5000);
  const data: Record<string, Array<ReturnType<typeof presentItem>>> = Object.fromEntries(types.map((t) => [t, []]));
  for (const row of rows) data[row.dataType]?.push(presentItem(row));
  return { data, total: rows.length };
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, sortKeys(x)]));
  return v;
}

/** The parts of a stored row an upload compares with, and the data a conflict keeps of each side. */
const sideOf = (data: Record<string, unknown>, deleted: boolean) => (deleted ? { ...data, deleted: true } : data);

export interface PushResult {
  applied: Array<{ data_type: SyncDataType; id: string; version: number; deleted: boolean }>;
  conflicts: ConflictRow[];
}

/**
 * How often an upload's plan is made again for the items another upload wrote between this
 * one's read and its write. One more round settles them: versions only grow, so a beaten item
 * read again is a conflict (or agrees) and needs no guarded write. Only an item deleted in the
 * meantime (`/dev/cleanup`, a reset) is written afresh and could be beaten again.
 */
const MAX_PUSH_ROUNDS = 4;

/**
 * Applies an upload: what does not conflict is written, what does is kept as a conflict.
 *
 * The version check is the write itself: an edit is `UPDATE … WHERE version = <base>` and a
 * new item `INSERT … ON CONFLICT DO NOTHING`, each `RETURNING` what it wrote, so of two uploads
 * racing from the same base D1 lets exactly one write. The other's item is read again and
 * planned anew (then a conflict, or nothing when both agree); it is never reported as written.
 */
export async function pushItems(db: Database, userId: string, deviceId: string | undefined, items: UploadItem[]): Promise<PushResult> {
  const result: PushResult = { applied: [], conflicts: [] };
  const eventId = newId("sye");
  let pending = items;
  for (let round = 0; pending.length; round++) {
    if (round === MAX_PUSH_ROUNDS) throw new ApiError("operation_in_progress", "These items are being written by other uploads right now; try again");
    pending = await pushRound(db, userId, deviceId, pending, result, round === 0 ? eventId : null);
    if (round > 0 || pending.length) {
      // The event written in the first round counted the conflicts planned then; later rounds add theirs.
      await db
        .update(syncEvent)
        .set({ outcome: result.conflicts.length ? "conflict" : "ok", conflicts: result.conflicts.length })
        .where(eq(syncEvent.id, eventId));
    }
  }
  return result;
}

/** One read-plan-write round of an upload; answers the items whose guarded write another upload beat. */
async function pushRound(db: Database, userId: string, deviceId: string | undefined, items: UploadItem[], result: PushResult, newEventId: string | null): Promise<UploadItem[]> {
  const existing = new Map<string, ItemRow>();
  const slot = (t: string, k: string) => `${t}\u0000${k}`;
  for (const type of SYNC_DATA_TYPES) {
    const keys = items.filter((i) => i.dataType === type).map((i) => i.key);
    // D1 takes at most 100 bound values a statement.
    for (let i = 0; i < keys.length; i += 90) {
      const rows = await db
        .select()
        .from(syncItem)
        .where(and(eq(syncItem.userId, userId), eq(syncItem.dataType, type), inArray(syncItem.itemKey, keys.slice(i, i + 90))));
      for (const r of rows) existing.set(slot(r.dataType, r.itemKey), r);
    }
  }
  const open = new Map((await openConflicts(db, userId)).map((c) => [slot(c.dataType, c.itemKey), c]));

  const now = new Date();
  const writes: BatchItem<"sqlite">[] = [];
  /** The guarded writes, by their place in `writes`: an empty RETURNING means another upload got there first. */
  const guarded: Array<{ at: number; item: UploadItem; applied: PushResult["applied"][number] }> = [];
  const conflicts: ConflictRow[] = [];
  for (const item of items) {
    const row = existing.get(slot(item.dataType, item.key));
    if (!row) {
      guarded.push({ at: writes.length, item, applied: { data_type: item.dataType, id: item.key, version: 1, deleted: item.deleted } });
      writes.push(
        db
          .insert(syncItem)
          .values({
            id: newId("syi"),
            userId,
            dataType: item.dataType,
            itemKey: item.key,
            data: item.data,
            version: 1,
            deletedAt: item.deleted ? now : null,
            updatedByDevice: deviceId ?? null,
            createdAt: now,
            updatedAt: now,
          })
          .onConflictDoNothing({ target: [syncItem.userId, syncItem.dataType, syncItem.itemKey] })
          .returning({ version: syncItem.version }),
      );
      continue;
    }
    if (item.baseVersion === row.version) {
      guarded.push({ at: writes.length, item, applied: { data_type: item.dataType, id: item.key, version: row.version + 1, deleted: item.deleted } });
      writes.push(
        db
          .update(syncItem)
          .set({ data: item.data, version: row.version + 1, deletedAt: item.deleted ? (row.deletedAt ?? now) : null, updatedByDevice: deviceId ?? null, updatedAt: now })
          .where(and(eq(syncItem.id, row.id), eq(syncItem.version, row.version)))
          .returning({ version: syncItem.version }),
      );
      continue;
    }
    // Another device wrote since this one's base. The same content is no conflict: both agree.
    if (sameJson(item.data, row.data) && item.deleted === (row.deletedAt !== null)) {
      result.applied.push({ data_type: item.dataType, id: item.key, version: row.version, deleted: item.deleted });
      continue;
    }
    const fields = {
      conflictType: item.baseVersion === undefined ? ("concurrent_modification" as const) : ("version_mismatch" as const),
      localData: sideOf(item.data, item.deleted),
      localDeviceId: deviceId ?? null,
      localVersion: item.baseVersion ?? null,
      remoteData: sideOf(row.data, row.deletedAt !== null),
      remoteDeviceId: row.updatedByDevice,
      remoteVersion: row.version,
      remoteUpdatedAt: row.updatedAt,
    };
    const already = open.get(slot(item.dataType, item.key));
    // One open conflict per item: a newer upload replaces the side it brought.
    const conflict: ConflictRow = already
      ? { ...already, ...fields }
      : { id: newId("scf"), userId, dataType: item.dataType, itemKey: item.key, resolution: null, resolvedAt: null, createdAt: now, ...fields };
    writes.push(already ? db.update(syncConflict).set(fields).where(eq(syncConflict.id, already.id)) : db.insert(syncConflict).values(conflict));
    conflicts.push(conflict);
  }
  result.conflicts.push(...conflicts);
  if (newEventId) {
    writes.push(
      db.insert(syncEvent).values({ id: newEventId, userId, deviceId: deviceId ?? null, direction: "push", outcome: conflicts.length ? "conflict" : "ok", conflicts: conflicts.length }),
    );
  }
  if (!writes.length) return [];
  const outcomes = await db.batch(writes as [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]]);
  const beaten: UploadItem[] = [];
  for (const g of guarded) {
    const written = outcomes[g.at] as unknown[];
    if (written.length) result.applied.push(g.applied);
    else beaten.push(g.item);
  }
  return beaten;
}

export async function recordPull(db: Database, userId: string, deviceId: string) {
  await db.insert(syncEvent).values({ id: newId("sye"), userId, deviceId, direction: "pull", outcome: "ok" });
}

export type Resolution = "local" | "remote" | "merge";

/**
 * Resolves one of the user's conflicts; the item gets the chosen data as a new version (unless `remote`, which keeps it).
 *
 * Marking the conflict resolved and writing the item are one batch, each guarded (the conflict
 * still open, the item still at the version read), so of two resolutions at once exactly one
 * takes effect and the other is told the conflict was resolved.
 */
export async function resolveConflict(db: Database, userId: string, conflictId: string, resolution: Resolution, resolvedData: Record<string, unknown> | null | undefined) {
  for (let round = 0; ; round++) {
    const [conflict] = await db.select().from(syncConflict).where(and(eq(syncConflict.id, conflictId), eq(syncConflict.userId, userId)));
    if (!conflict) throw notFound("Conflict", "conflict_not_found");
    if (conflict.resolvedAt) throw new ApiError("conflict_resolved", `This conflict was already resolved (${conflict.resolution})`);
    const [row] = await db
      .select()
      .from(syncItem)
      .where(and(eq(syncItem.userId, userId), eq(syncItem.dataType, conflict.dataType), eq(syncItem.itemKey, conflict.itemKey)));
    if (!row) throw notFound("Conflict", "conflict_not_found");
    if (round === MAX_PUSH_ROUNDS) throw new ApiError("operation_in_progress", "This item is being written by other uploads right now; try again");

    const now = new Date();
    const current = sideOf(row.data, row.deletedAt !== null);
    let chosen: Record<string, unknown>;
    if (resolution === "remote") chosen = current;
    else if (resolution === "local") chosen = conflict.localData;
    else chosen = resolvedData ?? { ...current, ...conflict.localData };
    const { deleted, id: _id, version: _version, modified_at: _modified, ...data } = chosen;
    const isDeleted = deleted === true;
    const version = resolution === "remote" ? row.version : row.version + 1;

    // Resolved only while still open and while the item is still the one read (for `merge`, what was combined).
    const [marked] = await db.batch([
      db
        .update(syncConflict)
        .set({ resolution, resolvedAt: now })
        .where(
          and(
            eq(syncConflict.id, conflict.id),
            isNull(syncConflict.resolvedAt),
            sql`exists (select 1 from ${syncItem} where ${syncItem.id} = ${row.id} and ${syncItem.version} = ${row.version})`,
          ),
        )
        .returning({ id: syncConflict.id }),
      ...(resolution === "remote"
        ? []
        : [
            db
              .update(syncItem)
              .set({ data, version, deletedAt: isDeleted ? (row.deletedAt ?? now) : null, updatedAt: now, updatedByDevice: conflict.localDeviceId })
              // Only if the statement above resolved it, in this same batch.
              .where(
                and(
                  eq(syncItem.id, row.id),
                  eq(syncItem.version, row.version),
                  sql`exists (select 1 from ${syncConflict} where ${syncConflict.id} = ${conflict.id} and ${syncConflict.resolvedAt} = ${now.getTime()} and ${syncConflict.resolution} = ${resolution})`,
                ),
              ),
          ]),
    ]);
    // Someone else resolved it, or an upload moved the item: read both again.
    if (!marked.length) continue;
    if (resolution === "remote") return { final: presentItem(row) };
    return { final: presentItem({ ...row, data, version, updatedAt: now, deletedAt: isDeleted ? (row.deletedAt ?? now) : null }) };
  }
}

const ACTIVE_DAYS = 30;

export async function syncStats(db: Database, userId: string) {
  const since = new Date(Date.now() - ACTIVE_DAYS * 86_400_000);
  const [events, conflicts, active] = await db.batch([
    db
      .select({
        total: count(),
        ok: sql<number>`coalesce(sum(case when ${syncEvent.outcome} = 'ok' then 1 else 0 end), 0)`,
        last: sql<number | null>`max(${syncEvent.createdAt})`,
      })
      .from(syncEvent)
      .where(eq(syncEvent.userId, userId)),
    db
      .select({ total: count(), resolved: sql<number>`coalesce(sum(case when ${syncConflict.resolvedAt} is not null then 1 else 0 end), 0)` })
      .from(syncConflict)
      .where(eq(syncConflict.userId, userId)),
    db.select({ n: count() }).from(device).where(and(eq(device.userId, userId), gt(device.lastActiveAt, since))),
  ]);
  const e = events[0];
  return {
    total_syncs: e?.total ?? 0,
    successful_syncs: Number(e?.ok ?? 0),
    failed_syncs: (e?.total ?? 0) - Number(e?.ok ?? 0),
    last_sync: e?.last ? new Date(Number(e.last)).toISOString() : null,
    active_devices: active[0]?.n ?? 0,
    total_conflicts: conflicts[0]?.total ?? 0,
    resolved_conflicts: Number(conflicts[0]?.resolved ?? 0),
  };
}
