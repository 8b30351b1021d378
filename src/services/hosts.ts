/**
 * Hosts: enrolment by single-use join token, the agent's credential, liveness,
 * and the facts the agent reports. Tokens and credentials are stored as hashes.
 */
import { and, desc, eq, isNull } from "drizzle-orm";
import type { Database } from "../db/client";
import { host, type HostKind } from "../db/schema";
import { hostMailbox } from "../durable/clients";
import type { Env } from "../env";
import { sha256Hex, newSecret } from "../lib/crypto";
import { newId } from "../lib/ids";
import type { HostFacts } from "../protocol/agent";
import { type Also, NOTHING, withAlso } from "./audit";
import { agentSettings } from "./host-settings";

export type HostRow = typeof host.$inferSelect;

export const JOIN_TOKEN_PREFIX = "bjt_";
export const HOST_CREDENTIAL_PREFIX = "bha_";
/** A join token is good for one exchange within this time. */
export const JOIN_TOKEN_TTL_MS = 60 * 60 * 1000;

async function newJoinToken() {
  const token = newSecret(JOIN_TOKEN_PREFIX);
  return { token, hash: await sha256Hex(token), expiresAt: new Date(Date.now() + JOIN_TOKEN_TTL_MS) };
}

export async function createHost(
  db: Database,
  input: { orgId: string; name: string; kind: HostKind; region?: string | null; labels?: Record<string, string>; createdBy: string | null },
  also: Also = NOTHING,
) {
  const join = await newJoinToken();
  const id = newId("hst");
  const insert = db
    .insert(host)
    .values({
      id,
      orgId: input.orgId,
      name: input.name,
      kind: input.kind,
      region: input.region ?? null,
      labels: input.labels ?? {},
      joinTokenHash: join.hash,
      joinTokenExpiresAt: join.expiresAt,
      createdBy: input.createdBy,
    })
    .returning();
  const [row] = await withAlso(db, insert, also(id));
  return { row: row!, joinToken: join.token, joinTokenExpiresAt: join.expiresAt };
}

/** A fresh join token for a host (re-installing its agent); the old credential keeps working until the exchange. */
export async function rotateJoinToken(db: Database, hostId: string, also: Also = NOTHING) {
  const join = await newJoinToken();
  await withAlso(db, db.update(host).set({ joinTokenHash: join.hash, joinTokenExpiresAt: join.expiresAt }).where(eq(host.id, hostId)), also(hostId));
  return { joinToken: join.token, joinTokenExpiresAt: join.expiresAt };
}

export function listHosts(db: Database, orgId: string) {
  return db.select().from(host).where(and(eq(host.orgId, orgId), isNull(host.deletedAt))).orderBy(desc(host.createdAt));
}

/** A live host of the org; `includeDeleted` also finds a deleted one (its jobs stay readable). */
export async function findHost(db: Database, orgId: string, id: string, opts: { includeDeleted?: boolean } = {}) {
  const [row] = await db
    .select()
    .from(host)
    .where(and(eq(host.id, id), eq(host.orgId, orgId), opts.includeDeleted ? undefined : isNull(host.deletedAt)));
  return row ?? null;
}

/** Deletes a host: its credential stops working on the next request and its socket is closed now. */
export async function deleteHost(db: Database, env: Env, row: HostRow, also: Also = NOTHING) {
  const deleted = db.update(host).set({ deletedAt: new Date(), credentialHash: null, joinTokenHash: null, joinTokenExpiresAt: null }).where(eq(host.id, row.id));
  await withAlso(db, deleted, also(row.id));
  await hostMailbox(env, row.id).revoke();
}

export type JoinOutcome =
  | { ok: true; host: HostRow; credential: string }
  | { ok: false; code: "invalid_join_token" | "join_token_expired"; message: string };

/** Exchanges a join token for the host's credential, once. */
export async function joinHost(db: Database, token: string, agentVersion: string, facts: HostFacts | undefined): Promise<JoinOutcome> {
  const hash = await sha256Hex(token);
  const [row] = await db.select().from(host).where(and(eq(host.joinTokenHash, hash), isNull(host.deletedAt)));
  if (!row) return { ok: false, code: "invalid_join_token", message: "This join token is unknown or was already used; create a new one for the host" };
  if (!row.joinTokenExpiresAt || row.joinTokenExpiresAt.getTime() <= Date.now()) {
    return { ok: false, code: "join_token_expired", message: "This join token has expired; create a new one for the host" };
  }
  const credential = newSecret(HOST_CREDENTIAL_PREFIX);
  const now = new Date();
  // Clearing the token hash in the same statement that checks it makes the exchange single-use under races.
  const [updated] = await db
    .update(host)
    .set({
      credentialHash: await sha256Hex(credential),
      joinTokenHash: null,
      joinTokenExpiresAt: null,
      joinedAt: now,
      lastSeenAt: now,
      agentVersion,
      ...(facts ? { facts } : {}),
    })
    .where(and(eq(host.id, row.id), eq(host.joinTokenHash, hash)))
    .returning();
  if (!updated) return { ok: false, code: "invalid_join_token", message: "This join token was already used" };
  return { ok: true, host: updated, credential };
}

export async function hostByCredential(db: Database, credential: string): Promise<HostRow | null> {
  if (!credential.startsWith(HOST_CREDENTIAL_PREFIX)) return null;
  const [row] = await db.select().from(host).where(and(eq(host.credentialHash, await sha256Hex(credential)), isNull(host.deletedAt)));
  return row ?? null;
}

export async function recordHeartbeat(db: Database, hostId: string, agentVersion: string, facts?: HostFacts) {
  await db
    .update(host)
    .set({ lastSeenAt: new Date(), agentVersion, ...(facts ? { facts } : {}) })
    .where(and(eq(host.id, hostId), isNull(host.deletedAt)));
}

/** Online while the agent was heard from within two heartbeats and a grace; a host whose agent never joined is offline. */
export function hostStatus(env: Env, row: HostRow): "online" | "offline" {
  if (!row.joinedAt) return "offline";
  const seen = row.lastSeenAt?.getTime() ?? 0;
  return Date.now() - seen <= agentSettings(env).offlineAfterMs ? "online" : "offline";
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function presentHost(env: Env, row: HostRow) {
  return {
    id: row.id,
    uid: row.id,
    org_id: row.orgId,
    name: row.name,
    kind: row.kind,
    region: row.region,
    labels: row.labels,
    status: hostStatus(env, row),
    last_seen_at: iso(row.lastSeenAt),
    joined_at: iso(row.joinedAt),
    agent_version: row.agentVersion,
    facts: row.facts ?? null,
    created_at: row.createdAt.toISOString(),
  };
}
