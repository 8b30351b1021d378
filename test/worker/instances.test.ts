/**
 * Suble's instances through the real Worker, D1, Durable Objects and Queue, with the
 * Proxmox node's agent simulated by plain API calls carrying its `bha_` credential: create
 * (placement, progress, results), the one-time root password, power actions, resize,
 * rebuild, password reset, SSH keys, the event feed, delete, and who may do what.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { instanceJobSeconds } from "../../src/services/instance-jobs";
import { api, type CallResult, createOrgKey, env, expectApiError, orgWithEveryRole, signUp, type TestUser } from "./helpers";

type Team = Awaited<ReturnType<typeof orgWithEveryRole>>;

const GIB = 1024 ** 3;
const PROXMOX_FACTS = {
  hostname: "pve1",
  cpus: 64,
  memory_bytes: 512 * GIB,
  proxmox_version: "8.3.0",
  proxmox: { node: "pve1", templates: ["berth-ubuntu-2404", "berth-debian-12"], storage: "local-lvm", storage_bytes: 20_000 * GIB },
};

let t: Team;
let projectId: string;
let node: { id: string; credential: string };
let outsider: TestUser;

async function enrolAndJoin(orgSlug: string, owner: TestUser, kind: "docker" | "proxmox", facts: Record<string, unknown>) {
  const enrolled = await api(`/org/${orgSlug}/hosts`, { token: owner.token, body: { name: `${kind}-node`, kind } });
  expect(enrolled.status, enrolled.text).toBe(201);
  const joined = await api("/agent/join", { body: { join_token: enrolled.body.join_token, agent_version: "test", facts } });
  expect(joined.status, joined.text).toBe(201);
  return { id: enrolled.body.host.id as string, credential: joined.body.credential as string };
}

beforeAll(async () => {
  t = await orgWithEveryRole();
  const project = await api("/projects", { token: t.owner.token, body: { name: "VMs", org: t.slug } });
  expect(project.status, project.text).toBe(201);
  projectId = project.body.id;
  node = await enrolAndJoin(t.slug, t.owner, "proxmox", PROXMOX_FACTS);
  outsider = await signUp({ name: "Outsider" });
}, 90_000);

// ---------------------------------------------------------------- the simulated agent

type Lease = { job_id: string; lease_id: string; payload: any; attempt: number };
const held: Lease[] = [];

/** Claims until the job's lease arrives (the Queue hands it to the host asynchronously). */
async function claimJob(jobId: string, credential = node.credential): Promise<Lease> {
  for (let i = 0; i < 6; i++) {
    const res = await api("/agent/claim", { token: credential, body: { held: held.map(({ job_id, lease_id }) => ({ job_id, lease_id })), wait: 3 } });
    expect(res.status, res.text).toBe(200);
    for (const l of res.body.leases as Lease[]) if (!held.some((h) => h.lease_id === l.lease_id)) held.push(l);
    const lease = held.find((l) => l.job_id === jobId);
    if (lease) return lease;
  }
  throw new Error(`no lease for ${jobId}`);
}

const leaseCall = (lease: Lease, op: "start" | "renew" | "finish", body: unknown = {}) =>
  api(`/agent/leases/${lease.lease_id}/${op}`, { token: node.credential, body });

async function startJob(jobId: string) {
  const lease = await claimJob(jobId);
  expect((await leaseCall(lease, "start")).status).toBe(200);
  return lease;
}

async function finishJob(lease: Lease, outcome: { status: "succeeded" | "failed"; result?: Record<string, unknown>; error?: string }) {
  const res = await leaseCall(lease, "finish", outcome);
  expect(res.status, res.text).toBe(200);
  held.splice(held.indexOf(lease), 1);
}

/** The agent runs the job to the end. */
async function runJob(jobId: string, outcome: { status: "succeeded" | "failed"; result?: Record<string, unknown>; error?: string } = { status: "succeeded" }) {
  const lease = await startJob(jobId);
  await finishJob(lease, outcome);
  return lease;
}

// ---------------------------------------------------------------- helpers

const base = (p = projectId) => `/projects/${p}/instances`;
let seq = 0;
const uniqueName = (tag = "vm") => `${tag}-${++seq}-${Math.random().toString(36).slice(2, 6)}`;

/** The node's agent beats every 15 s; so do the tests, or it goes offline and nothing can be placed on it. */
let lastBeat = Date.now();
async function heartbeat() {
  if (Date.now() - lastBeat < 10_000) return;
  const res = await api("/agent/heartbeat", { token: node.credential, body: { agent_version: "test", facts: PROXMOX_FACTS } });
  expect(res.status, res.text).toBe(200);
  lastBeat = Date.now();
}

async function create(body: Record<string, unknown> = {}, token = t.owner.token, project = projectId) {
  await heartbeat();
  return api(base(project), { token, body: { name: uniqueName(), plan: "bxs-2-4", source: { image: "img_ubuntu2404" }, ...body } });
}

/** A created instance whose create job succeeded: running, with a vmid and an address. */
async function runningInstance(body: Record<string, unknown> = {}) {
  const res = await create(body);
  expect(res.status, res.text).toBe(202);
  await runJob(res.body.job.uid, { status: "succeeded", result: { vmid: 100 + ++seq, node: "pve1", ipv4: `10.0.0.${seq % 250}`, power_state: "running" } });
  return res.body.instance as { uid: string; name: string };
}

const get = (id: string, token = t.owner.token) => api(`${base()}/${id}`, { token });
const row = (id: string) => env.DB.prepare("SELECT * FROM instance WHERE id = ?").bind(id).first<Record<string, any>>();
const post = (id: string, what: string, body: unknown = {}, token = t.owner.token) => api(`${base()}/${id}/${what}`, { token, body });

// ---------------------------------------------------------------- create

describe("creating an instance", () => {
  it("answers 202 with the queued instance and its instance.create job; the job's progress and results land on the instance", async () => {
    const name = uniqueName("web");
    const res = await create({ name, password: "correct-horse-42", ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBerth me@laptop"], backup_tier: "basic" });
    expect(res.status, res.text).toBe(202);
    const { instance, job } = res.body;
    expect(instance).toMatchObject({
      uid: expect.stringMatching(/^ins_[0-9a-z]{16}$/),
      name,
      status: "queued",
      power_state: "unknown",
      backup_tier: "basic",
      plan_code: "bxs-2-4",
      image_name: "Ubuntu 24.04 LTS",
      primary_ip: null,
      app_slug: null,
      host_id: node.id,
      node: "pve1",
      job_uid: job.uid,
      job_type: "instance.create",
      root_password: "correct-horse-42",
    });
    expect(job).toMatchObject({ uid: expect.stringMatching(/^job_/), type: "instance.create", status: "queued", instance: instance.uid });
    // The org's audit log has the create, written with the instance: its plan, image and the node it was placed on.
    const audit = await api(`/org/${t.slug}/audit?limit=200`, { token: t.owner.token });
    expect(audit.status, audit.text).toBe(200);
    expect(audit.body.events.filter((e: any) => e.action === "instance.create" && e.target?.id === instance.uid)).toEqual([
      expect.objectContaining({ metadata: { name, project_id: projectId, plan: "bxs-2-4", image: "img_ubuntu2404", host_id: node.id } }),
    ]);

    // The agent's lease: everything the node needs, and no password in it.
    const lease = await claimJob(job.uid);
    expect(lease.payload).toEqual({
      type: "instance.create",
      instance_id: instance.uid,
      vmid_hint: lease.payload.vmid_hint,
      template: "berth-ubuntu-2404",
      hostname: name,
      ciuser: "ubuntu",
      ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBerth me@laptop"],
      has_password: true,
      plan: { code: "bxs-2-4", cores: 2, memory_mb: 4096, disk_gb: 80 },
      networks: [],
    });
    expect(JSON.stringify(lease)).not.toContain("correct-horse-42");
    // The lease names the job's deadline (900 s to run, 120 s to wait for the node), so the node's work gives up before it with its own reason.
    expect(Date.parse(job.deadline_at) - Date.parse(job.created_at)).toBe((900 + 120) * 1000);
    expect((lease as Lease & { deadline_at: number }).deadline_at).toBe(Date.parse(job.deadline_at));
    const secrets = await api(`/agent/leases/${lease.lease_id}/env`, { token: node.credential });
    expect(secrets.status, secrets.text).toBe(200);
    expect(secrets.body.password).toBe("correct-horse-42");
    // Stored sealed, never in clear.
    const stored = await row(instance.uid);
    expect(JSON.stringify(stored)).not.toContain("correct-horse-42");
    expect(stored!.root_password_ciphertext).toMatch(/^v1\./);

    expect((await leaseCall(lease, "start")).status).toBe(200);
    expect((await get(instance.uid)).body.instance.status).toBe("provisioning");
    expect((await leaseCall(lease, "renew", { progress: { step: 2, total: 4, percent: 50, message: "Cloning template" } })).status).toBe(200);
    const listed = await api(base(), { token: t.owner.token });
    expect(listed.status, listed.text).toBe(200);
    expect(listed.body.instances.find((i: any) => i.uid === instance.uid)).toMatchObject({
      status: "provisioning",
      job_uid: job.uid,
      job_type: "instance.create",
      progress_step: 2,
      progress_total: 4,
      progress_percent: 50,
      progress_message: "Cloning template",
    });
    expect(listed.body.instances.every((i: any) => !("root_password" in i))).toBe(true);

    await finishJob(lease, { status: "succeeded", result: { vmid: 123, node: "pve1", ipv4: "10.0.0.7", power_state: "running" } });
    const done = (await get(instance.uid)).body.instance;
    expect(done).toMatchObject({ status: "running", power_state: "running", vmid: 123, node: "pve1", primary_ip: "10.0.0.7", job_uid: null, progress_step: null, error_code: null });
    const jobNow = await api(`/projects/${projectId}/jobs/${job.uid}`, { token: t.owner.token });
    expect(jobNow.body.job).toMatchObject({ status: "succeeded", instance: instance.uid });
    // The password was for that job only: its lease is gone, and so is the copy for the agent.
    expect((await row(instance.uid))!.job_password_ciphertext).toBeNull();
  });

  it("makes a random root password when none is given, shows it until acknowledged, then never again", async () => {
    const res = await create();
    expect(res.status, res.text).toBe(202);
    const { uid } = res.body.instance;
    const password = res.body.instance.root_password;
    expect(password).toMatch(/^\S{20}$/);
    expect((await get(uid)).body.instance.root_password).toBe(password);
    expect((await get(uid, t.viewer.token)).body.instance.root_password).toBe(password);
    const ack = await post(uid, "password/acknowledge");
    expect(ack.status, ack.text).toBe(204);
    expect((await get(uid)).body.instance.root_password).toBeNull();
    expect((await row(uid))!.root_password_ciphertext).toBeNull();
    // Acknowledging again changes nothing; the password stays gone.
    expect((await post(uid, "password/acknowledge")).status).toBe(204);
    expect((await get(uid)).text).not.toContain(password);
    await runJob(res.body.job.uid, { status: "succeeded", result: { vmid: 200, node: "pve1", ipv4: "10.0.1.1" } });
    expect((await get(uid)).body.instance).toMatchObject({ status: "running", root_password: null });
  });

  it("refuses bad hostnames, passwords and keys with 400 invalid_request, and creates nothing", async () => {
    for (const name of ["Web", "-web", "web-", "web_01", "", "a".repeat(65), "web.example"]) {
      expectApiError(await create({ name }), 400, "invalid_request");
    }
    expect((await create({ name: "a".repeat(64) })).status).toBe(202);
    expectApiError(await create({ password: "short" }), 400, "invalid_request");
    expectApiError(await create({ password: "x".repeat(73) }), 400, "invalid_request");
    expectApiError(await create({ ssh_keys: ["not a key"] }), 400, "invalid_request");
    expectApiError(await create({ source: {} }), 400, "invalid_request");
    expectApiError(await create({ source: { image: "img_ubuntu2404", app: "wordpress" } }), 400, "invalid_request");
    expectApiError(await create({ backup_tier: "gold" }), 400, "invalid_request");
    expectApiError(await api(base(), { token: t.owner.token, body: { name: "no-plan", source: { image: "img_debian12" } } }), 400, "invalid_request");
    const names = (await api(base(), { token: t.owner.token })).body.instances.map((i: any) => i.name);
    expect(names).not.toContain("Web");
  });

  it("answers name_taken for a name a live instance of the project has; another project may use it", async () => {
    const name = uniqueName("dup");
    expect((await create({ name })).status).toBe(202);
    expectApiError(await create({ name }), 409, "name_taken");
    const other = await api("/projects", { token: t.owner.token, body: { name: "Other VMs", org: t.slug } });
    expect((await create({ name }, t.owner.token, other.body.id)).status).toBe(202);
  });

  it("answers plan_not_found, image_not_found and plan_too_small for what the catalog cannot give", async () => {
    expectApiError(await create({ plan: "bxs-999" }), 404, "plan_not_found");
    expectApiError(await create({ source: { image: "img_nope" } }), 404, "image_not_found");
    await env.DB.prepare(
      "INSERT OR IGNORE INTO os_image (id, family, version, display_name, protocol, default_user, min_disk_gb, has_guest_agent, template) VALUES ('img_bigdisk', 'big', '1', 'Big Disk OS', 'ssh', 'root', 100, 1, 'berth-ubuntu-2404')",
    ).run();
    const small = await create({ plan: "bxs-2-4", source: { image: "img_bigdisk" } });
    expectApiError(small, 400, "plan_too_small");
    expect(small.body.error.message).toContain("100 GB");
    expect((await create({ plan: "bxs-4-8", source: { image: "img_bigdisk" } })).status).toBe(202);
  });

  it("answers source_not_supported for a template or a one-click app, for now", async () => {
    const template = await create({ source: { template: "tpl_abc" } });
    expectApiError(template, 400, "source_not_supported");
    expect(template.body.error.message).toMatch(/template/);
    const app = await create({ source: { app: "wordpress" } });
    expectApiError(app, 400, "source_not_supported");
    expect(app.body.error.message).toMatch(/app/);
  });

  it("places only on an online Proxmox node with the image's template and room for the plan", async () => {
    const solo = await signUp({ name: "Solo" });
    const attempt = () => create({}, solo.token, solo.projectId);
    // No Proxmox node at all: a Docker host does not count.
    await enrolAndJoin(solo.orgSlug, solo, "docker", { hostname: "d", cpus: 4, memory_bytes: 64 * GIB, docker_version: "27" });
    const none = await attempt();
    expectApiError(none, 409, "no_host_available");
    expect(none.body.error.message).toMatch(/Proxmox/);
    // A node without the template.
    await enrolAndJoin(solo.orgSlug, solo, "proxmox", { ...PROXMOX_FACTS, proxmox: { ...PROXMOX_FACTS.proxmox, node: "pve-a", templates: ["berth-debian-12"] } });
    const noTemplate = await attempt();
    expectApiError(noTemplate, 409, "no_host_available");
    expect(noTemplate.body.error.message).toContain("berth-ubuntu-2404");
    // A node with the template and 6 GB of memory: one 4 GB instance fits, a second does not.
    const small = await enrolAndJoin(solo.orgSlug, solo, "proxmox", { ...PROXMOX_FACTS, memory_bytes: 6 * GIB, proxmox: { ...PROXMOX_FACTS.proxmox, node: "pve-b" } });
    const first = await attempt();
    expect(first.status, first.text).toBe(202);
    expect(first.body.instance).toMatchObject({ host_id: small.id, node: "pve-b" });
    const full = await attempt();
    expectApiError(full, 409, "no_host_available");
    expect(full.body.error.message).toMatch(/room/);
    // A node that is offline does not count.
    await env.DB.prepare("UPDATE host SET last_seen_at = 0 WHERE id = ?").bind(small.id).run();
    expectApiError(await create({ plan: "bxs-1", source: { image: "img_ubuntu2404" } }, solo.token, solo.projectId), 409, "no_host_available");
  });

  it("records a failed create on the instance: status error with the node's reason", async () => {
    const res = await create();
    await runJob(res.body.job.uid, { status: "failed", error: "clone failed: storage local-lvm is full" });
    const got = (await get(res.body.instance.uid)).body.instance;
    expect(got).toMatchObject({ status: "error", error_code: "create_failed", error_message: "clone failed: storage local-lvm is full", job_uid: null });
    // Not at rest: nothing but delete acts on it.
    expectApiError(await post(got.uid, "actions", { type: "start" }), 409, "invalid_state");
    expectApiError(await post(got.uid, "resize", { plan: "bxs-4-8" }), 409, "operation_in_progress");
  });
});

// ---------------------------------------------------------------- one instance

describe("instance jobs' run time limits (INSTANCE_JOB_SECONDS)", () => {
  it("a deployment may set each kind's limit; entries that are unknown or out of range leave the default", () => {
    expect(instanceJobSeconds({})).toMatchObject({ "instance.create": 900, "instance.power": 180, "instance.delete": 600 });
    expect(instanceJobSeconds({ INSTANCE_JOB_SECONDS: "power=20, create = 1800,ssh_key=30" })).toMatchObject({
      "instance.create": 1800,
      "instance.power": 20,
      "instance.ssh_key": 30,
      "instance.resize": 600,
    });
    // A typo, a zero, a huge number, a unit: each ignored, never a limit of 0.
    expect(instanceJobSeconds({ INSTANCE_JOB_SECONDS: "powr=20,power=0,create=999999,delete=30s,resize=" })).toEqual(instanceJobSeconds({}));
  });
});

describe("acting on an instance", () => {
  it("renames with PATCH; a taken or bad name is refused", async () => {
    const a = await runningInstance();
    const b = await runningInstance();
    const name = uniqueName("renamed");
    const res = await api(`${base()}/${a.uid}`, { token: t.owner.token, method: "PATCH", body: { name } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.instance).toMatchObject({ uid: a.uid, name });
    expectApiError(await api(`${base()}/${a.uid}`, { token: t.owner.token, method: "PATCH", body: { name: b.name } }), 409, "name_taken");
    expectApiError(await api(`${base()}/${a.uid}`, { token: t.owner.token, method: "PATCH", body: { name: "Bad Name" } }), 400, "invalid_request");
    expect((await get(a.uid)).body.instance.name).toBe(name);
  });

  it("runs power actions allowed in the instance's state, one job at a time, and follows the VM's power state", async () => {
    const vm = await runningInstance();
    expectApiError(await post(vm.uid, "actions", { type: "start" }), 409, "invalid_state");
    expectApiError(await post(vm.uid, "actions", { type: "hibernate" }), 400, "invalid_request");

    const reboot = await post(vm.uid, "actions", { type: "reboot" });
    expect(reboot.status, reboot.text).toBe(202);
    expect(reboot.body.job).toMatchObject({ type: "instance.power", status: "queued", instance: vm.uid });
    expect((await get(vm.uid)).body.instance).toMatchObject({ job_uid: reboot.body.job.uid, job_type: "instance.power" });
    expectApiError(await post(vm.uid, "actions", { type: "reset" }), 409, "operation_in_progress");
    const lease = await startJob(reboot.body.job.uid);
    expect(lease.payload).toMatchObject({ type: "instance.power", action: "reboot", instance_id: vm.uid, node: "pve1", vmid: expect.any(Number) });
    await finishJob(lease, { status: "succeeded", result: { power_state: "running" } });

    const stop = await post(vm.uid, "actions", { type: "shutdown" });
    expect(stop.status, stop.text).toBe(202);
    await runJob(stop.body.job.uid);
    expect((await get(vm.uid)).body.instance).toMatchObject({ status: "stopped", power_state: "stopped", job_uid: null });
    for (const type of ["stop", "shutdown", "reboot", "reset"]) expectApiError(await post(vm.uid, "actions", { type }), 409, "invalid_state");

    const start = await post(vm.uid, "actions", { type: "start" });
    expect(start.status, start.text).toBe(202);
    await runJob(start.body.job.uid, { status: "succeeded", result: { power_state: "running" } });
    expect((await get(vm.uid)).body.instance).toMatchObject({ status: "running", power_state: "running" });

    // A power action that fails leaves the instance as it was.
    const failing = await post(vm.uid, "actions", { type: "stop" });
    await runJob(failing.body.job.uid, { status: "failed", error: "VM is locked (backup)" });
    expect((await get(vm.uid)).body.instance).toMatchObject({ status: "running", job_uid: null });
  });

  it("resizes to a plan with an equal or bigger disk; a smaller disk is refused", async () => {
    const vm = await runningInstance({ plan: "bxs-4-8" });
    expectApiError(await post(vm.uid, "resize", { plan: "bxs-2-4" }), 400, "plan_too_small");
    expectApiError(await post(vm.uid, "resize", { plan: "bxs-nope" }), 404, "plan_not_found");
    expectApiError(await post(vm.uid, "resize", {}), 400, "invalid_request");

    const res = await post(vm.uid, "resize", { plan: "bxs-8-16" });
    expect(res.status, res.text).toBe(202);
    expect(res.body).toMatchObject({ uid: expect.stringMatching(/^job_/), type: "instance.resize", status: "queued", createdAt: expect.any(String) });
    const during = (await get(vm.uid)).body.instance;
    expect(during).toMatchObject({ status: "resizing", plan_code: "bxs-4-8", job_type: "instance.resize" });
    expectApiError(await post(vm.uid, "resize", { plan: "bxs-8-16" }), 409, "operation_in_progress");
    expectApiError(await post(vm.uid, "actions", { type: "reboot" }), 409, "invalid_state");
    const lease = await startJob(res.body.uid);
    expect(lease.payload).toMatchObject({ type: "instance.resize", plan: { code: "bxs-8-16", cores: 8, memory_mb: 16384, disk_gb: 320 }, previous_disk_gb: 160 });
    await finishJob(lease, { status: "succeeded", result: { power_state: "running" } });
    expect((await get(vm.uid)).body.instance).toMatchObject({ status: "running", plan_code: "bxs-8-16", job_uid: null });

    // A resize that fails keeps the plan.
    const again = await post(vm.uid, "resize", { plan: "bxs-8-16" });
    await runJob(again.body.uid, { status: "failed", error: "not enough memory on node" });
    expect((await get(vm.uid)).body.instance).toMatchObject({ status: "running", plan_code: "bxs-8-16" });
  });

  it("refuses resize, rebuild and password resets while the instance is not at rest", async () => {
    const res = await create();
    const { uid } = res.body.instance;
    expectApiError(await post(uid, "resize", { plan: "bxs-4-8" }), 409, "operation_in_progress");
    expectApiError(await post(uid, "rebuild", { source: { image: "img_debian12" } }), 409, "operation_in_progress");
    expectApiError(await post(uid, "password", {}), 409, "operation_in_progress");
    expectApiError(await post(uid, "ssh-key", { publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBerth me@laptop" }), 409, "invalid_state");
    await runJob(res.body.job.uid, { status: "succeeded", result: { vmid: 300, node: "pve1" } });
  });

  it("rebuilds from an image with a new root password shown until acknowledged, keeping the vmid and address", async () => {
    const vm = await runningInstance();
    const before = (await get(vm.uid)).body.instance;
    expectApiError(await post(vm.uid, "rebuild", { source: { template: "tpl_x" } }), 400, "source_not_supported");
    expectApiError(await post(vm.uid, "rebuild", { source: { image: "img_nope" } }), 404, "image_not_found");
    expectApiError(await post(vm.uid, "rebuild", {}), 400, "invalid_request");

    const res = await post(vm.uid, "rebuild", { source: { image: "img_debian12" }, sshKeys: ["ssh-rsa AAAAB3NzaC1yc2E= ops"], backup: false });
    expect(res.status, res.text).toBe(202);
    expect(res.body).toMatchObject({ type: "instance.rebuild", status: "queued", createdAt: expect.any(String) });
    const during = (await get(vm.uid)).body.instance;
    expect(during).toMatchObject({ status: "rebuilding", job_type: "instance.rebuild", root_password: expect.stringMatching(/^\S{20}$/) });
    const lease = await startJob(res.body.uid);
    expect(lease.payload).toMatchObject({ type: "instance.rebuild", template: "berth-debian-12", ciuser: "debian", ssh_keys: ["ssh-rsa AAAAB3NzaC1yc2E= ops"], backup: false, vmid: before.vmid, has_password: true });
    expect((await api(`/agent/leases/${lease.lease_id}/env`, { token: node.credential })).body.password).toBe(during.root_password);
    await finishJob(lease, { status: "succeeded", result: { power_state: "running" } });
    expect((await get(vm.uid)).body.instance).toMatchObject({ status: "running", image_name: "Debian 12", vmid: before.vmid, primary_ip: before.primary_ip, root_password: during.root_password });

    // A backup is asked for unless backup is false, and Berth takes none yet: refused, nothing queued, nothing changed.
    expectApiError(await post(vm.uid, "rebuild", { source: { image: "img_ubuntu2404" } }), 400, "backup_not_supported");
    expectApiError(await post(vm.uid, "rebuild", { source: { image: "img_ubuntu2404" }, backup: true }), 400, "backup_not_supported");
    expect((await get(vm.uid)).body.instance).toMatchObject({ status: "running", image_name: "Debian 12", job_uid: null });
    const again = await post(vm.uid, "rebuild", { source: { image: "img_ubuntu2404" }, backup: false });
    const l2 = await startJob(again.body.uid);
    expect(l2.payload.backup).toBe(false);
    await finishJob(l2, { status: "failed", error: "template clone failed" });
    expect((await get(vm.uid)).body.instance).toMatchObject({ status: "error", error_code: "rebuild_failed", error_message: "template clone failed" });
  });

  it("resets the root password, answering it once; the agent fetches it for its lease", async () => {
    const vm = await runningInstance();
    await post(vm.uid, "password/acknowledge");
    expectApiError(await post(vm.uid, "password", { password: "short" }), 400, "invalid_request");
    const res = await post(vm.uid, "password", { password: "S3cure-pass-2026" });
    expect(res.status, res.text).toBe(202);
    expect(res.body).toMatchObject({ type: "instance.reset_password", status: "queued", password: "S3cure-pass-2026", createdAt: expect.any(String) });
    expect((await get(vm.uid)).body.instance.root_password).toBeNull();
    const lease = await startJob(res.body.uid);
    expect(lease.payload).toEqual({ type: "instance.reset_password", instance_id: vm.uid, vmid: expect.any(Number), node: "pve1", ciuser: "ubuntu", has_password: true });
    expect((await api(`/agent/leases/${lease.lease_id}/env`, { token: node.credential })).body.password).toBe("S3cure-pass-2026");
    await finishJob(lease, { status: "succeeded" });
    expect((await row(vm.uid))!.job_password_ciphertext).toBeNull();

    const generated = await post(vm.uid, "password");
    expect(generated.status, generated.text).toBe(202);
    expect(generated.body.password).toMatch(/^\S{20}$/);
    await runJob(generated.body.uid);
    expect((await get(vm.uid)).text).not.toContain(generated.body.password);
  });

  it("authorizes an SSH key on the VM, idempotently", async () => {
    const vm = await runningInstance();
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey me@laptop";
    expectApiError(await post(vm.uid, "ssh-key", { publicKey: "not-a-key" }), 400, "invalid_key");
    expectApiError(await post(vm.uid, "ssh-key", { publicKey: `${key}\nssh-rsa AAAA other` }), 400, "invalid_key");
    expectApiError(await post(vm.uid, "ssh-key", {}), 400, "invalid_key");

    const authorize = async (alreadyPresent: boolean) => {
      // The route waits for the node; the node answers meanwhile.
      const pending = post(vm.uid, "ssh-key", { publicKey: `  ${key}  ` });
      const lease = await startJob(await openSshKeyJob(vm.uid));
      expect(lease.payload).toMatchObject({ type: "instance.ssh_key", user: "ubuntu", public_key: key });
      await finishJob(lease, { status: "succeeded", result: { added: !alreadyPresent, already_present: alreadyPresent } });
      return pending;
    };
    const first = await authorize(false);
    expect(first.status, first.text).toBe(200);
    const ip = (await get(vm.uid)).body.instance.primary_ip;
    expect(first.body).toEqual({ added: true, alreadyPresent: false, user: "ubuntu", ip });
    const second = await authorize(true);
    expect(second.body).toEqual({ added: false, alreadyPresent: true, user: "ubuntu", ip });
    expect(JSON.parse((await row(vm.uid))!.ssh_keys)).toEqual([key]);
  });

  it("pages through the event feed newest first with an opaque cursor", async () => {
    const vm = await runningInstance();
    for (const type of ["reboot", "reset"]) {
      const res = await post(vm.uid, "actions", { type });
      await runJob(res.body.job.uid);
    }
    const all = await api(`${base()}/${vm.uid}/events?limit=200`, { token: t.viewer.token });
    expect(all.status, all.text).toBe(200);
    expect(all.body.next_cursor).toBeNull();
    const types = all.body.events.map((e: any) => e.type);
    expect(types).toEqual(["power.reset.succeeded", "power.reset.requested", "power.reboot.succeeded", "power.reboot.requested", "create.succeeded", "create.requested"]);
    expect(all.body.events.at(-1)).toMatchObject({ uid: expect.stringMatching(/^iev_/), message: "Instance creation requested", user_email: t.owner.email, created_at: expect.any(String) });
    expect(all.body.events[0].user_email).toBeNull();

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: CallResult = await api(`${base()}/${vm.uid}/events?limit=4${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { token: t.owner.token });
      expect(page.status, page.text).toBe(200);
      expect(page.body.events.length).toBeLessThanOrEqual(4);
      seen.push(...page.body.events.map((e: any) => e.uid));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual(all.body.events.map((e: any) => e.uid));
    expect((await api(`${base()}/${vm.uid}/events?limit=0`, { token: t.owner.token })).status).toBe(400);
  });

  it("an outcome that comes after the instance moved on to other work changes nothing but the feed", async () => {
    const vm = await runningInstance();
    const res = await post(vm.uid, "actions", { type: "stop" });
    expect(res.status, res.text).toBe(202);
    const lease = await startJob(res.body.job.uid);
    // As if another job had taken the instance over meanwhile.
    await env.DB.prepare("UPDATE instance SET active_job_id = 'job_elsewhere' WHERE id = ?").bind(vm.uid).run();
    await finishJob(lease, { status: "succeeded", result: { power_state: "stopped" } });
    expect(await row(vm.uid)).toMatchObject({ status: "running", power_state: "running", active_job_id: "job_elsewhere" });
    const events = await api(`${base()}/${vm.uid}/events?limit=200`, { token: t.owner.token });
    expect(events.body.events[0]).toMatchObject({ type: "power.stop.succeeded", message: "power.stop succeeded after the instance moved on to other work" });
    expect(events.body.events.filter((e: any) => e.type === "power.stop.succeeded")).toHaveLength(1);
    await env.DB.prepare("UPDATE instance SET active_job_id = NULL WHERE id = ?").bind(vm.uid).run();
  });

  it("a VM started while its instance installs an app keeps the instance installing", async () => {
    const vm = await runningInstance();
    const stop = await post(vm.uid, "actions", { type: "stop" });
    await runJob(stop.body.job.uid, { status: "succeeded", result: { power_state: "stopped" } });
    const start = await post(vm.uid, "actions", { type: "start" });
    expect(start.status, start.text).toBe(202);
    await env.DB.prepare("UPDATE instance SET status = 'installing' WHERE id = ?").bind(vm.uid).run();
    await runJob(start.body.job.uid, { status: "succeeded", result: { power_state: "running" } });
    expect(await row(vm.uid)).toMatchObject({ status: "installing", power_state: "running", active_job_id: null });
  });

  it("deletes with an instance.delete job: deleting until the VM is gone, then 404 and the name is free", async () => {
    const vm = await runningInstance();
    // No backups yet: a final backup is refused before anything is destroyed.
    expectApiError(await api(`${base()}/${vm.uid}?final_backup=true`, { token: t.owner.token, method: "DELETE" }), 400, "backup_not_supported");
    expect((await get(vm.uid)).body.instance.status).toBe("running");
    const res = await api(`${base()}/${vm.uid}?final_backup=false`, { token: t.owner.token, method: "DELETE" });
    expect(res.status, res.text).toBe(202);
    expect(res.body.job).toMatchObject({ type: "instance.delete", status: "queued", instance: vm.uid });
    expect((await get(vm.uid)).body.instance).toMatchObject({ status: "deleting", job_type: "instance.delete" });
    expectApiError(await api(`${base()}/${vm.uid}`, { token: t.owner.token, method: "DELETE" }), 409, "operation_in_progress");
    expectApiError(await post(vm.uid, "actions", { type: "reboot" }), 409, "invalid_state");
    const lease = await startJob(res.body.job.uid);
    expect(lease.payload).toMatchObject({ type: "instance.delete", final_backup: false, hostname: vm.name });
    await finishJob(lease, { status: "succeeded" });
    expectApiError(await get(vm.uid), 404, "instance_not_found");
    expect((await api(base(), { token: t.owner.token })).body.instances.map((i: any) => i.uid)).not.toContain(vm.uid);
    expect((await create({ name: vm.name })).status).toBe(202);
  });

  it("cancels a create still running when the instance is deleted", async () => {
    const res = await create();
    const createLease = await startJob(res.body.job.uid);
    const del = await api(`${base()}/${res.body.instance.uid}`, { token: t.owner.token, method: "DELETE" });
    expect(del.status, del.text).toBe(202);
    expect((await api(`/projects/${projectId}/jobs/${res.body.job.uid}`, { token: t.owner.token })).body.job.status).toBe("cancelled");
    // The cancelled create's lease is dead; its late result changes nothing.
    expect((await leaseCall(createLease, "finish", { status: "succeeded", result: { vmid: 999 } })).status).toBe(409);
    held.splice(held.indexOf(createLease), 1);
    expect((await get(res.body.instance.uid)).body.instance).toMatchObject({ status: "deleting", job_uid: del.body.job.uid });
    await runJob(del.body.job.uid);
    expectApiError(await get(res.body.instance.uid), 404, "instance_not_found");
  });

  it("answers instance_not_found for an unknown id, or one of another project", async () => {
    expectApiError(await get("ins_nope"), 404, "instance_not_found");
    const vm = await runningInstance();
    const other = await api("/projects", { token: t.owner.token, body: { name: "Elsewhere", org: t.slug } });
    expectApiError(await api(`/projects/${other.body.id}/instances/${vm.uid}`, { token: t.owner.token }), 404, "instance_not_found");
  });
});

/** The open ssh_key job of an instance, once the route has made it. */
async function openSshKeyJob(instanceId: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const jobs = (await api(`/projects/${projectId}/jobs?instance=${instanceId}`, { token: t.owner.token })).body.jobs;
    const job = jobs.find((j: any) => j.type === "instance.ssh_key" && j.status !== "succeeded");
    if (job) return job.uid;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("no ssh_key job");
}

// ---------------------------------------------------------------- who may

describe("who may read and act on instances", () => {
  let vm: { uid: string };
  beforeAll(async () => {
    vm = await runningInstance();
  });

  it("viewers read (and acknowledge the password); developers and up create and act", async () => {
    for (const who of [t.viewer, t.developer, t.admin]) {
      expect((await api(base(), { token: who.token })).status).toBe(200);
      expect((await get(vm.uid, who.token)).status).toBe(200);
      expect((await api(`${base()}/${vm.uid}/events`, { token: who.token })).status).toBe(200);
    }
    expect((await post(vm.uid, "password/acknowledge", {}, t.viewer.token)).status).toBe(204);
    expectApiError(await create({}, t.viewer.token), 403, "forbidden");
    for (const [what, body] of [["actions", { type: "reboot" }], ["resize", { plan: "bxs-8-16" }], ["rebuild", { source: { image: "img_debian12" } }], ["password", {}]] as const) {
      expectApiError(await post(vm.uid, what, body, t.viewer.token), 403, "forbidden");
    }
    expectApiError(await api(`${base()}/${vm.uid}`, { token: t.viewer.token, method: "PATCH", body: { name: "viewer-was-here" } }), 403, "forbidden");
    expectApiError(await api(`${base()}/${vm.uid}`, { token: t.viewer.token, method: "DELETE" }), 403, "forbidden");

    const byDev = await create({}, t.developer.token);
    expect(byDev.status, byDev.text).toBe(202);
    await runJob(byDev.body.job.uid);
    const reboot = await post(vm.uid, "actions", { type: "reboot" }, t.developer.token);
    expect(reboot.status, reboot.text).toBe(202);
    await runJob(reboot.body.job.uid);
    expect((await get(vm.uid)).body.instance.status).toBe("running");
  });

  it("keys act within their scope: read-only reads, deploy and full also create and act", async () => {
    const readOnly = await createOrgKey(t.owner, t.slug, "read-only");
    expect((await api(base(), { token: readOnly.key })).status).toBe(200);
    expect((await get(vm.uid, readOnly.key)).status).toBe(200);
    expectApiError(await create({}, readOnly.key), 403, "forbidden");
    expectApiError(await post(vm.uid, "actions", { type: "reboot" }, readOnly.key), 403, "forbidden");
    expectApiError(await api(`${base()}/${vm.uid}`, { token: readOnly.key, method: "DELETE" }), 403, "forbidden");

    const deploy = await createOrgKey(t.owner, t.slug, "deploy");
    const reboot = await post(vm.uid, "actions", { type: "reboot" }, deploy.key);
    expect(reboot.status, reboot.text).toBe(202);
    await runJob(reboot.body.job.uid);
    const full = await createOrgKey(t.owner, t.slug, "full");
    const made = await create({}, full.key);
    expect(made.status, made.text).toBe(202);
    await runJob(made.body.job.uid);
  });

  it("declares Suble's key scope on each route in the OpenAPI document", async () => {
    const doc = (await api("/openapi.json")).body;
    const scopeOf = (path: string, method: string) => doc.paths[path][method].security.find((s: any) => "bearer" in s).bearer;
    expect(scopeOf("/projects/{project}/instances", "get")).toEqual(["READ_VPS"]);
    expect(scopeOf("/projects/{project}/instances", "post")).toEqual(["ORDER_PRODUCT"]);
    expect(scopeOf("/projects/{project}/instances/{instance}/actions", "post")).toEqual(["VPS_CONTROL"]);
    expect(scopeOf("/projects/{project}/instances/{instance}", "delete")).toEqual(["VPS_DELETE"]);
  });

  it("shows another tenant nothing: every route is 404 project_not_found, and nothing changes", async () => {
    const paths: Array<[string, string, unknown?]> = [
      ["GET", base()],
      ["POST", base(), { name: "planted", plan: "bxs-1", source: { image: "img_debian12" } }],
      ["GET", `${base()}/${vm.uid}`],
      ["PATCH", `${base()}/${vm.uid}`, { name: "taken-over" }],
      ["DELETE", `${base()}/${vm.uid}`],
      ["POST", `${base()}/${vm.uid}/password/acknowledge`, {}],
      ["POST", `${base()}/${vm.uid}/actions`, { type: "stop" }],
      ["POST", `${base()}/${vm.uid}/resize`, { plan: "bxs-8-16" }],
      ["POST", `${base()}/${vm.uid}/rebuild`, { source: { image: "img_debian12" } }],
      ["POST", `${base()}/${vm.uid}/password`, {}],
      ["POST", `${base()}/${vm.uid}/ssh-key`, { publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlant x" }],
      ["GET", `${base()}/${vm.uid}/events`],
    ];
    for (const [method, path, body] of paths) {
      expectApiError(await api(path, { method, token: outsider.token, body }), 404, "project_not_found");
    }
    // The outsider's own project does not reach it either.
    expectApiError(await api(`/projects/${outsider.projectId}/instances/${vm.uid}`, { token: outsider.token }), 404, "instance_not_found");
    const after = (await get(vm.uid)).body.instance;
    expect(after).toMatchObject({ status: "running", job_uid: null });
    expect(after.name).not.toBe("taken-over");
    expect((await api(base(), { token: t.owner.token })).text).not.toContain("planted");
  });
});

describe("Suble's document", () => {
  it("every instance operation Berth serves documents each code Suble's names for it, at the same status (billing and email verification aside)", async () => {
    const suble = JSON.parse(env.SEED_SUBLE) as { paths: Record<string, Record<string, { responses: Record<string, { description?: string }> }>> };
    const ours = (await api("/openapi.json")).body.paths as Record<string, Record<string, { responses: Record<string, { description?: string }> }>>;
    const missing: string[] = [];
    let checked = 0;
    for (const [path, ops] of Object.entries(suble.paths)) {
      if (!path.startsWith("/projects/{project}/instances")) continue;
      for (const [method, op] of Object.entries(ops)) {
        const served = ours[path]?.[method];
        if (!served) continue;
        checked++;
        for (const [status, r] of Object.entries(op.responses)) {
          const code = /^([a-z_]+) —/.exec(r.description ?? "")?.[1];
          if (!code || code === "email_unverified" || code.startsWith("billing_")) continue;
          if (!(served.responses[status]?.description ?? "").includes(`\`${code}\``)) missing.push(`${method.toUpperCase()} ${path} ${status} ${code}`);
        }
      }
    }
    expect(checked).toBe(12);
    expect(missing).toEqual([]);
  });
});

// ---------------------------------------------------------------- the node's sweep

describe("the node's sweep (POST /agent/instances/report)", () => {
  const report = (vms: { vmid: number; status: string; tags: string[] }[], opts: { credential?: string; ago?: number } = {}) =>
    api("/agent/instances/report", { token: opts.credential ?? node.credential, body: { observed_ms_ago: opts.ago ?? 0, vms } });
  const tagsOf = (uid: string) => ["berth", `berth-${uid.toLowerCase()}`];
  /** Reports are about what the node showed after the instance last changed: wait out the report's margin. */
  const settle = () => new Promise((r) => setTimeout(r, 1_100));

  it("follows a VM stopped and started outside Berth, with an event for each change", async () => {
    const vm = await runningInstance();
    const { vmid } = (await get(vm.uid)).body.instance;
    await settle();
    // The list is complete: the node's other instances (earlier tests') are missing from it, and counted so.
    const res = await report([{ vmid, status: "stopped", tags: tagsOf(vm.uid) }]);
    expect(res.status, res.text).toBe(200);
    expect(res.body.applied - res.body.missing).toBe(1);
    expect((await get(vm.uid)).body.instance).toMatchObject({ status: "stopped", power_state: "stopped" });
    // The same again changes nothing.
    expect((await report([{ vmid, status: "stopped", tags: tagsOf(vm.uid) }])).body).toEqual({ applied: 0, missing: 0 });
    await settle();
    await report([{ vmid, status: "running", tags: tagsOf(vm.uid) }]);
    expect((await get(vm.uid)).body.instance).toMatchObject({ status: "running", power_state: "running" });
    const events = (await api(`${base()}/${vm.uid}/events`, { token: t.owner.token })).body.events.map((e: any) => e.type);
    expect(events).toEqual(expect.arrayContaining(["power.stopped", "power.started"]));
  });

  it("marks an instance whose VM is gone (or another VM under its id) vm_missing, and clears it when the VM is back", async () => {
    const vm = await runningInstance();
    const { vmid } = (await get(vm.uid)).body.instance;
    await settle();
    // Another VM took the id: not this instance's.
    expect((await report([{ vmid, status: "running", tags: ["berth", "berth-ins_someoneelse"] }])).body.missing).toBeGreaterThanOrEqual(1);
    expect((await get(vm.uid)).body.instance).toMatchObject({ status: "error", error_code: "vm_missing", power_state: "unknown" });
    await settle();
    await report([{ vmid, status: "running", tags: tagsOf(vm.uid) }]);
    expect((await get(vm.uid)).body.instance).toMatchObject({ status: "running", error_code: null, power_state: "running" });
  });

  it("leaves alone an instance a job works on, or one changed after the node's list was read", async () => {
    const busy = await runningInstance();
    const { vmid } = (await get(busy.uid)).body.instance;
    const reboot = await post(busy.uid, "actions", { type: "stop" });
    expect(reboot.status, reboot.text).toBe(202);
    await settle();
    expect((await report([])).status).toBe(200);
    expect((await get(busy.uid)).body.instance).toMatchObject({ status: "running", error_code: null });
    await runJob(reboot.body.job?.uid ?? reboot.body.uid, { status: "succeeded", result: { power_state: "stopped" } });
    // A list read 5 s ago predates the stop's outcome: it cannot undo it.
    expect((await report([{ vmid, status: "running", tags: tagsOf(busy.uid) }], { ago: 5_000 })).status).toBe(200);
    expect((await get(busy.uid)).body.instance).toMatchObject({ status: "stopped", power_state: "stopped" });
  });

  it("touches only the reporting host's instances; needs the host's credential", async () => {
    const vm = await runningInstance();
    await settle();
    const other = await signUp({ name: "Other node owner" });
    const orgs = await api("/orgs", { token: other.token });
    const stranger = await enrolAndJoin(orgs.body.orgs[0].slug, other, "proxmox", PROXMOX_FACTS);
    expect((await report([], { credential: stranger.credential })).body.applied).toBe(0);
    expect((await get(vm.uid)).body.instance.status).toBe("running");
    expect((await api("/agent/instances/report", { body: { observed_ms_ago: 0, vms: [] } })).status).toBe(401);
    expectApiError(await report([], { credential: t.owner.token }), 401, "invalid_host_credential");
    expect((await api("/agent/instances/report", { token: node.credential, body: { observed_ms_ago: -1, vms: [] } })).status).toBe(400);
  });
});
