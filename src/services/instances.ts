/**
 * Suble's instances as records: the row, its activity feed, its one-time root password,
 * and the shapes clients see. The jobs that act on the VM are in instance-jobs.ts; what
 * their outcomes do to the row is in jobs/instance-outcomes.ts.
 */
import { and, desc, eq, inArray, isNull, lt } from "drizzle-orm";
import type { Database } from "../db/client";
import { instance, instanceEvent, osImage, plan, user, type InstanceStatus, type PowerState } from "../db/schema";
import type { JobRecord } from "../durable/project-do";
import type { Env } from "../env";
import { isTerminal } from "../jobs/states";
import { conflict } from "../lib/errors";
import { newId, randomString } from "../lib/ids";
import { decryptJson, encryptJson } from "../lib/secrets";
import { type Also, NOTHING, withAlso } from "./audit";

export type InstanceRow = typeof instance.$inferSelect;
export type InstanceEventRow = typeof instanceEvent.$inferSelect;

/** Suble's hostname rule: one lowercase RFC 1123 label. */
export const HOSTNAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$/;

const PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!#%+-=";

/** A random root password: 20 characters, about 118 bits. */
export function generatePassword(): string {
  return randomString(20, PASSWORD_ALPHABET);
}

export const sealPassword = (env: Env, password: string) => encryptJson(env, password);
export const openPassword = (env: Env, ciphertext: string) => decryptJson<string>(env, ciphertext);

function isUniqueViolation(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e.message.includes("UNIQUE constraint failed") && e.message.includes("instance.")) return true;
  }
  return false;
}

const nameTaken = (name: string) => conflict("name_taken", `An instance named "${name}" already exists in this project`);

/** A live instance of the project (one being deleted included), or null. */
export async function findInstance(db: Database, projectId: string, instanceId: string): Promise<InstanceRow | null> {
  const row = await db.query.instance.findFirst({
    where: and(eq(instance.id, instanceId), eq(instance.projectId, projectId), isNull(instance.deletedAt)),
  });
  return row ?? null;
}

export function listInstances(db: Database, projectId: string) {
  return db
    .select()
    .from(instance)
    .where(and(eq(instance.projectId, projectId), isNull(instance.deletedAt)))
    .orderBy(desc(instance.createdAt), desc(instance.id));
}

/**
 * Inserts the record of a new instance, with `also` (its first event) in the same batch; a
 * name in use among the project's live instances is 409 name_taken.
 */
export async function insertInstance(db: Database, values: typeof instance.$inferInsert & { id: string }, also: Also = NOTHING): Promise<InstanceRow> {
  try {
    const [row] = await withAlso(db, db.insert(instance).values(values).returning(), also(values.id));
    return row!;
  } catch (err) {
    if (isUniqueViolation(err)) throw nameTaken(values.name);
    throw err;
  }
}

/** Renames an instance; `also` (its event and audit rows) is written in the same batch. */
export async function renameInstance(db: Database, row: InstanceRow, name: string, also: Also = NOTHING): Promise<InstanceRow> {
  if (name === row.name) return row;
  try {
    const update = db
      .update(instance)
      .set({ name, updatedAt: new Date() })
      .where(and(eq(instance.id, row.id), isNull(instance.deletedAt)))
      .returning();
    const [updated] = await withAlso(db, update, also(row.id));
    return updated ?? row;
  } catch (err) {
    if (isUniqueViolation(err)) throw nameTaken(name);
    throw err;
  }
}

/** The root password in clear while it has not been acknowledged; null after (or if it cannot be read). */
export async function revealRootPassword(env: Env, row: InstanceRow): Promise<string | null> {
  if (!row.rootPasswordCiphertext) return null;
  return openPassword(env, row.rootPasswordCiphertext).catch(() => null);
}

/** The password an instance job is to set, for the agent holding its lease; null once that job is not the instance's open job. */
export async function instanceJobPassword(db: Database, env: Env, instanceId: string, jobId: string): Promise<string | null> {
  const row = await db.query.instance.findFirst({ where: eq(instance.id, instanceId), columns: { activeJobId: true, jobPasswordCiphertext: true } });
  if (!row || row.activeJobId !== jobId || !row.jobPasswordCiphertext) return null;
  return openPassword(env, row.jobPasswordCiphertext);
}

/** The caller has seen the root password: it is forgotten, and never shown again. */
export async function acknowledgeRootPassword(db: Database, instanceId: string) {
  await db.update(instance).set({ rootPasswordCiphertext: null, updatedAt: new Date() }).where(eq(instance.id, instanceId));
}

// ---------------------------------------------------------------- events

/** An entry for an instance's event feed, to write in the batch of the change it tells of. */
export function instanceEventOf(db: Database, type: string, message: string, opts: { meta?: Record<string, unknown>; userId?: string | null } = {}): Also {
  return (instanceId) => [db.insert(instanceEvent).values({ id: newId("iev"), instanceId, type, message, meta: opts.meta ?? null, userId: opts.userId ?? null })];
}

export async function recordInstanceEvent(
  db: Database,
  instanceId: string,
  type: string,
  message: string,
  opts: { meta?: Record<string, unknown>; userId?: string | null } = {},
) {
  await db.insert(instanceEvent).values({ id: newId("iev"), instanceId, type, message, meta: opts.meta ?? null, userId: opts.userId ?? null });
}

/** Suble's opaque cursor: the base64 of the last event's sequence number. */
export const encodeCursor = (seq: number) => btoa(String(seq));
export function decodeCursor(cursor: string | undefined): number | null {
  if (!cursor) return null;
  try {
    const n = Number(atob(cursor));
    return Number.isSafeInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** The feed newest first, `limit` at a time, older than `before` (a cursor's sequence number). */
export async function listInstanceEvents(db: Database, instanceId: string, limit: number, before: number | null) {
  const rows = await db
    .select({ event: instanceEvent, userEmail: user.email })
    .from(instanceEvent)
    .leftJoin(user, eq(user.id, instanceEvent.userId))
    .where(and(eq(instanceEvent.instanceId, instanceId), before === null ? undefined : lt(instanceEvent.seq, before)))
    .orderBy(desc(instanceEvent.seq))
    .limit(limit + 1);
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    events: page.map(({ event, userEmail }) => ({
      uid: event.id,
      type: event.type,
      message: event.message,
      meta: event.meta ?? null,
      created_at: event.createdAt.toISOString(),
      user_email: userEmail ?? null,
    })),
    next_cursor: rows.length > limit && last ? encodeCursor(last.event.seq) : null,
  };
}

// ---------------------------------------------------------------- presenters

/** The status an instance rests in when no job changes it: its VM's power state. */
export const restingStatus = (power: PowerState): InstanceStatus => (power === "stopped" ? "stopped" : "running");

/** The open job working on each instance, from its project's jobs; a job that has ended is no one's. */
export function openJobs(jobs: JobRecord[]): Map<string, JobRecord> {
  return new Map(jobs.filter((j) => !isTerminal(j.status)).map((j) => [j.id, j]));
}

/** Plan codes and image names of these instances, for presenting them. */
export async function catalogNames(db: Database, rows: InstanceRow[]) {
  const imageIds = [...new Set(rows.map((r) => r.imageId).filter((id): id is string => Boolean(id)))];
  const images = imageIds.length ? await db.select({ id: osImage.id, name: osImage.displayName }).from(osImage).where(inArray(osImage.id, imageIds)) : [];
  return { imageNames: new Map(images.map((i) => [i.id, i.name])) };
}

export function presentInstance(row: InstanceRow, names: { imageNames: Map<string, string> }, jobs: Map<string, JobRecord>) {
  const job = row.activeJobId ? jobs.get(row.activeJobId) : undefined;
  return {
    uid: row.id,
    id: row.id,
    name: row.name,
    status: row.status,
    power_state: row.powerState,
    backup_tier: row.backupTier,
    error_code: row.errorCode,
    error_message: row.errorMessage,
    created_at: row.createdAt.toISOString(),
    plan_code: row.planCode,
    primary_ip: row.ipv4,
    image_id: row.imageId,
    image_name: row.imageId ? (names.imageNames.get(row.imageId) ?? null) : null,
    app_slug: row.appSlug,
    app_name: null,
    host_id: row.hostId,
    node: row.node,
    vmid: row.vmid,
    job_uid: job?.id ?? null,
    job_type: job?.type ?? null,
    progress_step: job?.progress?.step ?? null,
    progress_total: job?.progress?.total ?? null,
    progress_percent: job?.progress?.percent ?? null,
    progress_message: job?.progress?.message ?? null,
  };
}

/** A plan by code, active or not (an instance keeps a plan that was retired). */
export function planByCode(db: Database, code: string) {
  return db.query.plan.findFirst({ where: eq(plan.code, code) });
}
