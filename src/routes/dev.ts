/**
 * Local development only: the mail outbox. Mounted (src/index.ts) only when MAIL_TRANSPORT
 * is "outbox" and ENVIRONMENT is development or test: a deployment neither serves it nor
 * lists it in its OpenAPI document.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { desc, eq } from "drizzle-orm";
import { createRouter } from "../app";
import { outbox } from "../db/schema";
import { errorResponses } from "../lib/errors";
import { json } from "./schemas";

const router = createRouter();

const Mail = z.object({ id: z.string(), to: z.string(), subject: z.string(), text: z.string(), createdAt: z.string() }).openapi("OutboxMail");

router.openapi(
  createRoute({
    method: "get",
    path: "/dev/outbox",
    tags: ["Development"],
    summary: "Mail the control plane sent (local development only)",
    security: [],
    request: { query: z.object({ to: z.string().max(254).optional(), limit: z.coerce.number().int().min(1).max(100).default(20) }) },
    responses: { 200: json(z.object({ messages: z.array(Mail) }), "Newest first"), ...errorResponses },
  }),
  async (c) => {
    const { to, limit } = c.req.valid("query");
    const rows = await c.var.db
      .select()
      .from(outbox)
      .where(to ? eq(outbox.to, to.toLowerCase()) : undefined)
      .orderBy(desc(outbox.createdAt), desc(outbox.id))
      .limit(limit);
    return c.json({ messages: rows.map((m) => ({ ...m, createdAt: m.createdAt.toISOString() })) }, 200);
  },
);

export default router;
