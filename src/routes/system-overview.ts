/** Dockup's `/system/dashboard`, `/system/resources` and `/system/containers`, over the caller's hosts and apps. */
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../app";
import { requirePrincipal } from "../auth/access";
import { hostMailbox } from "../durable/clients";
import { errorResponses, forbidden } from "../lib/errors";
import { hostStatus } from "../services/hosts";
import { callerScope, dashboard, resources, visibleHosts } from "../services/overview";
import { AppSchema } from "./apps/index";
import { json } from "./schemas";
import { uptimeSeconds } from "./system";

const router = createRouter();
const tags = ["System"];

const Resources = z
  .object({
    cpu_cores: z.number().openapi({ description: "CPUs of the online hosts you can see" }),
    memory: z.object({ total_mb: z.number(), allocated_mb: z.number(), used_mb: z.number() }),
    containers_running: z.number().int(),
    containers_stopped: z.number().int(),
    containers_total: z.number().int(),
    hosts_online: z.number().int(),
    hosts_total: z.number().int(),
    uptime: z.number().openapi({ description: "Seconds since this control plane isolate started serving" }),
  })
  .openapi("SystemResources");

const Container = z
  .object({ id: z.string(), name: z.string(), image: z.string(), state: z.string(), status: z.string(), created: z.string(), ip: z.string().nullable().default(null), app_id: z.string().nullable(), host_id: z.string() })
  .openapi("HostContainer");

router.openapi(
  createRoute({
    method: "get",
    path: "/system/resources",
    tags,
    summary: "CPU cores, memory and container counts over your hosts and apps",
    responses: { 200: json(Resources, "The overview"), ...errorResponses },
  }),
  async (c) => c.json(await resources(c.var.db, c.env, await callerScope(c.var.db, requirePrincipal(c)), uptimeSeconds()), 200),
);

router.openapi(
  createRoute({
    method: "get",
    path: "/system/dashboard",
    tags,
    summary: "Allocated and used CPU and memory, running and stopped apps, with each app's status",
    responses: {
      200: json(
        z.object({
          system: Resources,
          usage: z.object({
            cpu_allocated: z.number(),
            memory_allocated_mb: z.number(),
            cpu_used_percent: z.number(),
            memory_used_mb: z.number(),
            apps_running: z.number().int(),
            apps_stopped: z.number().int(),
          }),
          tier: z.string(),
          apps: z.array(AppSchema),
        }),
        "The dashboard",
      ),
      ...errorResponses,
    },
  }),
  async (c) => c.json(await dashboard(c.var.db, c.env, await callerScope(c.var.db, requirePrincipal(c)), uptimeSeconds()), 200),
);

router.openapi(
  createRoute({
    method: "get",
    path: "/system/containers",
    tags,
    summary: "Every Docker container on the hosts you manage (owner and admin), as their agents see them now",
    description:
      "The array Dockup documents. Hosts whose agent is not connected are left out and named, comma-separated, in the " +
      "`X-Berth-Unreachable` header.",
    responses: { 200: json(z.array(Container), "Containers"), ...errorResponses },
  }),
  async (c) => {
    const scope = await callerScope(c.var.db, requirePrincipal(c));
    if (!scope.adminOrgIds.length) throw forbidden("Listing every container needs the owner or admin role in an org with hosts");
    const hosts = (await visibleHosts(c.var.db, scope.adminOrgIds)).filter((h) => h.kind === "docker" && hostStatus(c.env, h) === "online");
    const containers: z.infer<typeof Container>[] = [];
    const unreachable: string[] = [];
    await Promise.all(
      hosts.map(async (h) => {
        const reply = await hostMailbox(c.env, h.id).rpc("host.containers", { app_id: "" }, 5_000);
        if (!reply.ok) return unreachable.push(h.id);
        const listed = z.array(Container.omit({ host_id: true })).safeParse(JSON.parse(reply.json));
        if (!listed.success) return unreachable.push(h.id);
        for (const ct of listed.data) containers.push({ ...ct, host_id: h.id });
      }),
    );
    if (unreachable.length) c.header("X-Berth-Unreachable", unreachable.join(","));
    return c.json(containers, 200);
  },
);

export default router;
