/**
 * DevPocket's SSH: saved profiles (`GET/POST /ssh/profiles`, and one profile's
 * `GET/PATCH/DELETE /ssh/profiles/{id}`), and `POST /ssh/connect`, which tests a profile (or
 * inline credentials) from a host of the org. Profiles are the caller's own within one org;
 * passwords and keys are write-only.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createRouter } from "../app";
import { authorizeOrg, requirePrincipal } from "../auth/access";
import { roleAllows, scopeAllows } from "../auth/permissions";
import type { AppEnv } from "../env";
import { isTerminal } from "../jobs/states";
import { ApiError, errorResponsesFor, forbidden, notFound } from "../lib/errors";
import { recordAudit } from "../services/audit";
import { findOrgById, listUserOrgs } from "../services/orgs";
import {
  clientHost,
  createProfile,
  deleteProfile,
  findProfile,
  listProfiles,
  presentProfile,
  SSH_FAILURE_ERRORS,
  settleSshJob,
  type SshProfileRow,
  sshFailure,
  submitSsh,
  updateProfile,
  waitForJob,
} from "../services/ssh";
import { targetOrgSlug } from "./projects";
import { json, jsonBody, name, Ok, slugParam } from "./schemas";

const router = createRouter();
const tags = ["Terminal"];

export const SshProfile = z
  .object({
    id: z.string().openapi({ example: "ssh_4kd9s0a1b2c3d4e5" }),
    name: z.string(),
    host: z.string(),
    port: z.number().int(),
    username: z.string(),
    org_id: z.string(),
    host_id: z.string().nullable().openapi({ description: "The host whose agent runs the SSH client; null: any online host of the org" }),
    auth_methods: z.array(z.string()),
    has_password: z.boolean(),
    has_private_key: z.boolean(),
    host_key_fingerprint: z.string().nullable().openapi({ description: "The server's key (`SHA256:…`), pinned at the first connection; another key is refused" }),
    host_key_pinned_at: z.string().nullable(),
    last_connected_at: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("SshProfile");

export const sshHost = z
  .string()
  .trim()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9]([A-Za-z0-9.:_-]*[A-Za-z0-9])?$/, "a host name or an IP address");
export const sshUsername = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._][A-Za-z0-9._@-]*$/, "a user name");
const port = z.number().int().min(1).max(65535);
const secret = (what: string) => z.string().min(1).max(16_384).openapi({ description: `${what}; stored encrypted, never returned` });
const orgField = z.string().max(100).optional().openapi({ description: "Org slug or id; defaults to the key's org or your personal org" });
const hostId = z.string().max(64).openapi({ description: "A host of the org whose agent runs the SSH client (default: any online host)" });
const ProfileParams = z.object({ id: slugParam("id").openapi({ description: "Profile id (ssh_…)" }) });

const noKeyStore = (v: { private_key_id?: string }) => v.private_key_id === undefined;
const noKeyStoreIssue = { message: "Berth keeps no key store: send the key itself as private_key", path: ["private_key_id"] };

/** The caller's profile in an org where they may run commands; anyone else's, or a missing one, is 404. */
export async function loadProfile(c: Context<AppEnv>, id: string): Promise<SshProfileRow> {
  const p = requirePrincipal(c);
  const row = await findProfile(c.var.db, id);
  const owner = row && row.userId === p.userId && !row.adhoc ? await findOrgById(c.var.db, row.orgId) : null;
  if (!row || !owner) throw notFound("SSH profile", "profile_not_found");
  await authorizeOrg(c, owner.slug, "command:exec").catch((err) => {
    if (err?.status === 404) throw notFound("SSH profile", "profile_not_found");
    throw err;
  });
  return row;
}

/**
 * The orgs whose profiles and commands a listing covers: the one named (`org`), else the org
 * key's own, else every org where the caller may run commands (DevPocket's clients name none).
 */
export async function execOrgIds(c: Context<AppEnv>, requested: string | undefined): Promise<string[]> {
  const p = requirePrincipal(c);
  if (requested || (p.type === "api_key" && (p.key.kind === "org" || p.key.projectId))) {
    return [(await authorizeOrg(c, await targetOrgSlug(c, requested), "command:exec")).org.id];
  }
  if (p.type === "api_key" && !scopeAllows(p.key.scope, "command:exec")) throw forbidden(`This API key's scope (${p.key.scope}) does not allow command:exec`);
  return (await listUserOrgs(c.var.db, p.userId)).filter((m) => roleAllows(m.role, "command:exec")).map((m) => m.org.id);
}

router.openapi(
  createRoute({
    method: "get",
    path: "/ssh/profiles",
    tags,
    summary: "Your saved SSH profiles (credentials never shown): in the org named, else in every org where you may run commands",
    request: { query: z.object({ org: orgField.openapi({ param: { name: "org", in: "query" } }) }) },
    responses: { 200: json(z.array(SshProfile), "Profiles"), ...errorResponsesFor() },
  }),
  async (c) => {
    const orgIds = await execOrgIds(c, c.req.valid("query").org);
    return c.json((await listProfiles(c.var.db, orgIds, requirePrincipal(c).userId)).map(presentProfile), 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/ssh/profiles",
    tags,
    summary: "Save an SSH profile; its password and key are stored encrypted and never returned",
    request: jsonBody(
      z
        .object({
          name: name(100),
          host: sshHost,
          port: port.default(22),
          username: sshUsername,
          password: secret("The password").optional(),
          private_key: secret("OpenSSH or PEM private key, as text or base64 of the key file").optional(),
          passphrase: secret("The private key's passphrase").optional(),
          private_key_id: z.string().max(100).optional().openapi({ description: "Not supported: Berth keeps no key store; send private_key" }),
          host_id: hostId.optional(),
          org: orgField,
        })
        .refine(noKeyStore, noKeyStoreIssue),
    ),
    responses: { 201: json(SshProfile, "Saved"), ...errorResponsesFor("host_not_found") },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { org, principal } = await authorizeOrg(c, await targetOrgSlug(c, input.org), "command:exec");
    const row = await createProfile(c.var.db, c.env, org.id, principal.userId, input);
    await recordAudit(c, { orgId: org.id, action: "ssh_profile.create", targetType: "ssh_profile", targetId: row.id, metadata: { host: row.host, port: row.port, username: row.username } });
    return c.json(presentProfile(row), 201);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/ssh/profiles/{id}",
    tags,
    summary: "One of your SSH profiles",
    request: { params: ProfileParams },
    responses: { 200: json(SshProfile, "The profile"), ...errorResponsesFor("profile_not_found") },
  }),
  async (c) => c.json(presentProfile(await loadProfile(c, c.req.valid("param").id)), 200),
);

router.openapi(
  createRoute({
    method: "patch",
    path: "/ssh/profiles/{id}",
    tags,
    summary: "Change a profile; a new host or port, or `reset_host_key`, drops the pinned host key",
    request: {
      params: ProfileParams,
      ...jsonBody(
        z.object({
          name: name(100).optional(),
          host: sshHost.optional(),
          port: port.optional(),
          username: sshUsername.optional(),
          password: z.string().max(16_384).optional().openapi({ description: "A new password; empty removes it" }),
          private_key: z.string().max(16_384).optional().openapi({ description: "A new private key; empty removes it" }),
          passphrase: z.string().max(16_384).optional().openapi({ description: "A new passphrase; empty removes it" }),
          host_id: hostId.nullable().optional(),
          reset_host_key: z.boolean().optional().openapi({ description: "Forget the pinned host key: the next connection pins the key it sees" }),
        }),
      ),
    },
    responses: { 200: json(SshProfile, "Changed"), ...errorResponsesFor("profile_not_found", "host_not_found") },
  }),
  async (c) => {
    const row = await loadProfile(c, c.req.valid("param").id);
    const input = c.req.valid("json");
    const updated = await updateProfile(c.var.db, c.env, row, input);
    await recordAudit(c, {
      orgId: row.orgId,
      action: "ssh_profile.update",
      targetType: "ssh_profile",
      targetId: row.id,
      // Which fields changed, never their values.
      metadata: { fields: Object.keys(input) },
    });
    return c.json(presentProfile(updated), 200);
  },
);

router.openapi(
  createRoute({
    method: "delete",
    path: "/ssh/profiles/{id}",
    tags,
    summary: "Delete a profile and its stored credentials; its commands stay in the history",
    request: { params: ProfileParams },
    responses: { 200: json(Ok, "Deleted"), ...errorResponsesFor("profile_not_found") },
  }),
  async (c) => {
    const row = await loadProfile(c, c.req.valid("param").id);
    await deleteProfile(c.var.db, row.id);
    await recordAudit(c, { orgId: row.orgId, action: "ssh_profile.delete", targetType: "ssh_profile", targetId: row.id, metadata: { host: row.host } });
    return c.json({ ok: true }, 200);
  },
);

const Connected = z
  .object({
    session_id: z.string().openapi({ description: "The connection test's job id" }),
    status: z.literal("connected"),
    profile_id: z.string().nullable().openapi({ description: "The saved profile tested; null for inline credentials" }),
    host_id: z.string().openapi({ description: "The host whose agent connected" }),
    host_key_fingerprint: z.string().nullable(),
    host_key_pinned: z.boolean().openapi({ description: "This connection pinned the server's key (the profile had none)" }),
    duration_ms: z.number().int().nullable(),
  })
  .openapi("SshConnected");

router.openapi(
  createRoute({
    method: "post",
    path: "/ssh/connect",
    tags,
    summary: "Test an SSH connection from a host of the org: a saved profile (profile_id) or inline credentials",
    description:
      "The agent of `host_id` (or of the profile's host, or any online host of the org) connects and authenticates. A profile's server key is pinned at the first success; a different key later is refused with `host_key_mismatch`. " +
      "Answers when the agent has, or `ssh_timeout` after `wait` seconds.",
    request: jsonBody(
      z
        .object({
          profile_id: z.string().max(64).optional(),
          host: sshHost.optional(),
          port: port.default(22),
          username: sshUsername.optional(),
          password: secret("The password").optional(),
          private_key: secret("Base64 of the private key file (or its text)").optional(),
          passphrase: secret("The private key's passphrase").optional(),
          host_key_fingerprint: z.string().max(128).optional().openapi({ description: "Inline credentials: the server key to expect (`SHA256:…`)" }),
          host_id: hostId.optional(),
          org: orgField,
          wait: z.number().int().min(1).max(60).default(25).openapi({ description: "Seconds to wait for the agent's answer" }),
        })
        .refine((v) => v.profile_id !== undefined || (v.host !== undefined && v.username !== undefined), {
          message: "name a saved profile (profile_id) or give host and username",
          path: ["host"],
        }),
    ),
    responses: {
      200: json(Connected, "Connected and authenticated"),
      ...errorResponsesFor("profile_not_found", "host_not_found", "no_host_available", "host_key_mismatch", "ssh_auth_failed", "ssh_unreachable", "ssh_failed", "ssh_timeout"),
    },
  }),
  async (c) => {
    const input = c.req.valid("json");
    let profile: SshProfileRow;
    let via: string;
    if (input.profile_id) {
      profile = await loadProfile(c, input.profile_id);
      via = await clientHost(c.var.db, c.env, profile.orgId, input.host_id ?? profile.viaHostId);
    } else {
      const { org, principal } = await authorizeOrg(c, await targetOrgSlug(c, input.org), "command:exec");
      via = await clientHost(c.var.db, c.env, org.id, input.host_id ?? null);
      // Inline credentials live as an unlisted profile only while the agent may still fetch them.
      profile = await createProfile(
        c.var.db,
        c.env,
        org.id,
        principal.userId,
        { name: `${input.username}@${input.host}`, host: input.host!, port: input.port, username: input.username!, password: input.password, private_key: input.private_key, passphrase: input.passphrase },
        { adhoc: true },
      );
      if (input.host_key_fingerprint) profile.hostKeyFingerprint = input.host_key_fingerprint;
    }
    const job = await submitSsh(c.env, via, profile, null);
    await recordAudit(c, { orgId: profile.orgId, action: "ssh.connect", targetType: "job", targetId: job.id, metadata: { profile_id: input.profile_id ?? null, host: profile.host, host_id: via } });
    const done = await waitForJob(c.env, via, job.id, input.wait);
    const ended = done !== null && isTerminal(done.status);
    // The agent has used them (or never will): inline credentials are not kept.
    if (profile.adhoc && ended) await deleteProfile(c.var.db, profile.id);
    if (!done || !ended) {
      throw new ApiError("ssh_timeout", `The host did not answer within ${input.wait} s; the test goes on as job ${job.id}`, { job_id: job.id, host_id: via });
    }
    if (done.status !== "succeeded") {
      const failure = sshFailure(done.error) ?? "ssh_failed";
      throw SSH_FAILURE_ERRORS[failure](done.error?.replace(/^[a-z_]+:\s*/, "") || `The connection test ${done.status}`);
    }
    // The job's own hook records this too, but after waking the waiters: do it now, it is idempotent.
    await settleSshJob(c.var.db, done, { profile_id: profile.id, command_id: null });
    const seen = typeof done.result?.host_key_fingerprint === "string" ? done.result.host_key_fingerprint : null;
    return c.json(
      {
        session_id: job.id,
        status: "connected" as const,
        profile_id: profile.adhoc ? null : profile.id,
        host_id: via,
        host_key_fingerprint: seen,
        host_key_pinned: !profile.adhoc && profile.hostKeyFingerprint === null && seen !== null,
        duration_ms: typeof done.result?.duration_ms === "number" ? done.result.duration_ms : null,
      },
      200,
    );
  },
);

export default router;
