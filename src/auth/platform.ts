/**
 * Platform administrators: people whose better-auth role (the admin plugin's `user.role`) is
 * `admin`. They administer the deployment itself, not an org, so org roles and API keys do
 * not count: only a signed-in session does, and the role is read afresh on every request.
 */
import { eq } from "drizzle-orm";
import type { Context } from "hono";
import { user } from "../db/schema";
import type { AppEnv } from "../env";
import { forbidden } from "../lib/errors";
import { requirePrincipal } from "./access";

export const isPlatformAdminRole = (role: string | null | undefined) => (role ?? "").split(",").map((r) => r.trim()).includes("admin");

export async function requirePlatformAdmin(c: Context<AppEnv>) {
  const p = requirePrincipal(c);
  if (p.type !== "user") throw forbidden("Admin access required: API keys cannot administer the platform; sign in");
  const [row] = await c.var.db.select({ role: user.role }).from(user).where(eq(user.id, p.userId));
  if (!isPlatformAdminRole(row?.role)) throw forbidden("Admin access required");
  return p;
}
