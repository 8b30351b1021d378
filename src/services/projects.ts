/** Projects: created in an org, soft-deleted, paused and resumed; grants per project. */
import { and, asc, count, desc, eq, gt, inArray, isNull, or, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { instance, invitation, org, orgMember, project, projectMember, user, type Role } from "../db/schema";
import { strongerRole } from "../auth/permissions";
import { conflict, notFound } from "../lib/errors";
import { newId } from "../lib/ids";
import { type Also, NOTHING, withAlso } from "./audit";
import { availableSlug } from "../lib/slug";

export type ProjectRow = typeof project.$inferSelect;

export function projectValues(input: {
  orgId: string;
  name: string;
  slug: string;
  createdBy: string | null;
  region?: string | null;
  environment?: string;
  category?: string;
}) {
  return {
    id: newId("prj"),
    orgId: input.orgId,
    name: input.name,
    slug: input.slug,
    createdBy: input.createdBy,
    region: input.region ?? null,
    environment: input.environment ?? "production",
    category: input.category ?? "business",
  };
}

const liveInOrg = (orgId: string) => and(eq(project.orgId, orgId), isNull(project.deletedAt));

async function slugInUse(db: Database, orgId: string, slug: string) {
  return Boolean(await db.query.project.findFirst({ where: and(liveInOrg(orgId), eq(project.slug, slug)), columns: { id: true } }));
}

/** A requested slug must be free (409 slug_taken); a derived one gets a suffix when it is not. */
export async function createProject(
  db: Database,
  input: { orgId: string; name: string; slug?: string; createdBy: string | null; region?: string; environment?: string; category?: string },
  also: Also = NOTHING,
): Promise<ProjectRow> {
  const taken = (slug: string) => conflict("slug_taken", `A project with slug "${slug}" already exists`);
  // Two creates with one name can both find a slug free; the unique index decides, and the loser picks again.
  for (let attempt = 0; ; attempt++) {
    let slug: string;
    if (input.slug) {
      slug = input.slug;
      if (await slugInUse(db, input.orgId, slug)) throw taken(slug);
    } else {
      slug = await availableSlug(input.name, (s) => slugInUse(db, input.orgId, s), "project");
    }
    try {
      const values = projectValues({ ...input, slug });
      const [row] = await withAlso(db, db.insert(project).values(values).returning(), also(values.id));
      return row!;
    } catch (err) {
      if (!isUniqueViolation(err, "project.org_id")) throw err;
      if (input.slug || attempt >= 2) throw taken(slug);
    }
  }
}

function isUniqueViolation(err: unknown, column: string): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e.message.includes("UNIQUE constraint failed") && e.message.includes(column)) return true;
  }
  return false;
}

export function findProject(db: Database, projectId: string) {
  return db.query.project.findFirst({ where: and(eq(project.id, projectId), isNull(project.deletedAt)) });
}

/**
 * A live project with the user's org role and project grant, in one round trip: what
 * every project-scoped request of a signed-in person (or a personal key) needs first.
 */
export async function findProjectForUser(db: Database, projectId: string, userId: string): Promise<{ project: ProjectRow; orgRole: Role | null; grantRole: Role | null } | null> {
  const [row] = await db
    .select({
      project,
      // Qualified names: see memberCount below.
      orgRole: sql<Role | null>`(select om.role from "org_member" om where om.org_id = "project"."org_id" and om.user_id = ${userId})`,
      grantRole: sql<Role | null>`(select pm.role from "project_member" pm where pm.project_id = "project"."id" and pm.user_id = ${userId})`,
    })
    .from(project)
    .where(and(eq(project.id, projectId), isNull(project.deletedAt)))
    .limit(1);
  return row ? { project: row.project, orgRole: row.orgRole ?? null, grantRole: row.grantRole ?? null } : null;
}

export function findProjectBySlug(db: Database, orgId: string, slug: string) {
  return db.query.project.findFirst({ where: and(liveInOrg(orgId), eq(project.slug, slug)) });
}

/**
 * Suble's `memberCount`, computed in the query that lists the projects (no second round
 * trip on the list every client loads first): the org's seats plus project-only grants.
 */
// Written with qualified names: drizzle leaves a column of a one-table select unqualified, which
// inside a subquery would name the subquery's own table.
const memberCount = sql<number>`((select count(*) from "org_member" om0 where om0.org_id = "project"."org_id") + (select count(*) from "project_member" pm where pm.project_id = "project"."id" and not exists (select 1 from "org_member" om where om.org_id = "project"."org_id" and om.user_id = pm.user_id)))`;

/** Suble's `instanceCount`: the project's instances that are not deleted, in the same query. */
const instanceCount = sql<number>`(select count(*) from "instance" i where i.project_id = "project"."id" and i.deleted_at is null and i.status <> 'deleted')`;

export function listOrgProjects(db: Database, orgId: string, onlyProjectId?: string | null) {
  return db
    .select()
    .from(project)
    .where(and(liveInOrg(orgId), onlyProjectId ? eq(project.id, onlyProjectId) : undefined))
    .orderBy(asc(project.createdAt));
}

/** The same list with each project's `memberCount`, in the one query. */
export function listOrgProjectsWithMembers(db: Database, orgId: string, onlyProjectId?: string | null) {
  return db
    .select({ project, memberCount, instanceCount })
    .from(project)
    .where(and(liveInOrg(orgId), onlyProjectId ? eq(project.id, onlyProjectId) : undefined))
    .orderBy(asc(project.createdAt));
}

/**
 * Every live project a user can reach, with the role that reaches it: all
 * projects of the orgs they belong to, plus projects granted to them alone.
 */
export async function listUserProjects(db: Database, userId: string, orgId?: string) {
  // One round trip: the user's role through an active org's membership and through a grant,
  // joined onto exactly the projects either reaches.
  const orgRole = db
    .select({ orgId: orgMember.orgId, role: orgMember.role })
    .from(orgMember)
    .innerJoin(org, and(eq(org.id, orgMember.orgId), eq(org.status, "active")))
    .where(eq(orgMember.userId, userId))
    .as("org_role");
  const grantRole = db
    .select({ projectId: projectMember.projectId, role: projectMember.role })
    .from(projectMember)
    .where(eq(projectMember.userId, userId))
    .as("grant_role");
  const rows = await db
    .select({ project, memberCount, instanceCount, orgRole: orgRole.role, grantRole: grantRole.role })
    .from(project)
    .leftJoin(orgRole, eq(orgRole.orgId, project.orgId))
    .leftJoin(grantRole, eq(grantRole.projectId, project.id))
    .where(
      and(
        isNull(project.deletedAt),
        orgId ? eq(project.orgId, orgId) : undefined,
        or(
          inArray(project.orgId, db.select({ id: orgMember.orgId }).from(orgMember).where(eq(orgMember.userId, userId))),
          inArray(project.id, db.select({ id: projectMember.projectId }).from(projectMember).where(eq(projectMember.userId, userId))),
        ),
      ),
    )
    .orderBy(asc(project.createdAt));
  return rows.flatMap((r) => {
    const role = strongerRole(r.orgRole as Role | null, r.grantRole as Role | null);
    return role ? [{ project: r.project, role, memberCount: Number(r.memberCount), instanceCount: Number(r.instanceCount) }] : [];
  });
}

export async function updateProject(db: Database, projectId: string, patch: { name?: string; environment?: string; status?: "active" | "paused" }, also: Also = NOTHING) {
  const update = db
    .update(project)
    .set({ ...patch, updatedAt: new Date() })
    .where(and(eq(project.id, projectId), isNull(project.deletedAt)))
    .returning();
  // The caller loaded the project: it exists unless deleted since, when the batch writes nothing and answers 404.
  const alive = await db.query.project.findFirst({ where: and(eq(project.id, projectId), isNull(project.deletedAt)), columns: { id: true } });
  if (!alive) throw notFound("Project", "project_not_found");
  const [row] = await withAlso(db, update, also(projectId));
  if (!row) throw notFound("Project", "project_not_found");
  return row;
}

/** Deletes a project that has no live instances (their VMs would be left without an owner). */
export async function softDeleteProject(db: Database, projectId: string, also: Also = NOTHING) {
  const [live] = await db.select({ n: count() }).from(instance).where(and(eq(instance.projectId, projectId), isNull(instance.deletedAt), sql`${instance.status} <> 'deleted'`));
  if (live && live.n > 0) throw conflict("project_not_empty", `The project still has ${live.n} instance${live.n === 1 ? "" : "s"}: delete them first`);
  await withAlso(db, db.update(project).set({ deletedAt: new Date(), updatedAt: new Date() }).where(eq(project.id, projectId)), also(projectId));
}

/** `memberCount` and `instanceCount` of one project, as the list computes them. */
export async function projectCounts(db: Database, p: ProjectRow): Promise<{ memberCount: number; instanceCount: number }> {
  const [row] = await db.select({ memberCount, instanceCount }).from(project).where(eq(project.id, p.id));
  return { memberCount: Number(row?.memberCount ?? 0), instanceCount: Number(row?.instanceCount ?? 0) };
}

// ------------------------------------------------------------ project grants

export async function projectGrantRole(db: Database, projectId: string, userId: string): Promise<Role | null> {
  const row = await db.query.projectMember.findFirst({
    where: and(eq(projectMember.projectId, projectId), eq(projectMember.userId, userId)),
    columns: { role: true },
  });
  return row?.role ?? null;
}

/**
 * Org members (with their org role), project-only grants, and invitations not yet accepted,
 * as Suble lists them ("with their role and acceptance status").
 */
export async function listProjectMembers(db: Database, p: ProjectRow) {
  const [orgMembers, grants, pending] = await db.batch([
    db
      .select({ userId: user.id, email: user.email, fullname: user.name, role: orgMember.role })
      .from(orgMember)
      .innerJoin(user, eq(user.id, orgMember.userId))
      .where(eq(orgMember.orgId, p.orgId))
      .orderBy(asc(orgMember.createdAt)),
    db
      .select({ userId: user.id, email: user.email, fullname: user.name, role: projectMember.role })
      .from(projectMember)
      .innerJoin(user, eq(user.id, projectMember.userId))
      .where(eq(projectMember.projectId, p.id))
      .orderBy(desc(projectMember.createdAt)),
    db
      .select({ email: invitation.email, role: invitation.role })
      .from(invitation)
      .where(and(eq(invitation.projectId, p.id), eq(invitation.status, "pending"), gt(invitation.expiresAt, new Date())))
      .orderBy(desc(invitation.createdAt)),
  ]);
  type Member = { userId: string | null; email: string; fullname: string; role: string; source: "org" | "project"; status: "accepted" | "pending" };
  const seen = new Map<string, Member>();
  for (const m of orgMembers) seen.set(m.userId, { ...m, source: "org", status: "accepted" });
  // A grant stronger than the org seat is the role the person has here.
  for (const g of grants) {
    const existing = seen.get(g.userId);
    if (!existing || strongerRole(existing.role as Role, g.role) !== existing.role) seen.set(g.userId, { ...g, source: "project", status: "accepted" });
  }
  const accepted = new Set([...seen.values()].map((m) => m.email));
  const invited = pending
    .filter((i) => !accepted.has(i.email))
    .map((i): Member => ({ userId: null, email: i.email, fullname: "", role: i.role, source: "project", status: "pending" }));
  return [...seen.values(), ...invited];
}

/** 409 already_member when the address already reaches the project as strongly as a grant would. */
export async function assertNotProjectMember(db: Database, p: ProjectRow, email: string) {
  const target = await db.query.user.findFirst({ where: eq(user.email, email.toLowerCase()), columns: { id: true } });
  if (!target) return;
  const inOrg = await db.query.orgMember.findFirst({ where: and(eq(orgMember.orgId, p.orgId), eq(orgMember.userId, target.id)) });
  const granted = await projectGrantRole(db, p.id, target.id);
  if (granted || (inOrg && !["viewer", "developer"].includes(inOrg.role))) {
    throw conflict("already_member", "That user is already a member of the project");
  }
}

/** Changes a grant's role; false when the address has no grant here. */
export async function updateProjectMember(db: Database, p: ProjectRow, email: string, role: Exclude<Role, "owner">, also: Also = NOTHING) {
  const grant = await grantOf(db, p, email);
  if (!grant) return false;
  await withAlso(db, db.update(projectMember).set({ role }).where(eq(projectMember.id, grant.id)), also(grant.id));
  return true;
}

/** The project grant of an address, if it has one here. */
async function grantOf(db: Database, p: ProjectRow, email: string) {
  const [grant] = await db
    .select({ id: projectMember.id })
    .from(projectMember)
    .innerJoin(user, eq(user.id, projectMember.userId))
    .where(and(eq(projectMember.projectId, p.id), eq(user.email, email.toLowerCase())));
  return grant;
}

/** Removes a grant; false when the address has none here. */
export async function removeProjectMember(db: Database, p: ProjectRow, email: string, also: Also = NOTHING) {
  const grant = await grantOf(db, p, email);
  if (!grant) return false;
  await withAlso(db, db.delete(projectMember).where(eq(projectMember.id, grant.id)), also(grant.id));
  return true;
}

export function presentProject(p: ProjectRow, extra: { role?: string; memberCount?: number; instanceCount?: number; orgSlug?: string } = {}) {
  return {
    id: p.id,
    uid: p.id,
    slug: p.slug,
    name: p.name,
    org_id: p.orgId,
    orgId: p.orgId,
    ...(extra.orgSlug ? { org_slug: extra.orgSlug } : {}),
    status: p.status,
    environment: p.environment,
    region: p.region,
    primaryRegion: p.region,
    category: p.category,
    ...(extra.role ? { role: extra.role } : {}),
    instanceCount: extra.instanceCount ?? 0,
    ...(extra.memberCount !== undefined ? { memberCount: extra.memberCount } : {}),
    createdAt: p.createdAt.toISOString(),
    created_at: p.createdAt.toISOString(),
    updated_at: p.updatedAt.toISOString(),
  };
}

