/** backlex's org audit log. */
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../app";
import { authorizeOrg } from "../auth/access";
import { errorResponses } from "../lib/errors";
import { listAudit, presentAudit } from "../services/audit";
import { json, slugParam } from "./schemas";

const router = createRouter();

const AuditEvent = z
  .object({
    id: z.string(),
    action: z.string().openapi({ example: "project.create" }),
    actor: z.object({ type: z.enum(["user", "api_key", "system"]), id: z.string(), userId: z.string().nullable() }),
    target: z.object({ type: z.string(), id: z.string().nullable() }).nullable(),
    ip: z.string().nullable(),
    userAgent: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    createdAt: z.string(),
  })
  .openapi("AuditEvent");

const instant = z
  .string()
  .max(40)
  .refine((v) => !Number.isNaN(Date.parse(v)), "must be an ISO 8601 date or date-time")
  .transform((v) => new Date(v));

router.openapi(
  createRoute({
    method: "get",
    path: "/org/{slug}/audit",
    tags: ["Audit"],
    summary: "Who did what in the org, newest first (owner, admin)",
    request: {
      params: z.object({ slug: slugParam("slug") }),
      query: z.object({
        action: z.string().max(80).optional(),
        from: instant.optional(),
        to: instant.optional(),
        limit: z.coerce.number().int().min(1).max(200).default(50),
        offset: z.coerce.number().int().min(0).max(100_000).default(0),
      }),
    },
    responses: { 200: json(z.object({ events: z.array(AuditEvent) }), "Events"), ...errorResponses },
  }),
  async (c) => {
    const { org } = await authorizeOrg(c, c.req.valid("param").slug, "audit:read");
    const rows = await listAudit(c.var.db, org.id, c.req.valid("query"));
    return c.json({ events: rows.map(presentAudit) }, 200);
  },
);

export default router;
