/**
 * What a role may do, read from the API's own permission table (src/auth/permissions.ts),
 * so the dashboard offers exactly what the API would allow. The API's 403 stays the
 * truth; this only keeps the pages from offering what would be refused.
 */
import { PERMISSIONS, type Permission } from "../auth/permissions";

export type { Permission };
export const ROLES = ["owner", "admin", "developer", "viewer"] as const;
export type Role = (typeof ROLES)[number];

const RANK: Record<Role, number> = { viewer: 0, developer: 1, admin: 2, owner: 3 };

export function can(role: string | undefined, permission: Permission): boolean {
  return !!role && (PERMISSIONS[permission] as readonly string[]).includes(role);
}

const isRole = (r: string | undefined): r is Role => !!r && r in RANK;

/** The API's rule for seats (routes/members.ts): only an owner touches an owner's seat; nobody manages someone above them. */
export function mayManageSeat(actor: string | undefined, target: string): boolean {
  if (!isRole(actor) || !isRole(target) || !can(actor, "member:manage")) return false;
  if (target === "owner" && actor !== "owner") return false;
  return RANK[target] <= RANK[actor];
}

/** Roles the actor may hand out: none above their own, and owner only by an owner. */
export function assignableRoles(actor: string | undefined, { owner = true } = {}): Role[] {
  if (!isRole(actor) || !can(actor, "member:manage")) return [];
  return ROLES.filter((r) => RANK[r] <= RANK[actor] && (owner || r !== "owner"));
}
