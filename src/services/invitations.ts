/** Invitations: a mailed single-use token seats its holder in an org with the invited role. */
import { and, desc, eq, isNull } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Database } from "../db/client";
import { invitation, orgMember, project, projectMember, user, type Role } from "../db/schema";
import { ApiError, conflict, notFound } from "../lib/errors";
import { newSecret, sha256Hex } from "../lib/crypto";
import { newId } from "../lib/ids";
import { type Also, NOTHING, withAlso } from "./audit";
import type { Mailer } from "./mail";
import type { OrgRow } from "./orgs";

const INVITATION_TTL_MS = 7 * 24 * 3600 * 1000;

export type InvitationRow = typeof invitation.$inferSelect;

async function mailInvitation(mailer: Mailer, o: OrgRow, email: string, role: string, token: string, baseUrl: string) {
  await mailer.send({
    to: email,
    subject: `You are invited to ${o.name} on Berth`,
    text:
      `You have been invited to join ${o.name} as ${role}.\n\n` +
      `Accept within 7 days: ${baseUrl}/invitations/accept?token=${token}\n` +
      `or send this token to POST /api/v1/invitations/accept while signed in as ${email}: ${token}\n`,
  });
}

/** Invites an address; inviting it again replaces the earlier pending invitation (its token stops working). */
export async function createInvitation(
  db: Database,
  mailer: Mailer,
  input: { org: OrgRow; email: string; role: Exclude<Role, "owner">; invitedBy: string; baseUrl: string },
  also: Also = NOTHING,
): Promise<InvitationRow> {
  const existingUser = await db.query.user.findFirst({ where: eq(user.email, input.email), columns: { id: true } });
  if (existingUser) {
    const seated = await db.query.orgMember.findFirst({
      where: and(eq(orgMember.orgId, input.org.id), eq(orgMember.userId, existingUser.id)),
      columns: { id: true },
    });
    if (seated) throw conflict("already_member", "That person is already a member of this org");
  }
  const { row, token } = await replacePendingInvitation(db, { orgId: input.org.id, projectId: null, email: input.email, role: input.role, invitedBy: input.invitedBy }, also);
  await mailInvitation(mailer, input.org, input.email, input.role, token, input.baseUrl);
  return row;
}

/**
 * A new pending invitation for an address, replacing the earlier pending one to the same org
 * (or project), whose token stops working. One batch (one transaction), so two invites racing
 * still leave one pending invitation.
 */
async function replacePendingInvitation(
  db: Database,
  input: { orgId: string; projectId: string | null; email: string; role: Role; invitedBy: string },
  also: Also,
): Promise<{ row: InvitationRow; token: string }> {
  const token = newSecret("inv_");
  const id = newId("inv");
  const sameTarget = input.projectId ? eq(invitation.projectId, input.projectId) : and(eq(invitation.orgId, input.orgId), isNull(invitation.projectId));
  const [, [row]] = await db.batch([
    db
      .update(invitation)
      .set({ status: "revoked" })
      .where(and(sameTarget, eq(invitation.email, input.email), eq(invitation.status, "pending"))),
    db
      .insert(invitation)
      .values({
        id,
        orgId: input.orgId,
        projectId: input.projectId,
        email: input.email,
        role: input.role,
        tokenHash: await sha256Hex(token),
        invitedBy: input.invitedBy,
        expiresAt: new Date(Date.now() + INVITATION_TTL_MS),
      })
      .returning(),
    ...also(id),
  ]);
  return { row: row!, token };
}

export function listPendingInvitations(db: Database, orgId: string) {
  return db
    .select()
    .from(invitation)
    .where(and(eq(invitation.orgId, orgId), isNull(invitation.projectId), eq(invitation.status, "pending")))
    .orderBy(desc(invitation.createdAt));
}

export function findPendingInvitation(db: Database, orgId: string, id: string) {
  return db.query.invitation.findFirst({
    where: and(eq(invitation.orgId, orgId), isNull(invitation.projectId), eq(invitation.id, id), eq(invitation.status, "pending")),
  });
}

/** A new token and a new mail; the old token stops working. */
export async function resendInvitation(db: Database, mailer: Mailer, o: OrgRow, inv: InvitationRow, baseUrl: string, also: Also = NOTHING) {
  const token = newSecret("inv_");
  const renewed = db
    .update(invitation)
    .set({ tokenHash: await sha256Hex(token), expiresAt: new Date(Date.now() + INVITATION_TTL_MS) })
    .where(eq(invitation.id, inv.id));
  await withAlso(db, renewed, also(inv.id));
  await mailInvitation(mailer, o, inv.email, inv.role, token, baseUrl);
}

export async function revokeInvitation(db: Database, inv: InvitationRow, also: Also = NOTHING) {
  await withAlso(db, db.update(invitation).set({ status: "revoked" }).where(eq(invitation.id, inv.id)), also(inv.id));
}

/**
 * Seats the signed-in user; the invitation must be pending, unexpired and addressed to their
 * email. An org invitation seats them in the org; a project invitation grants them the
 * project alone.
 */
export async function acceptInvitation(
  db: Database,
  token: string,
  accepter: { id: string; email: string },
  also: (accepted: InvitationRow) => BatchItem<"sqlite">[] = () => [],
) {
  const inv = await db.query.invitation.findFirst({ where: eq(invitation.tokenHash, await sha256Hex(token)) });
  if (!inv || inv.status !== "pending" || inv.expiresAt.getTime() <= Date.now()) {
    throw notFound("Invitation", "invitation_not_found");
  }
  if (inv.email !== accepter.email.toLowerCase()) {
    throw new ApiError("invitation_email_mismatch", "This invitation was sent to another email address");
  }
  if (inv.projectId) return acceptProjectInvitation(db, inv, inv.projectId, accepter, also);
  const seated = await db.query.orgMember.findFirst({
    where: and(eq(orgMember.orgId, inv.orgId), eq(orgMember.userId, accepter.id)),
    columns: { id: true },
  });
  if (seated) throw conflict("already_member", "You are already a member of this org");
  // Claim the invitation first, so two concurrent accepts seat the user once.
  if (!(await claim(db, inv))) throw notFound("Invitation", "invitation_not_found");
  const seat = db.insert(orgMember).values({ id: newId("mem"), orgId: inv.orgId, userId: accepter.id, role: inv.role }).onConflictDoNothing();
  await withAlso(db, seat, also(inv));
  return inv;
}

async function claim(db: Database, inv: InvitationRow): Promise<boolean> {
  const claimed = await db
    .update(invitation)
    .set({ status: "accepted", acceptedAt: new Date() })
    .where(and(eq(invitation.id, inv.id), eq(invitation.status, "pending")))
    .returning({ id: invitation.id });
  return claimed.length > 0;
}

async function acceptProjectInvitation(db: Database, inv: InvitationRow, projectId: string, accepter: { id: string }, also: (accepted: InvitationRow) => BatchItem<"sqlite">[]) {
  const target = await db.query.project.findFirst({ where: and(eq(project.id, projectId), isNull(project.deletedAt)), columns: { id: true } });
  if (!target) throw notFound("Invitation", "invitation_not_found");
  const granted = await db.query.projectMember.findFirst({
    where: and(eq(projectMember.projectId, projectId), eq(projectMember.userId, accepter.id)),
    columns: { id: true },
  });
  if (granted) throw conflict("already_member", "You are already a member of this project");
  if (!(await claim(db, inv))) throw notFound("Invitation", "invitation_not_found");
  const grant = db
    .insert(projectMember)
    .values({ id: newId("pmb"), projectId, userId: accepter.id, role: inv.role as Exclude<Role, "owner"> })
    .onConflictDoNothing();
  await withAlso(db, grant, also(inv));
  return inv;
}

/**
 * Invites an address to one project. The answer is the same whether or not the address
 * has an account (nobody learns who is registered), and nobody is seated without
 * accepting: the invitee gets a mailed token for POST /invitations/accept. Inviting the
 * address again replaces the earlier pending invitation.
 */
export async function inviteToProject(
  db: Database,
  mailer: Mailer,
  input: { org: OrgRow; project: { id: string; name: string }; email: string; role: Exclude<Role, "owner">; invitedBy: string; baseUrl: string },
  also: Also = NOTHING,
): Promise<InvitationRow> {
  const { row, token } = await replacePendingInvitation(
    db,
    { orgId: input.org.id, projectId: input.project.id, email: input.email, role: input.role, invitedBy: input.invitedBy },
    also,
  );
  await mailer.send({
    to: input.email,
    subject: `You are invited to the project ${input.project.name} on Berth`,
    text:
      `You have been invited to the project ${input.project.name} (${input.org.name}) as ${input.role}.\n\n` +
      `Accept within 7 days: ${input.baseUrl}/invitations/accept?token=${token}\n` +
      `or send this token to POST /api/v1/invitations/accept while signed in as ${input.email}: ${token}\n`,
  });
  return row;
}

export function listPendingProjectInvitations(db: Database, projectId: string) {
  return db
    .select()
    .from(invitation)
    .where(and(eq(invitation.projectId, projectId), eq(invitation.status, "pending")))
    .orderBy(desc(invitation.createdAt));
}

/** Changes (role) or revokes a pending project invitation by address; false when there is none. */
export async function updatePendingProjectInvitation(db: Database, projectId: string, email: string, change: { role: Role } | "revoke", also: Also = NOTHING) {
  const pending = await db.query.invitation.findFirst({
    where: and(eq(invitation.projectId, projectId), eq(invitation.email, email.toLowerCase()), eq(invitation.status, "pending")),
    columns: { id: true },
  });
  if (!pending) return false;
  await withAlso(db, db.update(invitation).set(change === "revoke" ? { status: "revoked" } : { role: change.role }).where(eq(invitation.id, pending.id)), also(pending.id));
  return true;
}
