/** The audit log: who did what to which target, from where. */
import { and, desc, eq, gte, lte } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Context } from "hono";
import { actorOf } from "../auth/principal";
import type { Database } from "../db/client";
import { auditEvent } from "../db/schema";
import type { AppEnv } from "../env";
import { newId } from "../lib/ids";

export interface AuditEntry {
  orgId: string | null;
  action: string;
  targetType?: string;
  targetId?: string;
  /** Never secrets: names, roles, scopes. */
  metadata?: Record<string, unknown>;
}

/**
 * Statements a service writes in the same D1 batch as its own mutation, given the id of
 * what it wrote: the audit row of the call. A mutation and its audit row commit together
 * or not at all.
 */
export type Also = (targetId: string) => BatchItem<"sqlite">[];

/** Who an audit row names: a user, or an API key and the user it answers to. */
export interface Actor {
  actorType: "user" | "api_key";
  actorId: string;
  actorUserId: string | null;
}

/** Nothing more to write. */
export const NOTHING: Also = () => [];


/**
 * The audit row of a mutating call by the current principal, for a service to write in
 * the batch of its mutation: `entry` gets the id of what the service wrote (for creates,
 * known only there).
 */
export function audited<T = string>(c: Context<AppEnv>, entry: (written: T) => AuditEntry, actorOverride?: { userId: string }): (written: T) => BatchItem<"sqlite">[] {
  return (written) => {
    const row = auditInsert(c, entry(written), actorOverride);
    return row ? [row] : [];
  };
}

/** Runs `first` and `also` as one atomic D1 batch; answers `first`'s result. */
export async function withAlso<T extends BatchItem<"sqlite">>(db: Database, first: T, also: BatchItem<"sqlite">[]) {
  if (!also.length) return (await first) as Awaited<T>;
  const [result] = await db.batch([first, ...also]);
  return result as Awaited<T>;
}

/**
 * Records a mutating call by the current principal on its own: for work that is not a D1
 * write (a job on a host, a Durable Object's state), which cannot share a batch with it.
 */
export async function recordAudit(c: Context<AppEnv>, entry: AuditEntry, actorOverride?: { userId: string }) {
  const row = auditInsert(c, entry, actorOverride);
  if (row) await row;
}

/**
 * Records something a principal did that ends outside a request: a terminal session's end,
 * written by its Durable Object with the actor the opening request named.
 */
export async function recordAuditAs(db: Database, actor: Actor, entry: AuditEntry) {
  await db.insert(auditEvent).values(auditRow(actor, entry, { ip: null, userAgent: null }));
}

/** One audit row: who, what, and where the request came from (nothing for work outside a request). */
function auditRow(actor: Actor, entry: AuditEntry, origin: { ip: string | null; userAgent: string | null }) {
  return {
    id: newId("aud"),
    orgId: entry.orgId,
    ...actor,
    action: entry.action,
    targetType: entry.targetType ?? null,
    targetId: entry.targetId ?? null,
    ...origin,
    metadata: entry.metadata ?? null,
  };
}

function auditInsert(c: Context<AppEnv>, entry: AuditEntry, actorOverride?: { userId: string }) {
  const p = c.var.principal;
  const actor = p
    ? actorOf(p)
    : actorOverride
      ? { actorType: "user" as const, actorId: actorOverride.userId, actorUserId: actorOverride.userId }
      : null;
  if (!actor) return null;
  return c.var.db.insert(auditEvent).values(
    auditRow(actor, entry, {
      ip: c.req.header("cf-connecting-ip") ?? c.req.header("x-forwarded-for")?.split(",")[0]?.trim() ?? null,
      userAgent: c.req.header("user-agent")?.slice(0, 512) ?? null,
    }),
  );
}

export function listAudit(
  db: Database,
  orgId: string,
  filter: { action?: string; from?: Date; to?: Date; limit: number; offset: number },
) {
  return db
    .select()
    .from(auditEvent)
    .where(
      and(
        eq(auditEvent.orgId, orgId),
        filter.action ? eq(auditEvent.action, filter.action) : undefined,
        filter.from ? gte(auditEvent.createdAt, filter.from) : undefined,
        filter.to ? lte(auditEvent.createdAt, filter.to) : undefined,
      ),
    )
    .orderBy(desc(auditEvent.createdAt), desc(auditEvent.id))
    .limit(filter.limit)
    .offset(filter.offset);
}

export function presentAudit(row: typeof auditEvent.$inferSelect) {
  return {
    id: row.id,
    action: row.action,
    actor: { type: row.actorType, id: row.actorId, userId: row.actorUserId },
    target: row.targetType ? { type: row.targetType, id: row.targetId } : null,
    ip: row.ip,
    userAgent: row.userAgent,
    metadata: row.metadata,
    createdAt: row.createdAt.toISOString(),
  };
}
