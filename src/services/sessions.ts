/**
 * Token pairs for the seeds whose clients log in with tokens (Suble, DevPocket,
 * Dockup): the access token is a better-auth session token, usable as
 * `Authorization: Bearer`; the refresh token is single-use and rotates.
 */
import { and, eq, isNull } from "drizzle-orm";
import type { Context } from "hono";
import { authOf } from "../auth/middleware";
import { SESSION_TTL_SECONDS } from "../auth/better-auth";
import { expireRefreshTokens } from "../db/refresh-tokens";
import { refreshToken } from "../db/schema";
import type { AppEnv } from "../env";
import { ApiError } from "../lib/errors";
import { newSecret, sha256Hex } from "../lib/crypto";
import { newId } from "../lib/ids";

const REFRESH_TTL_MS = 30 * 24 * 3600 * 1000;

export async function issueTokenPair(c: Context<AppEnv>, userId: string, sessionToken: string) {
  const refresh = newSecret("rft_");
  await c.var.db.insert(refreshToken).values({
    id: newId("rft"),
    userId,
    hash: await sha256Hex(refresh),
    sessionTokenHash: await sha256Hex(sessionToken),
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
 * Exchanges a refresh token for a new pair. A token presented twice means it
 * leaked: every refresh token of that user is revoked, including one a racing
 * rotation of the same token is issuing at that moment.
 */
export async function rotateRefreshToken(c: Context<AppEnv>, presented: string) {
  const db = c.var.db;
  const row = await db.query.refreshToken.findFirst({ where: eq(refreshToken.hash, await sha256Hex(presented)) });
  const invalid = new ApiError(401, "invalid_refresh", "Refresh token is invalid or has expired");
  if (!row || row.expiresAt.getTime() <= Date.now()) throw invalid;
  const claimed = await db
    .update(refreshToken)
    .set({ usedAt: new Date() })
    .where(and(eq(refreshToken.id, row.id), isNull(refreshToken.usedAt)))
    .returning({ id: refreshToken.id });
  if (claimed.length === 0) {
    await revokeRefreshTokens(c, row.userId);
    throw invalid;
  }
  const sessionToken = await newSession(c, row.userId);
  const pair = await issueTokenPair(c, row.userId, sessionToken);
  // A replay of this token that ran while the pair was being made revoked the family before the new
  // token existed; revocation expires the presented row too, so look again and refuse the pair.
  const after = await db.query.refreshToken.findFirst({ where: eq(refreshToken.id, row.id) });
  if (!after || after.expiresAt.getTime() <= Date.now()) {
    await revokeRefreshTokens(c, row.userId);
    await endSession(c, sessionToken);
    throw invalid;
  }
  return pair;
}

/**
 * Expires every refresh token of a user (after a password reset, whoever held a
 * session must sign in again). Expired rather than marked used, so presenting one
 * later, even one already used, is a plain 401 and does not revoke the pairs
 * issued after the reset.
 */
export async function revokeRefreshTokens(c: Context<AppEnv>, userId: string) {
  await expireRefreshTokens(c.var.db, userId);
}

/** Signs one session out, and with it the refresh token issued alongside it. */
export async function endSession(c: Context<AppEnv>, sessionToken: string) {
  const ctx = await authOf(c).$context;
  await ctx.internalAdapter.deleteSession(sessionToken);
  await c.var.db
    .update(refreshToken)
    .set({ expiresAt: new Date() })
    .where(and(eq(refreshToken.sessionTokenHash, await sha256Hex(sessionToken)), isNull(refreshToken.usedAt)));
}
