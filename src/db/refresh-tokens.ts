/** Refresh-token revocation, kept apart so better-auth's hooks can use it without an import cycle. */
import { and, eq, gt } from "drizzle-orm";
import type { Database } from "./client";
import { refreshToken } from "./schema";

/** Expires every live refresh token of a user (a password reset): a later replay is a plain 401. */
export async function expireRefreshTokens(db: Database, userId: string) {
  const now = new Date();
  await db
    .update(refreshToken)
    .set({ expiresAt: now })
    .where(and(eq(refreshToken.userId, userId), gt(refreshToken.expiresAt, now)));
}
