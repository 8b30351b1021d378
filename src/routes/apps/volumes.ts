/**
 * Dockup's persistent volumes, `/apps/{appId}/volumes`: attach a named volume at a path,
 * list them with what each holds on the host, detach one (its data stays). A change
 * applies at the app's next deploy, as Dockup documents.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../../app";
import { errorResponsesFor, notFound } from "../../lib/errors";
import { audited } from "../../services/audit";
import { appEventOf } from "../../services/apps";
import { attachedVolumes, attachVolume, detachVolume, presentVolume } from "../../services/volumes";
import { json, jsonBody } from "../schemas";
import { loadApp } from "./index";
import { AppParams } from "./schema";

const router = createRouter();
const tags = ["Volumes"];

/** Paths a volume may not cover: the root, and what the kernel and Docker mount themselves. */
const RESERVED = /^\/(proc|sys|dev)(\/|$)/;

const MountPath = z
  .string()
  .min(2)
  .max(512)
  .regex(/^\/[^\0\n\r:]*$/, "must be an absolute path")
  .refine((p) => !p.split("/").some((part) => part === ".." || part === "."), "must not contain . or .. segments")
  .refine((p) => !RESERVED.test(p), "cannot be /proc, /sys, /dev or under them")
  .transform((p) => p.replace(/\/+$/, "").replace(/\/{2,}/g, "/"))
  .openapi({ description: "Absolute path inside the container, e.g. /data", example: "/data" });

export const VolumeSchema = z
  .object({
    name: z.string().openapi({ description: "The Docker volume's name on the app's host (berth-vol-{appId}-{n})" }),
    mount_path: z.string(),
    size_mb: z.number().int().openapi({ description: "Requested size in MB: informational, Docker's local volume driver cannot enforce it" }),
    used_bytes: z.number().int().nullable().openapi({ description: "What the volume holds on the host, as the agent last measured it (every 30 s); null before the first deploy that mounts it" }),
    measured_at: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi("Volume");

const AttachInput = z
  .object({
    mount_path: MountPath,
    size_mb: z.number().int().min(1).max(1_048_576).default(1024).openapi({ description: "Requested size in MB (informational)" }),
  })
  .openapi("AttachVolumeInput");

const DetachQuery = z.object({ mount_path: MountPath.openapi({ param: { name: "mount_path", in: "query" } }) });

router.openapi(
  createRoute({
    method: "get",
    path: "/apps/{appId}/volumes",
    tags,
    summary: "The app's persistent volumes, with what each holds on the host",
    request: { params: AppParams },
    responses: { 200: json(z.array(VolumeSchema), "Attached volumes, by mount path"), ...errorResponsesFor("app_not_found") },
  }),
  async (c) => {
    const { app } = await loadApp(c, c.req.valid("param").appId, "project:read");
    return c.json((await attachedVolumes(c.var.db, app.id)).map(presentVolume), 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/apps/{appId}/volumes",
    tags,
    summary: "Attach a persistent volume; redeploy to mount it",
    description:
      "Makes a Docker named volume on the app's host at the next deploy and mounts it at `mount_path` from then on; its data survives deploys, restarts and detaching. Attaching a path that was detached before brings back the same volume, data and all.",
    request: { params: AppParams, ...jsonBody(AttachInput) },
    responses: { 201: json(VolumeSchema, "Attached; redeploy to mount"), ...errorResponsesFor("app_not_found", "volume_exists") },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { app, project } = await loadApp(c, c.req.valid("param").appId, "deploy");
    const row = await attachVolume(c.var.db, app.id, { mountPath: input.mount_path, sizeMb: input.size_mb }, () => [
      ...appEventOf(c.var.db, "volume", `Volume attached at ${input.mount_path}; redeploy to mount it`, { mount_path: input.mount_path, size_mb: input.size_mb })(app.id),
      ...audited(c, () => ({ orgId: project.orgId, action: "app.volume.attach", targetType: "app", targetId: app.id, metadata: { mount_path: input.mount_path, size_mb: input.size_mb } }))(app.id),
    ]);
    return c.json(presentVolume(row), 201);
  },
);

router.openapi(
  createRoute({
    method: "delete",
    path: "/apps/{appId}/volumes",
    tags,
    summary: "Detach a volume (its data stays on the host); redeploy to unmount it",
    request: { params: AppParams, query: DetachQuery },
    responses: { 200: json(z.object({ ok: z.boolean(), volume: VolumeSchema }), "Detached, data preserved"), ...errorResponsesFor("app_not_found", "volume_not_found") },
  }),
  async (c) => {
    const { mount_path } = c.req.valid("query");
    const { app, project } = await loadApp(c, c.req.valid("param").appId, "deploy");
    const row = await detachVolume(c.var.db, app.id, mount_path, () => [
      ...appEventOf(c.var.db, "volume", `Volume detached from ${mount_path}; its data is kept`, { mount_path })(app.id),
      ...audited(c, () => ({ orgId: project.orgId, action: "app.volume.detach", targetType: "app", targetId: app.id, metadata: { mount_path } }))(app.id),
    ]);
    if (!row) throw notFound("Volume", "volume_not_found");
    return c.json({ ok: true, volume: presentVolume(row) }, 200);
  },
);

export default router;
