/**
 * Audit rows for two-factor changes made through better-auth's own routes
 * (`/api/auth/two-factor/enable`, `/verify-totp` confirming an enrolment, `/disable`), as
 * Berth's `/account/mfa/*` write them: the account's flag is read before and after the
 * call, so whatever the plugin did is what is recorded. Never the secret.
 */
import { eq } from "drizzle-orm";
import type { MiddlewareHandler } from "hono";
import { user } from "../db/schema";
import type { AppEnv } from "../env";
import { recordAudit } from "../services/audit";
import { authOf } from "./middleware";

export const auditBetterAuthTwoFactor: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.req.method !== "POST") return next();
  const signedIn = await authOf(c).api.getSession({ headers: c.req.raw.headers, query: { disableRefresh: true } }).catch(() => null);
  if (!signedIn) return next();
  const userId = signedIn.user.id;
  const flag = async () => (await c.var.db.query.user.findFirst({ columns: { twoFactorEnabled: true }, where: eq(user.id, userId) }))?.twoFactorEnabled === true;
  const before = await flag();
  await next();
  if (c.res.status !== 200) return;
  const after = await flag();
  const action = before !== after ? (after ? "account.mfa.enable" : "account.mfa.disable") : c.req.path.endsWith("/two-factor/enable") ? "account.mfa.enrol" : null;
  if (action) await recordAudit(c, { orgId: null, action, targetType: "user", targetId: userId, metadata: { via: "better-auth" } }, { userId });
};
