/**
 * What an org hears about its own events: outbound webhooks (backlex's
 * `/org/{slug}/webhooks`), a record of every delivery, and the in-app
 * notifications each member reads (`/org/{slug}/notifications`).
 */
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { user } from "./auth";
import { createdAt } from "./columns";
import { org } from "./tenancy";

export const webhook = sqliteTable(
  "webhook",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => org.id, { onDelete: "cascade" }),
    url: text("url").notNull(),
    /** Event types or patterns (`deployment.*`, `*`) this endpoint receives. */
    events: text("events", { mode: "json" }).$type<string[]>().notNull(),
    /** AES-GCM ciphertext (src/lib/secrets.ts) of the signing secret; shown once, at creation. */
    secretCiphertext: text("secret_ciphertext").notNull(),
    createdBy: text("created_by").references(() => user.id, { onDelete: "set null" }),
    createdAt: createdAt(),
  },
  (t) => [index("webhook_org_idx").on(t.orgId)],
);

export const WEBHOOK_DELIVERY_STATUSES = ["pending", "succeeded", "failed"] as const;
export type WebhookDeliveryStatus = (typeof WEBHOOK_DELIVERY_STATUSES)[number];

export const webhookDelivery = sqliteTable(
  "webhook_delivery",
  {
    id: text("id").primaryKey(),
    webhookId: text("webhook_id")
      .notNull()
      .references(() => webhook.id, { onDelete: "cascade" }),
    orgId: text("org_id")
      .notNull()
      .references(() => org.id, { onDelete: "cascade" }),
    /** The event's id (`evt_…`): one event is one delivery per matching webhook, the same id on each. */
    eventId: text("event_id").notNull(),
    event: text("event").notNull(),
    /** The JSON body as sent (no secrets are ever put in an event). */
    payload: text("payload").notNull(),
    status: text("status", { enum: WEBHOOK_DELIVERY_STATUSES }).notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    responseStatus: integer("response_status"),
    /** Why the last attempt failed, in words (the receiver's status, a timeout, a refused connection). */
    error: text("error"),
    durationMs: integer("duration_ms"),
    createdAt: createdAt(),
    lastAttemptAt: integer("last_attempt_at", { mode: "timestamp_ms" }),
  },
  (t) => [index("webhook_delivery_org_idx").on(t.orgId, t.createdAt), index("webhook_delivery_webhook_idx").on(t.webhookId, t.createdAt)],
);

/** One row per member per event worth telling people about (a failed deploy, an instance that failed). */
export const notification = sqliteTable(
  "notification",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => org.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    eventId: text("event_id").notNull(),
    kind: text("kind").notNull(),
    title: text("title").notNull(),
    body: text("body"),
    /** Where in the dashboard the thing it is about lives, e.g. `/apps/app_…`. */
    link: text("link"),
    createdAt: createdAt(),
    readAt: integer("read_at", { mode: "timestamp_ms" }),
  },
  (t) => [index("notification_user_org_idx").on(t.userId, t.orgId, t.createdAt)],
);
