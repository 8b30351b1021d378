/**
 * Dockup's apps: `/projects/{projectId}/apps` and `/apps/{appId}` (id or slug), with
 * their deployment history and event feed. Env var values are write-only: every
 * response shows their names with masked values.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createRouter } from "../../app";
import { authorizeLoadedProject, authorizeProject, requirePrincipal } from "../../auth/access";
import type { Permission } from "../../auth/permissions";
import type { AppEnv } from "../../env";
import { ApiError, badRequest, conflictResponse, errorResponses, notFound, errorResponsesFor } from "../../lib/errors";
import {
  createApp,
  dockupStatus,
  findApp,
  listAppDeployments,
  listAppEvents,
  listProjectApps,
  presentApp,
  presentAppEvent,
  presentDeployment,
  appEventOf,
  softDeleteApp,
  updateApp,
  type AppRow,
} from "../../services/apps";
import { sleepingAppsOf, sleepOf } from "../../services/app-sleep";
import { audited } from "../../services/audit";
import { submitAppAction, submitLimitsUpdate } from "../../services/deployments";
import { newWebhookSecret } from "../../services/git-builds";
import { gitAccountFor } from "../../services/github";
import { findProject } from "../../services/projects";
import { json, jsonBody, Ok } from "../schemas";
import { AppEventSchema, AppParams, AppSchema, appSettings, ContainerState, CreateAppInput, DeploymentSchema, LimitQuery, ProjectAppsParams, UpdateAppInput } from "./schema";

export { AppParams, AppSchema, DeploymentSchema } from "./schema";

const router = createRouter();
const tags = ["Apps"];

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
    const [rows, sleeping] = await Promise.all([listProjectApps(c.var.db, project.id), sleepingAppsOf(c.var.db, project.id)]);
    return c.json(rows.map((r) => presentApp(c.env, r, sleeping.has(r.id))), 200);
  },
);

/**
 * The linked GitHub account whose token clones `repoUrl`: the caller's own, signed in or with a
 * personal key. An org key stands for the org, not a person, so it lends no one's account.
 */
async function lentGitAccount(c: Context<AppEnv>, repoUrl: string | null | undefined): Promise<string | null> {
  const p = c.var.principal;
  if (!p || (p.type === "api_key" && p.key.kind === "org")) return null;
  return gitAccountFor(c.var.db, c.env, p.userId, repoUrl);
}

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
    // An app with a repository gets its push webhook's secret now, shown in this answer only.
    const webhook = input.git_repo_url ? await newWebhookSecret(c.env) : null;
    const source = input.git_repo_url ? `${input.git_repo_url} (branch ${input.git_branch ?? "main"})` : input.image;
    const row = await createApp(
      c.var.db,
      c.env,
      {
        ...appSettings(input),
        name: input.name,
        image: input.image,
        slug: input.slug,
        projectId: project.id,
        orgId: project.orgId,
        createdBy: principal.userId,
        gitWebhookSecretCiphertext: webhook?.ciphertext,
        gitAccountId: await lentGitAccount(c, input.git_repo_url),
      },
      (created) => [
        ...appEventOf(c.var.db, "created", `App created from ${source}`, input.image ? { image: input.image } : { git_repo_url: input.git_repo_url })(created.id),
        // Names only: env var values never reach the audit log.
        ...audited(c, () => ({
          orgId: project.orgId,
          action: "app.create",
          targetType: "app",
          targetId: created.id,
          metadata: { name: input.name, slug: created.slug, project_id: project.id, image: input.image ?? null, git_repo_url: input.git_repo_url ?? null, env_keys: created.envKeys },
        }))(created.id),
      ],
    );
    return c.json({ ...presentApp(c.env, row, false), ...(webhook ? { git_webhook_secret: webhook.secret } : {}) }, 201);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/apps/{appId}",
    tags,
    summary: "An app, with its container's state",
    request: { params: AppParams },
    responses: { 200: json(z.object({ app: AppSchema, container_state: ContainerState }), "The app"), ...errorResponsesFor("app_not_found") },
  }),
  async (c) => {
    const { app } = await loadApp(c, c.req.valid("param").appId, "project:read");
    const sleep = await sleepOf(c.var.db, app.id);
    return c.json({ app: presentApp(c.env, app, sleep?.sleeping ?? false), container_state: containerState(app) }, 200);
  },
);

router.openapi(
  createRoute({
    method: "put",
    path: "/apps/{appId}",
    tags,
    summary: "Change an app's settings: image, env vars, resources, command, repository",
    request: { params: AppParams, ...jsonBody(UpdateAppInput) },
    responses: { 200: json(AppSchema, "The app as it is now"), ...conflictResponse, ...errorResponsesFor("app_not_found") },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { app: before, project } = await loadApp(c, c.req.valid("param").appId, "deploy");
    await refuseProtoEnvKey(c);
    // A repository set where there was none brings a webhook secret (shown in this answer only); taking it away drops the secret.
    const webhook = input.git_repo_url && !before.gitWebhookSecretCiphertext ? await newWebhookSecret(c.env) : null;
    const secretChange = webhook ? { gitWebhookSecretCiphertext: webhook.ciphertext } : input.git_repo_url === null ? { gitWebhookSecretCiphertext: null } : {};
    // The app's event and the audit row are written with the change, naming the fields (env var names, never values).
    // Whoever sets the repository lends their linked GitHub account for its clones (none: it is cloned without one).
    const account = input.git_repo_url !== undefined ? { gitAccountId: await lentGitAccount(c, input.git_repo_url) } : {};
    const { app: after, changed } = await updateApp(c.var.db, c.env, before, { ...appSettings(input), ...secretChange, ...account }, (change) => {
      const data = { fields: change.changed, ...(change.changed.includes("env_vars") ? { env_keys: change.envKeys } : {}) };
      return [
        ...appEventOf(c.var.db, "updated", `Settings changed: ${change.changed.join(", ")}`, data)(change.id),
        ...audited(c, () => ({ orgId: project.orgId, action: "app.update", targetType: "app", targetId: change.id, metadata: data }))(change.id),
      ];
    });
    // New limits reach the running container at once (docker update), without a restart.
    if (changed.includes("cpu_limit") || changed.includes("memory_limit")) await submitLimitsUpdate(c.env, after);
    const sleep = await sleepOf(c.var.db, after.id);
    return c.json({ ...presentApp(c.env, after, sleep?.sleeping ?? false), ...(webhook && changed.includes("git_webhook_secret") ? { git_webhook_secret: webhook.secret } : {}) }, 200);
  },
);

router.openapi(
  createRoute({
    method: "delete",
    path: "/apps/{appId}",
    tags,
    summary: "Delete an app: its container and route are removed from its host; its slug is free at once",
    request: { params: AppParams },
    responses: { 200: json(Ok, "Deleted"), ...errorResponsesFor("app_not_found") },
  }),
  async (c) => {
    const { app, project } = await loadApp(c, c.req.valid("param").appId, "deploy");
    await softDeleteApp(c.var.db, app.id, audited(c, () => ({ orgId: project.orgId, action: "app.delete", targetType: "app", targetId: app.id, metadata: { name: app.name, slug: app.slug } })));
    // Its container and route go too, as a job on its host.
    await submitAppAction(c.env, app, "app.remove");
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
    responses: { 200: json(z.array(DeploymentSchema), "Deployments"), ...errorResponsesFor("app_not_found") },
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
    responses: { 200: json(z.array(AppEventSchema), "Events"), ...errorResponsesFor("app_not_found") },
  }),
  async (c) => {
    const { app } = await loadApp(c, c.req.valid("param").appId, "project:read");
    const rows = await listAppEvents(c.var.db, app.id, c.req.valid("query").limit);
    return c.json(rows.map(presentAppEvent), 200);
  },
);

export default router;
