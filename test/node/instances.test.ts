/**
 * VM instances end to end through Suble's API: wrangler dev, the real agent started with
 * its Proxmox flags, and the Proxmox VE simulator (test/proxmox-sim), whose VMs are
 * containers on the local dockerd. Proxmox VE cannot run on this machine: passing here
 * shows Berth and its driver use the documented API correctly, not that a real node
 * would agree; see test/proxmox-sim/README.md.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProxmoxDriver } from "../../agent/src/drivers/proxmox";
import type { ProxmoxSim } from "../proxmox-sim/server";
import { type AgentProcess, startAgent } from "./support/agent";
import { type Client, signedUp, waitForJob } from "./support/client";
import { nodeAgent, startTestNode } from "./support/proxmox";
import { type DevServer, startDevServer } from "./support/dev-server";

/** The power jobs' run time limit and hand-off grace this control plane is started with. */
const POWER_SECONDS = 20;
const GRACE_SECONDS = 5;
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBerthEndToEndKey alice@laptop";

let server: DevServer;
let sim: ProxmoxSim;
let api: Client;
let slug: string;
let projectId: string;
let hostId: string;
let agent: AgentProcess;
let stateDir: string;
let joinToken: string;

/** The agent as a Proxmox node runs it; started again with the same state it resumes its jobs. */
const startNodeAgent = () => startAgent(...nodeAgent(sim, { url: server.url, stateDir, joinToken, env: { BERTH_INSTANCE_SWEEP_SECONDS: "1" } }));

const docker = (...args: string[]) => execFileSync("docker", args, { encoding: "utf8" }).trim();
const vmContainer = (vmid: number) => `berth-pvesim-${sim.simId}-${vmid}`;
const base = () => `/projects/${projectId}/instances`;

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, seconds = 60): Promise<T> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const got = await probe();
    if (got) return got;
    if (Date.now() > end) throw new Error(`${what}: not by ${seconds} s\n${agent?.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const waitJob = (jobId: string, seconds = 120) => waitForJob(api, projectId, jobId, { seconds, context: () => agent.output().slice(-3000) });

const getInstance = async (id: string) => {
  const res = await api.call("GET", `${base()}/${id}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.instance;
};

/** A shell command in the VM's guest, as root (through docker, not Berth: what a user would see on the box). */
const inGuest = (vmid: number, script: string) => docker("exec", vmContainer(vmid), "/bin/busybox", "sh", "-c", script);

beforeAll(async () => {
  sim = await startTestNode();
  // Power jobs may run 20 s here (180 s by default) and wait 5 s for the node's agent, so the node
  // vanishing fails one by its deadline within the test's time; the deployment setting a user has too.
  server = await startDevServer({ env: { INSTANCE_JOB_SECONDS: `power=${POWER_SECONDS}`, JOB_QUEUE_GRACE_SECONDS: String(GRACE_SECONDS) } });
  ({ api, slug } = await signedUp(server.url));
  projectId = (await api.call("GET", "/projects")).body[0].id;
  const host = await api.call("POST", `/org/${slug}/hosts`, { name: "pve-1", kind: "proxmox" });
  expect(host.status, JSON.stringify(host.body)).toBe(201);
  hostId = host.body.host?.id ?? host.body.id;
  stateDir = mkdtempSync(join(tmpdir(), "berth-pve-"));
  joinToken = host.body.join_token;
  agent = startNodeAgent();
  await agent.waitFor(/connected transport=websocket/, 60_000);
}, 180_000);

afterAll(async () => {
  await agent?.kill("SIGTERM");
  await server?.stop();
  await sim?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe("instances on a Proxmox node (simulated)", () => {
  let id: string;
  let vmid: number;

  it("reports the node's facts with its heartbeats: templates, memory, VM storage", async () => {
    const host = await until("the node's facts", async () => {
      const res = await api.call("GET", `/org/${slug}/hosts/${hostId}`);
      const h = res.body.host ?? res.body;
      return h.status === "online" && h.facts?.proxmox ? h : null;
    });
    expect(host.kind).toBe("proxmox");
    expect(host.facts.proxmox).toMatchObject({ node: sim.node, templates: ["berth-debian-12"], storage: expect.any(String) });
    expect(host.facts.proxmox.storage_bytes).toBeGreaterThan(100 * 1024 ** 3);
    expect(host.facts.proxmox_version).toMatch(/^\d/);
    // The token's secret is nowhere in what the agent said or what the API shows.
    expect(agent.output()).not.toContain(sim.tokenSecret);
    expect(JSON.stringify(host)).not.toContain(sim.tokenSecret);
  });

  it("creates an instance: a full clone of the template, configured by plan, booted, with the root password set", async () => {
    const name = `web-${Date.now().toString(36)}`;
    const res = await api.call("POST", base(), { name, plan: "bxs-1", source: { image: "img_debian12" }, ssh_keys: [KEY], password: "correct-horse-42" });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    id = res.body.instance.uid;
    const job = await waitJob(res.body.job.uid);
    expect(job.status, JSON.stringify(job)).toBe("succeeded");

    const ins = await getInstance(id);
    expect(ins).toMatchObject({ status: "running", power_state: "running", node: sim.node, plan_code: "bxs-1", error_code: null, job_uid: null });
    vmid = ins.vmid;
    expect(vmid).toBeGreaterThanOrEqual(100);
    // The address is the guest's own, as qemu-ga reports it.
    expect(ins.primary_ip).toBe(docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", vmContainer(vmid)));
    // The plan as the node has it: cores, memory, the disk grown to the plan's size, and Berth's marker.
    const node = await ProxmoxDriver.connect({ url: sim.url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret, fingerprint: sim.fingerprint, node: sim.node });
    try {
      const cfg = await node.vm.config(vmid);
      expect(Number(cfg.cores)).toBe(1);
      expect(String(cfg.memory)).toMatch(/^(current=)?2048\b/);
      expect(cfg.name).toBe(name);
      expect(String(cfg.scsi0)).toMatch(/size=40G/);
      expect(String(cfg.description)).toContain(`berth:instance=${id}`);
    } finally {
      node.close();
    }
    // The password reached the guest (root and the image's user), and the project counts the instance.
    expect(inGuest(vmid, "grep -c '^root:\\$' /etc/shadow")).toBe("1");
    const project = await api.call("GET", `/projects/${projectId}`);
    expect(project.body.instanceCount).toBe(1);
    // The job's log holds Proxmox's own task lines.
    const logs = await api.call("GET", `/projects/${projectId}/jobs/${res.body.job.uid}/logs`);
    expect(JSON.stringify(logs.body)).toMatch(/clone/i);
    expect(JSON.stringify(logs.body)).not.toContain("correct-horse-42");
    expect(agent.output()).not.toContain("correct-horse-42");
  });

  it("stops and starts the VM; the instance follows", async () => {
    const stop = await api.call("POST", `${base()}/${id}/actions`, { type: "stop" });
    expect(stop.status, JSON.stringify(stop.body)).toBe(202);
    expect((await waitJob(stop.body.job?.uid ?? stop.body.uid)).status).toBe("succeeded");
    expect(await getInstance(id)).toMatchObject({ status: "stopped", power_state: "stopped" });
    expect(docker("inspect", "-f", "{{.State.Running}}", vmContainer(vmid))).toBe("false");

    const start = await api.call("POST", `${base()}/${id}/actions`, { type: "start" });
    expect(start.status, JSON.stringify(start.body)).toBe(202);
    expect((await waitJob(start.body.job?.uid ?? start.body.uid)).status).toBe("succeeded");
    expect(await getInstance(id)).toMatchObject({ status: "running", power_state: "running" });
  });

  it("authorizes an SSH key once: a second time says it was there", async () => {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBerthSecondKey bob@desk";
    // Suble answers once the key is in place (the job runs on the node meanwhile).
    const first = await api.call("POST", `${base()}/${id}/ssh-key`, { publicKey: key });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({ added: true, alreadyPresent: false, user: "debian" });
    const again = await api.call("POST", `${base()}/${id}/ssh-key`, { publicKey: key });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body).toMatchObject({ added: false, alreadyPresent: true });
    const keys = inGuest(vmid, "cat /home/debian/.ssh/authorized_keys");
    expect(keys.split("\n").filter((k) => k.includes("BerthSecondKey"))).toHaveLength(1);
    // The keys given at create time are kept beside it.
    expect(keys).toContain("BerthEndToEndKey");
  });

  it("resets the root password through the guest agent", async () => {
    const res = await api.call("POST", `${base()}/${id}/password`, { password: "new-horse-staple-7" });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect((await waitJob(res.body.uid ?? res.body.job?.uid)).status).toBe("succeeded");
    const hash = inGuest(vmid, "grep '^root:' /etc/shadow | cut -d: -f2");
    const salt = hash.split("$")[2] as string;
    expect(inGuest(vmid, `/bin/busybox mkpasswd -m sha512 'new-horse-staple-7' '${salt}'`)).toBe(hash);
  });

  it("resizes: more cores and memory, a bigger disk", async () => {
    const res = await api.call("POST", `${base()}/${id}/resize`, { plan: "bxs-2-4" });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const job = await waitJob(res.body.uid ?? res.body.job?.uid);
    expect(job.status, JSON.stringify(job)).toBe("succeeded");
    expect(await getInstance(id)).toMatchObject({ plan_code: "bxs-2-4", status: "running" });
  });

  it("rebuilds in place: same vmid, a fresh disk from the template, a new root password; a rebuild asking for a backup changes nothing", async () => {
    inGuest(vmid, "echo precious > /etc/berth-marker");
    // Backups come with the next driver work: asked for one (Suble's default), the rebuild is refused and the VM untouched.
    const withBackup = await api.call("POST", `${base()}/${id}/rebuild`, { source: { image: "img_debian12" } });
    expect(withBackup.status, JSON.stringify(withBackup.body)).toBe(400);
    expect(withBackup.body.error.code).toBe("backup_not_supported");
    expect(inGuest(vmid, "cat /etc/berth-marker")).toBe("precious");

    const res = await api.call("POST", `${base()}/${id}/rebuild`, { source: { image: "img_debian12" }, backup: false });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const job = await waitJob(res.body.uid);
    expect(job.status, JSON.stringify(job)).toBe("succeeded");
    const after = await getInstance(id);
    expect(after).toMatchObject({ status: "running", power_state: "running", vmid, error_code: null });
    expect(after.root_password).toMatch(/^\S{20}$/);
    expect(inGuest(vmid, "cat /etc/berth-marker 2>/dev/null || echo gone")).toBe("gone");
    const hash = inGuest(vmid, "grep '^root:' /etc/shadow | cut -d: -f2");
    expect(inGuest(vmid, `/bin/busybox mkpasswd -m sha512 '${after.root_password}' '${hash.split("$")[2]}'`)).toBe(hash);
  });

  it("shows a VM stopped outside Berth as stopped, and one destroyed outside Berth as missing", async () => {
    docker("stop", "-t", "1", vmContainer(vmid));
    await until("the sweep to see the stop", async () => (await getInstance(id)).power_state === "stopped", 30);
    expect((await getInstance(id)).status).toBe("stopped");
    const events = await api.call("GET", `${base()}/${id}/events`);
    expect(JSON.stringify(events.body)).toMatch(/stopped outside Berth/);

    await sim.faults.vanishVm(vmid);
    const gone = await until("the sweep to see the VM gone", async () => {
      const ins = await getInstance(id);
      return ins.status === "error" ? ins : null;
    }, 30);
    expect(gone).toMatchObject({ error_code: "vm_missing", power_state: "unknown" });
  });

  it("refuses to delete the project while it has instances; deleting the instance empties it", async () => {
    const refused = await api.call("DELETE", `/projects/${projectId}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("project_not_empty");

    const del = await api.call("DELETE", `${base()}/${id}`);
    expect(del.status, JSON.stringify(del.body)).toBe(202);
    const jobId = del.body.job?.uid ?? del.body.job_uid ?? del.body.uid;
    expect((await waitJob(jobId)).status).toBe("succeeded");
    expect((await api.call("GET", `${base()}/${id}`)).status).toBe(404);
    expect((await api.call("GET", `/projects/${projectId}`)).body.instanceCount).toBe(0);
  });

  it("a second create and delete leaves nothing on the node", async () => {
    const res = await api.call("POST", base(), { name: `tmp-${Date.now().toString(36)}`, plan: "bxs-1", source: { image: "img_debian12" } });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect((await waitJob(res.body.job.uid)).status).toBe("succeeded");
    const { vmid: second } = await getInstance(res.body.instance.uid);
    const del = await api.call("DELETE", `${base()}/${res.body.instance.uid}`);
    expect((await waitJob(del.body.job?.uid ?? del.body.job_uid ?? del.body.uid)).status).toBe("succeeded");
    expect(docker("ps", "-aq", "--filter", `name=^${vmContainer(second)}$`)).toBe("");
  });

  it("runs the other power actions: shutdown, start, reboot, reset", async () => {
    const res = await api.call("POST", base(), { name: `pwr-${Date.now().toString(36)}`, plan: "bxs-1", source: { image: "img_debian12" } });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect((await waitJob(res.body.job.uid)).status).toBe("succeeded");
    const uid = res.body.instance.uid;
    const { vmid: pvm } = await getInstance(uid);
    for (const [type, after] of [["shutdown", "stopped"], ["start", "running"], ["reboot", "running"], ["reset", "running"]] as const) {
      const startedBefore = docker("inspect", "-f", "{{.State.StartedAt}}", vmContainer(pvm));
      const act = await api.call("POST", `${base()}/${uid}/actions`, { type });
      expect(act.status, JSON.stringify(act.body)).toBe(202);
      const job = await waitJob(act.body.job?.uid ?? act.body.uid);
      expect(job.status, `${type}: ${JSON.stringify(job)}`).toBe("succeeded");
      expect(await getInstance(uid), type).toMatchObject({ status: after, power_state: after });
      expect(docker("inspect", "-f", "{{.State.Running}}", vmContainer(pvm)), type).toBe(after === "running" ? "true" : "false");
      // A reboot or reset is a new boot of the guest.
      if (type === "reboot" || type === "reset") expect(docker("inspect", "-f", "{{.State.StartedAt}}", vmContainer(pvm)), type).not.toBe(startedBefore);
    }
    const del = await api.call("DELETE", `${base()}/${uid}`);
    expect((await waitJob(del.body.job.uid)).status).toBe("succeeded");
  });

  it("a clone the node fails: the job fails with Proxmox's own message, the instance says so", async () => {
    sim.faults.failNextTask({ type: "qmclone", vmid: 9003, message: "storage 'local-lvm' does not have enough free space" });
    const res = await api.call("POST", base(), { name: `fail-${Date.now().toString(36)}`, plan: "bxs-1", source: { image: "img_debian12" } });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const job = await waitJob(res.body.job.uid);
    expect(job.status).toBe("failed");
    expect(job.error).toContain("storage 'local-lvm' does not have enough free space");
    expect(await getInstance(res.body.instance.uid)).toMatchObject({ status: "error", error_code: "create_failed" });
    const del = await api.call("DELETE", `${base()}/${res.body.instance.uid}`);
    expect((await waitJob(del.body.job.uid)).status).toBe("succeeded");
  });

  it("an agent killed mid-clone: started again, it finds the clone and finishes it, and there is exactly one VM", async () => {
    // Every step of the node slower, so the kill lands while the clone runs.
    sim.faults.setSlowness(150);
    try {
      const clonesBefore = [...sim.tasks.byUpid.values()].filter((t) => t.type === "qmclone").length;
      const res = await api.call("POST", base(), { name: `kill-${Date.now().toString(36)}`, plan: "bxs-1", source: { image: "img_debian12" } });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      await until("the clone to start", async () => [...sim.tasks.byUpid.values()].filter((t) => t.type === "qmclone").length > clonesBefore, 60);
      await agent.kill("SIGKILL");
      agent = startNodeAgent();
      const job = await waitJob(res.body.job.uid, 180);
      expect(job.status, JSON.stringify(job)).toBe("succeeded");
      expect([...sim.tasks.byUpid.values()].filter((t) => t.type === "qmclone").length).toBe(clonesBefore + 1);
      const ins = await getInstance(res.body.instance.uid);
      expect(ins.status).toBe("running");
      const node = await ProxmoxDriver.connect({ url: sim.url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret, fingerprint: sim.fingerprint, node: sim.node });
      try {
        expect((await node.vm.find({ instanceId: res.body.instance.uid })).map((v) => v.vmid)).toEqual([ins.vmid]);
      } finally {
        node.close();
      }
      const del = await api.call("DELETE", `${base()}/${res.body.instance.uid}`);
      expect((await waitJob(del.body.job.uid)).status).toBe("succeeded");
    } finally {
      sim.faults.setSlowness(0);
    }
  });

  it("the node vanishing: the job fails by its deadline with the node's own reason, the instance is as it was, and the node back lets the next action work", async () => {
    const res = await api.call("POST", base(), { name: `gone-${Date.now().toString(36)}`, plan: "bxs-1", source: { image: "img_debian12" } });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect((await waitJob(res.body.job.uid)).status).toBe("succeeded");
    const uid = res.body.instance.uid;
    const { vmid: gvm } = await getInstance(uid);
    await sim.faults.goAway();
    try {
      const t0 = Date.now();
      const stop = await api.call("POST", `${base()}/${uid}/actions`, { type: "stop" });
      expect(stop.status, JSON.stringify(stop.body)).toBe(202);
      const busy = await getInstance(uid);
      expect(busy.job_uid).toBe(stop.body.job.uid);
      const job = await waitJob(stop.body.job.uid, POWER_SECONDS + GRACE_SECONDS + 60);
      const took = Date.now() - t0;
      // Failed, not hung: by the job's deadline, and with what the agent saw of the node rather than a bare timeout.
      expect(job.status, JSON.stringify(job)).toBe("failed");
      expect(Date.parse(job.deadline_at) - Date.parse(job.created_at)).toBe((POWER_SECONDS + GRACE_SECONDS) * 1000);
      expect(Date.parse(job.finished_at)).toBeLessThanOrEqual(Date.parse(job.deadline_at));
      expect(took).toBeGreaterThanOrEqual((POWER_SECONDS - 6) * 1000);
      expect(job.error).toMatch(new RegExp(`status/stop: 127\\.0\\.0\\.1:${sim.port} unreachable: connection refused \\(still failing after \\d+ attempts; gave up at the deadline\\)`));
      // The instance: free again, still running as before (the stop never reached the node), the failure in its feed.
      expect(await getInstance(uid)).toMatchObject({ status: "running", power_state: "running", job_uid: null });
      const events = await api.call("GET", `${base()}/${uid}/events`);
      expect(JSON.stringify(events.body)).toMatch(/Power action stop failed: Proxmox POST .*unreachable: connection refused/);
      expect(docker("inspect", "-f", "{{.State.Running}}", vmContainer(gvm))).toBe("true");
    } finally {
      await sim.faults.comeBack();
    }
    // The node back: the same action works, and the VM is stopped for real.
    const again = await api.call("POST", `${base()}/${uid}/actions`, { type: "stop" });
    expect(again.status, JSON.stringify(again.body)).toBe(202);
    const done = await waitJob(again.body.job.uid);
    expect(done.status, JSON.stringify(done)).toBe("succeeded");
    expect(await getInstance(uid)).toMatchObject({ status: "stopped", power_state: "stopped", job_uid: null });
    expect(docker("inspect", "-f", "{{.State.Running}}", vmContainer(gvm))).toBe("false");
    const del = await api.call("DELETE", `${base()}/${uid}`);
    expect((await waitJob(del.body.job.uid)).status).toBe("succeeded");
  }, 180_000);

  it("sent the node nothing the real API would refuse, and nothing the simulator does not model", () => {
    expect(sim.violations).toEqual([]);
    expect(sim.unsupported).toEqual([]);
  });
});
