/**
 * Outbound webhooks and notifications: what an org hears about its own events.
 *
 * `emitOrgEvent` is the one entry point. It writes one delivery per matching
 * webhook (and, for events worth a person's attention, one notification per
 * member) in one D1 batch, then hands each delivery to the `WEBHOOKS` queue.
 * The queue's consumer (`deliverWebhook`) signs and posts it; a receiver that
 * fails is tried again with growing delays, and every attempt is recorded.
 *
 * The body is `{id, type, created_at, org_id, data}`. Signed like GitHub's:
 * `X-Berth-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the
 * webhook's secret>`, with `X-Berth-Event` and `X-Berth-Delivery`.
 */
import { and, desc, eq, isNull, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { isLocal } from "../config";
import type { Database } from "../db/client";
import { notification, orgMember, webhook, webhookDelivery } from "../db/schema";
import type { Env } from "../env";
import { newSecret } from "../lib/crypto";
import { badRequest } from "../lib/errors";
import { newId } from "../lib/ids";
import { decryptJson, encryptJson } from "../lib/secrets";

export type WebhookRow = typeof webhook.$inferSelect;
export type DeliveryRow = typeof webhookDelivery.$inferSelect;
export type NotificationRow = typeof notification.$inferSelect;

/** The events Berth emits, for the docs and for validating subscriptions. */
export const WEBHOOK_EVENTS = ["deployment.succeeded", "deployment.failed", "instance.succeeded", "instance.failed", "webhook.test"] as const;

export interface WebhookQueueMessage {
  delivery_id: string;
}

// ---------------------------------------------------------------- settings

const num = (v: string | undefined, dflt: number) => (v !== undefined && v !== "" && Number.isFinite(Number(v)) ? Number(v) : dflt);
/** Tries per delivery, the first included. */
export const maxAttempts = (env: Pick<Env, "WEBHOOK_MAX_ATTEMPTS">) => Math.max(1, Math.min(20, num(env.WEBHOOK_MAX_ATTEMPTS, 6)));
/** Delay before try n+1: base × 4^(n-1), at most an hour (10 s, 40 s, 160 s, … by default). */
export const retryDelaySeconds = (env: Pick<Env, "WEBHOOK_RETRY_BASE_SECONDS">, attempt: number) =>
  Math.min(3600, num(env.WEBHOOK_RETRY_BASE_SECONDS, 10) * 4 ** Math.max(0, attempt - 1));
const timeoutMs = (env: Pick<Env, "WEBHOOK_TIMEOUT_MS">) => Math.max(100, num(env.WEBHOOK_TIMEOUT_MS, 10_000));

/** Deliveries kept per org, newest first; older ones are dropped as new ones are written. */
const KEEP_DELIVERIES = 1000;
const NOTIFICATION_DAYS = 90;

// ---------------------------------------------------------------- URLs and events

/**
 * An endpoint must be http(s) without credentials in it. Outside local development it must
 * also name a public host: never loopback, private, link-local or `localhost` addresses,
 * so a webhook cannot be pointed at the control plane's own network.
 */
export function checkWebhookUrl(env: Pick<Env, "ENVIRONMENT">, text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw badRequest("invalid_url", "The webhook URL is not a valid absolute URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw badRequest("invalid_url", "A webhook URL must start with https:// (or http://)");
  if (url.username || url.password) throw badRequest("invalid_url", "Put no credentials in the webhook URL; verify deliveries by their signature instead");
  if (!isLocal(env) && isPrivateHost(url.hostname)) throw badRequest("invalid_url", "A webhook URL must name a public host, not a loopback, private or link-local address");
  return url.toString();
}

function isPrivateHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost") || h.endsWith(".internal") || h.endsWith(".local")) return true;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return a === 0 || a === 10 || a === 127 || (a === 100 && b >= 64 && b <= 127) || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || a >= 224;
  }
  if (h.includes(":")) return h === "::" || h === "::1" || h.startsWith("fc") || h.startsWith("fd") || h.startsWith("fe80") || h.startsWith("::ffff:");
  return false;
}

/** `deployment.failed` matches `deployment.failed`, `deployment.*` and `*`. */
export function eventMatches(patterns: readonly string[], type: string): boolean {
  return patterns.some((p) => p === "*" || p === type || (p.endsWith(".*") && type.startsWith(p.slice(0, -1))));
}

/** A subscription names a known event, a family of them (`deployment.*`) or all (`*`). */
export function checkEventPatterns(patterns: readonly string[]): string[] {
  const out = [...new Set(patterns.map((p) => p.trim()))];
  for (const p of out) {
    const known = p === "*" || (WEBHOOK_EVENTS as readonly string[]).includes(p) || (p.endsWith(".*") && WEBHOOK_EVENTS.some((e) => e.startsWith(p.slice(0, -1))));
    if (!known) throw badRequest("unknown_event", `Unknown event "${p.slice(0, 60)}"; known events: ${WEBHOOK_EVENTS.join(", ")} (or a family such as deployment.*, or *)`);
  }
  return out;
}

// ---------------------------------------------------------------- webhooks

export async function createWebhook(
  db: Database,
  env: Env,
  input: { orgId: string; url: string; events: string[]; createdBy: string | null },
  also: (created: { id: string; url: string }) => BatchItem<"sqlite">[] = () => [],
): Promise<{ row: WebhookRow; secret: string }> {
  const secret = newSecret("whsec_");
  const id = newId("whk");
  const insert = db
    .insert(webhook)
    .values({ id, orgId: input.orgId, url: input.url, events: input.events, secretCiphertext: await encryptJson(env, secret), createdBy: input.createdBy })
    .returning();
  const [[row]] = await db.batch([insert, ...also({ id, url: input.url })]);
  return { row: row!, secret };
}

export function listWebhooks(db: Database, orgId: string): Promise<WebhookRow[]> {
  return db.select().from(webhook).where(eq(webhook.orgId, orgId)).orderBy(desc(webhook.createdAt));
}

export async function findWebhook(db: Database, orgId: string, id: string): Promise<WebhookRow | null> {
  const [row] = await db.select().from(webhook).where(and(eq(webhook.id, id), eq(webhook.orgId, orgId)));
  return row ?? null;
}

export async function deleteWebhook(db: Database, id: string, also: BatchItem<"sqlite">[] = []): Promise<void> {
  await db.batch([db.delete(webhook).where(eq(webhook.id, id)), ...also]);
}

export function presentWebhook(row: WebhookRow, secret?: string) {
  return {
    id: row.id,
    url: row.url,
    events: row.events,
    createdAt: row.createdAt.toISOString(),
    ...(secret ? { secret } : {}),
  };
}

export async function listDeliveries(db: Database, orgId: string, opts: { webhookId?: string; limit: number }): Promise<DeliveryRow[]> {
  const where = opts.webhookId ? and(eq(webhookDelivery.orgId, orgId), eq(webhookDelivery.webhookId, opts.webhookId)) : eq(webhookDelivery.orgId, orgId);
  return db.select().from(webhookDelivery).where(where).orderBy(desc(webhookDelivery.createdAt), desc(webhookDelivery.id)).limit(opts.limit);
}

export function presentDelivery(row: DeliveryRow) {
  return {
    id: row.id,
    webhookId: row.webhookId,
    eventId: row.eventId,
    event: row.event,
    status: row.status,
    attempts: row.attempts,
    responseStatus: row.responseStatus,
    error: row.error,
    durationMs: row.durationMs,
    createdAt: row.createdAt.toISOString(),
    lastAttemptAt: row.lastAttemptAt?.toISOString() ?? null,
  };
}

// ---------------------------------------------------------------- events

export interface OrgEvent {
  orgId: string;
  type: (typeof WEBHOOK_EVENTS)[number];
  data: Record<string, unknown>;
  /** For the members' notification list; events without it reach webhooks only. */
  notify?: { title: string; body?: string; link?: string };
  /** Deliver to this webhook only (a test), whatever it subscribes to. */
  onlyWebhookId?: string;
}

/** Records the event's deliveries and notifications, then queues the deliveries. Never throws: an event is a side effect. */
export async function emitOrgEvent(env: Env, db: Database, event: OrgEvent): Promise<{ eventId: string; deliveries: string[] }> {
  const eventId = newId("evt");
  try {
    const [hooks, members] = await Promise.all([
      db.select({ id: webhook.id, events: webhook.events }).from(webhook).where(event.onlyWebhookId ? and(eq(webhook.orgId, event.orgId), eq(webhook.id, event.onlyWebhookId)) : eq(webhook.orgId, event.orgId)),
      event.notify ? db.select({ userId: orgMember.userId }).from(orgMember).where(eq(orgMember.orgId, event.orgId)) : Promise.resolve([]),
    ]);
    const targets = event.onlyWebhookId ? hooks : hooks.filter((h) => eventMatches(h.events, event.type));
    const payload = JSON.stringify({ id: eventId, type: event.type, created_at: new Date().toISOString(), org_id: event.orgId, data: event.data });
    const deliveries = targets.map((h) => ({ id: newId("whd"), webhookId: h.id, orgId: event.orgId, eventId, event: event.type, payload }));
    const notes = members.map((m) => ({
      id: newId("ntf"),
      orgId: event.orgId,
      userId: m.userId,
      eventId,
      kind: event.type,
      title: event.notify!.title.slice(0, 200),
      body: event.notify!.body?.slice(0, 2000) ?? null,
      link: event.notify!.link ?? null,
    }));
    const writes: BatchItem<"sqlite">[] = [];
    if (deliveries.length) {
      writes.push(db.insert(webhookDelivery).values(deliveries));
      // The delivery log keeps an org's newest KEEP_DELIVERIES.
      writes.push(
        db.delete(webhookDelivery).where(
          and(
            eq(webhookDelivery.orgId, event.orgId),
            sql`${webhookDelivery.id} NOT IN (SELECT id FROM webhook_delivery WHERE org_id = ${event.orgId} ORDER BY created_at DESC LIMIT ${KEEP_DELIVERIES})`,
          ),
        ),
      );
    }
    if (notes.length) {
      writes.push(db.insert(notification).values(notes));
      // Notifications are kept for NOTIFICATION_DAYS.
      writes.push(db.delete(notification).where(and(eq(notification.orgId, event.orgId), sql`${notification.createdAt} < ${Date.now() - NOTIFICATION_DAYS * 86_400_000}`)));
    }
    if (writes.length) await db.batch(writes as [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]]);
    if (deliveries.length) await env.WEBHOOKS.sendBatch(deliveries.map((d) => ({ body: { delivery_id: d.id } satisfies WebhookQueueMessage })));
    return { eventId, deliveries: deliveries.map((d) => d.id) };
  } catch (err) {
    console.error(JSON.stringify({ level: "error", msg: "could not record an org event", type: event.type, org_id: event.orgId, error: (err as Error).message }));
    return { eventId, deliveries: [] };
  }
}

// ---------------------------------------------------------------- delivery

async function sign(secret: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)));
  return `sha256=${[...mac].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * One try of one delivery. Answers "retry" (with the delay) while tries are left and the
 * receiver failed; "done" otherwise, including for a delivery whose webhook was deleted.
 */
export async function deliverWebhook(env: Env, db: Database, deliveryId: string): Promise<{ outcome: "done" } | { outcome: "retry"; delaySeconds: number }> {
  const [row] = await db
    .select({ delivery: webhookDelivery, url: webhook.url, secretCiphertext: webhook.secretCiphertext })
    .from(webhookDelivery)
    .innerJoin(webhook, eq(webhook.id, webhookDelivery.webhookId))
    .where(eq(webhookDelivery.id, deliveryId));
  if (row?.delivery.status !== "pending") return { outcome: "done" };
  const attempt = row.delivery.attempts + 1;
  const started = Date.now();
  let responseStatus: number | null = null;
  let error: string | null = null;
  try {
    const secret = await decryptJson<string>(env, row.secretCiphertext);
    const res = await fetch(row.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": "Berth-Webhooks/1",
        "x-berth-event": row.delivery.event,
        "x-berth-delivery": row.delivery.id,
        "x-berth-signature-256": await sign(secret, row.delivery.payload),
      },
      body: row.delivery.payload,
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs(env)),
    });
    responseStatus = res.status;
    await res.body?.cancel();
    if (res.status < 200 || res.status >= 300) error = `The receiver answered HTTP ${res.status}`;
  } catch (err) {
    const e = err as Error;
    error = e.name === "TimeoutError" ? `No answer within ${timeoutMs(env)} ms` : `Could not reach the receiver: ${e.message.slice(0, 300)}`;
  }
  const last = attempt >= maxAttempts(env);
  const status = error === null ? "succeeded" : last ? "failed" : "pending";
  await db
    .update(webhookDelivery)
    .set({ attempts: attempt, status, responseStatus, error, durationMs: Date.now() - started, lastAttemptAt: new Date() })
    .where(eq(webhookDelivery.id, deliveryId));
  return status === "pending" ? { outcome: "retry", delaySeconds: retryDelaySeconds(env, attempt) } : { outcome: "done" };
}

/** The `WEBHOOKS` queue's consumer. */
export async function handleWebhookBatch(batch: MessageBatch<WebhookQueueMessage>, env: Env, db: Database): Promise<void> {
  await Promise.all(
    batch.messages.map(async (message) => {
      try {
        const result = await deliverWebhook(env, db, message.body.delivery_id);
        if (result.outcome === "retry") message.retry({ delaySeconds: result.delaySeconds });
        else message.ack();
      } catch (err) {
        console.error(JSON.stringify({ level: "error", msg: "webhook delivery crashed", delivery_id: message.body.delivery_id, error: (err as Error).message }));
        message.retry({ delaySeconds: retryDelaySeconds(env, message.attempts) });
      }
    }),
  );
}

// ---------------------------------------------------------------- notifications

export function listNotifications(db: Database, orgId: string, userId: string, limit: number): Promise<NotificationRow[]> {
  return db
    .select()
    .from(notification)
    .where(and(eq(notification.orgId, orgId), eq(notification.userId, userId)))
    .orderBy(desc(notification.createdAt), desc(notification.id))
    .limit(limit);
}

export function presentNotification(row: NotificationRow) {
  return {
    id: row.id,
    kind: row.kind,
    title: row.title,
    body: row.body,
    link: row.link,
    eventId: row.eventId,
    read: row.readAt !== null,
    readAt: row.readAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
  };
}

/** Marks one of the person's notifications read; false when it is not theirs (or not in this org). */
export async function markNotificationRead(db: Database, orgId: string, userId: string, id: string): Promise<boolean> {
  const [row] = await db.select({ id: notification.id, readAt: notification.readAt }).from(notification).where(and(eq(notification.id, id), eq(notification.orgId, orgId), eq(notification.userId, userId)));
  if (!row) return false;
  if (!row.readAt) await db.update(notification).set({ readAt: new Date() }).where(eq(notification.id, id));
  return true;
}

export async function markAllNotificationsRead(db: Database, orgId: string, userId: string): Promise<void> {
  await db
    .update(notification)
    .set({ readAt: new Date() })
    .where(and(eq(notification.orgId, orgId), eq(notification.userId, userId), isNull(notification.readAt)));
}

