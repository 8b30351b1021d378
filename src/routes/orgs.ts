/** backlex orgs: list, create, overview, settings, delete. */
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../app";
import { authorizeOrg, requireUser } from "../auth/access";
import { errorResponses, errorResponsesFor } from "../lib/errors";
import { audited } from "../services/audit";
import { createOrg, deleteOrg, listUserOrgs, orgProjectCount, presentOrg, updateOrg } from "../services/orgs";
import { listOrgProjects, listUserProjects, presentProject } from "../services/projects";
import { json, jsonBody, name, Ok, Org, OrgSlugParams, Project, REGIONS } from "./schemas";

const router = createRouter();


router.openapi(
  createRoute({
    method: "get",
    path: "/orgs",
    tags: ["Orgs"],
    summary: "The caller's organizations, with their role in each",
    responses: { 200: json(z.object({ orgs: z.array(Org.extend({ role: z.string() })) }), "Organizations"), ...errorResponses },
  }),
  async (c) => {
    const p = requireUser(c, "account:read");
    const rows = await listUserOrgs(c.var.db, p.userId);
    return c.json({ orgs: rows.map((r) => ({ ...presentOrg(r.org), role: r.role })) }, 200);
  },
);

/** What an org is made of, as created and as updated: the two shapes below derive from it. */
const OrgFields = z.object({ name: name(80, 2), defaultRegion: z.enum(REGIONS) });

const CreateOrgInput = OrgFields.partial({ defaultRegion: true })
  .extend({
    residency: z.enum(["eu", "tr", "global"]).optional(),
    purpose: z.string().max(40).optional(),
    teamSize: z.string().max(40).optional(),
  })
  .openapi("CreateOrgInput");

router.openapi(
  createRoute({
    method: "post",
    path: "/org",
    tags: ["Orgs"],
    summary: "Create an organization; the caller becomes its owner",
    request: jsonBody(CreateOrgInput),
    responses: { 201: json(z.object({ org: Org }), "Created"), ...errorResponses },
  }),
  async (c) => {
    const p = requireUser(c, "org:create");
    const input = c.req.valid("json");
    const created = await createOrg(
      c.var.db,
      {
        name: input.name,
        ownerId: p.userId,
        residency: input.residency,
        defaultRegion: input.defaultRegion,
      },
      audited(c, (id) => ({ orgId: id, action: "org.create", targetType: "org", targetId: id, metadata: { name: input.name } })),
    );
    return c.json({ org: presentOrg(created) }, 201);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/org/{slug}/overview",
    tags: ["Orgs"],
    summary: "Org record, the caller's role, and its projects",
    request: { params: OrgSlugParams },
    responses: {
      200: json(z.object({ org: Org, role: z.string(), projectCount: z.number(), projects: z.array(Project) }), "Overview"),
      ...errorResponses,
    },
  }),
  async (c) => {
    const { org, role, principal } = await authorizeOrg(c, c.req.valid("param").slug, "org:read");
    const projects =
      principal.type === "api_key" && principal.key.kind === "org"
        ? (await listOrgProjects(c.var.db, org.id)).map((p) => presentProject(p, { role }))
        : (await listUserProjects(c.var.db, principal.userId, org.id)).map((r) => presentProject(r.project, { role: r.role }));
    return c.json({ org: presentOrg(org), role, projectCount: await orgProjectCount(c.var.db, org.id), projects }, 200);
  },
);

const UpdateOrgInput = OrgFields.partial()
  .extend({
    ipAllowlist: z.array(z.string().min(1).max(64)).max(100).optional(),
    webhookUrl: z.url().max(2048).nullable().optional(),
  })
  .openapi("UpdateOrgInput");

router.openapi(
  createRoute({
    method: "patch",
    path: "/org/{slug}",
    tags: ["Orgs"],
    summary: "Update org settings (owner, admin)",
    request: { params: OrgSlugParams, ...jsonBody(UpdateOrgInput) },
    responses: { 200: json(z.object({ org: Org }), "Updated"), ...errorResponses },
  }),
  async (c) => {
    const { org } = await authorizeOrg(c, c.req.valid("param").slug, "org:update");
    const patch = c.req.valid("json");
    const updated = await updateOrg(c.var.db, org.id, patch, audited(c, () => ({ orgId: org.id, action: "org.update", targetType: "org", targetId: org.id, metadata: { fields: Object.keys(patch) } })));
    return c.json({ org: presentOrg(updated) }, 200);
  },
);

router.openapi(
  createRoute({
    method: "delete",
    path: "/org/{slug}",
    tags: ["Orgs"],
    summary: "Delete the organization with its projects and keys (owner)",
    request: { params: OrgSlugParams },
    responses: { 200: json(Ok, "Deleted"), ...errorResponsesFor("personal_org") },
  }),
  async (c) => {
    const { org } = await authorizeOrg(c, c.req.valid("param").slug, "org:delete");
    // The org's own audit trail goes with it; the deletion is kept in the actor's trail.
    await deleteOrg(c.var.db, org, audited(c, () => ({ orgId: null, action: "org.delete", targetType: "org", targetId: org.id, metadata: { slug: org.slug } })));
    return c.json({ ok: true }, 200);
  },
);

export default router;
