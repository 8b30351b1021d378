/** backlex's org-scoped projects: `/org/{slug}/projects/{projectSlug}`, with pause and resume. */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createRouter } from "../../app";
import { authorizeLoadedProject, authorizeOrg, requirePrincipal } from "../../auth/access";
import type { Permission } from "../../auth/permissions";
import type { AppEnv } from "../../env";
import { conflictResponse, errorResponses, errorResponsesFor, notFound } from "../../lib/errors";
import { audited } from "../../services/audit";
import { findOrgBySlug } from "../../services/orgs";
import {
  createProject,
  findProjectBySlug,
  listOrgProjects,
  listUserProjects,
  presentProject,
  softDeleteProject,
  updateProject,
} from "../../services/projects";
import { json, jsonBody, Ok, Project, slugParam } from "../schemas";
import { CreateOrgProjectInput, newProjectSettings, projectPatch, UpdateOrgProjectInput } from "./schema";

const router = createRouter();

const OrgParams = z.object({ slug: slugParam("slug") });
const ProjectParams = OrgParams.extend({ projectSlug: slugParam("projectSlug") });

/** A project addressed by org and project slug; project grants and project-bound keys reach it too. */
async function authorizeOrgProject(c: Context<AppEnv>, slug: string, projectSlug: string, permission: Permission) {
  const p = requirePrincipal(c);
  const o = await findOrgBySlug(c.var.db, slug);
  const project = o ? await findProjectBySlug(c.var.db, o.id, projectSlug) : undefined;
  if (!o || !project) throw notFound("Project", "project_not_found");
  return { org: o, ...(await authorizeLoadedProject(c, p, project, permission)) };
}

router.openapi(
  createRoute({
    method: "get",
    path: "/org/{slug}/projects",
    tags: ["Projects"],
    summary: "Projects of an org visible to the caller",
    request: { params: OrgParams },
    responses: { 200: json(z.object({ projects: z.array(Project) }), "Projects"), ...errorResponses },
  }),
  async (c) => {
    const { org, role, principal } = await authorizeOrg(c, c.req.valid("param").slug, "project:read");
    const projects =
      principal.type === "api_key" && principal.key.kind === "org"
        ? (await listOrgProjects(c.var.db, org.id)).map((p) => presentProject(p, { role, orgSlug: org.slug }))
        : (await listUserProjects(c.var.db, principal.userId, org.id)).map((r) => presentProject(r.project, { role: r.role, orgSlug: org.slug }));
    return c.json({ projects }, 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/org/{slug}/projects",
    tags: ["Projects"],
    summary: "Create a project in the org",
    request: {
      params: OrgParams,
      ...jsonBody(CreateOrgProjectInput),
    },
    responses: { 201: json(z.object({ project: Project }), "Created"), ...conflictResponse, ...errorResponses },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { org, role, principal } = await authorizeOrg(c, c.req.valid("param").slug, "project:create");
    const created = await createProject(
      c.var.db,
      newProjectSettings(input, org, principal.userId),
      audited(c, (id) => ({ orgId: org.id, action: "project.create", targetType: "project", targetId: id, metadata: { name: input.name } })),
    );
    return c.json({ project: presentProject(created, { role, orgSlug: org.slug }) }, 201);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/org/{slug}/projects/{projectSlug}",
    tags: ["Projects"],
    summary: "A project of the org",
    request: { params: ProjectParams },
    responses: { 200: json(z.object({ project: Project, latestTemplateVersion: z.string().nullable() }), "The project"), ...errorResponses },
  }),
  async (c) => {
    const { slug, projectSlug } = c.req.valid("param");
    const { org, project, role } = await authorizeOrgProject(c, slug, projectSlug, "project:read");
    // Berth has no project templates, so there is never a newer template version to offer.
    return c.json({ project: presentProject(project, { role, orgSlug: org.slug }), latestTemplateVersion: null }, 200);
  },
);

router.openapi(
  createRoute({
    method: "patch",
    path: "/org/{slug}/projects/{projectSlug}",
    tags: ["Projects"],
    summary: "Rename a project or change its environment",
    request: {
      params: ProjectParams,
      ...jsonBody(UpdateOrgProjectInput),
    },
    responses: { 200: json(z.object({ project: Project }), "Updated"), ...errorResponses },
  }),
  async (c) => {
    const { slug, projectSlug } = c.req.valid("param");
    const patch = projectPatch(c.req.valid("json"));
    const { org, project, role } = await authorizeOrgProject(c, slug, projectSlug, "project:update");
    const audit = audited(c, () => ({ orgId: org.id, action: "project.update", targetType: "project", targetId: project.id, metadata: { fields: Object.keys(patch) } }));
    const updated = Object.keys(patch).length ? await updateProject(c.var.db, project.id, patch, audit) : project;
    return c.json({ project: presentProject(updated, { role, orgSlug: org.slug }) }, 200);
  },
);

router.openapi(
  createRoute({
    method: "delete",
    path: "/org/{slug}/projects/{projectSlug}",
    tags: ["Projects"],
    summary: "Soft-delete a project (owner, admin); its slug becomes free",
    description: "Refused with `PROJECT_NOT_EMPTY` while the project has instances that are not deleted.",
    request: { params: ProjectParams },
    responses: { 200: json(Ok, "Deleted"), ...errorResponsesFor("project_not_empty") },
  }),
  async (c) => {
    const { slug, projectSlug } = c.req.valid("param");
    const { org, project } = await authorizeOrgProject(c, slug, projectSlug, "project:delete");
    await softDeleteProject(c.var.db, project.id, audited(c, () => ({ orgId: org.id, action: "project.delete", targetType: "project", targetId: project.id, metadata: { slug: project.slug } })));
    return c.json({ ok: true }, 200);
  },
);

for (const [action, status] of [
  ["pause", "paused"],
  ["resume", "active"],
] as const) {
  router.openapi(
    createRoute({
      method: "post",
      path: `/org/{slug}/projects/{projectSlug}/${action}`,
      tags: ["Projects"],
      summary: `${action === "pause" ? "Pause" : "Resume"} a project (owner, admin); repeating it changes nothing`,
      request: { params: ProjectParams },
      responses: { 200: json(z.object({ project: Project }), "The project"), ...errorResponses },
    }),
    async (c) => {
      const { slug, projectSlug } = c.req.valid("param");
      const { org, project, role } = await authorizeOrgProject(c, slug, projectSlug, "project:lifecycle");
      const audit = audited(c, () => ({ orgId: org.id, action: `project.${action}`, targetType: "project", targetId: project.id }));
      // Pausing a paused project changes nothing and records nothing.
      const updated = project.status === status ? project : await updateProject(c.var.db, project.id, { status }, audit);
      return c.json({ project: presentProject(updated, { role, orgSlug: org.slug }) }, 200);
    },
  );
}

export default router;
