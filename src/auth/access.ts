/**
 * Authorization: resolve an org or project for the caller and check one
 * permission. A resource the caller cannot see at all is 404, never 403, so
 * another tenant learns nothing; 403 means "you can see it, you may not do that".
 */
import type { Context } from "hono";
import type { Role } from "../db/schema";
import type { AppEnv } from "../env";
import { forbidden, notFound, unauthorized } from "../lib/errors";
import { findOrgBySlug, membershipRole, type OrgRow } from "../services/orgs";
import { findProject, findProjectForUser, projectGrantRole, type ProjectRow } from "../services/projects";
import { type AccountPermission, type Permission, roleAllows, scopeAllows, scopeAllowsAccount, strongerRole } from "./permissions";
import { orgKeyRole, type Principal } from "./principal";

type Ctx = Context<AppEnv>;

export function requirePrincipal(c: Ctx): Principal {
  const p = c.get("principal");
  if (!p) throw unauthorized(c.get("authError") ?? "Authentication required");
  return p;
}

/**
 * Endpoints about the signed-in person (account, their orgs, personal keys) take users and
 * personal keys only, and a personal key only within its scope.
 */
export function requireUser(c: Ctx, permission: AccountPermission): Principal {
  const p = requirePrincipal(c);
  if (p.type === "api_key") {
    if (p.key.kind === "org") throw forbidden("Org API keys cannot act as a user");
    if (!scopeAllowsAccount(p.key.scope, permission)) throw forbidden(`This API key's scope (${p.key.scope}) does not allow ${permission}`);
  }
  return p;
}

/**
 * Changes to the caller's own memberships (accepting an invitation, leaving an org)
 * need the person signed in: no key scope may manage membership.
 */
export function requireSignedIn(c: Ctx, what: string): Principal & { type: "user" } {
  const p = requirePrincipal(c);
  if (p.type !== "user") throw forbidden(`API keys cannot ${what}; sign in`);
  return p;
}

function check(p: Principal, role: Role, permission: Permission) {
  if (!roleAllows(role, permission)) throw forbidden(`Your role (${role}) does not allow ${permission}`);
  if (p.type === "api_key" && !scopeAllows(p.key.scope, permission)) {
    throw forbidden(`This API key's scope (${p.key.scope}) does not allow ${permission}`);
  }
}

/**
 * Org keys act with their maker's current role (at most admin) capped by their scope; users
 * and personal keys with their membership.
 */
async function roleInOrg(c: Ctx, p: Principal, o: OrgRow): Promise<Role | null> {
  if (p.type === "api_key" && p.key.kind === "org") return orgKeyRole(p, o.id);
  return membershipRole(c.var.db, o.id, p.userId);
}

export async function authorizeOrg(c: Ctx, slug: string, permission: Permission) {
  const p = requirePrincipal(c);
  const o = await findOrgBySlug(c.var.db, slug);
  const role = o ? await roleInOrg(c, p, o) : null;
  if (!o || !role) throw notFound("Organization");
  if (p.type === "api_key" && p.key.projectId) throw forbidden("This API key is bound to one project");
  check(p, role, permission);
  return { org: o, role, principal: p };
}

export async function authorizeProject(c: Ctx, projectId: string, permission: Permission) {
  const p = requirePrincipal(c);
  if (p.type === "api_key" && p.key.kind === "org") {
    const project = await findProject(c.var.db, projectId);
    if (!project) throw notFound("Project", "project_not_found");
    return authorizeLoadedProject(c, p, project, permission);
  }
  // A person (or their personal key): the project and both of their roles in one query.
  const found = await findProjectForUser(c.var.db, projectId, p.userId);
  const role = found ? strongerRole(found.orgRole, found.grantRole) : null;
  if (!found || !role) throw notFound("Project", "project_not_found");
  check(p, role, permission);
  return { project: found.project, role, principal: p };
}

export async function authorizeLoadedProject(c: Ctx, p: Principal, project: ProjectRow, permission: Permission) {
  let role: Role | null;
  if (p.type === "api_key" && p.key.kind === "org") {
    if (p.key.orgId !== project.orgId) throw notFound("Project", "project_not_found");
    if (p.key.projectId && p.key.projectId !== project.id) throw forbidden("API key is not valid for this project");
    role = orgKeyRole(p, project.orgId);
  } else {
    const [orgRole, grantRole] = await Promise.all([membershipRole(c.var.db, project.orgId, p.userId), projectGrantRole(c.var.db, project.id, p.userId)]);
    role = strongerRole(orgRole, grantRole);
  }
  if (!role) throw notFound("Project", "project_not_found");
  check(p, role, permission);
  return { project, role, principal: p };
}
