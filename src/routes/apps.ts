/**
 * Dockup's apps: `/projects/{projectId}/apps` and `/apps/{appId}` (id or slug), with
 * their deployment history and event feed. Env var values are write-only: every
 * response shows their names with masked values.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createRouter } from "../app";
import { authorizeLoadedProject, authorizeProject, requirePrincipal } from "../auth/access";
import type { Permission } from "../auth/permissions";
import { APP_STATUSES, DEPLOYMENT_STATUSES } from "../db/schema";
import type { AppEnv } from "../env";
import { ApiError, badRequest, conflictResponse, errorResponses, notFound } from "../lib/errors";
import { SLUG_PATTERN } from "../lib/slug";
import {
  APP_SLUG_MAX,
  createApp,
  dockupStatus,
  findApp,
  listAppDeployments,
  listAppEvents,
  listProjectApps,
  presentApp,
  presentAppEvent,
  presentDeployment,
  recordAppEvent,
  softDeleteApp,
  updateApp,
  type AppRow,
} from "../services/apps";
import { recordAudit } from "../services/audit";
import { submitAppAction, submitLimitsUpdate } from "../services/deployments";
import { findProject } from "../services/projects";
import { json, jsonBody, name, Ok, slugParam } from "./schemas";

const router = createRouter();
const tags = ["Apps"];

// ---------------------------------------------------------------- shapes

export const AppSchema = z
  .object({
    id: z.string().openapi({ example: "app_8kd2mq4zr1ab0c9d" }),
    name: z.string(),
    slug: z.string().openapi({ example: "web" }),
    project_id: z.string(),
    image: z.string().openapi({ example: "nginx:alpine" }),
    internal_port: z.number().int(),
    env_vars: z.record(z.string(), z.string()).openapi({
      description: "The variables' names, each with a masked value: values are write-only.",
      example: { DATABASE_URL: "••••••" },
    }),
    command: z.string().nullable(),
    cpu_limit: z.number(),
    memory_limit: z.number().int(),
    gpu_enabled: z.boolean(),
    git_repo_url: z.string().nullable(),
    git_branch: z.string().nullable(),
    git_provider: z.enum(["github", "custom"]).nullable(),
    status: z.enum(["running", "stopped", "paused", "restarting", "starting"]).openapi({
      description: "Dockup's container status; an app never deployed, or whose deploy failed, is `stopped`.",
    }),
    state: z.enum(APP_STATUSES).openapi({ description: "Berth's own state, which tells `created` and `failed` from `stopped`." }),
    cpu_usage: z.number().nullable().openapi({ description: "Percent, as last reported" }),
    memory_usage: z.number().nullable().openapi({ description: "MB, as last reported" }),
    url: z.string().openapi({ example: "http://web-app.example.com" }),
    host_id: z.string().nullable(),
    container_id: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("App");

export const DeploymentSchema = z
  .object({
    id: z.string().openapi({ example: "dep_8kd2mq4zr1ab0c9d" }),
    app_id: z.string(),
    image: z.string(),
    status: z.enum(DEPLOYMENT_STATUSES),
    container_id: z.string().nullable(),
    error: z.string().nullable(),
    job_id: z.string().nullable(),
    started_at: z.string().nullable(),
    finished_at: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi("Deployment");

export const AppEventSchema = z
  .object({
    id: z.string().openapi({ example: "aev_8kd2mq4zr1ab0c9d" }),
    type: z.string().openapi({ example: "deploy", description: "`created`, `updated`, `deploy`, `error`, `status`" }),
    message: z.string(),
    data: z.record(z.string(), z.unknown()).nullable(),
    status: z.string().nullable().openapi({ description: "Dockup's name for `data.status`" }),
    details: z.record(z.string(), z.unknown()).nullable().openapi({ description: "Dockup's name for `data`" }),
    created_at: z.string(),
  })
  .openapi("AppEvent");

const ContainerState = z
  .object({ status: AppSchema.shape.status, container_id: z.string(), host_id: z.string().nullable() })
  .nullable()
  .openapi("ContainerState", { description: "The app's container, or null while it has none" });

// ---------------------------------------------------------------- input rules

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_ENV_VARS = 100;
const MAX_ENV_VALUE_BYTES = 32 * 1024;
const MAX_ENV_TOTAL_BYTES = 512 * 1024;
const bytes = (s: string) => new TextEncoder().encode(s).length;
const noNul = (s: string) => !s.includes("\0");
const noSpace = /^\S+$/;

const envVars = z
  .record(
    z.string().max(256).regex(ENV_KEY, "env var names are letters, digits and '_', not starting with a digit"),
    z
      .string()
      .refine((v) => bytes(v) <= MAX_ENV_VALUE_BYTES, "an env var value is at most 32 KiB")
      .refine(noNul, "an env var value cannot contain NUL"),
  )
  .refine((v) => Object.keys(v).length <= MAX_ENV_VARS, `at most ${MAX_ENV_VARS} env vars`)
  .refine(
    (v) => Object.entries(v).reduce((n, [k, s]) => n + k.length + bytes(s), 0) <= MAX_ENV_TOTAL_BYTES,
    "env vars are at most 512 KiB in all",
  )
  .openapi({ description: "Environment variables as names and values; values are write-only", example: { DATABASE_URL: "postgres://…" } });

const image = z.string().min(1).max(512).regex(noSpace, "an image reference has no whitespace").openapi({ example: "nginx:alpine" });
const internalPort = z.number().int().min(1).max(65535);
const cpuLimit = z.number().min(0.05).max(64).openapi({ description: "CPU cores" });
const memoryLimit = z.number().int().min(16).max(262144).openapi({ description: "MB" });
const command = z.string().max(4096).refine(noNul, "a command cannot contain NUL").openapi({ description: "Overrides the image's command" });
const gitRepoUrl = z.string().min(1).max(2048).regex(noSpace, "no whitespace").openapi({ description: "owner/repo for GitHub, or a full URL" });
const gitBranch = z.string().min(1).max(255).regex(noSpace, "no whitespace");
const gitProvider = z.enum(["github", "custom"]);

const CreateAppInput = z
  .object({
    name: name(100),
    slug: z
      .string()
      .max(APP_SLUG_MAX)
      .regex(SLUG_PATTERN, "lowercase letters, digits and hyphens, not starting or ending with one")
      .refine((s) => !/^..--/.test(s), "a slug cannot have '--' in its third and fourth characters (reserved in DNS)")
      .optional()
      .openapi({ description: "Used in the app's host name; derived from the name when omitted. Unique across Berth." }),
    image,
    internal_port: internalPort.default(8080),
    env_vars: envVars.optional(),
    command: command.optional(),
    cpu_limit: cpuLimit.default(0.5),
    memory_limit: memoryLimit.default(512),
    gpu_enabled: z.boolean().default(false),
    git_repo_url: gitRepoUrl.optional(),
    git_branch: gitBranch.optional().openapi({ description: "Defaults to main when a repository is given" }),
    git_provider: gitProvider.optional(),
  })
  .openapi("CreateAppInput");

const UpdateAppInput = z
  .object({
    name: name(100).optional(),
    image: image.optional(),
    internal_port: internalPort.optional(),
    env_vars: envVars.optional().openapi({
      description: "Replaces every variable. A value equal to the mask (`••••••`) keeps that variable's stored value, so an app read and sent back loses nothing.",
    }),
    command: command.nullable().optional(),
    cpu_limit: cpuLimit.optional(),
    memory_limit: memoryLimit.optional(),
    gpu_enabled: z.boolean().optional(),
    git_repo_url: gitRepoUrl.nullable().optional(),
    git_branch: gitBranch.nullable().optional(),
    git_provider: gitProvider.nullable().optional(),
  })
  .openapi("UpdateAppInput");

const ProjectAppsParams = z.object({ projectId: slugParam("projectId").openapi({ description: "Project id (prj_…)" }) });
export const AppParams = z.object({ appId: slugParam("appId").openapi({ description: "App id (app_…) or slug" }) });
const LimitQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50).openapi({ param: { name: "limit", in: "query" }, description: "At most this many, newest first (1–200, default 50)" }),
});

// ---------------------------------------------------------------- access

/**
 * A live app the caller may act on with `permission`, by id or slug. An app the caller
 * cannot see (another org, a deleted project) is 404, never 403; a key bound to another
 * project of the same org is 403.
 */
export async function loadApp(c: Context<AppEnv>, idOrSlug: string, permission: Permission) {
  const principal = requirePrincipal(c);
  const row = await findApp(c.var.db, idOrSlug);
  const project = row ? await findProject(c.var.db, row.projectId) : undefined;
  if (!row || !project) throw notFound("App", "app_not_found");
  try {
    const { role } = await authorizeLoadedProject(c, principal, project, permission);
    return { app: row, project, role, principal };
  } catch (err) {
    // Not seeing the project means not seeing the app: say it about the app.
    if (err instanceof ApiError && err.status === 404) throw notFound("App", "app_not_found");
    throw err;
  }
}

/**
 * zod drops a `__proto__` key from a record without a word; a variable by that name
 * would vanish. It is refused instead, as any other name that is not a variable's.
 */
async function refuseProtoEnvKey(c: Context<AppEnv>) {
  const body = (await c.req.json().catch(() => null)) as { env_vars?: unknown } | null;
  const vars = body?.env_vars;
  if (vars && typeof vars === "object" && Object.hasOwn(vars, "__proto__")) {
    const issue = { path: "env_vars.__proto__", message: "__proto__ cannot be an env var name", code: "invalid_key" };
    throw badRequest("invalid_request", `Invalid request in json: ${issue.path}: ${issue.message}`, { issues: [issue] });
  }
}

function containerState(row: AppRow): z.infer<typeof ContainerState> {
  return row.containerId ? { status: dockupStatus(row.status), container_id: row.containerId, host_id: row.hostId } : null;
}

// ---------------------------------------------------------------- routes

router.openapi(
  createRoute({
    method: "get",
    path: "/projects/{projectId}/apps",
    tags,
    summary: "The project's apps, with status and last resource usage",
    request: { params: ProjectAppsParams },
    responses: { 200: json(z.array(AppSchema), "Apps, oldest first"), ...errorResponses },
  }),
  async (c) => {
    const { project } = await authorizeProject(c, c.req.valid("param").projectId, "project:read");
    const rows = await listProjectApps(c.var.db, project.id);
    return c.json(rows.map((r) => presentApp(c.env, r)), 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/projects/{projectId}/apps",
    tags,
    summary: "Create an app; it is served at http://{slug}-app.{BASE_DOMAIN} once deployed",
    request: { params: ProjectAppsParams, ...jsonBody(CreateAppInput) },
    responses: { 201: json(AppSchema, "Created"), ...conflictResponse, ...errorResponses },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { project, principal } = await authorizeProject(c, c.req.valid("param").projectId, "deploy");
    await refuseProtoEnvKey(c);
    const row = await createApp(c.var.db, c.env, {
      projectId: project.id,
      orgId: project.orgId,
      name: input.name,
      slug: input.slug,
      image: input.image,
      internalPort: input.internal_port,
      envVars: input.env_vars,
      command: input.command,
      cpuLimit: input.cpu_limit,
      memoryLimit: input.memory_limit,
      gpuEnabled: input.gpu_enabled,
      gitRepoUrl: input.git_repo_url,
      gitBranch: input.git_branch,
      gitProvider: input.git_provider,
      createdBy: principal.userId,
    });
    await recordAppEvent(c.var.db, row.id, "created", `App created from ${row.image}`, { image: row.image });
    // Names only: env var values never reach the audit log.
    await recordAudit(c, {
      orgId: project.orgId,
      action: "app.create",
      targetType: "app",
      targetId: row.id,
      metadata: { name: row.name, slug: row.slug, project_id: project.id, image: row.image, env_keys: row.envKeys },
    });
    return c.json(presentApp(c.env, row), 201);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/apps/{appId}",
    tags,
    summary: "An app, with its container's state",
    request: { params: AppParams },
    responses: { 200: json(z.object({ app: AppSchema, container_state: ContainerState }), "The app"), ...errorResponses },
  }),
  async (c) => {
    const { app } = await loadApp(c, c.req.valid("param").appId, "project:read");
    return c.json({ app: presentApp(c.env, app), container_state: containerState(app) }, 200);
  },
);

router.openapi(
  createRoute({
    method: "put",
    path: "/apps/{appId}",
    tags,
    summary: "Change an app's settings: image, env vars, resources, command, repository",
    request: { params: AppParams, ...jsonBody(UpdateAppInput) },
    responses: { 200: json(AppSchema, "The app as it is now"), ...conflictResponse, ...errorResponses },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { app: before, project } = await loadApp(c, c.req.valid("param").appId, "deploy");
    await refuseProtoEnvKey(c);
    const { app: after, changed } = await updateApp(c.var.db, c.env, before, {
      name: input.name,
      image: input.image,
      internalPort: input.internal_port,
      envVars: input.env_vars,
      command: input.command,
      cpuLimit: input.cpu_limit,
      memoryLimit: input.memory_limit,
      gpuEnabled: input.gpu_enabled,
      gitRepoUrl: input.git_repo_url,
      gitBranch: input.git_branch,
      gitProvider: input.git_provider,
    });
    // New limits reach the running container at once (docker update), without a restart.
    if (changed.includes("cpu_limit") || changed.includes("memory_limit")) await submitLimitsUpdate(c.env, after);
    if (changed.length) {
      const envKeys = changed.includes("env_vars") ? { env_keys: after.envKeys } : {};
      await recordAppEvent(c.var.db, after.id, "updated", `Settings changed: ${changed.join(", ")}`, { fields: changed, ...envKeys });
      await recordAudit(c, { orgId: project.orgId, action: "app.update", targetType: "app", targetId: after.id, metadata: { fields: changed, ...envKeys } });
    }
    return c.json(presentApp(c.env, after), 200);
  },
);

router.openapi(
  createRoute({
    method: "delete",
    path: "/apps/{appId}",
    tags,
    summary: "Delete an app: its container and route are removed from its host; its slug is free at once",
    request: { params: AppParams },
    responses: { 200: json(Ok, "Deleted"), ...errorResponses },
  }),
  async (c) => {
    const { app, project } = await loadApp(c, c.req.valid("param").appId, "deploy");
    await softDeleteApp(c.var.db, app.id);
    // Its container and route go too, as a job on its host.
    await submitAppAction(c.env, app, "app.remove");
    await recordAudit(c, { orgId: project.orgId, action: "app.delete", targetType: "app", targetId: app.id, metadata: { name: app.name, slug: app.slug } });
    return c.json({ ok: true }, 200);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/apps/{appId}/deployments",
    tags,
    summary: "The app's deployment history, newest first",
    request: { params: AppParams, query: LimitQuery },
    responses: { 200: json(z.array(DeploymentSchema), "Deployments"), ...errorResponses },
  }),
  async (c) => {
    const { app } = await loadApp(c, c.req.valid("param").appId, "project:read");
    const rows = await listAppDeployments(c.var.db, app.id, c.req.valid("query").limit);
    return c.json(rows.map(presentDeployment), 200);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/apps/{appId}/events",
    tags,
    summary: "The app's events (settings changes, deploys, errors, status changes), newest first",
    request: { params: AppParams, query: LimitQuery },
    responses: { 200: json(z.array(AppEventSchema), "Events"), ...errorResponses },
  }),
  async (c) => {
    const { app } = await loadApp(c, c.req.valid("param").appId, "project:read");
    const rows = await listAppEvents(c.var.db, app.id, c.req.valid("query").limit);
    return c.json(rows.map(presentAppEvent), 200);
  },
);

export default router;
