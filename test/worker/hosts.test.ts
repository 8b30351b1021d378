/**
 * Hosts, host jobs, the agent protocol over HTTP, project jobs and the project
 * event stream, as a user and an agent see them: through the real Worker, with
 * the real D1, Durable Objects and Queue. The agent is simulated with plain API
 * calls carrying its `bha_` credential.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { api, createOrgKey, env, fetchWorker, orgWithEveryRole, signUp, type TestUser, until } from "./helpers";

type Team = Awaited<ReturnType<typeof orgWithEveryRole>>;

let t: Team;
let outsider: TestUser;

beforeAll(async () => {
  t = await orgWithEveryRole();
  outsider = await signUp({ name: "Outsider" });
}, 60_000);

const FACTS = { hostname: "box-1", cpus: 4, memory_bytes: 8_589_934_592, docker_version: "27.3.1" };

async function enrol(opts: { name?: string; kind?: "docker" | "proxmox"; by?: TestUser; region?: string; labels?: Record<string, string> } = {}) {
  const res = await api(`/org/${t.slug}/hosts`, {
    token: (opts.by ?? t.owner).token,
    body: { name: opts.name ?? "box", kind: opts.kind ?? "docker", region: opts.region, labels: opts.labels },
  });
  expect(res.status, res.text).toBe(201);
  return res.body as { host: any; join_token: string; join_token_expires_at: string; agent_command: string };
}

const join = (joinToken: string, facts: Record<string, unknown> | undefined = FACTS, agentVersion = "0.1.0") =>
  api("/agent/join", { body: { join_token: joinToken, agent_version: agentVersion, facts } });

/** A host whose agent has joined: its id and the agent's credential. */
async function joinedHost(name = "box") {
  const enrolled = await enrol({ name });
  const joined = await join(enrolled.join_token);
  expect(joined.status, joined.text).toBe(201);
  return { id: enrolled.host.id as string, credential: joined.body.credential as string };
}

const hostPath = (id: string) => `/org/${t.slug}/hosts/${id}`;

async function claim(credential: string, held: Array<{ job_id: string; lease_id: string }> = [], wait = 5) {
  const res = await api("/agent/claim", { token: credential, body: { held, wait } });
  expect(res.status, res.text).toBe(200);
  return res.body.leases as any[];
}

/** Claims until the job's lease arrives (the Queue hands it to the host asynchronously). */
async function claimJob(credential: string, jobId: string, held: Array<{ job_id: string; lease_id: string }> = []) {
  for (let i = 0; i < 4; i++) {
    const leases = await claim(credential, held, 5);
    const lease = leases.find((l) => l.job_id === jobId);
    if (lease) return lease;
    held = [...held, ...leases.map((l) => ({ job_id: l.job_id, lease_id: l.lease_id }))];
  }
  throw new Error(`no lease for ${jobId}`);
}

async function exec(hostId: string, command = "echo hello", timeout_seconds = 30, by: TestUser = t.owner) {
  const res = await api(`${hostPath(hostId)}/exec`, { token: by.token, body: { command, timeout_seconds } });
  expect(res.status, res.text).toBe(202);
  return res.body.job as any;
}

const lease = (credential: string, leaseId: string, action: "start" | "renew" | "logs" | "finish", body: unknown = {}) =>
  api(`/agent/leases/${leaseId}/${action}`, { token: credential, body });

const hostJob = (hostId: string, jobId: string, token = t.owner.token) => api(`${hostPath(hostId)}/jobs/${jobId}`, { token });


const projectDo = (projectId: string) => env.PROJECT_DO.get(env.PROJECT_DO.idFromName(`project:${projectId}`));

async function projectJob(projectId: string, hostId: string, subject = "ins_test", command = "true") {
  return projectDo(projectId).createJob(`project:${projectId}`, {
    type: "host.exec",
    hostId,
    payload: { type: "host.exec", command, timeout_seconds: 5 },
    subject,
    idempotent: false,
    deadlineSeconds: 60,
  });
}

async function newProject(name = "Shop") {
  const res = await api(`/org/${t.slug}/projects`, { token: t.developer.token, body: { name } });
  expect(res.status, res.text).toBe(201);
  return res.body.project.id as string;
}

// ---------------------------------------------------------------- enrolment

describe("enrolling a host", () => {
  it("answers the host, a single-use bjt_ join token, its expiry and the agent command", async () => {
    const before = Date.now();
    const res = await api(`/org/${t.slug}/hosts`, {
      token: t.owner.token,
      body: { name: "  edge-1  ", kind: "docker", region: "eu-west", labels: { env: "prod", "tier.web": "a" } },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body.host).toMatchObject({
      name: "edge-1",
      kind: "docker",
      region: "eu-west",
      labels: { env: "prod", "tier.web": "a" },
      org_id: t.orgId,
      status: "offline",
      joined_at: null,
      last_seen_at: null,
      agent_version: null,
      facts: null,
    });
    expect(res.body.host.id).toMatch(/^hst_/);
    expect(res.body.join_token).toMatch(/^bjt_/);
    const expires = Date.parse(res.body.join_token_expires_at);
    expect(expires).toBeGreaterThan(before + 55 * 60_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 60 * 60_000);
    expect(res.body.agent_command).toContain(res.body.join_token);

    const admin = await enrol({ by: t.admin, kind: "proxmox", name: "pve" });
    expect(admin.host).toMatchObject({ kind: "proxmox", region: null, labels: {} });
  });

  it("rejects invalid input with 400 invalid_request", async () => {
    const bad = [
      { name: "x", kind: "vmware" },
      { name: "", kind: "docker" },
      { name: "   ", kind: "docker" },
      { kind: "docker" },
      { name: "x", kind: "docker", labels: { "bad key!": "v" } },
      { name: "x", kind: "docker", labels: { "": "v" } },
      { name: "x", kind: "docker", labels: { "-lead": "v" } },
      { name: "x", kind: "docker", labels: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, "v"])) },
      { name: "x", kind: "docker", region: "" },
    ];
    for (const body of bad) {
      const res = await api(`/org/${t.slug}/hosts`, { token: t.owner.token, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe("invalid_request");
    }
    const list = await api(`/org/${t.slug}/hosts`, { token: t.owner.token });
    expect(list.body.hosts.map((h: any) => h.name)).not.toContain("x");
  });

  it("is for owners and admins only; keys of every scope, other orgs and anonymous callers are refused", async () => {
    const body = { name: "nope", kind: "docker" };
    for (const who of [t.developer, t.viewer]) {
      const res = await api(`/org/${t.slug}/hosts`, { token: who.token, body });
      expect(res.status, res.text).toBe(403);
      expect(res.body.error.code).toBe("forbidden");
    }
    for (const scope of ["full", "deploy", "read-only"] as const) {
      const key = await createOrgKey(t.owner, t.slug, scope);
      expect(key.key).toMatch(/^pak_/);
      const res = await api(`/org/${t.slug}/hosts`, { token: key.key, body });
      expect(res.status, `${scope}: ${res.text}`).toBe(403);
      // …but every scope may read hosts.
      const read = await api(`/org/${t.slug}/hosts`, { token: key.key });
      expect(read.status, read.text).toBe(200);
    }
    // Nor may the owner's personal key (of any scope), nor a project-bound key.
    for (const scope of ["full", "deploy", "read-only"]) {
      const dk = await api(`/api-keys`, { token: t.owner.token, body: { name: `laptop ${scope}`, scope } });
      expect(dk.status, dk.text).toBe(201);
      expect(dk.body.key).toMatch(/^dkp_/);
      const res = await api(`/org/${t.slug}/hosts`, { token: dk.body.key, body });
      expect(res.status, `dkp ${scope}: ${res.text}`).toBe(403);
    }
    const projectId = await newProject("Keyed");
    const pkey = await api(`/projects/${projectId}/api-keys`, { token: t.owner.token, body: { name: "ci", scope: "full" } });
    expect(pkey.status, pkey.text).toBe(201);
    expect((await api(`/org/${t.slug}/hosts`, { token: pkey.body.key, body })).status).toBe(403);
    const other = await api(`/org/${t.slug}/hosts`, { token: outsider.token, body });
    expect(other.status, other.text).toBe(404);
    const anon = await api(`/org/${t.slug}/hosts`, { body });
    expect(anon.status, anon.text).toBe(401);

    const list = await api(`/org/${t.slug}/hosts`, { token: t.owner.token });
    expect(list.body.hosts.map((h: any) => h.name)).not.toContain("nope");
  });
});

// ---------------------------------------------------------------- reading and joining

describe("joining and reading hosts", () => {
  it("shows a host offline until its agent joins, then online with what the agent reported", async () => {
    const enrolled = await enrol({ name: "joiner" });
    const id = enrolled.host.id;
    for (const who of [t.owner, t.admin, t.developer, t.viewer]) {
      const one = await api(hostPath(id), { token: who.token });
      expect(one.status, one.text).toBe(200);
      expect(one.body.host).toMatchObject({ id, status: "offline", connected: false, joined_at: null });
      const list = await api(`/org/${t.slug}/hosts`, { token: who.token });
      expect(list.status, list.text).toBe(200);
      expect(list.body.hosts.find((h: any) => h.id === id)).toMatchObject({ status: "offline" });
    }

    const joined = await join(enrolled.join_token);
    expect(joined.status, joined.text).toBe(201);
    expect(joined.body).toMatchObject({ host_id: id, heartbeat_interval: expect.any(Number) });
    expect(joined.body.credential).toMatch(/^bha_/);

    const one = await api(hostPath(id), { token: t.viewer.token });
    expect(one.body.host).toMatchObject({ status: "online", agent_version: "0.1.0", facts: FACTS });
    expect(Date.parse(one.body.host.joined_at)).toBeGreaterThan(Date.now() - 60_000);
    expect(one.body.host.last_seen_at).not.toBeNull();
    const list = await api(`/org/${t.slug}/hosts`, { token: t.developer.token });
    expect(list.body.hosts.find((h: any) => h.id === id)).toMatchObject({ status: "online", agent_version: "0.1.0" });

    // Neither the join token nor the credential (nor their hashes) ever come back.
    for (const text of [one.text, list.text]) {
      expect(text).not.toContain(enrolled.join_token);
      expect(text).not.toContain(joined.body.credential);
      expect(text).not.toMatch(/join_token|credential|hash/i);
    }

    // A heartbeat keeps it online and refreshes its facts.
    const beat = await api("/agent/heartbeat", { token: joined.body.credential, body: { agent_version: "0.2.0", facts: { ...FACTS, cpus: 8 } } });
    expect(beat.status, beat.text).toBe(200);
    expect(beat.body).toMatchObject({ ok: true, heartbeat_interval: joined.body.heartbeat_interval });
    const after = await api(hostPath(id), { token: t.owner.token });
    expect(after.body.host).toMatchObject({ status: "online", agent_version: "0.2.0", facts: { cpus: 8 } });

    // Not heard from for a while: offline; the next heartbeat brings it back.
    await env.DB.prepare("UPDATE host SET last_seen_at = ? WHERE id = ?").bind(Date.now() - 10 * 60_000, id).run();
    expect((await api(hostPath(id), { token: t.owner.token })).body.host.status).toBe("offline");
    expect((await api("/agent/heartbeat", { token: joined.body.credential, body: { agent_version: "0.2.0" } })).status).toBe(200);
    const back = await api(hostPath(id), { token: t.owner.token });
    expect(back.body.host).toMatchObject({ status: "online", facts: { cpus: 8 } });
  });

  it("takes a join token once", async () => {
    const enrolled = await enrol({ name: "once" });
    expect((await join(enrolled.join_token)).status).toBe(201);
    const again = await join(enrolled.join_token);
    expect(again.status, again.text).toBe(401);
    expect(again.body.error.code).toBe("invalid_join_token");
    const unknown = await join(`bjt_${"0".repeat(64)}`);
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.code).toBe("invalid_join_token");
    const badFacts = await join(enrolled.join_token, { hostname: "x", favourite_colour: "blue" });
    expect(badFacts.status, badFacts.text).toBe(400);
  });

  it("refuses an expired join token; a new one from /join-token works and the old one dies", async () => {
    const enrolled = await enrol({ name: "late" });
    const id = enrolled.host.id;
    await env.DB.prepare("UPDATE host SET join_token_expires_at = ? WHERE id = ?").bind(Date.now() - 1_000, id).run();
    const expired = await join(enrolled.join_token);
    expect(expired.status, expired.text).toBe(401);
    expect(expired.body.error.code).toBe("join_token_expired");
    expect((await api(hostPath(id), { token: t.owner.token })).body.host.status).toBe("offline");

    for (const who of [t.developer, t.viewer]) {
      const res = await api(`${hostPath(id)}/join-token`, { token: who.token, method: "POST" });
      expect(res.status, res.text).toBe(403);
    }
    const key = await createOrgKey(t.owner, t.slug, "full");
    expect((await api(`${hostPath(id)}/join-token`, { token: key.key, method: "POST" })).status).toBe(403);
    expect((await api(`${hostPath(id)}/join-token`, { token: outsider.token, method: "POST" })).status).toBe(404);

    const fresh = await api(`${hostPath(id)}/join-token`, { token: t.admin.token, method: "POST" });
    expect(fresh.status, fresh.text).toBe(201);
    expect(fresh.body.join_token).toMatch(/^bjt_/);
    expect(fresh.body.join_token).not.toBe(enrolled.join_token);
    expect(Date.parse(fresh.body.join_token_expires_at)).toBeGreaterThan(Date.now());
    expect(fresh.body.agent_command).toContain(fresh.body.join_token);

    expect((await join(enrolled.join_token)).body.error.code).toBe("invalid_join_token");
    const joined = await join(fresh.body.join_token);
    expect(joined.status, joined.text).toBe(201);
    expect(joined.body.host_id).toBe(id);
    expect((await api(hostPath(id), { token: t.owner.token })).body.host.status).toBe("online");
  });

  it("re-joining with a new token replaces the agent's credential", async () => {
    const enrolled = await enrol({ name: "reinstall" });
    const first = await join(enrolled.join_token);
    const fresh = await api(`${hostPath(enrolled.host.id)}/join-token`, { token: t.owner.token, method: "POST" });
    // Until the new token is exchanged, the running agent keeps working.
    expect((await api("/agent/heartbeat", { token: first.body.credential, body: { agent_version: "0.1.0" } })).status).toBe(200);
    const second = await join(fresh.body.join_token);
    expect(second.status, second.text).toBe(201);
    expect(second.body.credential).not.toBe(first.body.credential);
    const old = await api("/agent/heartbeat", { token: first.body.credential, body: { agent_version: "0.1.0" } });
    expect(old.status).toBe(401);
    expect(old.body.error.code).toBe("invalid_host_credential");
    expect((await api("/agent/heartbeat", { token: second.body.credential, body: { agent_version: "0.1.0" } })).status).toBe(200);
  });

  it("hides another org's hosts and needs a credential", async () => {
    const enrolled = await enrol({ name: "private" });
    expect((await api(`/org/${t.slug}/hosts`, { token: outsider.token })).status).toBe(404);
    expect((await api(hostPath(enrolled.host.id), { token: outsider.token })).status).toBe(404);
    // The outsider's own org does not see it either.
    const own = await api(`/org/${outsider.orgSlug}/hosts/${enrolled.host.id}`, { token: outsider.token });
    expect(own.status, own.text).toBe(404);
    expect(own.body.error.code).toBe("host_not_found");
    expect((await api(`/org/${outsider.orgSlug}/hosts`, { token: outsider.token })).body).toEqual({ hosts: [] });
    expect((await api(`/org/${t.slug}/hosts`)).status).toBe(401);
    expect((await api(hostPath(enrolled.host.id))).status).toBe(401);
    expect((await api(hostPath("hst_nope"), { token: t.owner.token })).status).toBe(404);
  });
});

// ---------------------------------------------------------------- credential confinement

describe("the host credential", () => {
  it("is good for the agent routes only", async () => {
    const { credential } = await joinedHost("confined");
    for (const path of ["/projects", "/orgs", "/me", `/org/${t.slug}/hosts`]) {
      const res = await api(path, { token: credential });
      expect(res.status, `${path}: ${res.text}`).toBe(401);
    }
    expect((await api(`/org/${t.slug}/hosts`, { token: credential, body: { name: "sneaky", kind: "docker" } })).status).toBe(401);
    // Nor does a user's credential work on the agent routes.
    const key = await createOrgKey(t.owner, t.slug, "full");
    for (const token of [t.owner.token, key.key, undefined]) {
      const res = await api("/agent/claim", { token, body: { held: [], wait: 0 } });
      expect(res.status, res.text).toBe(401);
      expect(res.body.error.code).toBe("invalid_host_credential");
    }
    const beat = await api("/agent/heartbeat", { token: t.owner.token, body: { agent_version: "0.1.0" } });
    expect(beat.body.error.code).toBe("invalid_host_credential");
    const forged = await api("/agent/claim", { token: `bha_${"0".repeat(64)}`, body: { held: [], wait: 0 } });
    expect(forged.status).toBe(401);
  });

  it("sees its own host's jobs only", async () => {
    const a = await joinedHost("host-a");
    const b = await joinedHost("host-b");
    const job = await exec(b.id, "hostname");
    // A's claim waits and gets nothing; B's gets the job.
    expect(await claim(a.credential, [], 2)).toEqual([]);
    const bLease = await claimJob(b.credential, job.id);
    // A cannot report under B's lease.
    for (const action of ["start", "renew", "finish"] as const) {
      const res = await lease(a.credential, bLease.lease_id, action, action === "finish" ? { status: "succeeded" } : {});
      expect(res.status, `${action}: ${res.text}`).toBe(409);
      expect(res.body.error.code).toBe("lease_stale");
    }
    const logs = await lease(a.credential, bLease.lease_id, "logs", { chunks: [{ seq: 0, stream: "stdout", offset: 0, data: "forged\n" }] });
    expect(logs.status).toBe(409);
    // B's lease is untouched by A's attempts.
    expect((await lease(b.credential, bLease.lease_id, "start")).status).toBe(200);
    expect((await hostJob(b.id, job.id)).body.job.status).toBe("running");
    expect((await lease(b.credential, bLease.lease_id, "finish", { status: "succeeded", result: { exit_code: 0 } })).status).toBe(200);
    expect((await api(`${hostPath(b.id)}/jobs/${job.id}/logs`, { token: t.owner.token })).body.logs).toEqual([]);
    // And A's host does not list B's job.
    expect((await api(`${hostPath(a.id)}/jobs`, { token: t.owner.token })).body.jobs).toEqual([]);
    expect((await hostJob(a.id, job.id)).status).toBe(404);
  });
});

// ---------------------------------------------------------------- exec and the agent protocol

describe("exec through the agent protocol", () => {
  it("runs a command: claim, start, logs, progress, finish, wait", async () => {
    const h = await joinedHost("runner");
    for (const who of [t.developer, t.viewer]) {
      const res = await api(`${hostPath(h.id)}/exec`, { token: who.token, body: { command: "id" } });
      expect(res.status, res.text).toBe(403);
    }
    const key = await createOrgKey(t.owner, t.slug, "full");
    expect((await api(`${hostPath(h.id)}/exec`, { token: key.key, body: { command: "id" } })).status).toBe(403);
    expect((await api(`${hostPath(h.id)}/exec`, { token: t.owner.token, body: { command: "" } })).status).toBe(400);
    expect((await api(`${hostPath(h.id)}/exec`, { token: t.owner.token, body: { command: "x", timeout_seconds: 0 } })).status).toBe(400);
    expect((await api(`${hostPath(h.id)}/exec`, { token: outsider.token, body: { command: "id" } })).status).toBe(404);

    const job = await exec(h.id, "echo hello; echo world", 30);
    expect(job).toMatchObject({ type: "host.exec", status: "queued", host_id: h.id, attempts: 1, instance: null, started_at: null, finished_at: null });
    expect(job.id).toMatch(/^job_/);
    expect(job.uid).toBe(job.id);
    const listed = await api(`${hostPath(h.id)}/jobs`, { token: t.viewer.token });
    expect(listed.status, listed.text).toBe(200);
    expect(listed.body.jobs.map((j: any) => j.id)).toEqual([job.id]);

    const l = await claimJob(h.credential, job.id);
    expect(l).toMatchObject({
      job_id: job.id,
      attempt: 1,
      reconcile: false,
      lease_ttl: expect.any(Number),
      payload: { type: "host.exec", command: "echo hello; echo world", timeout_seconds: 30 },
    });
    expect(l.lease_id).toMatch(/^lse_/);
    const held = [{ job_id: job.id, lease_id: l.lease_id }];

    // Not finished yet: a short wait ends on time with done:false.
    const t0 = Date.now();
    const waiting = await api(`${hostPath(h.id)}/jobs/${job.id}/wait?timeout=1`, { token: t.viewer.token });
    const took = Date.now() - t0;
    expect(waiting.status, waiting.text).toBe(200);
    expect(waiting.body.done).toBe(false);
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(2_500);
    expect((await api(`${hostPath(h.id)}/jobs/${job.id}/wait?timeout=61`, { token: t.owner.token })).status).toBe(400);

    const started = await lease(h.credential, l.lease_id, "start");
    expect(started.status, started.text).toBe(200);
    expect(started.body).toEqual({ ok: true });
    const running = (await hostJob(h.id, job.id, t.viewer.token)).body.job;
    expect(running.status).toBe("running");
    expect(running.started_at).not.toBeNull();

    // Logs: in order, deduplicated, with gaps reported and repaired.
    const c0 = { seq: 0, stream: "stdout", offset: 0, data: "hello\n" };
    const c1 = { seq: 1, stream: "stdout", offset: 6, data: "world\n" };
    const c2 = { seq: 2, stream: "stderr", offset: 0, data: "warn\n" };
    const c3 = { seq: 3, stream: "stdout", offset: 12, data: "bye\n" };
    let r = await lease(h.credential, l.lease_id, "logs", { chunks: [c0] });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ expected: { stdout: 6, stderr: 0 }, gap: false });
    r = await lease(h.credential, l.lease_id, "logs", { chunks: [c0] });
    expect(r.body).toEqual({ expected: { stdout: 6, stderr: 0 }, gap: false });
    r = await lease(h.credential, l.lease_id, "logs", { chunks: [c2, c3] });
    expect(r.body).toEqual({ expected: { stdout: 6, stderr: 5 }, gap: true });
    r = await lease(h.credential, l.lease_id, "logs", { chunks: [c0, c1, c2, c3] });
    expect(r.body).toEqual({ expected: { stdout: 16, stderr: 5 }, gap: false });
    const logs = await api(`${hostPath(h.id)}/jobs/${job.id}/logs`, { token: t.admin.token });
    expect(logs.status, logs.text).toBe(200);
    expect(logs.body.logs.map((x: any) => [x.stream, x.offset, x.text])).toEqual([
      ["stdout", 0, "hello\n"],
      ["stderr", 0, "warn\n"],
      ["stdout", 6, "world\n"],
      ["stdout", 12, "bye\n"],
    ]);
    expect(logs.body.logs.every((x: any) => !Number.isNaN(Date.parse(x.time)))).toBe(true);
    // A command's raw output is for owners and admins.
    expect((await api(`${hostPath(h.id)}/jobs/${job.id}/logs`, { token: t.developer.token })).status).toBe(403);

    const progress = { step: 1, total: 2, percent: 50, message: "half way" };
    const renewed = await lease(h.credential, l.lease_id, "renew", { progress });
    expect(renewed.status, renewed.text).toBe(200);
    expect(renewed.body).toEqual({ ok: true, lease_ttl: l.lease_ttl });
    expect((await hostJob(h.id, job.id)).body.job.progress).toEqual(progress);

    // A claim naming the held lease leaves it alone.
    expect(await claim(h.credential, held, 0)).toEqual([]);
    expect((await lease(h.credential, l.lease_id, "renew")).status).toBe(200);

    const finished = await lease(h.credential, l.lease_id, "finish", { status: "succeeded", result: { exit_code: 0 } });
    expect(finished.status, finished.text).toBe(200);
    const done = (await hostJob(h.id, job.id)).body.job;
    expect(done).toMatchObject({ status: "succeeded", result: { exit_code: 0 }, error: null, attempts: 1 });
    expect(done.finished_at).not.toBeNull();
    expect(done.progress.percent).toBe(100);

    const again = await lease(h.credential, l.lease_id, "finish", { status: "failed", error: "late" });
    expect(again.status, again.text).toBe(409);
    expect(again.body.error.code).toBe("lease_stale");
    expect((await lease(h.credential, l.lease_id, "renew")).status).toBe(409);
    expect((await lease(h.credential, l.lease_id, "logs", { chunks: [{ seq: 4, stream: "stdout", offset: 16, data: "x" }] })).status).toBe(409);
    expect((await hostJob(h.id, job.id)).body.job.status).toBe("succeeded");

    const t1 = Date.now();
    const waited = await api(`${hostPath(h.id)}/jobs/${job.id}/wait?timeout=1`, { token: t.viewer.token });
    expect(waited.status, waited.text).toBe(200);
    expect(waited.body).toMatchObject({ done: true, job: { id: job.id, status: "succeeded" } });
    expect(Date.now() - t1).toBeLessThan(900);

    const cancel = await api(`${hostPath(h.id)}/jobs/${job.id}/cancel`, { token: t.owner.token, method: "POST" });
    expect(cancel.status, cancel.text).toBe(409);
    expect(cancel.body.error.code).toBe("job_finished");
    expect((await api(`${hostPath(h.id)}/jobs/job_nope`, { token: t.owner.token })).status).toBe(404);
  });

  it("a wait wakes as soon as the job ends", async () => {
    const h = await joinedHost("waker");
    const job = await exec(h.id, "sleep 1");
    const l = await claimJob(h.credential, job.id);
    expect((await lease(h.credential, l.lease_id, "start")).status).toBe(200);
    const t0 = Date.now();
    const waiting = api(`${hostPath(h.id)}/jobs/${job.id}/wait?timeout=10`, { token: t.owner.token });
    await new Promise((r) => setTimeout(r, 200));
    expect((await lease(h.credential, l.lease_id, "finish", { status: "failed", error: "exit status 2", result: { exit_code: 2 } })).status).toBe(200);
    const res = await waiting;
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(res.body).toMatchObject({ done: true, job: { status: "failed", error: "exit status 2", result: { exit_code: 2 } } });
  });
});

describe("fencing", () => {
  it("a claim that does not name a held lease expires it; the job comes back as attempt 2 to reconcile", async () => {
    const h = await joinedHost("fenced");
    const job = await exec(h.id, "apt-get upgrade -y");
    const first = await claimJob(h.credential, job.id);
    expect(first).toMatchObject({ attempt: 1, reconcile: false });
    expect((await lease(h.credential, first.lease_id, "start")).status).toBe(200);
    expect((await lease(h.credential, first.lease_id, "logs", { chunks: [{ seq: 0, stream: "stdout", offset: 0, data: "old\n" }] })).status).toBe(200);

    // The agent restarted and forgot its lease.
    const leases = await claim(h.credential, [], 5);
    expect(leases).toHaveLength(1);
    const second = leases[0];
    expect(second).toMatchObject({ job_id: job.id, attempt: 2, reconcile: true, payload: { command: "apt-get upgrade -y" } });
    expect(second.lease_id).not.toBe(first.lease_id);
    expect((await hostJob(h.id, job.id)).body.job.attempts).toBe(2);

    // Everything under the old lease is refused.
    for (const [action, body] of [
      ["start", {}],
      ["renew", { progress: { step: 1, total: 1, percent: 100, message: "x" } }],
      ["logs", { chunks: [{ seq: 1, stream: "stdout", offset: 4, data: "stale\n" }] }],
      ["finish", { status: "succeeded", result: { exit_code: 0 } }],
    ] as const) {
      const res = await lease(h.credential, first.lease_id, action, body);
      expect(res.status, `${action}: ${res.text}`).toBe(409);
      expect(res.body.error.code).toBe("lease_stale");
    }
    expect((await hostJob(h.id, job.id)).body.job.status).not.toBe("succeeded");

    expect((await lease(h.credential, second.lease_id, "start")).status).toBe(200);
    expect((await lease(h.credential, second.lease_id, "logs", { chunks: [{ seq: 0, stream: "stdout", offset: 0, data: "new\n" }] })).status).toBe(200);
    expect((await lease(h.credential, second.lease_id, "finish", { status: "succeeded", result: { exit_code: 0 } })).status).toBe(200);
    const done = (await hostJob(h.id, job.id)).body.job;
    expect(done).toMatchObject({ status: "succeeded", attempts: 2 });
    // The logs are those of the attempt that finished.
    const logs = await api(`${hostPath(h.id)}/jobs/${job.id}/logs`, { token: t.owner.token });
    expect(logs.body.logs.map((x: any) => x.text)).toEqual(["new\n"]);
  });
});

describe("cancelling a host job", () => {
  it("ends the job, fences the agent's lease, and cannot be repeated", async () => {
    const h = await joinedHost("cancel");
    const job = await exec(h.id, "sleep 600");
    const l = await claimJob(h.credential, job.id);
    expect((await lease(h.credential, l.lease_id, "start")).status).toBe(200);
    for (const who of [t.developer, t.viewer]) {
      expect((await api(`${hostPath(h.id)}/jobs/${job.id}/cancel`, { token: who.token, method: "POST" })).status).toBe(403);
    }
    expect((await api(`${hostPath(h.id)}/jobs/${job.id}/cancel`, { token: outsider.token, method: "POST" })).status).toBe(404);
    const cancelled = await api(`${hostPath(h.id)}/jobs/${job.id}/cancel`, { token: t.admin.token, method: "POST" });
    expect(cancelled.status, cancelled.text).toBe(200);
    expect(cancelled.body.job).toMatchObject({ id: job.id, status: "cancelled" });
    expect(cancelled.body.job.finished_at).not.toBeNull();

    const renew = await lease(h.credential, l.lease_id, "renew");
    expect(renew.status, renew.text).toBe(409);
    expect(renew.body.error.code).toBe("lease_stale");
    expect((await lease(h.credential, l.lease_id, "finish", { status: "succeeded" })).status).toBe(409);
    expect((await hostJob(h.id, job.id)).body.job.status).toBe("cancelled");

    const again = await api(`${hostPath(h.id)}/jobs/${job.id}/cancel`, { token: t.owner.token, method: "POST" });
    expect(again.status, again.text).toBe(409);
    expect(again.body.error.code).toBe("job_finished");
    const waited = await api(`${hostPath(h.id)}/jobs/${job.id}/wait?timeout=1`, { token: t.viewer.token });
    expect(waited.body).toMatchObject({ done: true, job: { status: "cancelled" } });
  });

  it("a job cancelled before the agent claims it is never handed out", async () => {
    const h = await joinedHost("cancel-early");
    const job = await exec(h.id, "rm -rf /srv/cache");
    const cancelled = await api(`${hostPath(h.id)}/jobs/${job.id}/cancel`, { token: t.owner.token, method: "POST" });
    expect(cancelled.status, cancelled.text).toBe(200);
    expect(cancelled.body.job.status).toBe("cancelled");
    // Give the Queue time to deliver the hand-off it already had.
    await new Promise((r) => setTimeout(r, 500));
    expect(await claim(h.credential, [], 1)).toEqual([]);
    expect((await hostJob(h.id, job.id)).body.job.status).toBe("cancelled");
  });
});

// ---------------------------------------------------------------- deleting

describe("deleting a host", () => {
  it("cuts the agent off at once, hides the host and fails its open jobs", async () => {
    const h = await joinedHost("doomed");
    const projectId = await newProject("Doomed shop");
    const running = await exec(h.id, "sleep 600");
    const l = await claimJob(h.credential, running.id);
    expect((await lease(h.credential, l.lease_id, "start")).status).toBe(200);
    const queued = await exec(h.id, "echo later");
    const pj = await projectJob(projectId, h.id, "ins_doomed");

    for (const who of [t.developer, t.viewer]) {
      const res = await api(hostPath(h.id), { token: who.token, method: "DELETE" });
      expect(res.status, res.text).toBe(403);
    }
    const key = await createOrgKey(t.owner, t.slug, "full");
    expect((await api(hostPath(h.id), { token: key.key, method: "DELETE" })).status).toBe(403);
    expect((await api(hostPath(h.id), { token: outsider.token, method: "DELETE" })).status).toBe(404);
    expect((await api("/agent/heartbeat", { token: h.credential, body: { agent_version: "0.1.0" } })).status).toBe(200);

    const del = await api(hostPath(h.id), { token: t.admin.token, method: "DELETE" });
    expect(del.status, del.text).toBe(200);
    expect(del.body).toEqual({ ok: true });

    const beat = await api("/agent/heartbeat", { token: h.credential, body: { agent_version: "0.1.0" } });
    expect(beat.status, beat.text).toBe(401);
    expect(beat.body.error.code).toBe("invalid_host_credential");
    expect((await api("/agent/claim", { token: h.credential, body: { held: [], wait: 0 } })).body.error.code).toBe("invalid_host_credential");
    expect((await lease(h.credential, l.lease_id, "renew")).status).toBe(401);

    expect((await api(hostPath(h.id), { token: t.owner.token })).status).toBe(404);
    const list = await api(`/org/${t.slug}/hosts`, { token: t.owner.token });
    expect(list.body.hosts.map((x: any) => x.id)).not.toContain(h.id);
    expect((await api(hostPath(h.id), { token: t.admin.token, method: "DELETE" })).status).toBe(404);
    expect((await api(`${hostPath(h.id)}/exec`, { token: t.owner.token, body: { command: "id" } })).status).toBe(404);

    // The project's job on that host ends failed, with a reason a user can read.
    const waited = await api(`/projects/${projectId}/jobs/${pj.id}/wait?timeout=5`, { token: t.viewer.token });
    expect(waited.status, waited.text).toBe(200);
    expect(waited.body.done).toBe(true);
    expect(waited.body.job.status).toBe("failed");
    expect(waited.body.job.error).toMatch(/host was deleted/i);

    // So do the host's own jobs, which stay readable through the API after the host is gone.
    for (const id of [running.id, queued.id]) {
      const waitedJob = await api(`${hostPath(h.id)}/jobs/${id}/wait?timeout=5`, { token: t.viewer.token });
      expect(waitedJob.status, waitedJob.text).toBe(200);
      expect(waitedJob.body.job.status).toBe("failed");
      expect(waitedJob.body.job.error).toMatch(/host was deleted/i);
    }
    expect((await api(`${hostPath(h.id)}/jobs/${running.id}`, { token: outsider.token })).status).toBe(404);

    // The join-token route no longer knows it either.
    const rejoin = await api(`${hostPath(h.id)}/join-token`, { token: t.owner.token, method: "POST" });
    expect(rejoin.status).toBe(404);
  });

  it("ends a claim that is waiting for work and closes the agent's socket", async () => {
    const h = await joinedHost("doomed-connected");
    const connect = await fetchWorker("/api/v1/agent/connect", { headers: { upgrade: "websocket", authorization: `Bearer ${h.credential}` } });
    expect(connect.status).toBe(101);
    const ws = connect.webSocket!;
    const messages: any[] = [];
    let closed: number | null = null;
    ws.accept();
    ws.addEventListener("message", (e) => {
      messages.push(JSON.parse(e.data as string));
    });
    ws.addEventListener("close", (e) => {
      closed = e.code;
    });
    ws.send(JSON.stringify({ type: "hello", agent_version: "0.3.0", held: [] }));
    await until("hello", async () => messages, (m) => m.some((x) => x.type === "hello"));
    expect(messages[0]).toMatchObject({ type: "hello", host_id: h.id, protocol: 1 });
    expect((await api(hostPath(h.id), { token: t.viewer.token })).body.host).toMatchObject({ connected: true, agent_version: "0.3.0" });

    // Work is pushed over the socket.
    const job = await exec(h.id, "uptime");
    const pushed = await until("a pushed lease", async () => messages, (m) => m.some((x) => x.type === "lease" && x.lease.job_id === job.id));
    const held = pushed.filter((x) => x.type === "lease").map((x) => ({ job_id: x.lease.job_id, lease_id: x.lease.lease_id }));

    const t0 = Date.now();
    const waiting = api("/agent/claim", { token: h.credential, body: { held, wait: 10 } });
    await new Promise((r) => setTimeout(r, 200));
    expect((await api(hostPath(h.id), { token: t.owner.token, method: "DELETE" })).status).toBe(200);
    const claimRes = await waiting;
    expect(claimRes.status, claimRes.text).toBe(401);
    expect(claimRes.body.error.code).toBe("invalid_host_credential");
    expect(Date.now() - t0).toBeLessThan(5_000);
    await until("the socket to close", async () => closed, (c) => c !== null);
    expect(closed).toBe(4403);
    const refused = await fetchWorker("/api/v1/agent/connect", { headers: { upgrade: "websocket", authorization: `Bearer ${h.credential}` } });
    expect(refused.status).toBe(401);
  });
});

// ---------------------------------------------------------------- project jobs

describe("project jobs", () => {
  it("lists nothing for a new project and 404s an unknown job; hidden from other orgs and anonymous callers", async () => {
    const projectId = await newProject("Empty");
    const list = await api(`/projects/${projectId}/jobs`, { token: t.viewer.token });
    expect(list.status, list.text).toBe(200);
    expect(list.body).toEqual({ jobs: [] });
    const unknown = await api(`/projects/${projectId}/jobs/job_nope`, { token: t.owner.token });
    expect(unknown.status, unknown.text).toBe(404);
    expect(unknown.body.error.code).toBe("job_not_found");
    expect((await api(`/projects/${projectId}/jobs/job_nope/logs`, { token: t.owner.token })).status).toBe(404);
    expect((await api(`/projects/${projectId}/jobs/job_nope/wait?timeout=0`, { token: t.owner.token })).status).toBe(404);
    expect((await api(`/projects/${projectId}/jobs/job_nope/cancel`, { token: t.owner.token, method: "POST" })).status).toBe(404);
    expect((await api(`/projects/${projectId}/jobs`, { token: outsider.token })).status).toBe(404);
    expect((await api(`/projects/${projectId}/jobs/job_nope`, { token: outsider.token })).status).toBe(404);
    expect((await api(`/projects/${projectId}/jobs`)).status).toBe(401);
    expect((await api(`/projects/prj_nope/jobs`, { token: t.owner.token })).status).toBe(404);
  });

  it("shows, filters, waits on and cancels a job", async () => {
    const projectId = await newProject("Jobs");
    const enrolled = await enrol({ name: "project-target" });
    const job = await projectJob(projectId, enrolled.host.id, "ins_test");
    const other = await projectJob(projectId, enrolled.host.id, "ins_other");

    const list = await api(`/projects/${projectId}/jobs`, { token: t.viewer.token });
    expect(list.status, list.text).toBe(200);
    expect(list.body.jobs.map((j: any) => j.id).sort()).toEqual([job.id, other.id].sort());
    const filtered = await api(`/projects/${projectId}/jobs?instance=ins_test`, { token: t.viewer.token });
    expect(filtered.body.jobs.map((j: any) => j.id)).toEqual([job.id]);
    expect((await api(`/projects/${projectId}/jobs?instance=ins_none`, { token: t.viewer.token })).body).toEqual({ jobs: [] });

    const one = await api(`/projects/${projectId}/jobs/${job.id}`, { token: t.viewer.token });
    expect(one.status, one.text).toBe(200);
    expect(one.body.job).toMatchObject({ id: job.id, uid: job.id, type: "host.exec", instance: "ins_test", host_id: enrolled.host.id, attempts: 1 });
    expect(["queued", "dispatched"]).toContain(one.body.job.status);
    const logs = await api(`/projects/${projectId}/jobs/${job.id}/logs`, { token: t.viewer.token });
    expect(logs.status, logs.text).toBe(200);
    expect(logs.body).toEqual({ logs: [] });
    const waiting = await api(`/projects/${projectId}/jobs/${job.id}/wait?timeout=1`, { token: t.viewer.token });
    expect(waiting.body.done).toBe(false);
    expect((await api(`/projects/${projectId}/jobs/${job.id}/wait?timeout=61`, { token: t.viewer.token })).status).toBe(400);

    // Another org sees none of it.
    expect((await api(`/projects/${projectId}/jobs/${job.id}`, { token: outsider.token })).status).toBe(404);
    expect((await api(`/projects/${projectId}/jobs/${job.id}/cancel`, { token: outsider.token, method: "POST" })).status).toBe(404);

    const viewer = await api(`/projects/${projectId}/jobs/${job.id}/cancel`, { token: t.viewer.token, method: "POST" });
    expect(viewer.status, viewer.text).toBe(403);
    const ro = await createOrgKey(t.owner, t.slug, "read-only");
    expect((await api(`/projects/${projectId}/jobs/${job.id}/cancel`, { token: ro.key, method: "POST" })).status).toBe(403);
    expect((await api(`/projects/${projectId}/jobs`, { token: ro.key })).status).toBe(200);

    const cancelled = await api(`/projects/${projectId}/jobs/${job.id}/cancel`, { token: t.developer.token, method: "POST" });
    expect(cancelled.status, cancelled.text).toBe(200);
    expect(cancelled.body.job).toMatchObject({ id: job.id, status: "cancelled" });
    const again = await api(`/projects/${projectId}/jobs/${job.id}/cancel`, { token: t.developer.token, method: "POST" });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("job_finished");
    const waited = await api(`/projects/${projectId}/jobs/${job.id}/wait?timeout=1`, { token: t.viewer.token });
    expect(waited.body).toMatchObject({ done: true, job: { status: "cancelled" } });

    const deploy = await createOrgKey(t.owner, t.slug, "deploy");
    const byKey = await api(`/projects/${projectId}/jobs/${other.id}/cancel`, { token: deploy.key, method: "POST" });
    expect(byKey.status, byKey.text).toBe(200);
    expect(byKey.body.job.status).toBe("cancelled");
  });

  it("runs on its host's agent, with logs and outcome visible on the project", async () => {
    const projectId = await newProject("Deployed");
    const h = await joinedHost("project-runner");
    const job = await projectJob(projectId, h.id, "ins_web", "docker ps");
    const l = await claimJob(h.credential, job.id);
    expect(l).toMatchObject({ attempt: 1, reconcile: false, payload: { type: "host.exec", command: "docker ps" } });
    expect((await lease(h.credential, l.lease_id, "start")).status).toBe(200);
    expect((await lease(h.credential, l.lease_id, "logs", { chunks: [{ seq: 0, stream: "stdout", offset: 0, data: "CONTAINER ID\n" }] })).status).toBe(200);
    expect((await lease(h.credential, l.lease_id, "finish", { status: "succeeded", result: { exit_code: 0 } })).status).toBe(200);
    const waited = await api(`/projects/${projectId}/jobs/${job.id}/wait?timeout=5`, { token: t.viewer.token });
    expect(waited.body).toMatchObject({ done: true, job: { status: "succeeded", result: { exit_code: 0 }, instance: "ins_web" } });
    const logs = await api(`/projects/${projectId}/jobs/${job.id}/logs`, { token: t.viewer.token });
    expect(logs.body.logs.map((x: any) => x.text)).toEqual(["CONTAINER ID\n"]);
    // The host's own job list does not carry project jobs.
    expect((await api(`${hostPath(h.id)}/jobs`, { token: t.owner.token })).body.jobs).toEqual([]);
  });
});

// ---------------------------------------------------------------- event stream

async function openEvents(projectId: string, opts: { token?: string; query?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { upgrade: "websocket", ...(opts.headers ?? {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const res = await fetchWorker(`/api/v1/projects/${projectId}/events${opts.query ?? ""}`, { headers });
  return res;
}

function collect(res: Response) {
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  expect(ws).toBeTruthy();
  const messages: any[] = [];
  ws.accept();
  ws.addEventListener("message", (e) => {
    messages.push(JSON.parse(e.data as string));
  });
  return { ws, messages };
}

describe("project event stream", () => {
  it("needs a WebSocket upgrade and a credential that can read the project", async () => {
    const projectId = await newProject("Events gate");
    const plain = await api(`/projects/${projectId}/events`, { token: t.viewer.token });
    expect(plain.status, plain.text).toBe(426);
    expect(plain.body.error.code).toBe("upgrade_required");
    expect((await openEvents(projectId)).status).toBe(401);
    expect((await openEvents(projectId, { token: outsider.token })).status).toBe(404);
    const { credential } = await joinedHost("no-events");
    expect((await openEvents(projectId, { token: credential })).status).toBe(401);
  });

  it("streams job events in order and resumes after a seq", async () => {
    const projectId = await newProject("Events");
    const enrolled = await enrol({ name: "events-target" });
    const first = collect(await openEvents(projectId, { token: t.viewer.token }));

    const job = await projectJob(projectId, enrolled.host.id, "ins_ev");
    await until("job.queued", async () => first.messages, (m) => m.some((e) => e.type === "job.queued" && e.job_id === job.id));
    const cancel = await api(`/projects/${projectId}/jobs/${job.id}/cancel`, { token: t.developer.token, method: "POST" });
    expect(cancel.status, cancel.text).toBe(200);
    await until("job.cancelled", async () => first.messages, (m) => m.some((e) => e.type === "job.cancelled" && e.job_id === job.id));

    const seqs = first.messages.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    const queued = first.messages.find((e) => e.type === "job.queued")!;
    const cancelled = first.messages.find((e) => e.type === "job.cancelled")!;
    expect(cancelled.seq).toBeGreaterThan(queued.seq);
    expect(queued).toMatchObject({ job_id: job.id, data: { type: "host.exec", host_id: enrolled.host.id } });
    expect(cancelled.data).toMatchObject({ status: "cancelled" });
    expect(typeof cancelled.at).toBe("number");
    first.ws.close(1000, "done");

    // Resume after the queued event: only later events come back.
    const resumed = collect(await openEvents(projectId, { token: t.viewer.token, query: `?since=${queued.seq}` }));
    await until("replay", async () => resumed.messages, (m) => m.some((e) => e.type === "job.cancelled"));
    expect(resumed.messages.every((e) => e.seq > queued.seq)).toBe(true);
    expect(resumed.messages.some((e) => e.type === "job.queued")).toBe(false);
    resumed.ws.close(1000, "done");

    // The same through Last-Event-ID, and with the credential as ?token=.
    const viaHeader = collect(await openEvents(projectId, { headers: { "last-event-id": String(cancelled.seq - 1) }, query: `?token=${t.viewer.token}` }));
    await until("replay", async () => viaHeader.messages, (m) => m.length > 0);
    await new Promise((r) => setTimeout(r, 100));
    expect(viaHeader.messages.map((e) => e.seq)).toEqual([cancelled.seq]);

    // Live events keep coming on the resumed socket.
    const next = await projectJob(projectId, enrolled.host.id, "ins_ev2");
    await until("live job.queued", async () => viaHeader.messages, (m) => m.some((e) => e.type === "job.queued" && e.job_id === next.id));
    expect(viaHeader.messages.find((e) => e.job_id === next.id).seq).toBeGreaterThan(cancelled.seq);
    viaHeader.ws.close(1000, "done");
    await api(`/projects/${projectId}/jobs/${next.id}/cancel`, { token: t.developer.token, method: "POST" });
  });
});

// ---------------------------------------------------------------- a host's events

describe("host events", () => {
  const watch = (hostId: string, headers: Record<string, string> = {}, slug = t.slug) =>
    fetchWorker(`/api/v1/org/${slug}/hosts/${hostId}/events`, { headers: { upgrade: "websocket", ...headers } });

  it("tell a watcher when the agent connects (the host then reads online), beats and leaves; the socket ends with the host", async () => {
    const enrolled = await enrol({ name: "watched" });
    const res = await watch(enrolled.host.id, { authorization: `Bearer ${t.viewer.token}` });
    expect(res.status).toBe(101);
    const watcher = res.webSocket!;
    const seen: any[] = [];
    let closed: { code: number; reason: string } | null = null;
    watcher.accept();
    watcher.addEventListener("message", (e) => seen.push(JSON.parse(e.data as string)));
    watcher.addEventListener("close", (e) => {
      closed = { code: e.code, reason: e.reason };
    });
    await until("host.status", async () => seen, (m) => m.length > 0);
    expect(seen[0]).toMatchObject({ type: "host.status", connected: false });

    const joined = await join(enrolled.join_token);
    expect(joined.status, joined.text).toBe(201);
    const connect = await fetchWorker("/api/v1/agent/connect", { headers: { upgrade: "websocket", authorization: `Bearer ${joined.body.credential}` } });
    expect(connect.status).toBe(101);
    const agent = connect.webSocket!;
    agent.accept();
    agent.send(JSON.stringify({ type: "hello", agent_version: "0.3.0", held: [] }));
    await until("host.connected", async () => seen, (m) => m.some((x) => x.type === "host.connected"));
    expect(seen.find((x) => x.type === "host.connected")).toMatchObject({ connected: true });
    // Read on the event, the host is online.
    expect((await api(hostPath(enrolled.host.id), { token: t.viewer.token })).body.host).toMatchObject({ status: "online", connected: true });

    agent.send(JSON.stringify({ type: "heartbeat", agent_version: "0.3.0" }));
    await until("host.heartbeat", async () => seen, (m) => m.some((x) => x.type === "host.heartbeat"));
    agent.close(1000, "bye");
    await until("host.disconnected", async () => seen, (m) => m.some((x) => x.type === "host.disconnected"));

    expect((await api(hostPath(enrolled.host.id), { token: t.owner.token, method: "DELETE" })).status).toBe(200);
    await until("closed", async () => closed, (c) => c !== null);
    expect(closed).toEqual({ code: 1000, reason: "host deleted" });
  });

  it("need a WebSocket upgrade and a credential that can read the host; another org's host is 404", async () => {
    const { id } = await joinedHost("watch-gate");
    const plain = await api(`${hostPath(id)}/events`, { token: t.viewer.token });
    expect(plain.status, plain.text).toBe(426);
    expect(plain.body.error.code).toBe("upgrade_required");
    expect((await watch(id)).status).toBe(401);
    const foreign = await watch(id, { authorization: `Bearer ${outsider.token}` });
    expect(foreign.status).toBe(404);
    expect((await foreign.json<any>()).error.code).toBe("not_found");
    expect((await watch("hst_nosuchhost00000", { authorization: `Bearer ${t.viewer.token}` })).status).toBe(404);
    // An agent's credential is not a person's: it cannot watch, even its own host.
    expect((await watch(id, { authorization: `Bearer ${(await joinedHost("watch-agent")).credential}` })).status).toBe(401);
  });
});
