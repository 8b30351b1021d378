/**
 * Token pairs for the seeds whose clients log in with tokens (Suble, DevPocket,
 * Dockup): the access token is a better-auth session token, usable as
 * `Authorization: Bearer`; the refresh token is single-use and rotates.
 *
 * Every pair belongs to a family: the tokens rotated from one sign-in. Ending a
 * session by any route ends the refresh token issued with it (better-auth's
 * session-delete hook, see auth/better-auth.ts); a replayed refresh token ends
 * the whole family, sessions included.
 */
import { and, eq, isNull } from "drizzle-orm";
import type { Context } from "hono";
import { SESSION_TTL_SECONDS } from "../auth/better-auth";
import { authOf } from "../auth/middleware";
import { endRefreshFamily, expireRefreshTokens } from "../db/refresh-tokens";
import { refreshToken, session } from "../db/schema";
import type { AppEnv } from "../env";
import { newSecret, sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";

const REFRESH_TTL_MS = 30 * 24 * 3600 * 1000;

/** A pair for a live session; `familyId` continues a rotation, none starts a new family. */
export async function issueTokenPair(c: Context<AppEnv>, userId: string, sessionToken: string, familyId?: string) {
  const db = c.var.db;
  const refresh = newSecret("rft_");
  const id = newId("rft");
  const live = await db.query.session.findFirst({ columns: { id: true }, where: eq(session.token, sessionToken) });
  if (!live) throw new Error("token pair asked for a session that does not exist");
  await db.insert(refreshToken).values({
    id,
    userId,
    hash: await sha256Hex(refresh),
    sessionTokenHash: await sha256Hex(sessionToken),
    sessionId: live.id,
    familyId: familyId ?? id,
    expiresAt: new Date(Date.now() + REFRESH_TTL_MS),
  });
  return {
    token: sessionToken,
    access_token: sessionToken,
    refresh_token: refresh,
    token_type: "Bearer" as const,
    expires_in: SESSION_TTL_SECONDS,
  };
}

/** A fresh session for a user, as a sign-in would make. */
export async function newSession(c: Context<AppEnv>, userId: string): Promise<string> {
  const ctx = await authOf(c).$context;
  const s = await ctx.internalAdapter.createSession(userId);
  if (!s) throw new Error("session was not created");
  return s.token;
}

/**
 * Exchanges a refresh token for a new pair in the same family; the presented pair's
 * session ends. A token presented twice means it leaked: the family ends, including a
 * pair that a racing rotation of the same token is issuing at that moment.
 */
export async function rotateRefreshToken(c: Context<AppEnv>, presented: string) {
  const db = c.var.db;
  const row = await db.query.refreshToken.findFirst({ where: eq(refreshToken.hash, await sha256Hex(presented)) });
  const invalid = new ApiError("invalid_refresh", "Refresh token is invalid or has expired");
  // An expired token (its session was ended, the password reset, the family replayed) is refused
  // before the claim below, so presenting it is not mistaken for a replay.
  if (!row || row.expiresAt.getTime() <= Date.now()) throw invalid;
  const familyId = row.familyId ?? row.id;
  // Its session must still be alive, or have merely expired: a session lives at least its
  // TTL, so one gone sooner was ended (by a route whose notice never reached its token).
  if (row.sessionId && row.createdAt.getTime() + SESSION_TTL_SECONDS * 1000 > Date.now()) {
    const alive = await db.query.session.findFirst({ columns: { id: true }, where: eq(session.id, row.sessionId) });
    if (!alive) {
      await endRefreshFamily(db, familyId);
      throw invalid;
    }
  }
  const claimed = await db
    .update(refreshToken)
    .set({ usedAt: new Date() })
    .where(and(eq(refreshToken.id, row.id), isNull(refreshToken.usedAt)))
    .returning({ id: refreshToken.id });
  if (claimed.length === 0) {
    await endRefreshFamily(db, familyId);
    throw invalid;
  }
  const sessionToken = await newSession(c, row.userId);
  const pair = await issueTokenPair(c, row.userId, sessionToken, familyId);
  // The family may have ended while the pair was being made: a replay of this token, or its
  // session signed out. Either expires the presented row; look again and refuse the pair.
  const after = await db.query.refreshToken.findFirst({ where: eq(refreshToken.id, row.id) });
  if (!after || after.expiresAt.getTime() <= Date.now()) {
    await endRefreshFamily(db, familyId);
    throw invalid;
  }
  // The pair replaces the one presented: its session ends, so rotations do not pile up sessions.
  const previous = row.sessionId ? await db.query.session.findFirst({ columns: { token: true }, where: eq(session.id, row.sessionId) }) : undefined;
  if (previous) await endSession(c, previous.token);
  return pair;
}

/** Expires every refresh token of a user (after a password reset, whoever held a session must sign in again). */
export async function revokeRefreshTokens(c: Context<AppEnv>, userId: string) {
  await expireRefreshTokens(c.var.db, userId);
}

/** Signs one session out; better-auth's session-delete hook ends the refresh token issued with it. */
export async function endSession(c: Context<AppEnv>, sessionToken: string) {
  const ctx = await authOf(c).$context;
  await ctx.internalAdapter.deleteSession(sessionToken);
}
