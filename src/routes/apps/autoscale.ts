/**
 * Dockup's `/apps/{appId}/autoscale`: the replica bounds, CPU threshold and cool-down an app
 * scales by, and the idle time after which it sleeps (`sleep_after_minutes`, 0 = never).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../../app";
import { errorResponsesFor } from "../../lib/errors";
import { audited } from "../../services/audit";
import { appEventOf } from "../../services/apps";
import { presentSleep, sleepOf } from "../../services/app-sleep";
import { autoscaleOf, MAX_REPLICAS, presentAutoscale, saveAutoscale } from "../../services/autoscale";
import { applyAutoscaleSettings, presentReplicas, replicasOf } from "../../services/replicas";
import { json, jsonBody } from "../schemas";
import { loadApp } from "./index";
import { AppParams } from "./schema";

const router = createRouter();
const tags = ["Apps"];

export const AutoscaleSchema = z
  .object({
    enabled: z.boolean().openapi({ description: "Whether the control plane moves the replica count between min_replicas and max_replicas" }),
    cpu_threshold: z.number().openapi({ description: "Average CPU % across the app's replicas that triggers a scale-up" }),
    min_replicas: z.number().int(),
    max_replicas: z.number().int(),
    cooldown_seconds: z.number().int().openapi({ description: "Least time between two scaling changes" }),
    sleep_after_minutes: z.number().int().openapi({ description: "Minutes without a request before the app sleeps (0 = never)" }),
    updated_at: z.string().nullable().openapi({ description: "When the settings were last changed; null while they are the defaults" }),
    replicas: z.number().int().openapi({ description: "Replicas the app runs (or will run at its next deploy): min_replicas while autoscale is off" }),
    replicas_running: z.number().int().nullable().openapi({ description: "Replicas running as the host last reported; null until it has" }),
    scaling: z.boolean().openapi({ description: "An app.scale job is under way" }),
    sleeping: z.boolean().openapi({ description: "Asleep after sleep_after_minutes without a request: its containers are stopped (status `stopped`) and the next request wakes it" }),
    slept_at: z.string().nullable().openapi({ description: "When it went to sleep, while sleeping" }),
    last_request_at: z.string().nullable().openapi({ description: "The last request its host saw through the ingress (reported every 30 s)" }),
  })
  .openapi("Autoscale");

const AutoscaleInput = z
  .object({
    enabled: z.boolean(),
    cpu_threshold: z.number().min(1).max(100),
    min_replicas: z.number().int().min(1).max(MAX_REPLICAS),
    max_replicas: z.number().int().min(1).max(MAX_REPLICAS),
    cooldown_seconds: z.number().int().min(30).max(86_400),
    sleep_after_minutes: z.number().int().min(0).max(10_080),
  })
  .partial()
  .strict()
  .openapi("AutoscaleInput");

router.openapi(
  createRoute({
    method: "get",
    path: "/apps/{appId}/autoscale",
    tags,
    summary: "Get autoscale configuration",
    request: { params: AppParams },
    responses: { 200: json(AutoscaleSchema, "The app's autoscale and sleep settings"), ...errorResponsesFor("app_not_found") },
  }),
  async (c) => {
    const { app } = await loadApp(c, c.req.valid("param").appId, "project:read");
    const cfg = await autoscaleOf(c.var.db, app.id);
    return c.json({ ...presentAutoscale(cfg), ...presentReplicas(await replicasOf(c.var.db, app.id), cfg), ...presentSleep(await sleepOf(c.var.db, app.id)) }, 200);
  },
);

router.openapi(
  createRoute({
    method: "put",
    path: "/apps/{appId}/autoscale",
    tags,
    summary: "Update autoscale configuration",
    description: "Changes only the fields given. `min_replicas` must not exceed `max_replicas`, counting the stored value of the one not given.",
    request: { params: AppParams, ...jsonBody(AutoscaleInput) },
    responses: { 200: json(AutoscaleSchema, "Updated"), ...errorResponsesFor("app_not_found") },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { app, project } = await loadApp(c, c.req.valid("param").appId, "deploy");
    const { after } = await saveAutoscale(
      c.var.db,
      app.id,
      {
        enabled: input.enabled,
        cpuThreshold: input.cpu_threshold,
        minReplicas: input.min_replicas,
        maxReplicas: input.max_replicas,
        cooldownSeconds: input.cooldown_seconds,
        sleepAfterMinutes: input.sleep_after_minutes,
      },
      (changes) => (id) => [
        ...appEventOf(c.var.db, "autoscale", `Autoscale settings changed: ${Object.entries(changes).map(([k, v]) => `${k}=${v}`).join(", ")}`, changes)(id),
        ...audited(c, () => ({ orgId: project.orgId, action: "app.autoscale.update", targetType: "app", targetId: app.id, metadata: changes }))(id),
      ],
    );
    // New bounds apply at once: an app.scale job when the count must move (services/replicas.ts).
    await applyAutoscaleSettings(c.env, c.var.db, app);
    return c.json({ ...presentAutoscale(after), ...presentReplicas(await replicasOf(c.var.db, app.id), after), ...presentSleep(await sleepOf(c.var.db, app.id)) }, 200);
  },
);

export default router;
