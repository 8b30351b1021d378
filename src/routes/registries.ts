/**
 * Dockup's private registries: `GET/POST /registries`, plus `DELETE
 * /registries/{id}`. Registries belong to an org (`org` in the body or query,
 * else the key's org or the caller's personal org). Passwords are write-only.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../app";
import { authorizeOrg, requirePrincipal } from "../auth/access";
import { errorResponses, notFound, errorResponsesFor } from "../lib/errors";
import { audited } from "../services/audit";
import { findOrgById } from "../services/orgs";
import { createRegistry, deleteRegistry, findRegistry, listRegistries, presentRegistry } from "../services/registries";
import { targetOrgSlug } from "./projects";
import { json, jsonBody, name, Ok, slugParam } from "./schemas";

const router = createRouter();
const tags = ["Registries"];

const Registry = z
  .object({
    id: z.string().openapi({ example: "reg_8x2k9d0a1b2c3d4e" }),
    name: z.string(),
    url: z.string().openapi({ description: "Registry host as image references name it, e.g. ghcr.io or 127.0.0.1:5001" }),
    username: z.string().nullable(),
    has_password: z.boolean(),
    org_id: z.string(),
    created_at: z.string(),
  })
  .openapi("Registry");

const orgQuery = z.string().max(100).optional().openapi({ description: "Org slug or id; defaults to the key's org or your personal org" });

router.openapi(
  createRoute({
    method: "get",
    path: "/registries",
    tags,
    summary: "The org's private registries (passwords never shown)",
    request: { query: z.object({ org: orgQuery.openapi({ param: { name: "org", in: "query" } }) }) },
    responses: { 200: json(z.array(Registry), "Registries"), ...errorResponses },
  }),
  async (c) => {
    const { org } = await authorizeOrg(c, await targetOrgSlug(c, c.req.valid("query").org), "org:read");
    return c.json((await listRegistries(c.var.db, [org.id])).map(presentRegistry), 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/registries",
    tags,
    summary: "Add a private registry; deploys of its images pull with these credentials",
    request: jsonBody(
      z.object({
        name: name(100),
        url: z.string().trim().min(1).max(255).regex(/^([a-z]+:\/\/)?[a-z0-9.-]+(:\d{1,5})?(\/[\w.\/-]*)?$/i, "a registry host, e.g. ghcr.io or 127.0.0.1:5001"),
        username: z.string().min(1).max(255).optional(),
        password: z.string().min(1).max(4096).optional(),
        org: orgQuery,
      }),
    ),
    responses: { 201: json(Registry, "Added"), ...errorResponsesFor("registry_exists") },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { org, principal } = await authorizeOrg(c, await targetOrgSlug(c, input.org), "org:update");
    const row = await createRegistry(
      c.var.db,
      c.env,
      { orgId: org.id, name: input.name, url: input.url, username: input.username, password: input.password, createdBy: principal.userId },
      audited(c, (created: { id: string; url: string }) => ({ orgId: org.id, action: "registry.create", targetType: "registry", targetId: created.id, metadata: { url: created.url, username: input.username ?? null } })),
    );
    return c.json(presentRegistry(row), 201);
  },
);

router.openapi(
  createRoute({
    method: "delete",
    path: "/registries/{id}",
    tags,
    summary: "Remove a registry's credentials",
    request: { params: z.object({ id: slugParam("id") }) },
    responses: { 200: json(Ok, "Removed"), ...errorResponsesFor("registry_not_found") },
  }),
  async (c) => {
    requirePrincipal(c);
    const row = await findRegistry(c.var.db, c.req.valid("param").id);
    const owner = row ? await findOrgById(c.var.db, row.orgId) : null;
    if (!row || !owner) throw notFound("Registry", "registry_not_found");
    // Not a member of its org: not found, never forbidden.
    const { org } = await authorizeOrg(c, owner.slug, "org:update").catch((err) => {
      if (err?.status === 404) throw notFound("Registry", "registry_not_found");
      throw err;
    });
    await deleteRegistry(c.var.db, row.id, audited(c, () => ({ orgId: org.id, action: "registry.delete", targetType: "registry", targetId: row.id, metadata: { url: row.url } })));
    return c.json({ ok: true }, 200);
  },
);

export default router;
