/** Orgs and their members. Every function names the org it works in. */
import { and, asc, count, eq, isNull } from "drizzle-orm";
import type { Database } from "../db/client";
import { org, orgMember, project, user, type Role } from "../db/schema";
import { conflict, notFound } from "../lib/errors";
import { newId } from "../lib/ids";
import { availableSlug } from "../lib/slug";
import { type Also, NOTHING, withAlso } from "./audit";
import { projectValues } from "./projects";

export type OrgRow = typeof org.$inferSelect;

const slugTaken = (db: Database) => async (slug: string) =>
  Boolean(await db.query.org.findFirst({ where: eq(org.slug, slug), columns: { id: true } }));

export async function createOrg(
  db: Database,
  input: { name: string; ownerId: string; personal?: boolean; residency?: string; defaultRegion?: string },
  also: Also = NOTHING,
): Promise<OrgRow> {
  // Two creates with one name can both find the slug free; the unique index decides, and the loser picks again.
  for (let attempt = 0; ; attempt++) {
    const slug = await availableSlug(input.name, slugTaken(db), "org");
    const id = newId("org");
    try {
      const [[row]] = await db.batch([
        db
          .insert(org)
          .values({
            id,
            slug,
            name: input.name,
            personal: input.personal ?? false,
            residency: input.residency,
            defaultRegion: input.defaultRegion,
            createdBy: input.ownerId,
          })
          .returning(),
        db.insert(orgMember).values({ id: newId("mem"), orgId: id, userId: input.ownerId, role: "owner" }),
        ...also(id),
      ]);
      return row!;
    } catch (err) {
      if (!isSlugConflict(err)) throw err;
      if (attempt >= 2) throw conflict("slug_taken", `An organization with slug "${slug}" already exists`);
    }
  }
}

function isSlugConflict(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (/UNIQUE constraint failed: org\.slug/.test(e.message)) return true;
  }
  return false;
}

/** The org and default project every new account starts with. */
export async function createPersonalOrg(db: Database, u: { id: string; name: string; email: string }) {
  const who = u.name?.trim() || u.email.split("@")[0]!;
  const personal = await createOrg(db, { name: who, ownerId: u.id, personal: true });
  await db.insert(project).values(projectValues({ orgId: personal.id, name: "My Project", slug: "my-project", createdBy: u.id }));
  return personal;
}

export function findOrgBySlug(db: Database, slug: string) {
  return db.query.org.findFirst({ where: and(eq(org.slug, slug), eq(org.status, "active")) });
}

export function findOrgById(db: Database, id: string) {
  return db.query.org.findFirst({ where: and(eq(org.id, id), eq(org.status, "active")) });
}

export async function membershipRole(db: Database, orgId: string, userId: string): Promise<Role | null> {
  const row = await db.query.orgMember.findFirst({
    where: and(eq(orgMember.orgId, orgId), eq(orgMember.userId, userId)),
    columns: { role: true },
  });
  return row?.role ?? null;
}

export function listUserOrgs(db: Database, userId: string) {
  return db
    .select({ org, role: orgMember.role })
    .from(orgMember)
    .innerJoin(org, eq(org.id, orgMember.orgId))
    .where(and(eq(orgMember.userId, userId), eq(org.status, "active")))
    .orderBy(asc(org.createdAt));
}

export async function updateOrg(
  db: Database,
  orgId: string,
  patch: { name?: string; defaultRegion?: string; ipAllowlist?: string[]; webhookUrl?: string | null },
  also: Also = NOTHING,
): Promise<OrgRow> {
  const [row] = await withAlso(db, db.update(org).set({ ...patch, updatedAt: new Date() }).where(eq(org.id, orgId)).returning(), also(orgId));
  return row!;
}

/** Deleting an org removes its members, projects and keys (cascade); a personal org goes only with its user. */
export async function deleteOrg(db: Database, target: OrgRow, also: Also = NOTHING): Promise<void> {
  if (target.personal) throw conflict("personal_org", "A personal org cannot be deleted");
  await withAlso(db, db.delete(org).where(eq(org.id, target.id)), also(target.id));
}

export function listMembers(db: Database, orgId: string) {
  return db
    .select({
      id: orgMember.id,
      userId: user.id,
      email: user.email,
      name: user.name,
      role: orgMember.role,
      joinedAt: orgMember.createdAt,
    })
    .from(orgMember)
    .innerJoin(user, eq(user.id, orgMember.userId))
    .where(eq(orgMember.orgId, orgId))
    .orderBy(asc(orgMember.createdAt));
}

/** A member addressed by membership id or user id. */
export async function findMember(db: Database, orgId: string, id: string) {
  const byMembership = await db.query.orgMember.findFirst({ where: and(eq(orgMember.orgId, orgId), eq(orgMember.id, id)) });
  return byMembership ?? (await db.query.orgMember.findFirst({ where: and(eq(orgMember.orgId, orgId), eq(orgMember.userId, id)) }));
}

async function ownerCount(db: Database, orgId: string): Promise<number> {
  const [row] = await db
    .select({ n: count() })
    .from(orgMember)
    .where(and(eq(orgMember.orgId, orgId), eq(orgMember.role, "owner")));
  return row?.n ?? 0;
}

export async function changeMemberRole(db: Database, orgId: string, memberId: string, role: Role, also: Also = NOTHING) {
  const member = await findMember(db, orgId, memberId);
  if (!member) throw notFound("Member");
  if (member.role === "owner" && role !== "owner" && (await ownerCount(db, orgId)) <= 1) {
    throw conflict("last_owner", "The last owner cannot be demoted; make someone else owner first");
  }
  await withAlso(db, db.update(orgMember).set({ role }).where(eq(orgMember.id, member.id)), also(member.userId));
  return { ...member, role };
}

export async function removeMember(db: Database, orgId: string, memberId: string, also: Also = NOTHING) {
  const member = await findMember(db, orgId, memberId);
  if (!member) throw notFound("Member");
  if (member.role === "owner" && (await ownerCount(db, orgId)) <= 1) {
    throw conflict("last_owner", "The last owner cannot be removed; make someone else owner first");
  }
  await withAlso(db, db.delete(orgMember).where(eq(orgMember.id, member.id)), also(member.userId));
  return member;
}

export async function orgProjectCount(db: Database, orgId: string): Promise<number> {
  const [row] = await db
    .select({ n: count() })
    .from(project)
    .where(and(eq(project.orgId, orgId), isNull(project.deletedAt)));
  return row?.n ?? 0;
}

export function presentOrg(row: OrgRow) {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    planId: row.planId,
    residency: row.residency,
    defaultRegion: row.defaultRegion,
    ipAllowlist: row.ipAllowlist,
    webhookUrl: row.webhookUrl,
    status: row.status,
    personal: row.personal,
    createdAt: row.createdAt.toISOString(),
  };
}
