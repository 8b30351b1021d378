import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../app";
import { APP_VERSION } from "../env";

const router = createRouter();
// Time is frozen at 0 while a Worker's module loads, so the start is taken on the first request.
let startedAt: number | null = null;

/** Seconds since this isolate started serving. */
export function uptimeSeconds(): number {
  startedAt ??= Date.now();
  return Math.round((Date.now() - startedAt) / 1000);
}

const SystemStatus = z
  .object({
    status: z.literal("ok"),
    version: z.string(),
    uptime: z.number().openapi({ description: "Seconds since this isolate started serving." }),
    base_domain: z.string(),
  })
  .openapi("SystemStatus");

router.openapi(
  createRoute({
    method: "get",
    path: "/system/status",
    tags: ["System"],
    summary: "Health check (public)",
    security: [],
    responses: { 200: { content: { "application/json": { schema: SystemStatus } }, description: "The control plane is up" } },
  }),
  (c) =>
    c.json(
      { status: "ok" as const, version: APP_VERSION, uptime: uptimeSeconds(), base_domain: c.env.BASE_DOMAIN },
      200,
    ),
);

export default router;
