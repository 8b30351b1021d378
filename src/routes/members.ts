/** backlex org members and invitations. */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createRouter } from "../app";
import { authorizeOrg, requireSignedIn, requireUser } from "../auth/access";
import { outranks } from "../auth/permissions";
import { ROLES, type Role } from "../db/schema";
import type { AppEnv } from "../env";
import { conflictResponse, errorResponses, forbidden, notFound } from "../lib/errors";
import { audited } from "../services/audit";
import {
  acceptInvitation,
  createInvitation,
  findPendingInvitation,
  listPendingInvitations,
  resendInvitation,
  revokeInvitation,
  type InvitationRow,
} from "../services/invitations";
import { createMailer } from "../services/mail";
import { changeMemberRole, findMember, findOrgById, listMembers, membershipRole, removeMember } from "../services/orgs";
import { findUser } from "../services/users";
import { email, json, jsonBody, Ok, slugParam } from "./schemas";

const router = createRouter();

const Member = z
  .object({
    id: z.string().openapi({ description: "Membership id (mem_…), or invitation id (inv_…) while pending." }),
    userId: z.string().nullable(),
    email: z.string(),
    name: z.string().nullable(),
    role: z.enum(ROLES),
    status: z.enum(["active", "pending"]),
    joinedAt: z.string().nullable(),
    invitedAt: z.string().nullable(),
    expiresAt: z.string().nullable(),
  })
  .openapi("Member");

const MemberParams = z.object({ slug: slugParam("slug"), id: slugParam("id") });
const mailerOf = (c: Context<AppEnv>) => createMailer(c.env, c.var.db);
const baseUrlOf = (c: Context<AppEnv>) => c.env.PUBLIC_URL || new URL(c.req.url).origin;

router.openapi(
  createRoute({
    method: "get",
    path: "/org/{slug}/members",
    tags: ["Members"],
    summary: "Members and pending invitations",
    request: { params: z.object({ slug: slugParam("slug") }) },
    responses: { 200: json(z.object({ members: z.array(Member) }), "Members"), ...errorResponses },
  }),
  async (c) => {
    const { org } = await authorizeOrg(c, c.req.valid("param").slug, "member:read");
    const [members, pending] = await Promise.all([listMembers(c.var.db, org.id), listPendingInvitations(c.var.db, org.id)]);
    return c.json(
      {
        members: [
          ...members.map((m) => ({
            id: m.id,
            userId: m.userId,
            email: m.email,
            name: m.name,
            role: m.role,
            status: "active" as const,
            joinedAt: m.joinedAt.toISOString(),
            invitedAt: null,
            expiresAt: null,
          })),
          ...pending.map((i) => ({
            id: i.id,
            userId: null,
            email: i.email,
            name: null,
            role: i.role,
            status: "pending" as const,
            joinedAt: null,
            invitedAt: i.createdAt.toISOString(),
            expiresAt: i.expiresAt.toISOString(),
          })),
        ],
      },
      200,
    );
  },
);

/**
 * Only an owner may touch an owner's seat or hand out ownership; admins manage
 * everyone below owner. Anyone may change their own seat downwards (leave).
 */
function assertMayManage(actorRole: Role, targetRole: Role, newRole?: Role) {
  if ((targetRole === "owner" || newRole === "owner") && actorRole !== "owner") {
    throw forbidden("Only an owner can change or remove an owner, or make someone owner");
  }
  if (outranks(targetRole, actorRole)) throw forbidden("You cannot manage a member who outranks you");
}

router.openapi(
  createRoute({
    method: "patch",
    path: "/org/{slug}/members/{id}",
    tags: ["Members"],
    summary: "Change a member's role (owner, admin); the last owner cannot be demoted",
    request: { params: MemberParams, ...jsonBody(z.object({ role: z.enum(ROLES) })) },
    responses: { 200: json(Ok, "Changed"), ...conflictResponse, ...errorResponses },
  }),
  async (c) => {
    const { slug, id } = c.req.valid("param");
    const { role: newRole } = c.req.valid("json");
    const { org, role } = await authorizeOrg(c, slug, "member:manage");
    const target = await findMember(c.var.db, org.id, id);
    if (!target) throw notFound("Member");
    assertMayManage(role, target.role, newRole);
    await changeMemberRole(
      c.var.db,
      org.id,
      target.id,
      newRole,
      audited(c, () => ({ orgId: org.id, action: "member.role_change", targetType: "user", targetId: target.userId, metadata: { from: target.role, to: newRole } })),
    );
    return c.json({ ok: true }, 200);
  },
);

router.openapi(
  createRoute({
    method: "delete",
    path: "/org/{slug}/members/{id}",
    tags: ["Members"],
    summary: "Remove a member or revoke a pending invitation; members may remove themselves",
    request: { params: MemberParams },
    responses: { 204: { description: "Removed" }, ...conflictResponse, ...errorResponses },
  }),
  async (c) => {
    const { slug, id } = c.req.valid("param");
    // Leaving needs only membership; removing someone else needs member:manage.
    // Visibility first, so a key of another org gets 404 like everyone outside it.
    const self = await authorizeOrg(c, slug, "org:read");
    const p = requireUser(c, "account:read");
    const target = await findMember(c.var.db, self.org.id, id);
    if (target && target.userId === p.userId) {
      requireSignedIn(c, "leave an org");
      await removeMember(c.var.db, self.org.id, target.id, audited(c, () => ({ orgId: self.org.id, action: "member.leave", targetType: "user", targetId: target.userId })));
      return c.body(null, 204);
    }
    const { org, role } = await authorizeOrg(c, slug, "member:manage");
    if (target) {
      assertMayManage(role, target.role);
      await removeMember(c.var.db, org.id, target.id, audited(c, () => ({ orgId: org.id, action: "member.remove", targetType: "user", targetId: target.userId, metadata: { role: target.role } })));
      return c.body(null, 204);
    }
    const inv = await findPendingInvitation(c.var.db, org.id, id);
    if (!inv) throw notFound("Member");
    await revokeInvitation(c.var.db, inv, audited(c, () => ({ orgId: org.id, action: "invitation.revoke", targetType: "invitation", targetId: inv.id, metadata: { email: inv.email } })));
    return c.body(null, 204);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/org/{slug}/members/{id}/resend",
    tags: ["Members"],
    summary: "Resend a pending invitation with a new token",
    request: { params: MemberParams },
    responses: { 200: json(Ok, "Resent"), ...errorResponses },
  }),
  async (c) => {
    const { slug, id } = c.req.valid("param");
    const { org } = await authorizeOrg(c, slug, "member:manage");
    const inv = await findPendingInvitation(c.var.db, org.id, id);
    if (!inv) throw notFound("Invitation");
    await resendInvitation(c.var.db, mailerOf(c), org, inv, baseUrlOf(c), audited(c, () => ({ orgId: org.id, action: "invitation.resend", targetType: "invitation", targetId: inv.id })));
    return c.json({ ok: true }, 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/org/{slug}/invitations",
    tags: ["Members"],
    summary: "Invite someone by email (owner, admin); the accept link is mailed",
    request: {
      params: z.object({ slug: slugParam("slug") }),
      ...jsonBody(z.object({ email, role: z.enum(["admin", "developer", "viewer"]) }).openapi("InviteInput")),
    },
    responses: {
      201: json(z.object({ invite: z.object({ id: z.string(), email: z.string(), role: z.string(), expiresAt: z.string() }) }), "Invited"),
      ...conflictResponse,
      ...errorResponses,
    },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { org, role, principal } = await authorizeOrg(c, c.req.valid("param").slug, "member:manage");
    if (outranks(input.role, role)) throw forbidden("You cannot invite someone above your own role");
    const inv = await createInvitation(
      c.var.db,
      mailerOf(c),
      { org, email: input.email, role: input.role, invitedBy: principal.userId, baseUrl: baseUrlOf(c) },
      audited(c, (id) => ({ orgId: org.id, action: "invitation.create", targetType: "invitation", targetId: id, metadata: { email: input.email, role: input.role } })),
    );
    return c.json({ invite: { id: inv.id, email: inv.email, role: inv.role, expiresAt: inv.expiresAt.toISOString() } }, 201);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/invitations/accept",
    tags: ["Members"],
    summary: "Accept an invitation as the signed-in user it was sent to",
    request: jsonBody(z.object({ token: z.string().min(1).max(200) }).openapi("AcceptInvitationInput")),
    responses: {
      200: json(z.object({ orgSlug: z.string(), role: z.string(), projectId: z.string().optional().openapi({ description: "Set when the invitation was to one project." }) }), "Joined"),
      ...conflictResponse,
      ...errorResponses,
    },
  }),
  async (c) => {
    const p = requireSignedIn(c, "accept invitations");
    const u = await findUser(c.var.db, p.userId);
    if (!u) throw notFound("User");
    const inv = await acceptInvitation(
      c.var.db,
      c.req.valid("json").token,
      u,
      audited(c, (accepted: InvitationRow) => ({
        orgId: accepted.orgId,
        action: "invitation.accept",
        targetType: "invitation",
        targetId: accepted.id,
        metadata: { role: accepted.role, ...(accepted.projectId ? { projectId: accepted.projectId } : {}) },
      })),
    );
    const o = await findOrgById(c.var.db, inv.orgId);
    if (!o || (!inv.projectId && !(await membershipRole(c.var.db, inv.orgId, u.id)))) throw notFound("Organization");
    return c.json({ orgSlug: o.slug, role: inv.role, ...(inv.projectId ? { projectId: inv.projectId } : {}) }, 200);
  },
);

export default router;
