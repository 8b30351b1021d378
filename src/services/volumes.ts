/**
 * Dockup's persistent volumes: Docker named volumes on the app's host, labelled with the
 * app, mounted from the app's next deploy on and kept across deploys, restarts and
 * detaching. The agent creates a volume when a deploy first mounts it and reports what each
 * holds (`POST /agent/apps/volumes`).
 */
import { and, eq, inArray, isNull } from "drizzle-orm";
import type { Database } from "../db/client";
import { app, appVolume } from "../db/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { type Also, NOTHING, withAlso } from "./audit";

export type VolumeRow = typeof appVolume.$inferSelect;

/** The volumes mounted at the app's next deploy, by path. */
export function attachedVolumes(db: Database, appId: string): Promise<VolumeRow[]> {
  return db.query.appVolume.findMany({ where: and(eq(appVolume.appId, appId), isNull(appVolume.detachedAt)), orderBy: appVolume.mountPath });
}

/**
 * Attaches a volume at `mountPath`: a new one (`berth-vol-{appId}-{n}`), or the one detached
 * from that path before, with its data. A path that has one attached is `volume_exists`.
 */
export async function attachVolume(db: Database, appId: string, input: { mountPath: string; sizeMb: number }, also: Also = NOTHING): Promise<VolumeRow> {
  const existing = await db.query.appVolume.findMany({ where: eq(appVolume.appId, appId) });
  const same = existing.find((v) => v.mountPath === input.mountPath);
  if (same && !same.detachedAt) throw new ApiError("volume_exists", `A volume is already attached at ${input.mountPath}`);
  if (same) {
    const [row] = await withAlso(db, db.update(appVolume).set({ detachedAt: null, sizeMb: input.sizeMb }).where(eq(appVolume.id, same.id)).returning(), also(same.id));
    return row!;
  }
  const n = existing.length + 1;
  const id = newId("vol");
  const insert = db.insert(appVolume).values({ id, appId, name: `berth-vol-${appId}-${n}`, mountPath: input.mountPath, sizeMb: input.sizeMb }).returning();
  const [row] = await withAlso(db, insert, also(id));
  return row!;
}

/** Detaches the volume at `mountPath` (the Docker volume and its data stay on the host), or null when none is attached there. */
export async function detachVolume(db: Database, appId: string, mountPath: string, also: Also = NOTHING): Promise<VolumeRow | null> {
  const row = await db.query.appVolume.findFirst({ where: and(eq(appVolume.appId, appId), eq(appVolume.mountPath, mountPath), isNull(appVolume.detachedAt)) });
  if (!row) return null;
  const [updated] = await withAlso(db, db.update(appVolume).set({ detachedAt: new Date() }).where(eq(appVolume.id, row.id)).returning(), also(row.id));
  return updated ?? null;
}

/** Sizes a host measured for its apps' volumes: only volumes of apps placed on that host, in its org, are touched. */
export async function recordVolumeSizes(db: Database, hostId: string, orgId: string, sizes: { app_id: string; name: string; used_bytes: number | null }[]) {
  const appIds = [...new Set(sizes.map((s) => s.app_id))];
  if (appIds.length === 0) return;
  const known = await db
    .select({ id: appVolume.id, name: appVolume.name })
    .from(appVolume)
    .innerJoin(app, eq(app.id, appVolume.appId))
    .where(and(inArray(appVolume.appId, appIds), eq(app.hostId, hostId), eq(app.orgId, orgId)));
  const byName = new Map(known.map((v) => [v.name, v.id]));
  const now = new Date();
  const updates = sizes
    .filter((s) => byName.has(s.name))
    .map((s) => db.update(appVolume).set({ usedBytes: s.used_bytes, measuredAt: now }).where(eq(appVolume.id, byName.get(s.name)!)));
  const [first, ...rest] = updates;
  if (first) await db.batch([first, ...rest]);
}

/** Dockup's `{name, mount_path, size_mb}`, with what the host measured. */
export function presentVolume(row: VolumeRow) {
  return {
    name: row.name,
    mount_path: row.mountPath,
    size_mb: row.sizeMb,
    used_bytes: row.usedBytes,
    measured_at: row.measuredAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
  };
}
