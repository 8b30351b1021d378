/**
 * DevPocket's SSH profiles and commands. A profile is one person's, within one org: the org's
 * hosts run the SSH client (the agent, with ssh2), so a server reachable only from behind a
 * host's NAT works. Credentials are encrypted at rest and go only to the agent holding the
 * lease. Commands run over the job path (Queue → HostDO → agent) as `ssh.exec`; their output
 * is kept in D1 up to COMMAND_OUTPUT_MAX_BYTES a stream, with a flag when it was cut.
 */
import { and, count, desc, eq, inArray, isNull, or, type SQL, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { command, type CommandStatus, host, sshProfile } from "../db/schema";
import type { JobRecord } from "../durable/project-do";
import { hostScope, projectJobs } from "../durable/clients";
import type { Env } from "../env";
import { isTerminal } from "../jobs/states";
import { ApiError, badRequest, conflict, notFound } from "../lib/errors";
import { newId } from "../lib/ids";
import { decryptJson, encryptJson } from "../lib/secrets";
import { SSH_FAILURES, type CommandOutputReport, type SshFailure, type SshSecrets } from "../protocol/agent";
import { agentSettings } from "./host-settings";
import { hostStatus } from "./hosts";

export type SshProfileRow = typeof sshProfile.$inferSelect;
export type CommandRow = typeof command.$inferSelect;

const DEFAULT_OUTPUT_MAX_BYTES = 64 * 1024;

export function commandOutputMaxBytes(env: Env): number {
  const n = Number(env.COMMAND_OUTPUT_MAX_BYTES);
  return Number.isInteger(n) && n >= 1024 && n <= 1024 * 1024 ? n : DEFAULT_OUTPUT_MAX_BYTES;
}

// ---------------------------------------------------------------- profiles

export interface ProfileInput {
  name: string;
  host: string;
  port: number;
  username: string;
  password?: string;
  private_key?: string;
  passphrase?: string;
  host_id?: string | null;
}

/**
 * A private key as DevPocket sends it (base64 of the key file) or as the file's text. Answers
 * the text; anything that is not a PEM/OpenSSH key block is bad input.
 */
export function privateKeyText(value: string): string {
  const trimmed = value.trim();
  let text = trimmed;
  if (!trimmed.startsWith("-----BEGIN")) {
    try {
      text = atob(trimmed.replace(/\s+/g, "")).trim();
    } catch {
      text = "";
    }
  }
  if (!/^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]+-----END [A-Z0-9 ]*PRIVATE KEY-----$/.test(text)) {
    throw badRequest("invalid_request", "private_key must be an OpenSSH or PEM private key, as text or base64 of the key file", {
      issues: [{ path: ["private_key"], message: "not a private key" }],
    });
  }
  return `${text}\n`;
}

async function sealSecrets(env: Env, input: Pick<ProfileInput, "password" | "private_key" | "passphrase">) {
  const secrets: SshSecrets = {};
  if (input.password) secrets.password = input.password;
  if (input.private_key) secrets.private_key = privateKeyText(input.private_key);
  if (input.passphrase) secrets.passphrase = input.passphrase;
  return {
    secretCiphertext: Object.keys(secrets).length ? await encryptJson(env, secrets) : null,
    hasPassword: Boolean(secrets.password),
    hasPrivateKey: Boolean(secrets.private_key),
  };
}

export async function readProfileSecrets(env: Env, row: Pick<SshProfileRow, "secretCiphertext">): Promise<SshSecrets> {
  return row.secretCiphertext ? decryptJson<SshSecrets>(env, row.secretCiphertext) : {};
}

/** The host named to run the client must be a live host of the same org. */
async function checkViaHost(db: Database, orgId: string, hostId: string | null | undefined) {
  if (!hostId) return;
  const [row] = await db.select({ id: host.id }).from(host).where(and(eq(host.id, hostId), eq(host.orgId, orgId), isNull(host.deletedAt)));
  if (!row) throw notFound("Host", "host_not_found");
}

export async function createProfile(db: Database, env: Env, orgId: string, userId: string, input: ProfileInput, opts: { adhoc?: boolean } = {}) {
  await checkViaHost(db, orgId, input.host_id);
  const [row] = await db
    .insert(sshProfile)
    .values({
      id: newId("ssh"),
      orgId,
      userId,
      name: input.name,
      host: input.host,
      port: input.port,
      username: input.username,
      viaHostId: input.host_id ?? null,
      adhoc: opts.adhoc ?? false,
      ...(await sealSecrets(env, input)),
    })
    .returning();
  return row!;
}

export async function updateProfile(
  db: Database,
  env: Env,
  row: SshProfileRow,
  input: Partial<ProfileInput> & { reset_host_key?: boolean },
) {
  if (input.host_id !== undefined) await checkViaHost(db, row.orgId, input.host_id);
  const changesSecret = input.password !== undefined || input.private_key !== undefined || input.passphrase !== undefined;
  const current = changesSecret ? await readProfileSecrets(env, row) : {};
  // Another server is another key: a new address (or an explicit reset) drops the pin.
  const movesServer = (input.host !== undefined && input.host !== row.host) || (input.port !== undefined && input.port !== row.port);
  const [updated] = await db
    .update(sshProfile)
    .set({
      ...(input.name !== undefined && { name: input.name }),
      ...(input.host !== undefined && { host: input.host }),
      ...(input.port !== undefined && { port: input.port }),
      ...(input.username !== undefined && { username: input.username }),
      ...(input.host_id !== undefined && { viaHostId: input.host_id }),
      ...(changesSecret &&
        (await sealSecrets(env, {
          password: input.password === undefined ? current.password : input.password || undefined,
          private_key: input.private_key === undefined ? current.private_key : input.private_key || undefined,
          passphrase: input.passphrase === undefined ? current.passphrase : input.passphrase || undefined,
        }))),
      ...((movesServer || input.reset_host_key) && { hostKeyFingerprint: null, hostKeyPinnedAt: null }),
      updatedAt: new Date(),
    })
    .where(eq(sshProfile.id, row.id))
    .returning();
  return updated!;
}

export function listProfiles(db: Database, orgIds: string[], userId: string) {
  if (!orgIds.length) return Promise.resolve([]);
  return db
    .select()
    .from(sshProfile)
    .where(and(inArray(sshProfile.orgId, orgIds), eq(sshProfile.userId, userId), eq(sshProfile.adhoc, false)))
    .orderBy(desc(sshProfile.createdAt));
}

/** A profile by id, with no tenant filter: the route checks the org and that it is the caller's. */
export async function findProfile(db: Database, id: string) {
  const [row] = await db.select().from(sshProfile).where(eq(sshProfile.id, id));
  return row ?? null;
}

export async function deleteProfile(db: Database, id: string) {
  await db.delete(sshProfile).where(eq(sshProfile.id, id));
}

export function presentProfile(row: SshProfileRow) {
  return {
    id: row.id,
    name: row.name,
    host: row.host,
    port: row.port,
    username: row.username,
    org_id: row.orgId,
    host_id: row.viaHostId,
    auth_methods: [...(row.hasPrivateKey ? ["private_key"] : []), ...(row.hasPassword ? ["password"] : [])],
    has_password: row.hasPassword,
    has_private_key: row.hasPrivateKey,
    host_key_fingerprint: row.hostKeyFingerprint,
    host_key_pinned_at: row.hostKeyPinnedAt?.toISOString() ?? null,
    last_connected_at: row.lastConnectedAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

// ---------------------------------------------------------------- where the client runs

/** The profile's host if it names one, else the org's online host heard from last. */
export async function clientHost(db: Database, env: Env, orgId: string, wanted: string | null): Promise<string> {
  if (wanted) {
    await checkViaHost(db, orgId, wanted);
    return wanted;
  }
  const rows = await db
    .select()
    .from(host)
    .where(and(eq(host.orgId, orgId), isNull(host.deletedAt)))
    .orderBy(desc(host.lastSeenAt));
  const online = rows.find((r) => r.joinedAt && hostStatus(env, r) === "online");
  if (!online) throw conflict("no_host_available", "No online host of the org can run the SSH client; name one with host_id or start an agent");
  return online.id;
}

// ---------------------------------------------------------------- jobs

/** Submits an `ssh.exec` job: a connection test when `cmd` is null, else the command `cmd.id`. */
export async function submitSsh(
  env: Env,
  hostId: string,
  profile: SshProfileRow,
  cmd: { id: string; jobId: string; command: string; timeoutSeconds: number } | null,
) {
  const timeout = cmd?.timeoutSeconds ?? 20;
  return projectJobs(env, hostScope(hostId)).createJob(hostScope(hostId), {
    id: cmd?.jobId,
    type: "ssh.exec",
    hostId,
    subject: profile.id,
    payload: {
      type: "ssh.exec",
      profile_id: profile.id,
      host: profile.host,
      port: profile.port,
      username: profile.username,
      host_key_fingerprint: profile.hostKeyFingerprint,
      command: cmd?.command ?? null,
      command_id: cmd?.id ?? null,
      timeout_seconds: timeout,
      output_max_bytes: commandOutputMaxBytes(env),
    },
    // A command may have side effects: a redelivered one is not simply run again.
    idempotent: false,
    deadlineSeconds: timeout + agentSettings(env).queueGraceSeconds,
  });
}

/** Waits up to `seconds` for a job to end; answers it as it is then. */
export async function waitForJob(env: Env, hostId: string, jobId: string, seconds: number): Promise<JobRecord | null> {
  const jobs = projectJobs(env, hostScope(hostId));
  if (seconds <= 0) return jobs.getJob(jobId);
  return (await jobs.waitForJob(jobId, seconds * 1000)) ?? jobs.getJob(jobId);
}

/** The failure code an `ssh.exec` job's error starts with (`host_key_mismatch: …`). */
export function sshFailure(error: string | null): SshFailure | null {
  const code = error?.split(":", 1)[0];
  return code && (SSH_FAILURES as readonly string[]).includes(code) ? (code as SshFailure) : null;
}

/** A connection authenticated and saw this key: the profile is connected now, and an unpinned one takes the key (trust on first use). */
export async function noteSshConnected(db: Database, profileId: string, seen: string) {
  const now = new Date();
  await Promise.all([
    db
      .update(sshProfile)
      .set({ hostKeyFingerprint: seen, hostKeyPinnedAt: now, lastConnectedAt: now })
      .where(and(eq(sshProfile.id, profileId), isNull(sshProfile.hostKeyFingerprint))),
    db.update(sshProfile).set({ lastConnectedAt: now }).where(eq(sshProfile.id, profileId)),
  ]);
}

/** What an `ssh.exec` job's end means for its profile (a first key pinned) and its command. */
export async function settleSshJob(db: Database, job: JobRecord, payload: { profile_id: string; command_id: string | null }) {
  const seen = typeof job.result?.host_key_fingerprint === "string" ? job.result.host_key_fingerprint : null;
  const authenticated = job.result?.authenticated === true;
  const writes: PromiseLike<unknown>[] = [];
  if (seen && authenticated) writes.push(noteSshConnected(db, payload.profile_id, seen));
  if (payload.command_id) {
    const exit = typeof job.result?.exit_code === "number" ? job.result.exit_code : null;
    const status: CommandStatus = job.status === "succeeded" && (exit === null || exit === 0) ? "success" : "error";
    writes.push(
      db
        .update(command)
        .set({ status, error: job.status === "succeeded" ? null : (job.error ?? `The job ${job.status}`), finishedAt: new Date(job.finished_at ?? Date.now()) })
        .where(and(eq(command.id, payload.command_id), or(eq(command.status, "pending"), eq(command.status, "running")))),
    );
  }
  await Promise.all(writes);
}

export async function markCommandRunning(db: Database, job: JobRecord, commandId: string) {
  await db
    .update(command)
    .set({ status: "running", executedAt: new Date(job.started_at ?? Date.now()) })
    .where(and(eq(command.id, commandId), eq(command.status, "pending")));
}

/** The agent's report of what a command printed; only the lease's own command takes it. */
export async function recordCommandOutput(db: Database, commandId: string, jobId: string, out: CommandOutputReport, maxBytes: number) {
  const cut = (text: string) => {
    const bytes = new TextEncoder().encode(text);
    return bytes.length <= maxBytes ? { text, cut: false } : { text: new TextDecoder().decode(bytes.subarray(0, maxBytes)).replace(/\uFFFD$/, ""), cut: true };
  };
  const stdout = cut(out.stdout);
  const stderr = cut(out.stderr);
  await db
    .update(command)
    .set({
      stdout: stdout.text,
      stderr: stderr.text,
      outputTruncated: out.truncated || stdout.cut || stderr.cut,
      exitCode: out.exit_code,
      durationMs: out.duration_ms,
    })
    .where(and(eq(command.id, commandId), eq(command.jobId, jobId)));
}

// ---------------------------------------------------------------- commands

export async function createCommand(
  db: Database,
  input: { orgId: string; userId: string; profileId: string; hostId: string; sessionId: string | null; command: string; timeoutSeconds: number; rerunOf?: string | null },
) {
  const [row] = await db
    .insert(command)
    .values({
      id: newId("cmd"),
      orgId: input.orgId,
      userId: input.userId,
      profileId: input.profileId,
      hostId: input.hostId,
      jobId: newId("job"),
      sessionId: input.sessionId,
      command: input.command,
      timeoutSeconds: input.timeoutSeconds,
      rerunOf: input.rerunOf ?? null,
    })
    .returning();
  return row!;
}

export async function findCommand(db: Database, id: string) {
  const [row] = await db.select().from(command).where(eq(command.id, id));
  return row ?? null;
}

export async function failCommand(db: Database, id: string, error: string) {
  await db.update(command).set({ status: "error", error, finishedAt: new Date() }).where(eq(command.id, id));
}

export interface HistoryFilter {
  limit: number;
  offset: number;
  session_id?: string;
  status?: CommandStatus;
  search?: string;
  profile_id?: string;
}

export async function commandHistory(db: Database, orgIds: string[], userId: string, f: HistoryFilter) {
  if (!orgIds.length) return { rows: [], total: 0 };
  const where: SQL[] = [inArray(command.orgId, orgIds), eq(command.userId, userId)];
  if (f.session_id) where.push(eq(command.sessionId, f.session_id));
  if (f.status) where.push(eq(command.status, f.status));
  if (f.profile_id) where.push(eq(command.profileId, f.profile_id));
  // LIKE with the user's text as a literal: % and _ are escaped.
  if (f.search) where.push(sql`${command.command} LIKE ${`%${f.search.replace(/[\\%_]/g, (m) => `\\${m}`)}%`} ESCAPE '\\'`);
  const cond = and(...where);
  const [rows, [total]] = await Promise.all([
    db
      .select()
      .from(command)
      .where(cond)
      .orderBy(desc(command.createdAt), desc(command.id))
      .limit(f.limit)
      .offset(f.offset),
    db.select({ n: count() }).from(command).where(cond),
  ]);
  return { rows, total: total?.n ?? 0 };
}

export function presentCommand(row: CommandRow) {
  const stdout = row.stdout ?? "";
  const stderr = row.stderr ?? "";
  return {
    id: row.id,
    session_id: row.sessionId,
    command: row.command,
    /** DevPocket's one `output`: stdout, then stderr. */
    output: stdout + stderr,
    stdout,
    stderr,
    output_truncated: row.outputTruncated,
    status: row.status,
    exit_code: row.exitCode,
    duration_ms: row.durationMs,
    error: row.error,
    profile_id: row.profileId,
    host_id: row.hostId,
    job_id: row.jobId,
    rerun_of: row.rerunOf,
    timeout: row.timeoutSeconds,
    created_at: row.createdAt.toISOString(),
    executed_at: row.executedAt?.toISOString() ?? null,
    finished_at: row.finishedAt?.toISOString() ?? null,
  };
}

/** The command's job ended but its row was not told yet (the hook runs after the wait may return). */
export async function settleFromJob(db: Database, row: CommandRow, job: JobRecord | null): Promise<CommandRow> {
  if (!job || !isTerminal(job.status) || (row.status !== "pending" && row.status !== "running")) return row;
  await settleSshJob(db, job, { profile_id: row.profileId ?? "", command_id: row.id });
  return (await findCommand(db, row.id)) ?? row;
}

export const SSH_FAILURE_ERRORS: Record<SshFailure, (message: string) => ApiError> = {
  host_key_mismatch: (m) => new ApiError("host_key_mismatch", m),
  ssh_auth_failed: (m) => new ApiError("ssh_auth_failed", m),
  ssh_unreachable: (m) => new ApiError("ssh_unreachable", m),
  ssh_timeout: (m) => new ApiError("ssh_timeout", m),
  ssh_failed: (m) => new ApiError("ssh_failed", m),
};
