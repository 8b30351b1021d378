/** Invitations: a mailed single-use token seats its holder in an org with the invited role. */
import { and, desc, eq } from "drizzle-orm";
import type { Database } from "../db/client";
import { invitation, orgMember, user, type Role } from "../db/schema";
import { ApiError, conflict, notFound } from "../lib/errors";
import { newSecret, sha256Hex } from "../lib/crypto";
import { newId } from "../lib/ids";
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
): Promise<InvitationRow> {
  const existingUser = await db.query.user.findFirst({ where: eq(user.email, input.email), columns: { id: true } });
  if (existingUser) {
    const seated = await db.query.orgMember.findFirst({
      where: and(eq(orgMember.orgId, input.org.id), eq(orgMember.userId, existingUser.id)),
      columns: { id: true },
    });
    if (seated) throw conflict("already_member", "That person is already a member of this org");
  }
  const token = newSecret("inv_");
  // One batch (one transaction), so two invites racing still leave one pending invitation.
  const [, [row]] = await db.batch([
    db
      .update(invitation)
      .set({ status: "revoked" })
      .where(and(eq(invitation.orgId, input.org.id), eq(invitation.email, input.email), eq(invitation.status, "pending"))),
    db
      .insert(invitation)
      .values({
        id: newId("inv"),
        orgId: input.org.id,
        email: input.email,
        role: input.role,
        tokenHash: await sha256Hex(token),
        invitedBy: input.invitedBy,
        expiresAt: new Date(Date.now() + INVITATION_TTL_MS),
      })
      .returning(),
  ]);
  await mailInvitation(mailer, input.org, input.email, input.role, token, input.baseUrl);
  return row!;
}

export function listPendingInvitations(db: Database, orgId: string) {
  return db
    .select()
    .from(invitation)
    .where(and(eq(invitation.orgId, orgId), eq(invitation.status, "pending")))
    .orderBy(desc(invitation.createdAt));
}

export function findPendingInvitation(db: Database, orgId: string, id: string) {
  return db.query.invitation.findFirst({
    where: and(eq(invitation.orgId, orgId), eq(invitation.id, id), eq(invitation.status, "pending")),
  });
}

/** A new token and a new mail; the old token stops working. */
export async function resendInvitation(db: Database, mailer: Mailer, o: OrgRow, inv: InvitationRow, baseUrl: string) {
  const token = newSecret("inv_");
  await db
    .update(invitation)
    .set({ tokenHash: await sha256Hex(token), expiresAt: new Date(Date.now() + INVITATION_TTL_MS) })
    .where(eq(invitation.id, inv.id));
  await mailInvitation(mailer, o, inv.email, inv.role, token, baseUrl);
}

export async function revokeInvitation(db: Database, inv: InvitationRow) {
  await db.update(invitation).set({ status: "revoked" }).where(eq(invitation.id, inv.id));
}

/** Seats the signed-in user; the invitation must be pending, unexpired and addressed to their email. */
export async function acceptInvitation(db: Database, token: string, accepter: { id: string; email: string }) {
  const inv = await db.query.invitation.findFirst({ where: eq(invitation.tokenHash, await sha256Hex(token)) });
  if (!inv || inv.status !== "pending" || inv.expiresAt.getTime() <= Date.now()) {
    throw notFound("Invitation", "invitation_not_found");
  }
  if (inv.email !== accepter.email.toLowerCase()) {
    throw new ApiError(403, "invitation_email_mismatch", "This invitation was sent to another email address");
  }
  const seated = await db.query.orgMember.findFirst({
    where: and(eq(orgMember.orgId, inv.orgId), eq(orgMember.userId, accepter.id)),
    columns: { id: true },
  });
  if (seated) throw conflict("already_member", "You are already a member of this org");
  // Claim the invitation first, so two concurrent accepts seat the user once.
  const claimed = await db
    .update(invitation)
    .set({ status: "accepted", acceptedAt: new Date() })
    .where(and(eq(invitation.id, inv.id), eq(invitation.status, "pending")))
    .returning({ id: invitation.id });
  if (!claimed.length) throw notFound("Invitation", "invitation_not_found");
  await db
    .insert(orgMember)
    .values({ id: newId("mem"), orgId: inv.orgId, userId: accepter.id, role: inv.role })
    .onConflictDoNothing();
  return inv;
}
