/**
 * backlex's outbound webhooks and notifications: `/org/{slug}/webhooks`
 * (list, create with the signing secret shown once, delete, send a test),
 * `/org/{slug}/webhook-deliveries`, and each member's
 * `/org/{slug}/notifications` (list, mark read, mark all read).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../app";
import { authorizeOrg } from "../auth/access";
import { errorResponsesFor, forbidden, notFound } from "../lib/errors";
import { audited } from "../services/audit";
import {
  WEBHOOK_EVENTS,
  checkEventPatterns,
  checkWebhookUrl,
  createWebhook,
  deleteWebhook,
  emitOrgEvent,
  findWebhook,
  listDeliveries,
  listNotifications,
  listWebhooks,
  markAllNotificationsRead,
  markNotificationRead,
  presentDelivery,
  presentNotification,
  presentWebhook,
} from "../services/webhooks";
import { json, jsonBody, Ok, slugParam } from "./schemas";

const router = createRouter();
const tags = ["Webhooks and notifications"];

const OrgParams = z.object({ slug: slugParam("slug") });
const ItemParams = OrgParams.extend({ id: slugParam("id") });

const Webhook = z
  .object({
    id: z.string().openapi({ example: "whk_8x2k9d0a1b2c3d4e" }),
    url: z.string(),
    events: z.array(z.string()).openapi({ description: `Event types or families it receives: ${WEBHOOK_EVENTS.join(", ")}; \`deployment.*\`; \`*\`` }),
    createdAt: z.string(),
    secret: z.string().optional().openapi({ description: "The signing secret (`whsec_…`), in the creation's answer only. Each delivery carries `X-Berth-Signature-256: sha256=<hex HMAC-SHA256 of the body>`." }),
  })
  .openapi("Webhook");

const WebhookDelivery = z
  .object({
    id: z.string(),
    webhookId: z.string(),
    eventId: z.string(),
    event: z.string(),
    status: z.enum(["pending", "succeeded", "failed"]),
    attempts: z.number().int(),
    responseStatus: z.number().int().nullable(),
    error: z.string().nullable(),
    durationMs: z.number().int().nullable(),
    createdAt: z.string(),
    lastAttemptAt: z.string().nullable(),
  })
  .openapi("WebhookDelivery");

const Notification = z
  .object({
    id: z.string(),
    kind: z.string(),
    title: z.string(),
    body: z.string().nullable(),
    link: z.string().nullable(),
    eventId: z.string(),
    read: z.boolean(),
    readAt: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi("Notification");

/** Not the org, or not this org's webhook: the same 404. */
async function orgWebhook(c: Parameters<typeof authorizeOrg>[0], slug: string, id: string) {
  const { org, principal } = await authorizeOrg(c, slug, "webhook:manage");
  const row = await findWebhook(c.var.db, org.id, id);
  if (!row) throw notFound("Webhook", "webhook_not_found");
  return { org, principal, row };
}

router.openapi(
  createRoute({
    method: "get",
    path: "/org/{slug}/webhooks",
    tags,
    summary: "List webhooks (owner, admin)",
    request: { params: OrgParams },
    responses: { 200: json(z.object({ webhooks: z.array(Webhook) }), "Webhooks, without their secrets"), ...errorResponsesFor() },
  }),
  async (c) => {
    const { org } = await authorizeOrg(c, c.req.valid("param").slug, "webhook:manage");
    return c.json({ webhooks: (await listWebhooks(c.var.db, org.id)).map((r) => presentWebhook(r)) }, 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/org/{slug}/webhooks",
    tags,
    summary: "Create a webhook; its signing secret is returned once (owner, admin)",
    request: {
      params: OrgParams,
      ...jsonBody(
        z
          .object({
            url: z.string().trim().min(1).max(2048),
            events: z.array(z.string().min(1).max(80)).min(1).max(32),
          })
          .openapi("WebhookInput"),
      ),
    },
    responses: { 201: json(z.object({ webhook: Webhook }), "Signing secret returned once."), ...errorResponsesFor("invalid_url", "unknown_event") },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { org, principal } = await authorizeOrg(c, c.req.valid("param").slug, "webhook:manage");
    const url = checkWebhookUrl(c.env, input.url);
    const events = checkEventPatterns(input.events);
    const { row, secret } = await createWebhook(
      c.var.db,
      c.env,
      { orgId: org.id, url, events, createdBy: principal.userId },
      audited(c, (created: { id: string; url: string }) => ({ orgId: org.id, action: "webhook.create", targetType: "webhook", targetId: created.id, metadata: { url: created.url, events } })),
    );
    return c.json({ webhook: presentWebhook(row, secret) }, 201);
  },
);

router.openapi(
  createRoute({
    method: "delete",
    path: "/org/{slug}/webhooks/{id}",
    tags,
    summary: "Delete a webhook; its pending deliveries are dropped (owner, admin)",
    request: { params: ItemParams },
    responses: { 204: { description: "Webhook deleted." }, ...errorResponsesFor("webhook_not_found") },
  }),
  async (c) => {
    const { slug, id } = c.req.valid("param");
    const { org, row } = await orgWebhook(c, slug, id);
    await deleteWebhook(c.var.db, row.id, audited(c, () => ({ orgId: org.id, action: "webhook.delete", targetType: "webhook", targetId: row.id, metadata: { url: row.url } }))(row.id));
    return c.body(null, 204);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/org/{slug}/webhooks/{id}/test",
    tags,
    summary: "Send a `webhook.test` delivery to this webhook (owner, admin)",
    request: { params: ItemParams },
    responses: {
      200: json(z.object({ ok: z.boolean(), deliveryId: z.string().nullable() }), "Queued; follow it in `/org/{slug}/webhook-deliveries`"),
      ...errorResponsesFor("webhook_not_found"),
    },
  }),
  async (c) => {
    const { slug, id } = c.req.valid("param");
    const { org, row, principal } = await orgWebhook(c, slug, id);
    const { deliveries } = await emitOrgEvent(c.env, c.var.db, {
      orgId: org.id,
      type: "webhook.test",
      data: { webhook_id: row.id, requested_by: principal.userId, message: "A test delivery from Berth" },
      onlyWebhookId: row.id,
    });
    return c.json({ ok: deliveries.length === 1, deliveryId: deliveries[0] ?? null }, 200);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/org/{slug}/webhook-deliveries",
    tags,
    summary: "Recent outbound webhook deliveries, newest first (owner, admin)",
    request: {
      params: OrgParams,
      query: z.object({
        webhookId: z.string().max(64).optional().openapi({ param: { name: "webhookId", in: "query" } }),
        limit: z.coerce.number().int().min(1).max(200).default(50).openapi({ param: { name: "limit", in: "query" } }),
      }),
    },
    responses: { 200: json(z.object({ deliveries: z.array(WebhookDelivery) }), "Deliveries"), ...errorResponsesFor("webhook_not_found") },
  }),
  async (c) => {
    const { webhookId, limit } = c.req.valid("query");
    const { org } = await authorizeOrg(c, c.req.valid("param").slug, "webhook:manage");
    if (webhookId && !(await findWebhook(c.var.db, org.id, webhookId))) throw notFound("Webhook", "webhook_not_found");
    return c.json({ deliveries: (await listDeliveries(c.var.db, org.id, { webhookId, limit })).map(presentDelivery) }, 200);
  },
);

// ---------------------------------------------------------------- notifications

/** Notifications belong to a person: an org key has nobody to read them. */
async function member(c: Parameters<typeof authorizeOrg>[0], slug: string) {
  const { org, principal } = await authorizeOrg(c, slug, "org:read");
  if (principal.type === "api_key" && principal.key.kind === "org") throw forbidden("Notifications belong to people; an org API key has none");
  return { org, userId: principal.userId };
}

router.openapi(
  createRoute({
    method: "get",
    path: "/org/{slug}/notifications",
    tags,
    summary: "Your notifications in this org, newest first",
    request: {
      params: OrgParams,
      query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50).openapi({ param: { name: "limit", in: "query" } }) }),
    },
    responses: { 200: json(z.object({ notifications: z.array(Notification), unread: z.number().int() }), "Notifications"), ...errorResponsesFor() },
  }),
  async (c) => {
    const { org, userId } = await member(c, c.req.valid("param").slug);
    const rows = await listNotifications(c.var.db, org.id, userId, c.req.valid("query").limit);
    return c.json({ notifications: rows.map(presentNotification), unread: rows.filter((r) => r.readAt === null).length }, 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/org/{slug}/notifications/{id}/read",
    tags,
    summary: "Mark a notification read",
    request: { params: ItemParams },
    responses: { 200: json(Ok, "OK"), ...errorResponsesFor("notification_not_found") },
  }),
  async (c) => {
    const { slug, id } = c.req.valid("param");
    const { org, userId } = await member(c, slug);
    if (!(await markNotificationRead(c.var.db, org.id, userId, id))) throw notFound("Notification", "notification_not_found");
    return c.json({ ok: true }, 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/org/{slug}/notifications/read-all",
    tags,
    summary: "Mark all your notifications in this org read",
    request: { params: OrgParams },
    responses: { 200: json(Ok, "OK"), ...errorResponsesFor() },
  }),
  async (c) => {
    const { org, userId } = await member(c, c.req.valid("param").slug);
    await markAllNotificationsRead(c.var.db, org.id, userId);
    return c.json({ ok: true }, 200);
  },
);

export default router;
