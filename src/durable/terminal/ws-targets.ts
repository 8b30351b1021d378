/**
 * Where a `/ws/terminal` session runs, decided from the caller's grant (resolved by the route
 * when the socket opened): `connect_ssh` needs `command:exec` and picks the host that runs the
 * SSH client as `/ssh/connect` does; `create_pty` needs `host:manage` (it is root on the host)
 * and picks the org's Docker host heard from last. Refusals are ApiErrors, sent as error frames.
 */
import { and, desc, eq, isNull } from "drizzle-orm";
import type { Database } from "../../db/client";
import { host } from "../../db/schema";
import type { Env } from "../../env";
import { ApiError, badRequest, conflict, forbidden, notFound } from "../../lib/errors";
import { hostStatus } from "../../services/hosts";
import { clientHost, createProfile, findProfile, type SshProfileRow } from "../../services/ssh";
import type { WsClientMessage, WsGrant } from "./ws-protocol";

type ConnectSsh = Extract<WsClientMessage, { type: "connect_ssh" }>;
type CreatePty = Extract<WsClientMessage, { type: "create_pty" }>;

function orgGrant(grant: WsGrant, orgId: string | null) {
  return orgId ? grant.orgs.find((o) => o.id === orgId) : undefined;
}

/** The profile to connect with (a saved one, or inline credentials kept as an unlisted profile until the agent used them) and the host whose agent connects. */
export async function sshTarget(db: Database, env: Env, grant: WsGrant, m: ConnectSsh): Promise<{ profile: SshProfileRow; via: string }> {
  if (m.profile_id) {
    const row = await findProfile(db, m.profile_id);
    const org = row && row.userId === grant.userId && !row.adhoc ? orgGrant(grant, row.orgId) : undefined;
    if (!row || !org) throw notFound("SSH profile", "profile_not_found");
    if (!org.commandExec) throw forbidden("Your role in the profile's org does not allow command:exec");
    return { profile: row, via: await clientHost(db, env, row.orgId, m.host_id ?? row.viaHostId) };
  }
  const c = m.config;
  if (!c) throw badRequest("invalid_request", "connect_ssh needs config {host, port, username, password or private_key} or a saved profile_id");
  if (c.key_path !== undefined) {
    throw badRequest("invalid_request", "key_path names a file on your device, which the server cannot read: send the key itself as config.private_key, or use a saved profile_id");
  }
  if (!c.password && !c.private_key) throw badRequest("invalid_request", "connect_ssh needs config.password or config.private_key");
  const org = orgGrant(grant, grant.defaultOrgId);
  if (!org) throw notFound("Organization");
  if (!org.commandExec) throw forbidden("Your role does not allow command:exec");
  const via = await clientHost(db, env, org.id, m.host_id ?? null);
  const profile = await createProfile(
    db,
    env,
    org.id,
    grant.userId,
    { name: `${c.username}@${c.host}`, host: c.host, port: c.port, username: c.username, password: c.password, private_key: c.private_key, passphrase: c.passphrase },
    { adhoc: true },
  );
  if (c.host_key_fingerprint) profile.hostKeyFingerprint = c.host_key_fingerprint;
  return { profile, via };
}

/** The Docker host a host shell runs on: the one named (in an org where the caller may manage hosts), else the default org's online Docker host heard from last. */
export async function ptyHost(db: Database, env: Env, grant: WsGrant, m: CreatePty): Promise<{ hostId: string; orgId: string }> {
  if (m.host_id) {
    const [row] = await db.select().from(host).where(and(eq(host.id, m.host_id), isNull(host.deletedAt)));
    const org = row ? orgGrant(grant, row.orgId) : undefined;
    if (!row || !org) throw notFound("Host", "host_not_found");
    if (!org.hostManage) throw forbidden("A host shell is root on the host: it needs host:manage (owner, admin)");
    if (row.kind !== "docker") throw badRequest("invalid_request", "A host shell runs on a Docker host; this host is not one");
    return { hostId: row.id, orgId: row.orgId };
  }
  const org = orgGrant(grant, grant.defaultOrgId);
  if (!org) throw notFound("Organization");
  if (!org.hostManage) throw forbidden("A host shell is root on the host: it needs host:manage (owner, admin)");
  const rows = await db
    .select()
    .from(host)
    .where(and(eq(host.orgId, org.id), eq(host.kind, "docker"), isNull(host.deletedAt)))
    .orderBy(desc(host.lastSeenAt));
  const online = rows.find((r) => hostStatus(env, r) === "online");
  if (!online) throw conflict("no_host_available", "No Docker host of the org is online; name one with host_id or start an agent");
  return { hostId: online.id, orgId: org.id };
}

/** An error frame's code and message for whatever went wrong; never a stack or a secret. */
export function errorFrame(err: unknown): { type: "error"; code: string; message: string } {
  if (err instanceof ApiError) return { type: "error", code: err.code, message: err.message };
  return { type: "error", code: "internal_error", message: "The session could not be started" };
}
