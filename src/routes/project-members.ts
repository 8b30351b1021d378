/** Suble's project members: grants on one project on top of org roles. */
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../app";
import { authorizeProject } from "../auth/access";
import { conflictResponse, errorResponses } from "../lib/errors";
import { recordAudit } from "../services/audit";
import { addProjectMember, listProjectMembers, removeProjectMember, updateProjectMember } from "../services/projects";
import { email, json, jsonBody, slugParam } from "./schemas";
import { ProjectParams } from "./projects";

const router = createRouter();

const GRANT_ROLES = ["admin", "developer", "viewer"] as const;

const ProjectMember = z
  .object({
    userId: z.string(),
    email: z.string(),
    fullname: z.string(),
    role: z.string(),
    source: z.enum(["org", "project"]).openapi({ description: "Seated through the org, or granted on this project alone." }),
    status: z.literal("accepted"),
  })
  .openapi("ProjectMember");

const MemberParams = ProjectParams.extend({ email: slugParam("email").openapi({ description: "Member email, URL-encoded" }) });

router.openapi(
  createRoute({
    method: "get",
    path: "/projects/{project}/members",
    tags: ["Projects"],
    summary: "Everyone who can reach the project, and through what",
    request: { params: ProjectParams },
    responses: { 200: json(z.array(ProjectMember), "Members"), ...errorResponses },
  }),
  async (c) => {
    const { project } = await authorizeProject(c, c.req.valid("param").project, "project:read");
    return c.json(await listProjectMembers(c.var.db, project), 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/projects/{project}/members",
    tags: ["Projects"],
    summary: "Grant an existing user access to this project (default role developer)",
    request: { params: ProjectParams, ...jsonBody(z.object({ email, role: z.enum(GRANT_ROLES).optional() })) },
    responses: { 204: { description: "Granted" }, ...conflictResponse, ...errorResponses },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { project } = await authorizeProject(c, c.req.valid("param").project, "project:members");
    const target = await addProjectMember(c.var.db, project, input.email, input.role ?? "developer");
    await recordAudit(c, { orgId: project.orgId, action: "project.member_add", targetType: "user", targetId: target.id, metadata: { projectId: project.id, role: input.role ?? "developer" } });
    return c.body(null, 204);
  },
);

router.openapi(
  createRoute({
    method: "patch",
    path: "/projects/{project}/members/{email}",
    tags: ["Projects"],
    summary: "Change a project grant's role",
    request: { params: MemberParams, ...jsonBody(z.object({ role: z.enum(GRANT_ROLES) })) },
    responses: { 204: { description: "Changed" }, ...errorResponses },
  }),
  async (c) => {
    const { project: id, email: address } = c.req.valid("param");
    const { role } = c.req.valid("json");
    const { project } = await authorizeProject(c, id, "project:members");
    await updateProjectMember(c.var.db, project, address, role);
    await recordAudit(c, { orgId: project.orgId, action: "project.member_update", targetType: "project", targetId: project.id, metadata: { email: address, role } });
    return c.body(null, 204);
  },
);

router.openapi(
  createRoute({
    method: "delete",
    path: "/projects/{project}/members/{email}",
    tags: ["Projects"],
    summary: "Remove a project grant",
    request: { params: MemberParams },
    responses: { 204: { description: "Removed" }, ...errorResponses },
  }),
  async (c) => {
    const { project: id, email: address } = c.req.valid("param");
    const { project } = await authorizeProject(c, id, "project:members");
    await removeProjectMember(c.var.db, project, address);
    await recordAudit(c, { orgId: project.orgId, action: "project.member_remove", targetType: "project", targetId: project.id, metadata: { email: address } });
    return c.body(null, 204);
  },
);

export default router;
