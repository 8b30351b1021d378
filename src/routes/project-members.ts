/** Suble's project members: grants on one project on top of org roles. */
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../app";
import { authorizeProject } from "../auth/access";
import type { Role } from "../db/schema";
import { enforceAttemptLimit } from "../auth/rate-limits";
import { conflictResponse, errorResponses, notFound } from "../lib/errors";
import { audited } from "../services/audit";
import { inviteToProject, updatePendingProjectInvitation } from "../services/invitations";
import { createMailer } from "../services/mail";
import { findOrgById } from "../services/orgs";
import { assertNotProjectMember, listProjectMembers, removeProjectMember, updateProjectMember } from "../services/projects";
import { email, json, jsonBody, slugParam } from "./schemas";
import { ProjectParams } from "./projects";

const router = createRouter();

const GRANT_ROLES = ["admin", "developer", "viewer"] as const;

/**
 * A grant's role as the request names it: Berth's roles, or Suble's `member` (Suble
 * documents one member level; in Berth that is a developer: reads, creates and deploys,
 * but does not manage members or delete the project).
 */
const GrantRole = z
  .enum([...GRANT_ROLES, "member"])
  .transform((r) => (r === "member" ? "developer" : r))
  .openapi({ description: "admin, developer or viewer; Suble's `member` is a developer." });

const ProjectMember = z
  .object({
    userId: z.string().nullable().openapi({ description: "Null while the invitation is pending." }),
    email: z.string(),
    fullname: z.string(),
    role: z.enum(["owner", "member"]).openapi({ description: "Suble's role names: `owner` for the org's owners, `member` for everyone else." }),
    berthRole: z.enum(["owner", "admin", "developer", "viewer"]).openapi({ description: "What the person may do here, in Berth's roles." }),
    source: z.enum(["org", "project"]).openapi({ description: "Seated through the org, or granted on this project alone." }),
    status: z.enum(["accepted", "pending"]).openapi({ description: "`pending`: invited, not yet accepted." }),
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
    const members = await listProjectMembers(c.var.db, project);
    return c.json(
      members.map((m) => ({ ...m, role: m.role === "owner" ? ("owner" as const) : ("member" as const), berthRole: m.role as Role })),
      200,
    );
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/projects/{project}/members",
    tags: ["Projects"],
    summary: "Invite someone to this project by email (default role developer)",
    description:
      "Mails the address an invitation to accept (POST /invitations/accept); nobody is seated without consent. " +
      "The answer is 204 whether or not the address has an account. 409 already_member if they already reach the project.",
    request: { params: ProjectParams, ...jsonBody(z.object({ email, role: GrantRole.optional() })) },
    responses: { 204: { description: "Invited" }, ...conflictResponse, ...errorResponses },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { project, principal } = await authorizeProject(c, c.req.valid("param").project, "project:members");
    await assertNotProjectMember(c.var.db, project, input.email);
    // It mails an address the caller chose: limited like every other route that sends mail.
    await enforceAttemptLimit(c, "mail", { email: input.email });
    const org = await findOrgById(c.var.db, project.orgId);
    if (!org) throw notFound("Project", "project_not_found");
    const role = input.role ?? "developer";
    await inviteToProject(
      c.var.db,
      createMailer(c.env, c.var.db),
      { org, project, email: input.email, role, invitedBy: principal.userId, baseUrl: c.env.PUBLIC_URL || new URL(c.req.url).origin },
      audited(c, (id) => ({ orgId: project.orgId, action: "project.member_invite", targetType: "invitation", targetId: id, metadata: { projectId: project.id, role } })),
    );
    return c.body(null, 204);
  },
);

router.openapi(
  createRoute({
    method: "patch",
    path: "/projects/{project}/members/{email}",
    tags: ["Projects"],
    summary: "Change a project grant's role",
    description: "Without a body (as Suble's clients send it) nothing changes: 204 when the member exists.",
    request: {
      params: MemberParams,
      body: { content: { "application/json": { schema: z.object({ role: GrantRole }) } }, required: false },
    },
    responses: { 204: { description: "Changed" }, ...errorResponses },
  }),
  async (c) => {
    const { project: id, email: address } = c.req.valid("param");
    const role = c.req.valid("json")?.role;
    const { project } = await authorizeProject(c, id, "project:members");
    if (!role) {
      if (!(await listProjectMembers(c.var.db, project)).some((m) => m.email === address.toLowerCase())) throw notFound("Project member");
      return c.body(null, 204);
    }
    const audit = audited(c, () => ({ orgId: project.orgId, action: "project.member_update", targetType: "project", targetId: project.id, metadata: { email: address, role } }));
    const changed = (await updateProjectMember(c.var.db, project, address, role, audit)) || (await updatePendingProjectInvitation(c.var.db, project.id, address, { role }, audit));
    if (!changed) throw notFound("Project member");
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
    const audit = audited(c, () => ({ orgId: project.orgId, action: "project.member_remove", targetType: "project", targetId: project.id, metadata: { email: address } }));
    const removed = (await removeProjectMember(c.var.db, project, address, audit)) || (await updatePendingProjectInvitation(c.var.db, project.id, address, "revoke", audit));
    if (!removed) throw notFound("Project member");
    return c.body(null, 204);
  },
);

export default router;
