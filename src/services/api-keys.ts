/**
 * API keys: `dkp_` personal keys act as their user; `pak_` org keys act for one
 * org, optionally bound to one project. Only a SHA-256 of the secret is stored;
 * the secret is returned once, at creation.
 */
import { and, desc, eq, isNull, lt, or } from "drizzle-orm";
import type { Database } from "../db/client";
import { minRole, strongerRole } from "../auth/permissions";
import { apiKey, type ApiKeyScope, orgMember, projectMember, type Role } from "../db/schema";
import { newSecret, sha256Hex } from "../lib/crypto";
import { newId } from "../lib/ids";
import { type Also, NOTHING, withAlso } from "./audit";

export const KEY_PREFIXES = { personal: "dkp_", org: "pak_" } as const;
const SHOWN_PREFIX_LENGTH = 16;
const LAST_USED_RESOLUTION_MS = 60_000;

export type ApiKeyRow = typeof apiKey.$inferSelect;

export function looksLikeApiKey(token: string): boolean {
  return token.startsWith(KEY_PREFIXES.personal) || token.startsWith(KEY_PREFIXES.org);
}

export async function createApiKey(
  db: Database,
  input: {
    kind: "personal" | "org";
    userId: string;
    orgId?: string | null;
    projectId?: string | null;
    name: string;
    scope?: ApiKeyScope;
    permissions?: number | null;
    expiresInDays?: number | null;
  },
  also: Also = NOTHING,
): Promise<{ row: ApiKeyRow; secret: string }> {
  const secret = newSecret(KEY_PREFIXES[input.kind]);
  const id = newId("apk");
  const insert = db
    .insert(apiKey)
    .values({
      id,
      kind: input.kind,
      userId: input.userId,
      orgId: input.orgId ?? null,
      projectId: input.projectId ?? null,
      name: input.name,
      prefix: secret.slice(0, SHOWN_PREFIX_LENGTH),
      hash: await sha256Hex(secret),
      scope: input.scope ?? "full",
      permissions: input.permissions ?? null,
      expiresAt: input.expiresInDays ? new Date(Date.now() + input.expiresInDays * 86_400_000) : null,
    })
    .returning();
  const [row] = await withAlso(db, insert, also(id));
  return { row: row!, secret };
}

export type KeyCheck =
  | { ok: true; row: ApiKeyRow; makerRole: Role | null }
  | { ok: false; reason: string };

/**
 * Looks a presented secret up, with its maker's role now, in one round trip: revocation,
 * expiry and the maker losing access take effect on the very next check (the middleware
 * keeps an accepted key for a few seconds, see auth/credential-cache.ts).
 *
 * An org key never has more than its maker has now: its role is the maker's current
 * role in the key's org (for a project key, the stronger of that and the maker's grant on
 * the project), capped at admin. A key whose maker has no role there any more is refused
 * until an owner adopts it.
 */
export async function verifyApiKey(db: Database, secret: string): Promise<KeyCheck> {
  const [found] = await db
    .select({ key: apiKey, memberRole: orgMember.role, grantRole: projectMember.role })
    .from(apiKey)
    .leftJoin(orgMember, and(eq(orgMember.orgId, apiKey.orgId), eq(orgMember.userId, apiKey.userId)))
    .leftJoin(projectMember, and(eq(projectMember.projectId, apiKey.projectId), eq(projectMember.userId, apiKey.userId)))
    .where(eq(apiKey.hash, await sha256Hex(secret)))
    .limit(1);
  if (!found) return { ok: false, reason: "Invalid API key" };
  const row = found.key;
  if (row.revokedAt) return { ok: false, reason: "API key has been revoked" };
  if (row.expiresAt && row.expiresAt.getTime() <= Date.now()) return { ok: false, reason: "API key has expired" };
  if (row.kind === "personal") return { ok: true, row, makerRole: null };
  const makerRole = minRole(strongerRole(found.memberRole, found.grantRole), "admin");
  if (!makerRole) {
    return { ok: false, reason: "The person who made this API key no longer has access; an org owner can adopt the key to keep it working" };
  }
  return { ok: true, row, makerRole };
}

/**
 * An owner takes a key over (someone who made it is leaving): from now on it answers to
 * the owner's access. Returns the key, or null when there is no live key of that id in the org.
 */
export async function adoptApiKey(db: Database, id: string, orgId: string, ownerId: string, also: Also = NOTHING): Promise<ApiKeyRow | null> {
  const live = and(eq(apiKey.id, id), eq(apiKey.kind, "org"), eq(apiKey.orgId, orgId), isNull(apiKey.revokedAt));
  if (!(await db.query.apiKey.findFirst({ where: live, columns: { id: true } }))) return null;
  const [row] = await withAlso(db, db.update(apiKey).set({ userId: ownerId }).where(live).returning(), also(id));
  return row ?? null;
}

/** When this isolate last recorded each key's use, so a busy key costs no write at all most of the time. */
const touchedAt = new Map<string, number>();

/** Records use, at most once a minute per key, so a busy CI key does not write on every call. */
export async function touchApiKey(db: Database, id: string): Promise<void> {
  const now = Date.now();
  if (now - (touchedAt.get(id) ?? 0) < LAST_USED_RESOLUTION_MS) return;
  if (touchedAt.size > 10_000) touchedAt.clear();
  touchedAt.set(id, now);
  await db
    .update(apiKey)
    .set({ lastUsedAt: new Date(now) })
    .where(and(eq(apiKey.id, id), or(isNull(apiKey.lastUsedAt), lt(apiKey.lastUsedAt, new Date(now - LAST_USED_RESOLUTION_MS)))));
}

export function listApiKeys(db: Database, where: { kind: "personal"; userId: string } | { kind: "org"; orgId: string; projectId?: string | null }) {
  const filter =
    where.kind === "personal"
      ? and(eq(apiKey.kind, "personal"), eq(apiKey.userId, where.userId))
      : and(
          eq(apiKey.kind, "org"),
          eq(apiKey.orgId, where.orgId),
          where.projectId === undefined ? undefined : where.projectId === null ? isNull(apiKey.projectId) : eq(apiKey.projectId, where.projectId),
        );
  return db.select().from(apiKey).where(and(filter, isNull(apiKey.revokedAt))).orderBy(desc(apiKey.createdAt));
}

/** Revokes a live key matched by `where`; false when there is none (unknown, other tenant, or already revoked). */
export async function revokeApiKey(
  db: Database,
  id: string,
  where: { kind: "personal"; userId: string } | { kind: "org"; orgId: string; projectId?: string },
  also: Also = NOTHING,
): Promise<boolean> {
  const owner =
    where.kind === "personal"
      ? and(eq(apiKey.kind, "personal"), eq(apiKey.userId, where.userId))
      : and(eq(apiKey.kind, "org"), eq(apiKey.orgId, where.orgId), where.projectId ? eq(apiKey.projectId, where.projectId) : undefined);
  const live = and(eq(apiKey.id, id), owner, isNull(apiKey.revokedAt));
  if (!(await db.query.apiKey.findFirst({ where: live, columns: { id: true } }))) return false;
  await withAlso(db, db.update(apiKey).set({ revokedAt: new Date() }).where(live), also(id));
  return true;
}

/** The public shape of a key: never the hash, the secret only when just created. */
export function presentApiKey(row: ApiKeyRow, secret?: string) {
  return {
    id: row.id,
    uid: row.id,
    name: row.name,
    prefix: row.prefix,
    key_prefix: row.prefix,
    scope: row.scope,
    ...(row.permissions !== null ? { permissions: row.permissions } : {}),
    org_id: row.orgId,
    project_id: row.projectId,
    ...(row.kind === "org" ? { created_by: row.userId } : {}),
    expires_at: row.expiresAt?.toISOString() ?? null,
    expiresAt: row.expiresAt?.toISOString() ?? null,
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
    createdAt: row.createdAt.toISOString(),
    ...(secret ? { key: secret, token: secret } : {}),
  };
}
