/** Dockup's and Suble's projects: `/projects` across every org the caller can reach. */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createRouter } from "../../app";
import { authorizeOrg, authorizeProject, requirePrincipal } from "../../auth/access";
import type { AppEnv } from "../../env";
import { conflictResponse, errorResponses, errorResponsesFor, notFound } from "../../lib/errors";
import { audited } from "../../services/audit";
import { findOrgById, listUserOrgs } from "../../services/orgs";
import {
  createProject,
  listOrgProjectsWithMembers,
  listUserProjects,
  presentProject,
  projectCounts,
  softDeleteProject,
  updateProject,
} from "../../services/projects";
import { json, jsonBody, Ok, Project } from "../schemas";
import { CreateProjectInput, newProjectSettings, ProjectParams, projectPatch, UpdateProjectInput } from "./schema";

const router = createRouter();

export { ProjectParams };

router.openapi(
  createRoute({
    method: "get",
    path: "/projects",
    tags: ["Projects"],
    summary: "Every project the caller can reach, with their role in it",
    request: { query: z.object({ org: z.string().max(100).optional().openapi({ description: "Only this org (slug or id)" }) }) },
    responses: { 200: json(z.array(Project), "Projects"), ...errorResponses },
  }),
  async (c) => {
    const p = requirePrincipal(c);
    const orgFilter = c.req.valid("query").org;
    if (p.type === "api_key" && p.key.kind === "org") {
      if (orgFilter) {
        // An org key reaches its own org only; any other org is not found.
        const own = await findOrgById(c.var.db, p.key.orgId!);
        if (!own || (orgFilter !== own.slug && orgFilter !== own.id)) throw notFound("Organization");
      }
      const rows = await listOrgProjectsWithMembers(c.var.db, p.key.orgId!, p.key.projectId);
      return c.json(rows.map((r) => presentProject(r.project, { role: p.key.role ?? undefined, memberCount: Number(r.memberCount), instanceCount: Number(r.instanceCount) })), 200);
    }
    let orgId: string | undefined;
    if (orgFilter) {
      const mine = await listUserOrgs(c.var.db, p.userId);
      orgId = mine.find((m) => m.org.slug === orgFilter || m.org.id === orgFilter)?.org.id;
      if (!orgId) throw notFound("Organization");
    }
    const rows = await listUserProjects(c.var.db, p.userId, orgId);
    return c.json(rows.map((r) => presentProject(r.project, { role: r.role, memberCount: r.memberCount, instanceCount: r.instanceCount })), 200);
  },
);


/** The org a request is about when it names none: named in the body or query, the key's org, or the caller's personal org. */
export async function targetOrgSlug(c: Context<AppEnv>, requested?: string): Promise<string> {
  const p = requirePrincipal(c);
  if (p.type === "api_key" && p.key.kind === "org") {
    const o = await findOrgById(c.var.db, p.key.orgId!);
    if (!o) throw notFound("Organization");
    // The key's own org may be named by slug or id; any other name is looked up (and not found).
    return !requested || requested === o.id ? o.slug : requested;
  }
  const mine = await listUserOrgs(c.var.db, p.userId);
  const chosen = requested ? mine.find((m) => m.org.slug === requested || m.org.id === requested) : mine.find((m) => m.org.personal) ?? mine[0];
  if (!chosen) throw notFound("Organization");
  return chosen.org.slug;
}

router.openapi(
  createRoute({
    method: "post",
    path: "/projects",
    tags: ["Projects"],
    summary: "Create a project",
    request: jsonBody(CreateProjectInput),
    responses: { 201: json(Project, "Created"), ...conflictResponse, ...errorResponses },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { org, role, principal } = await authorizeOrg(c, await targetOrgSlug(c, input.org), "project:create");
    const created = await createProject(
      c.var.db,
      newProjectSettings(input, org, principal.userId),
      audited(c, (id) => ({ orgId: org.id, action: "project.create", targetType: "project", targetId: id, metadata: { name: input.name } })),
    );
    return c.json(presentProject(created, { role, ...(await projectCounts(c.var.db, created)), orgSlug: org.slug }), 201);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/projects/{project}",
    tags: ["Projects"],
    summary: "A project, with the caller's role and its member count",
    request: { params: ProjectParams },
    responses: { 200: json(Project, "The project"), ...errorResponses },
  }),
  async (c) => {
    const { project, role } = await authorizeProject(c, c.req.valid("param").project, "project:read");
    return c.json(presentProject(project, { role, ...(await projectCounts(c.var.db, project)) }), 200);
  },
);

router.openapi(
  createRoute({
    method: "patch",
    path: "/projects/{project}",
    tags: ["Projects"],
    summary: "Rename a project or change its environment",
    request: {
      params: ProjectParams,
      ...jsonBody(
        UpdateProjectInput,
      ),
    },
    responses: { 200: json(Project, "Updated"), ...errorResponses },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { project, role } = await authorizeProject(c, c.req.valid("param").project, "project:update");
    const patch = projectPatch(input);
    const audit = audited(c, () => ({ orgId: project.orgId, action: "project.update", targetType: "project", targetId: project.id, metadata: { fields: Object.keys(patch) } }));
    const updated = Object.keys(patch).length ? await updateProject(c.var.db, project.id, patch, audit) : project;
    return c.json(presentProject(updated, { role, ...(await projectCounts(c.var.db, updated)) }), 200);
  },
);

router.openapi(
  createRoute({
    method: "delete",
    path: "/projects/{project}",
    tags: ["Projects"],
    summary: "Delete a project (soft delete; owner, admin)",
    description: "Refused with `project_not_empty` while the project has instances that are not deleted.",
    request: { params: ProjectParams },
    responses: { 200: json(Ok, "Deleted"), ...errorResponsesFor("project_not_empty") },
  }),
  async (c) => {
    const { project } = await authorizeProject(c, c.req.valid("param").project, "project:delete");
    await softDeleteProject(c.var.db, project.id, audited(c, () => ({ orgId: project.orgId, action: "project.delete", targetType: "project", targetId: project.id, metadata: { slug: project.slug } })));
    return c.json({ ok: true }, 200);
  },
);

export default router;
