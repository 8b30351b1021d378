/**
 * Refresh-token revocation, kept apart so better-auth's hooks can use it without an import cycle.
 * Tokens are expired rather than marked used, so presenting one later, even one already used,
 * is a plain 401 and does not look like a replay.
 */
import { and, eq, gt, inArray, isNull, notInArray, or } from "drizzle-orm";
import { forgetCredentials } from "../auth/credential-cache";
import { sha256Hex } from "../lib/crypto";
import type { Database } from "./client";
import { refreshToken, session } from "./schema";

/** Expires every live refresh token of a user (a password reset): whoever held a session must sign in again. */
export async function expireRefreshTokens(db: Database, userId: string) {
  const now = new Date();
  await db
    .update(refreshToken)
    .set({ expiresAt: now })
    .where(and(eq(refreshToken.userId, userId), gt(refreshToken.expiresAt, now)));
}

/**
 * A session has ended (signed out, revoked, replaced): the refresh token issued with it ends
 * too, so it cannot mint a new session. A token already used stays as it is, so presenting
 * it again is still seen as a replay. Rows made before session ids were kept match by hash.
 */
export async function expireRefreshTokensOfSession(db: Database, ended: { id: string; token: string }) {
  const now = new Date();
  await db
    .update(refreshToken)
    .set({ expiresAt: now })
    .where(
      and(
        or(eq(refreshToken.sessionId, ended.id), eq(refreshToken.sessionTokenHash, await sha256Hex(ended.token))),
        isNull(refreshToken.usedAt),
        gt(refreshToken.expiresAt, now),
      ),
    );
}

/**
 * Ends a whole family after one of its tokens was replayed: every refresh token rotated from
 * the same sign-in, and every session those tokens issued (their access tokens).
 */
export async function endRefreshFamily(db: Database, familyId: string) {
  const now = new Date();
  const members = await db
    .update(refreshToken)
    .set({ expiresAt: now })
    .where(or(eq(refreshToken.familyId, familyId), eq(refreshToken.id, familyId)))
    .returning({ sessionId: refreshToken.sessionId });
  const sessionIds = members.map((m) => m.sessionId).filter((id): id is string => Boolean(id));
  if (sessionIds.length > 0) {
    await db.delete(session).where(inArray(session.id, sessionIds));
    forgetCredentials();
  }
}

/**
 * After a route that ends many sessions at once (revoke-sessions, revoke-other-sessions,
 * change-password): every refresh token of the user whose session is gone ends too. The
 * per-session hook cannot be relied on there: better-auth notifies at most its find limit
 * of deleted rows.
 */
export async function expireOrphanedRefreshTokens(db: Database, userId: string) {
  const now = new Date();
  const live = db.select({ id: session.id }).from(session).where(eq(session.userId, userId));
  await db
    .update(refreshToken)
    .set({ expiresAt: now })
    .where(and(eq(refreshToken.userId, userId), gt(refreshToken.expiresAt, now), or(isNull(refreshToken.sessionId), notInArray(refreshToken.sessionId, live))));
}
