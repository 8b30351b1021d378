/**
 * DevPocket's SSH profiles and commands inside the Workers runtime (real D1, HostDO, Queue):
 * validation, who may do what (roles, key scopes, another member, another tenant), secrets
 * never in an answer nor stored in clear, and what the agent is handed for an `ssh.exec` lease.
 * The SSH connection itself is test/node/ssh.test.ts's (real agent, real OpenSSH).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { api, createOrgKey, env, expectApiError, orgWithEveryRole, signUp, type TestUser, until } from "./helpers";

const PASSWORD = "s3cret-ssh-password";
// Not a real key: the Worker only checks the block's shape; the agent's ssh2 parses it.
const KEY = `-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----`;
const KEY_B64 = btoa(KEY);

let team: Awaited<ReturnType<typeof orgWithEveryRole>>;
let outsider: TestUser;

const profileBody = (extra: Record<string, unknown> = {}) => ({ name: "db box", host: "db.internal", port: 2222, username: "deploy", org: team.slug, ...extra });

/** A host of the team's org whose agent has just beaten: online for the next half minute. */
async function onlineHost(owner: TestUser, slug: string) {
  const enrolled = await api(`/org/${slug}/hosts`, { token: owner.token, body: { name: "ssh client", kind: "docker" } });
  expect(enrolled.status, enrolled.text).toBe(201);
  const joined = await api("/agent/join", { body: { join_token: enrolled.body.join_token, agent_version: "test" } });
  expect(joined.status, joined.text).toBe(201);
  expect((await api("/agent/heartbeat", { token: joined.body.credential, body: { agent_version: "test" } })).status).toBe(200);
  return { id: enrolled.body.host.id as string, credential: joined.body.credential as string };
}

beforeAll(async () => {
  [team, outsider] = await Promise.all([orgWithEveryRole(), signUp({ name: "Outsider" })]);
}, 120_000);

describe("SSH profiles", () => {
  it("saves a profile, returns no secret, and keeps the secret encrypted", async () => {
    const res = await api("/ssh/profiles", { token: team.developer.token, body: profileBody({ password: PASSWORD, private_key: KEY_B64, passphrase: "pass-phrase-1" }) });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ name: "db box", host: "db.internal", port: 2222, username: "deploy", has_password: true, has_private_key: true, auth_methods: ["private_key", "password"], host_key_fingerprint: null });
    for (const secret of [PASSWORD, "PRIVATE KEY", KEY_B64.slice(0, 30), "pass-phrase-1"]) expect(res.text).not.toContain(secret);

    const row = await env.DB.prepare("SELECT * FROM ssh_profile WHERE id = ?").bind(res.body.id).first<Record<string, unknown>>();
    const stored = JSON.stringify(row);
    expect(row?.secret_ciphertext).toMatch(/^v1\./);
    for (const secret of [PASSWORD, "PRIVATE KEY", "pass-phrase-1"]) expect(stored).not.toContain(secret);

    for (const path of ["/ssh/profiles", `/ssh/profiles/${res.body.id}`]) {
      const got = await api(`${path}${path.endsWith("profiles") ? `?org=${team.slug}` : ""}`, { token: team.developer.token });
      expect(got.status, got.text).toBe(200);
      expect(got.text).toContain(res.body.id);
      for (const secret of [PASSWORD, "PRIVATE KEY", "pass-phrase-1"]) expect(got.text).not.toContain(secret);
    }
    // The seed's path under DevPocket's /api prefix is the same route.
    expect((await api(`/api/ssh/profiles?org=${team.slug}`, { token: team.developer.token })).text).toContain(res.body.id);
  });

  it("answers bad input with 400 invalid_request", async () => {
    const t = team.developer.token;
    for (const body of [
      { name: "x", username: "u", org: team.slug },
      profileBody({ port: 70_000 }),
      profileBody({ host: "two words" }),
      profileBody({ username: "" }),
      profileBody({ private_key: "not a key" }),
      profileBody({ private_key_id: "key_1" }),
      profileBody({ name: "" }),
    ]) {
      expectApiError(await api("/ssh/profiles", { token: t, body }), 400, "invalid_request");
    }
    expectApiError(await api("/ssh/profiles", { token: t, raw: "{not json" }), 400, "invalid_json");
    expectApiError(await api("/ssh/profiles", { token: t, body: profileBody({ host_id: "hst_nope" }) }), 404, "host_not_found");
  });

  it("lets owner, admin and developer keep profiles; not viewers, nor read-only or deploy keys", async () => {
    for (const who of [team.owner, team.admin, team.developer]) {
      expect((await api("/ssh/profiles", { token: who.token, body: profileBody() })).status).toBe(201);
    }
    expectApiError(await api("/ssh/profiles", { token: team.viewer.token, body: profileBody() }), 403, "forbidden");
    expectApiError(await api(`/ssh/profiles?org=${team.slug}`, { token: team.viewer.token }), 403, "forbidden");
    for (const scope of ["read-only", "deploy"] as const) {
      const key = await createOrgKey(team.owner, team.slug, scope);
      expectApiError(await api("/ssh/profiles", { token: key.key, body: profileBody() }), 403, "forbidden");
      expectApiError(await api("/ssh/profiles", { token: key.key }), 403, "forbidden");
      expectApiError(await api("/commands/history", { token: key.key }), 403, "forbidden");
    }
    const full = await createOrgKey(team.owner, team.slug, "full");
    expect((await api("/ssh/profiles", { token: full.key, body: profileBody({ org: undefined }) })).status).toBe(201);
  });

  it("shows a profile to the person who saved it only: another member and another tenant get 404", async () => {
    const saved = await api("/ssh/profiles", { token: team.developer.token, body: profileBody({ name: "mine", password: PASSWORD }) });
    const id = saved.body.id as string;
    for (const other of [team.admin, team.owner, outsider]) {
      expectApiError(await api(`/ssh/profiles/${id}`, { token: other.token }), 404, "profile_not_found");
      expectApiError(await api(`/ssh/profiles/${id}`, { method: "PATCH", token: other.token, body: { host: "evil.example" } }), 404, "profile_not_found");
      expectApiError(await api(`/ssh/profiles/${id}`, { method: "DELETE", token: other.token }), 404, "profile_not_found");
      expectApiError(await api("/ssh/connect", { token: other.token, body: { profile_id: id } }), 404, "profile_not_found");
      expectApiError(await api("/commands/execute", { token: other.token, body: { profile_id: id, command: "id" } }), 404, "profile_not_found");
    }
    expect((await api(`/ssh/profiles?org=${team.slug}`, { token: team.admin.token })).text).not.toContain(id);
    // An org the caller is not in is not found either.
    expectApiError(await api(`/ssh/profiles?org=${team.slug}`, { token: outsider.token }), 404, "not_found");
    // Still there, unchanged.
    expect((await api(`/ssh/profiles/${id}`, { token: team.developer.token })).body.host).toBe("db.internal");
  });

  it("updates a profile: a new address drops the pinned key, secrets stay write-only, delete removes it", async () => {
    const saved = await api("/ssh/profiles", { token: team.developer.token, body: profileBody({ password: PASSWORD }) });
    const id = saved.body.id as string;
    await env.DB.prepare("UPDATE ssh_profile SET host_key_fingerprint = 'SHA256:pinned', host_key_pinned_at = 1 WHERE id = ?").bind(id).run();
    const renamed = await api(`/ssh/profiles/${id}`, { method: "PATCH", token: team.developer.token, body: { name: "renamed", private_key: KEY } });
    expect(renamed.status, renamed.text).toBe(200);
    expect(renamed.body).toMatchObject({ name: "renamed", host_key_fingerprint: "SHA256:pinned", has_password: true, has_private_key: true });
    expect(renamed.text).not.toContain("PRIVATE KEY");
    const moved = await api(`/ssh/profiles/${id}`, { method: "PATCH", token: team.developer.token, body: { port: 2200, password: "" } });
    expect(moved.body).toMatchObject({ port: 2200, host_key_fingerprint: null, has_password: false, has_private_key: true });
    expectApiError(await api(`/ssh/profiles/${id}`, { method: "PATCH", token: team.developer.token, body: { port: 0 } }), 400, "invalid_request");
    expect((await api(`/ssh/profiles/${id}`, { method: "DELETE", token: team.developer.token })).status).toBe(200);
    expectApiError(await api(`/ssh/profiles/${id}`, { token: team.developer.token }), 404, "profile_not_found");
  });
});

describe("connect and commands without an agent", () => {
  it("says when no host of the org can run the client, and what a command needs", async () => {
    const lonely = await signUp({ name: "No hosts" });
    const saved = await api("/ssh/profiles", { token: lonely.token, body: { name: "x", host: "10.0.0.5", username: "root", password: PASSWORD } });
    expect(saved.status, saved.text).toBe(201);
    expectApiError(await api("/ssh/connect", { token: lonely.token, body: { profile_id: saved.body.id } }), 409, "no_host_available");
    expectApiError(await api("/ssh/connect", { token: lonely.token, body: { host: "10.0.0.5", username: "root", password: PASSWORD } }), 409, "no_host_available");
    // Nothing of the inline credentials was kept.
    const kept = await env.DB.prepare("SELECT count(*) AS n FROM ssh_profile WHERE user_id = ?").bind(lonely.id).first<{ n: number }>();
    expect(kept?.n).toBe(1);
    expectApiError(await api("/ssh/connect", { token: lonely.token, body: { host: "10.0.0.5" } }), 400, "invalid_request");
    expectApiError(await api("/commands/execute", { token: lonely.token, body: { profile_id: saved.body.id, command: "id" } }), 409, "no_host_available");
    expectApiError(await api("/commands/execute", { token: lonely.token, body: { command: "id" } }), 400, "target_required");
    expectApiError(await api("/commands/execute", { token: lonely.token, body: { command: "id", host_id: "hst_x" } }), 400, "target_required");
    expectApiError(await api("/commands/execute", { token: lonely.token, body: { profile_id: saved.body.id, command: "" } }), 400, "invalid_request");
    expectApiError(await api("/commands/execute", { token: lonely.token, body: { profile_id: saved.body.id, command: "id", timeout: 0 } }), 400, "invalid_request");
    expectApiError(await api("/commands/history?limit=5000", { token: lonely.token }), 400, "invalid_request");
    expectApiError(await api("/commands/history?status=done", { token: lonely.token }), 400, "invalid_request");
    expectApiError(await api("/commands/cmd_nope", { token: lonely.token }), 404, "command_not_found");
  });
});

describe("commands as jobs", () => {
  let host: { id: string; credential: string };
  let profileId: string;

  beforeAll(async () => {
    host = await onlineHost(team.owner, team.slug);
    const saved = await api("/ssh/profiles", { token: team.developer.token, body: profileBody({ password: PASSWORD, host_id: host.id }) });
    expect(saved.status, saved.text).toBe(201);
    profileId = saved.body.id;
  });

  it("queues an ssh.exec job whose payload holds no secret; the agent gets the secret for its lease and reports the output", async () => {
    const res = await api("/commands/execute", { token: team.developer.token, body: { profile_id: profileId, command: "uname -a", session_id: "tab-1", wait: 0 } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ command: "uname -a", status: "pending", session_id: "tab-1", host_id: host.id, profile_id: profileId, exit_code: null, output: "" });

    const claimed = await until(
      "the lease",
      async () => (await api("/agent/claim", { token: host.credential, body: { wait: 1 } })).body,
      (b) => b?.leases?.length > 0,
      15_000,
    );
    const lease = claimed.leases[0];
    expect(lease.job_id).toBe(res.body.job_id);
    expect(lease.payload).toMatchObject({ type: "ssh.exec", host: "db.internal", port: 2222, username: "deploy", command: "uname -a", command_id: res.body.id, host_key_fingerprint: null });
    expect(JSON.stringify(lease)).not.toContain(PASSWORD);

    const secrets = await api(`/agent/leases/${lease.lease_id}/env`, { token: host.credential });
    expect(secrets.status, secrets.text).toBe(200);
    expect(secrets.body.ssh).toEqual({ password: PASSWORD });

    expect((await api(`/agent/leases/${lease.lease_id}/start`, { token: host.credential, body: {} })).status).toBe(200);
    const big = "x".repeat(70_000);
    const out = await api(`/agent/leases/${lease.lease_id}/command-output`, { token: host.credential, body: { stdout: `Linux\n${big}`, stderr: "", truncated: false, exit_code: 0, duration_ms: 12 } });
    expect(out.status, out.text).toBe(200);
    const done = await api(`/agent/leases/${lease.lease_id}/finish`, {
      token: host.credential,
      body: { status: "succeeded", result: { host_key_fingerprint: "SHA256:abc", authenticated: true, exit_code: 0, duration_ms: 12 } },
    });
    expect(done.status, done.text).toBe(200);

    const got = await until("the command settled", () => api(`/commands/${res.body.id}`, { token: team.developer.token }), (r) => r.body?.status === "success");
    // The default cap is 64 KiB a stream; the rest is cut and flagged.
    expect(got.body).toMatchObject({ exit_code: 0, duration_ms: 12, output_truncated: true, error: null });
    expect(got.body.stdout).toHaveLength(64 * 1024);
    expect(got.body.stdout.startsWith("Linux\n")).toBe(true);
    expect(got.body.executed_at).not.toBeNull();
    // The first key seen is pinned on the profile.
    expect((await api(`/ssh/profiles/${profileId}`, { token: team.developer.token })).body.host_key_fingerprint).toBe("SHA256:abc");

    // Another host's credential cannot report for this lease.
    const stranger = await onlineHost(outsider, outsider.orgSlug);
    // Nor can another tenant's host be named to run the client.
    expectApiError(await api("/commands/execute", { token: team.developer.token, body: { profile_id: profileId, command: "id", host_id: stranger.id, wait: 0 } }), 404, "host_not_found");
    expectApiError(await api("/ssh/profiles", { token: team.developer.token, body: profileBody({ host_id: stranger.id }) }), 404, "host_not_found");
    expectApiError(await api(`/ssh/profiles/${profileId}`, { method: "PATCH", token: team.developer.token, body: { host_id: stranger.id } }), 404, "host_not_found");
    expectApiError(await api(`/agent/leases/${lease.lease_id}/command-output`, { token: stranger.credential, body: { stdout: "", stderr: "", truncated: false, exit_code: 0, duration_ms: 1 } }), 409, "lease_stale");
  });

  it("keeps the history per person, pages it, and reruns as a new command", async () => {
    for (const command of ["ls /", "df -h", "cat /etc/os-release"]) {
      const r = await api("/commands/execute", { token: team.developer.token, body: { profile_id: profileId, command, session_id: "tab-2", wait: 0 } });
      expect(r.status, r.text).toBe(200);
    }
    const page = await api("/commands/history?session_id=tab-2&limit=2", { token: team.developer.token });
    expect(page.status, page.text).toBe(200);
    expect(page.body).toMatchObject({ total: 3, has_more: true, limit: 2, offset: 0 });
    expect(page.body.commands.map((c: { command: string }) => c.command)).toEqual(["cat /etc/os-release", "df -h"]);
    const rest = await api("/commands/history?session_id=tab-2&limit=2&offset=2", { token: team.developer.token });
    expect(rest.body).toMatchObject({ total: 3, has_more: false });
    const searched = await api("/commands/history?search=df", { token: team.developer.token });
    expect(searched.body.commands.map((c: { command: string }) => c.command)).toEqual(["df -h"]);
    // The search is literal text: % and _ match only themselves.
    expect((await api(`/commands/history?search=${encodeURIComponent("%")}`, { token: team.developer.token })).body.total).toBe(0);
    expect((await api("/commands/history?search=_", { token: team.developer.token })).body.total).toBe(0);
    // Named org, or none (every org where the caller may run commands): the same history.
    expect((await api(`/commands/history?session_id=tab-2&org=${team.slug}`, { token: team.developer.token })).body.total).toBe(3);

    // Another member of the org, and another tenant, see none of it.
    expect((await api(`/commands/history?org=${team.slug}`, { token: team.admin.token })).body.total).toBe(0);
    const id = page.body.commands[0].id;
    for (const other of [team.admin, outsider]) {
      expectApiError(await api(`/commands/${id}`, { token: other.token }), 404, "command_not_found");
      expectApiError(await api(`/commands/${id}/rerun`, { method: "POST", token: other.token }), 404, "command_not_found");
    }
    expectApiError(await api(`/commands/${id}`, { token: team.viewer.token }), 404, "command_not_found");

    const rerun = await api(`/commands/${id}/rerun`, { method: "POST", token: team.developer.token, body: { wait: 0 } });
    expect(rerun.status, rerun.text).toBe(200);
    expect(rerun.body).toMatchObject({ command: "cat /etc/os-release", rerun_of: id, session_id: "tab-2", status: "pending" });
    expect(rerun.body.id).not.toBe(id);
    expect((await api("/commands/history?session_id=tab-2", { token: team.developer.token })).body.total).toBe(4);

    // The command's text is not in the audit log (it may hold secrets); its length is.
    const audit = await api(`/org/${team.slug}/audit?action=command.execute`, { token: team.owner.token });
    expect(audit.status, audit.text).toBe(200);
    expect(audit.text).toContain("command_length");
    expect(audit.text).not.toContain("os-release");
  });
});
