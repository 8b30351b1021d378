/**
 * API keys, three ways in: Dockup's personal `dkp_` keys (`/api-keys`),
 * backlex's org `pak_` keys (`/org/{slug}/api-keys`) and Suble's project keys
 * (`/projects/{project}/api-keys`, `pak_` keys bound to one project).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../app";
import { authorizeOrg, authorizeProject, requireUser } from "../auth/access";
import { API_KEY_SCOPES } from "../db/schema";
import { errorResponses, forbidden, notFound, errorResponsesFor } from "../lib/errors";
import { adoptApiKey, createApiKey, listApiKeys, presentApiKey, revokeApiKey } from "../services/api-keys";
import { audited } from "../services/audit";
import { ApiKey, json, jsonBody, name, slugParam } from "./schemas";
import { ProjectParams } from "./projects";

const router = createRouter();

const scope = z.enum(API_KEY_SCOPES);
const expiresInDays = z.number().int().positive().max(3650);
const keyName = name(64);

// ---------------------------------------------------------------- personal (dkp_)

/** Only a signed-in person mints or revokes personal keys; a key cannot make more keys. */
function requireSession(c: Parameters<typeof requireUser>[0]) {
  const p = requireUser(c, "account:update");
  if (p.type !== "user") throw forbidden("API keys cannot manage API keys; sign in");
  return p;
}

router.openapi(
  createRoute({
    method: "get",
    path: "/api-keys",
    tags: ["API keys"],
    summary: "Your personal API keys (prefix only)",
    responses: { 200: json(z.array(ApiKey), "Keys"), ...errorResponses },
  }),
  async (c) => {
    const p = requireUser(c, "account:read");
    const rows = await listApiKeys(c.var.db, { kind: "personal", userId: p.userId });
    return c.json(rows.map((r) => presentApiKey(r)), 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/api-keys",
    tags: ["API keys"],
    summary: "Create a personal `dkp_` key; the secret is shown once",
    request: {
      body: {
        content: { "application/json": { schema: z.object({ name: keyName.default("default"), scope: scope.optional(), expiresInDays: expiresInDays.optional() }) } },
        required: false,
      },
    },
    responses: { 201: json(ApiKey, "Created, with `key`"), ...errorResponses },
  }),
  async (c) => {
    const p = requireSession(c);
    const input = c.req.valid("json") ?? {};
    const { row, secret } = await createApiKey(
      c.var.db,
      {
        kind: "personal",
        userId: p.userId,
        name: input.name ?? "default",
        scope: input.scope,
      expiresInDays: input.expiresInDays,
      },
      audited(c, (id) => ({ orgId: null, action: "api_key.create", targetType: "api_key", targetId: id, metadata: { kind: "personal", name: input.name ?? "default", scope: input.scope ?? "full" } })),
    );
    return c.json(presentApiKey(row, secret), 201);
  },
);

router.openapi(
  createRoute({
    method: "delete",
    path: "/api-keys/{id}",
    tags: ["API keys"],
    summary: "Revoke a personal key; it stops working at once",
    request: { params: z.object({ id: slugParam("id") }) },
    responses: { 204: { description: "Revoked" }, ...errorResponsesFor("api_key_not_found") },
  }),
  async (c) => {
    const p = requireSession(c);
    const { id } = c.req.valid("param");
    const audit = audited(c, () => ({ orgId: null, action: "api_key.revoke", targetType: "api_key", targetId: id }));
    if (!(await revokeApiKey(c.var.db, id, { kind: "personal", userId: p.userId }, audit))) throw notFound("API key", "api_key_not_found");
    return c.body(null, 204);
  },
);

// ---------------------------------------------------------------- org (pak_)

const OrgParams = z.object({ slug: slugParam("slug") });

router.openapi(
  createRoute({
    method: "get",
    path: "/org/{slug}/api-keys",
    tags: ["API keys"],
    summary: "The org's live API keys, project-bound ones included (owner, admin)",
    request: { params: OrgParams },
    responses: { 200: json(z.object({ keys: z.array(ApiKey) }), "Keys"), ...errorResponses },
  }),
  async (c) => {
    const { org } = await authorizeOrg(c, c.req.valid("param").slug, "apikey:read");
    const rows = await listApiKeys(c.var.db, { kind: "org", orgId: org.id });
    return c.json({ keys: rows.map((r) => presentApiKey(r)) }, 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/org/{slug}/api-keys",
    tags: ["API keys"],
    summary: "Create an org `pak_` key with a scope; the secret is shown once (owner, admin)",
    request: {
      params: OrgParams,
      ...jsonBody(
        z
          .object({ name: keyName, scope, expiresInDays: expiresInDays.optional(), mcpTools: z.array(z.string().max(80)).max(64).optional() })
          .openapi("ApiKeyInput"),
      ),
    },
    responses: { 201: json(z.object({ key: ApiKey }), "Created, with `key.key`"), ...errorResponses },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { org, principal } = await authorizeOrg(c, c.req.valid("param").slug, "apikey:manage");
    const { row, secret } = await createApiKey(
      c.var.db,
      { kind: "org", userId: principal.userId, orgId: org.id, name: input.name, scope: input.scope, expiresInDays: input.expiresInDays },
      audited(c, (id) => ({ orgId: org.id, action: "api_key.create", targetType: "api_key", targetId: id, metadata: { name: input.name, scope: input.scope ?? "full" } })),
    );
    return c.json({ key: presentApiKey(row, secret) }, 201);
  },
);

router.openapi(
  createRoute({
    method: "delete",
    path: "/org/{slug}/api-keys/{id}",
    tags: ["API keys"],
    summary: "Revoke an org key; it stops working at once (owner, admin)",
    request: { params: OrgParams.extend({ id: slugParam("id") }) },
    responses: { 204: { description: "Revoked" }, ...errorResponsesFor("api_key_not_found") },
  }),
  async (c) => {
    const { slug, id } = c.req.valid("param");
    const { org } = await authorizeOrg(c, slug, "apikey:manage");
    const audit = audited(c, () => ({ orgId: org.id, action: "api_key.revoke", targetType: "api_key", targetId: id }));
    if (!(await revokeApiKey(c.var.db, id, { kind: "org", orgId: org.id }, audit))) throw notFound("API key", "api_key_not_found");
    return c.body(null, 204);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/org/{slug}/api-keys/{id}/adopt",
    tags: ["API keys"],
    summary: "Take an org or project key over, so it keeps working when its maker leaves (owner)",
    description:
      "A key never has more access than the person it answers to has now: when they lose access, so does the key. " +
      "Adopting makes the calling owner that person; the secret does not change.",
    request: { params: OrgParams.extend({ id: slugParam("id") }) },
    responses: { 200: json(z.object({ key: ApiKey }), "Adopted"), ...errorResponses },
  }),
  async (c) => {
    const { slug, id } = c.req.valid("param");
    const { org, principal } = await authorizeOrg(c, slug, "apikey:adopt");
    const row = await adoptApiKey(c.var.db, id, org.id, principal.userId, audited(c, () => ({ orgId: org.id, action: "api_key.adopt", targetType: "api_key", targetId: id })));
    if (!row) throw notFound("API key", "api_key_not_found");
    return c.json({ key: presentApiKey(row) }, 200);
  },
);

// ---------------------------------------------------------------- project-bound (pak_)

const FULL_PERMISSIONS = 0x7fffffff;

router.openapi(
  createRoute({
    method: "get",
    path: "/projects/{project}/api-keys",
    tags: ["API keys"],
    summary: "Live keys bound to this project (owner, admin)",
    request: { params: ProjectParams },
    responses: { 200: json(z.array(ApiKey), "Keys"), ...errorResponses },
  }),
  async (c) => {
    const { project } = await authorizeProject(c, c.req.valid("param").project, "apikey:read");
    const rows = await listApiKeys(c.var.db, { kind: "org", orgId: project.orgId, projectId: project.id });
    return c.json(rows.map((r) => presentApiKey(r)), 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/projects/{project}/api-keys",
    tags: ["API keys"],
    summary: "Create a `pak_` key that reaches this project only; the secret is shown once",
    request: {
      params: ProjectParams,
      ...jsonBody(
        z.object({
          name: keyName,
          permissions: z.number().int().nonnegative().max(FULL_PERMISSIONS).optional().openapi({ description: "Suble's bitmask, kept for its clients." }),
          scope: scope.optional(),
          expiresInDays: expiresInDays.optional(),
        }),
      ),
    },
    responses: { 201: json(ApiKey, "Created, with `key`"), ...errorResponses },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { project, principal } = await authorizeProject(c, c.req.valid("param").project, "apikey:manage");
    const { row, secret } = await createApiKey(
      c.var.db,
      {
        kind: "org",
        userId: principal.userId,
        orgId: project.orgId,
        projectId: project.id,
        name: input.name,
        scope: input.scope,
        permissions: input.permissions ?? FULL_PERMISSIONS,
        expiresInDays: input.expiresInDays,
      },
      audited(c, (id) => ({ orgId: project.orgId, action: "api_key.create", targetType: "api_key", targetId: id, metadata: { name: input.name, scope: input.scope ?? "full", projectId: project.id } })),
    );
    return c.json(presentApiKey(row, secret), 201);
  },
);

router.openapi(
  createRoute({
    method: "delete",
    path: "/projects/{project}/api-keys/{key}",
    tags: ["API keys"],
    summary: "Revoke a project key; it stops working at once",
    request: { params: ProjectParams.extend({ key: slugParam("key") }) },
    responses: { 204: { description: "Revoked" }, ...errorResponsesFor("api_key_not_found") },
  }),
  async (c) => {
    const { project: id, key } = c.req.valid("param");
    const { project } = await authorizeProject(c, id, "apikey:manage");
    const audit = audited(c, () => ({ orgId: project.orgId, action: "api_key.revoke", targetType: "api_key", targetId: key }));
    if (!(await revokeApiKey(c.var.db, key, { kind: "org", orgId: project.orgId, projectId: project.id }, audit))) {
      throw notFound("API key", "api_key_not_found");
    }
    return c.body(null, 204);
  },
);

export default router;
