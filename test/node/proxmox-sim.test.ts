/**
 * The Proxmox VE simulator (test/proxmox-sim) against the real dockerd and the
 * local registry of test/host/setup.sh: it must refuse what Proxmox refuses and
 * behave like a node for the calls Berth's driver makes, or the driver's tests
 * prove nothing.
 */
import { spawn } from "node:child_process";
import { execFile } from "node:child_process";
import { request } from "node:https";
import { cpus } from "node:os";
import type { TLSSocket } from "node:tls";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProxmoxSim, startProxmoxSim } from "../proxmox-sim/server.ts";

const run = promisify(execFile);
const UPID = /^UPID:pve:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:[a-z]+:\d+:[^:]+:$/;

interface Answer {
  status: number;
  reason: string;
  body: { data?: unknown; errors?: Record<string, string>; total?: number } | null;
}

/** One API call, form-encoded like Proxmox clients send; the certificate is trusted as the only CA. */
function call(sim: ProxmoxSim, method: string, path: string, params: Record<string, string | number | string[]> = {}, auth: string | null = `PVEAPIToken=${sim.tokenId}=${sim.tokenSecret}`): Promise<Answer> {
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const item of ([] as (string | number)[]).concat(v)) form.append(k, String(item));
  const inQuery = method === "GET" || method === "DELETE";
  const url = new URL(`${sim.url}/api2/json${path}${inQuery && [...form].length ? `?${form}` : ""}`);
  const payload = inQuery ? "" : form.toString();
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method, ca: sim.certPem, timeout: 20_000,
      headers: { ...(auth ? { authorization: auth } : {}), ...(payload ? { "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(payload) } : {}) },
    }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, reason: res.statusMessage ?? "", body: text ? JSON.parse(text) : null }));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end(payload);
  });
}

async function ok<T = unknown>(sim: ProxmoxSim, method: string, path: string, params?: Record<string, string | number | string[]>): Promise<T> {
  const a = await call(sim, method, path, params);
  if (a.status !== 200) throw new Error(`${method} ${path}: ${a.status} ${a.reason} ${JSON.stringify(a.body)}`);
  return a.body?.data as T;
}

/** Follows a task to its end, as the driver will (bounded: 30 s). */
async function waitTask(sim: ProxmoxSim, upid: string): Promise<{ status: string; exitstatus: string; log: string[] }> {
  for (let i = 0; i < 300; i++) {
    const st = await ok<{ status: string; exitstatus: string }>(sim, "GET", `/nodes/pve/tasks/${encodeURIComponent(upid)}/status`);
    if (st.status === "stopped") {
      const log = await ok<{ n: number; t: string }[]>(sim, "GET", `/nodes/pve/tasks/${encodeURIComponent(upid)}/log`, { limit: 500 });
      return { ...st, log: log.map((l) => l.t) };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`task ${upid} did not end within 30 s`);
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, tries = 100): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${tries / 10} s`);
}

const container = (sim: ProxmoxSim, vmid: number) => `berth-pvesim-${sim.simId}-${vmid}`;
async function dockerExec(sim: ProxmoxSim, vmid: number, ...cmd: string[]) {
  return (await run("docker", ["exec", container(sim, vmid), ...cmd], { timeout: 15_000 })).stdout;
}
async function containerRunning(name: string): Promise<boolean | null> {
  const r = await run("docker", ["inspect", "-f", "{{.State.Running}}", name], { timeout: 15_000 }).catch(() => null);
  return r ? r.stdout.trim() === "true" : null;
}

async function cloneAndWait(sim: ProxmoxSim, newid: number, extra: Record<string, string | number> = {}) {
  const upid = await ok<string>(sim, "POST", "/nodes/pve/qemu/9000/clone", { newid, full: 1, name: `vm${newid}`, ...extra });
  const task = await waitTask(sim, upid);
  expect(task.exitstatus).toBe("OK");
}

let sim: ProxmoxSim;
beforeAll(async () => {
  sim = await startProxmoxSim({
    port: 0,
    timings: { cloneMs: 600, agentBootMs: 300, taskMs: 50 },
    tokens: [
      { id: "audit@pve!ro", privileges: ["VM.Audit", "Sys.Audit"] },
      { id: "cloner@pve!c", privileges: ["VM.Audit", "VM.Clone"] },
      { id: "opts@pve!o", privileges: ["VM.Audit", "VM.Clone", "VM.Allocate", "Datastore.AllocateSpace", "VM.Config.Options"] },
      { id: "blind@pve!b", privileges: ["VM.PowerMgmt"] },
    ],
  });
});
afterAll(async () => {
  await sim?.stop();
});

describe("requests outside the reference spec", () => {
  it("answers 501 for a path or method the API does not have, and records it", async () => {
    sim.violations.length = 0;
    const a = await call(sim, "GET", "/nodes/pve/qemu/9000/bogus");
    expect(a.status).toBe(501);
    expect(a.reason).toBe("Method 'GET /nodes/pve/qemu/9000/bogus' not implemented");
    expect(a.body).toEqual({ data: null });
    const b = await call(sim, "DELETE", "/version");
    expect(b.status).toBe(501);
    expect(b.reason).toBe("Method 'DELETE /version' not implemented");
    expect(sim.violations.map((v) => `${v.status} ${v.method} ${v.path}`)).toEqual(["501 GET /nodes/pve/qemu/9000/bogus", "501 DELETE /version"]);
  });

  it("answers 400 with per-parameter errors for unknown, missing and mistyped parameters", async () => {
    sim.violations.length = 0;
    const unknown = await call(sim, "GET", "/nodes/pve/qemu/9000/config", { verbose: 1 });
    expect(unknown.status).toBe(400);
    expect(unknown.reason).toBe("Parameter verification failed.");
    expect(unknown.body).toEqual({ data: null, errors: { verbose: "property is not defined in schema and the schema does not allow additional properties" } });
    const missing = await call(sim, "POST", "/nodes/pve/qemu/9000/clone", { full: 1 });
    expect(missing.body?.errors).toEqual({ newid: "property is missing and it is not optional" });
    const typed = await call(sim, "POST", "/nodes/pve/qemu/9000/clone", { newid: "abc", full: "maybe" });
    expect(typed.body?.errors).toEqual({ newid: "type check ('integer') failed - got 'abc'", full: "type check ('boolean') failed - got 'maybe'" });
    const small = await call(sim, "GET", "/nodes/pve/qemu/99/status/current");
    expect(small.body?.errors?.vmid).toBe("value must have a minimum value of 100");
    const enumed = await call(sim, "PUT", "/nodes/pve/qemu/9000/resize", { disk: "hda", size: "+1G" });
    expect(enumed.body?.errors?.disk).toMatch(/^value 'hda' does not have a value in the enumeration 'ide0, /);
    const memory = await call(sim, "PUT", "/nodes/pve/qemu/9000/config", { memory: "lots" });
    expect(memory.status).toBe(400);
    expect(sim.violations).toHaveLength(6);
  });

  it("checks a JSON body the same way as a form", async () => {
    sim.violations.length = 0;
    const res = await new Promise<Answer>((resolve, reject) => {
      const payload = JSON.stringify({ newid: "x1", full: true, bogus: 1 });
      const req = request(`${sim.url}/api2/json/nodes/pve/qemu/9000/clone`, {
        method: "POST", ca: sim.certPem, timeout: 20_000,
        headers: { authorization: `PVEAPIToken=${sim.tokenId}=${sim.tokenSecret}`, "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
      }, (r) => {
        let text = "";
        r.on("data", (c: Buffer) => (text += c));
        r.on("end", () => resolve({ status: r.statusCode ?? 0, reason: r.statusMessage ?? "", body: JSON.parse(text) }));
      });
      req.on("error", reject);
      req.end(payload);
    });
    expect(res.status).toBe(400);
    expect(res.body?.errors).toEqual({ newid: "type check ('integer') failed - got 'x1'", bogus: "property is not defined in schema and the schema does not allow additional properties" });
    expect(sim.violations).toHaveLength(1);
  });

  it("records nothing for valid calls", async () => {
    sim.violations.length = 0;
    await ok(sim, "GET", "/version");
    await ok(sim, "GET", "/nodes");
    await ok(sim, "GET", "/nodes/pve/status");
    await ok(sim, "GET", "/nodes/pve/storage/local-lvm/status");
    expect(await ok(sim, "GET", "/cluster/nextid")).toBe("100");
    expect(sim.violations).toEqual([]);
    expect(sim.unsupported).toEqual([]);
  });
});

describe("tokens and privileges", () => {
  it("answers 401 without a token, with a wrong secret or an unknown token", async () => {
    expect((await call(sim, "GET", "/version", {}, null)).status).toBe(401);
    expect((await call(sim, "GET", "/version", {}, null)).reason).toBe("No ticket");
    expect((await call(sim, "GET", "/version", {}, `PVEAPIToken=${sim.tokenId}=wrong`)).status).toBe(401);
    expect((await call(sim, "GET", "/version", {}, `PVEAPIToken=nobody@pam!x=${sim.tokenSecret}`)).status).toBe(401);
    expect((await call(sim, "GET", "/version", {}, `PVEAPIToken=${sim.tokenId}:${sim.tokenSecret}`)).status).toBe(401);
    expect((await call(sim, "GET", "/version", {}, `Bearer ${sim.tokenSecret}`)).status).toBe(401);
  });

  it("answers 403 with Proxmox's message for a token without the privilege", async () => {
    const as = (id: string) => `PVEAPIToken=${id}=${sim.tokens[id]}`;
    const ro = await call(sim, "POST", "/nodes/pve/qemu/9000/clone", { newid: 150 }, as("audit@pve!ro"));
    expect([ro.status, ro.reason]).toEqual([403, "Permission check failed (/vms/9000, VM.Clone)"]);
    const cloner = await call(sim, "POST", "/nodes/pve/qemu/9000/clone", { newid: 150 }, as("cloner@pve!c"));
    expect([cloner.status, cloner.reason]).toEqual([403, "Permission check failed (/vms/150, VM.Allocate)"]);
    const cpu = await call(sim, "PUT", "/nodes/pve/qemu/9000/config", { cores: 2, description: "x" }, as("opts@pve!o"));
    expect([cpu.status, cpu.reason]).toEqual([403, "Permission check failed (/vms/9000, VM.Config.CPU)"]);
    const status = await call(sim, "GET", "/nodes/pve/status", {}, as("blind@pve!b"));
    expect([status.status, status.reason]).toEqual([403, "Permission check failed (/nodes/pve, Sys.Audit)"]);
    // Listing filters by VM.Audit instead of refusing.
    const list = await call(sim, "GET", "/nodes/pve/qemu", {}, as("blind@pve!b"));
    expect(list.body?.data).toEqual([]);
    // Nothing was made by the refused clones.
    expect(((await ok<{ vmid: number }[]>(sim, "GET", "/nodes/pve/qemu")).map((v) => v.vmid))).toEqual([9000]);
  });
});

describe("the token's own permissions", () => {
  it("GET /access/permissions answers the caller's privileges by path; userid is checked by the document's Perl pattern", async () => {
    sim.violations.length = 0;
    const all = await ok<Record<string, Record<string, number>>>(sim, "GET", "/access/permissions");
    expect(Object.keys(all)).toEqual(["/"]);
    expect(all["/"]).toMatchObject({ "VM.Clone": 1, "VM.GuestAgent.Unrestricted": 1, "Sys.Audit": 1, "Datastore.AllocateSpace": 1 });
    const as = (id: string) => `PVEAPIToken=${id}=${sim.tokens[id]}`;
    const ro = await call(sim, "GET", "/access/permissions", { path: "/vms" }, as("audit@pve!ro"));
    expect(ro.body?.data).toEqual({ "/vms": { "Sys.Audit": 1, "VM.Audit": 1 } });
    expect(await ok(sim, "GET", "/access/permissions", { userid: sim.tokenId })).toEqual(all);
    const bad = await call(sim, "GET", "/access/permissions", { userid: "not a user" });
    expect(bad.body?.errors).toEqual({ userid: "value does not match the regex pattern" });
    expect(sim.violations).toHaveLength(1);
    sim.violations.length = 0; // the refused userid was on purpose; later tests count from nothing
  });
});

describe("VM lifecycle backed by a container", () => {
  const vmid = 101;

  it("clones a template: UPID task with log, the new VM locked while it runs", async () => {
    const upid = await ok<string>(sim, "POST", "/nodes/pve/qemu/9000/clone", { newid: vmid, full: 1, name: "web-1", description: "ins_1 job_1" });
    expect(upid).toMatch(UPID);
    expect(upid).toContain(":qmclone:9000:root@pam!berth:");
    const cfg = await ok<Record<string, unknown>>(sim, "GET", `/nodes/pve/qemu/${vmid}/config`);
    expect(cfg.lock).toBe("clone");
    const running = await ok<{ status: string }>(sim, "GET", `/nodes/pve/tasks/${encodeURIComponent(upid)}/status`);
    expect(running.status).toBe("running");
    const locked = await call(sim, "PUT", `/nodes/pve/qemu/${vmid}/config`, { cores: 2 });
    expect([locked.status, locked.reason]).toEqual([500, "VM is locked (clone)"]);
    // Power actions are accepted and their task fails, as qemu-server checks the lock in the worker.
    const lockedStart = await waitTask(sim, await ok<string>(sim, "POST", `/nodes/pve/qemu/${vmid}/status/start`));
    expect(lockedStart.exitstatus).toBe("VM is locked (clone)");
    expect((await call(sim, "DELETE", `/nodes/pve/qemu/${vmid}`)).reason).toBe("VM is locked (clone)");
    const again = await call(sim, "POST", "/nodes/pve/qemu/9000/clone", { newid: vmid, full: 1 });
    expect([again.status, again.reason]).toEqual([500, `unable to create VM ${vmid}: config file already exists`]);
    const task = await waitTask(sim, upid);
    expect(task.exitstatus).toBe("OK");
    expect(task.log).toContain("create full clone of drive scsi0 (local-lvm:base-9000-disk-0)");
    expect(task.log.at(-1)).toBe("TASK OK");
    // Past the end, the log answers one made-up line, as pvedaemon does.
    const past = await call(sim, "GET", `/nodes/pve/tasks/${encodeURIComponent(upid)}/log`, { start: task.log.length });
    expect(past.body).toEqual({ data: [{ n: task.log.length + 1, t: "no content" }], total: task.log.length + 1 });
    const rec = sim.tasks.byUpid.get(upid);
    expect((rec?.endedMs ?? 0) - (rec?.startedMs ?? 0)).toBeGreaterThanOrEqual(600);
    const after = await ok<Record<string, unknown>>(sim, "GET", `/nodes/pve/qemu/${vmid}/config`);
    expect(after.lock).toBeUndefined();
    expect(after).toMatchObject({ name: "web-1", description: "ins_1 job_1", scsi0: `local-lvm:vm-${vmid}-disk-0,size=2G` });
    expect(after.template).toBeUndefined();
    expect(await ok(sim, "GET", "/cluster/nextid")).toBe("100");
    expect(await containerRunning(container(sim, vmid))).toBe(false);
  });

  it("sets config (cores, memory, cloud-init, tags) and resizes the disk, never shrinking it", async () => {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBerthSimTestKey berth@test";
    expect(await ok(sim, "PUT", `/nodes/pve/qemu/${vmid}/config`, {
      cores: 2, memory: 1024, ciuser: "berth", cipassword: "ci-pass-1", sshkeys: encodeURIComponent(key).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
      ipconfig0: "ip=dhcp", tags: "berth;ins-1",
    })).toBeNull();
    const upid = await ok<string>(sim, "POST", `/nodes/pve/qemu/${vmid}/config`, { description: "ins_1 job_2" });
    expect((await waitTask(sim, upid)).exitstatus).toBe("OK");
    const cfg = await ok<Record<string, unknown>>(sim, "GET", `/nodes/pve/qemu/${vmid}/config`);
    expect(cfg).toMatchObject({ cores: 2, memory: "1024", ciuser: "berth", cipassword: "**********", tags: "berth;ins-1", description: "ins_1 job_2" });
    expect(decodeURIComponent(String(cfg.sshkeys))).toBe(key);
    const stale = await call(sim, "PUT", `/nodes/pve/qemu/${vmid}/config`, { cores: 1, digest: "0".repeat(40) });
    expect(stale.reason).toBe("detected modified configuration - file changed by other user? Try again.");
    const grow = await waitTask(sim, await ok<string>(sim, "PUT", `/nodes/pve/qemu/${vmid}/resize`, { disk: "scsi0", size: "+1G" }));
    expect(grow.exitstatus).toBe("OK");
    expect((await ok<Record<string, string>>(sim, "GET", `/nodes/pve/qemu/${vmid}/config`)).scsi0).toBe(`local-lvm:vm-${vmid}-disk-0,size=3G`);
    const shrink = await call(sim, "PUT", `/nodes/pve/qemu/${vmid}/resize`, { disk: "scsi0", size: "1G" });
    expect([shrink.status, shrink.reason]).toEqual([500, "shrinking disks is not supported"]);
  });

  it("starts: the container runs, cloud-init applied, status/current has uptime, the agent answers after boot", async () => {
    const notRunning = await call(sim, "POST", `/nodes/pve/qemu/${vmid}/agent/ping`);
    expect([notRunning.status, notRunning.reason]).toEqual([500, `VM ${vmid} is not running`]);
    expect((await waitTask(sim, await ok<string>(sim, "POST", `/nodes/pve/qemu/${vmid}/status/start`))).exitstatus).toBe("OK");
    expect(await containerRunning(container(sim, vmid))).toBe(true);
    const limits = (await run("docker", ["inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}", container(sim, vmid)])).stdout.trim();
    expect(limits).toBe(`${1024 * 1024 ** 2} ${Math.min(2, cpus().length) * 1e9}`);
    const cur = await ok<Record<string, unknown>>(sim, "GET", `/nodes/pve/qemu/${vmid}/status/current`);
    expect(cur).toMatchObject({ status: "running", qmpstatus: "running", vmid, name: "web-1", cpus: 2, maxmem: 1024 * 1024 ** 2, agent: 1 });
    expect(typeof cur.uptime).toBe("number");
    await until("agent ping", async () => ((await call(sim, "POST", `/nodes/pve/qemu/${vmid}/agent/ping`)).status === 200 ? true : undefined));
    expect(await dockerExec(sim, vmid, "cat", "/home/berth/.ssh/authorized_keys")).toContain("AAAAC3NzaC1lZDI1NTE5AAAAIBerthSimTestKey");
    const shadow = await dockerExec(sim, vmid, "cat", "/etc/shadow");
    const hash = /^berth:([^:]+):/m.exec(shadow)?.[1] as string;
    const salt = hash.split("$")[2] as string;
    expect((await dockerExec(sim, vmid, "/bin/busybox", "mkpasswd", "-m", "sha512", "ci-pass-1", salt)).trim()).toBe(hash);
    const again = await waitTask(sim, await ok<string>(sim, "POST", `/nodes/pve/qemu/${vmid}/status/start`));
    expect(again.exitstatus).toBe(`VM ${vmid} already running`);
    expect(again.log.at(-1)).toBe(`TASK ERROR: VM ${vmid} already running`);
  });

  it("guest agent: real address, exec with exit code and stdin, password and file written into the guest", async () => {
    const ifs = await ok<{ result: { name: string; "ip-addresses": { "ip-address": string; "ip-address-type": string }[] }[] }>(sim, "GET", `/nodes/pve/qemu/${vmid}/agent/network-get-interfaces`);
    const real = (await run("docker", ["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container(sim, vmid)])).stdout.trim();
    expect(real).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(ifs.result.find((i) => i.name === "eth0")?.["ip-addresses"].find((a) => a["ip-address-type"] === "ipv4")?.["ip-address"]).toBe(real);

    const { pid } = await ok<{ pid: number }>(sim, "POST", `/nodes/pve/qemu/${vmid}/agent/exec`, { command: ["/bin/busybox", "sh", "-c", "read x; echo got $x; echo oops >&2; exit 3"], "input-data": "hello\n" });
    const st = await until("exec to finish", async () => {
      const s = await ok<{ exited: boolean; exitcode?: number; "out-data"?: string; "err-data"?: string }>(sim, "GET", `/nodes/pve/qemu/${vmid}/agent/exec-status`, { pid });
      return s.exited ? s : undefined;
    });
    expect(st).toEqual({ exited: true, exitcode: 3, "out-data": "got hello\n", "err-data": "oops\n" });
    const oneString = await call(sim, "POST", `/nodes/pve/qemu/${vmid}/agent/exec`, { command: "ls -la" });
    expect(oneString.status).toBe(500);
    expect(oneString.reason).toContain("Failed to execute child process");

    expect(await ok(sim, "POST", `/nodes/pve/qemu/${vmid}/agent/set-user-password`, { username: "root", password: "S3cret-root!" })).toEqual({ result: {} });
    const hash = /^root:([^:]+):/m.exec(await dockerExec(sim, vmid, "cat", "/etc/shadow"))?.[1] as string;
    expect((await dockerExec(sim, vmid, "/bin/busybox", "mkpasswd", "-m", "sha512", "S3cret-root!", hash.split("$")[2] as string)).trim()).toBe(hash);
    const nouser = await call(sim, "POST", `/nodes/pve/qemu/${vmid}/agent/set-user-password`, { username: "ghost", password: "x" });
    expect(nouser.status).toBe(500);

    const noDir = await call(sim, "POST", `/nodes/pve/qemu/${vmid}/agent/file-write`, { file: "/root/.ssh/authorized_keys", content: "ssh-ed25519 AAAA k\n" });
    expect(noDir.status).toBe(500);
    expect(noDir.reason).toContain("failed to open file '/root/.ssh/authorized_keys'");
    await ok(sim, "POST", `/nodes/pve/qemu/${vmid}/agent/exec`, { command: ["/bin/busybox", "mkdir", "-p", "/root/.ssh"] });
    await until("mkdir", async () => ((await dockerExec(sim, vmid, "/bin/busybox", "ls", "-d", "/root/.ssh")).trim() === "/root/.ssh" ? true : undefined));
    expect(await ok(sim, "POST", `/nodes/pve/qemu/${vmid}/agent/file-write`, { file: "/root/.ssh/authorized_keys", content: "ssh-ed25519 AAAA k\n" })).toBeNull();
    expect(await dockerExec(sim, vmid, "cat", "/root/.ssh/authorized_keys")).toBe("ssh-ed25519 AAAA k\n");
    await ok(sim, "POST", `/nodes/pve/qemu/${vmid}/agent/file-write`, { file: "/tmp/b64", content: Buffer.from("raw\n").toString("base64"), encode: 0 });
    expect(await dockerExec(sim, vmid, "cat", "/tmp/b64")).toBe("raw\n");
    expect(sim.violations).toEqual([]);
  });

  it("refuses destroy while running; stop stops the container; destroy with purge removes VM and container", async () => {
    const busy = await call(sim, "DELETE", `/nodes/pve/qemu/${vmid}`, { purge: 1 });
    expect([busy.status, busy.reason]).toEqual([500, `VM ${vmid} is running - destroy failed`]);
    for (const action of ["reboot", "reset"]) expect((await waitTask(sim, await ok<string>(sim, "POST", `/nodes/pve/qemu/${vmid}/status/${action}`))).exitstatus).toBe("OK");
    expect((await waitTask(sim, await ok<string>(sim, "POST", `/nodes/pve/qemu/${vmid}/status/shutdown`, { timeout: 5 }))).exitstatus).toBe("OK");
    expect(await containerRunning(container(sim, vmid))).toBe(false);
    expect((await waitTask(sim, await ok<string>(sim, "POST", `/nodes/pve/qemu/${vmid}/status/start`))).exitstatus).toBe("OK");
    expect((await waitTask(sim, await ok<string>(sim, "POST", `/nodes/pve/qemu/${vmid}/status/stop`))).exitstatus).toBe("OK");
    expect(await containerRunning(container(sim, vmid))).toBe(false);
    expect((await ok<{ status: string; uptime: number }>(sim, "GET", `/nodes/pve/qemu/${vmid}/status/current`))).toMatchObject({ status: "stopped", uptime: 0 });
    const reset = await call(sim, "POST", `/nodes/pve/qemu/${vmid}/status/reset`);
    expect(reset.reason).toBe(`VM ${vmid} not running`);
    const upid = await ok<string>(sim, "DELETE", `/nodes/pve/qemu/${vmid}`, { purge: 1, "destroy-unreferenced-disks": 1 });
    expect(upid).toContain(`:qmdestroy:${vmid}:`);
    expect((await waitTask(sim, upid)).exitstatus).toBe("OK");
    const gone = await call(sim, "GET", `/nodes/pve/qemu/${vmid}/config`);
    expect([gone.status, gone.reason]).toEqual([500, `Configuration file 'nodes/pve/qemu-server/${vmid}.conf' does not exist`]);
    expect(await containerRunning(container(sim, vmid))).toBeNull();
  });
});

describe("faults", () => {
  it("a failing clone task ends with Proxmox's message and leaves no VM behind", async () => {
    sim.faults.failNextTask({ type: "qmclone", message: "lvcreate 'pve/vm-120-disk-0' error:   Volume group \"pve\" has insufficient free space (511 extents): 512 required." });
    const upid = await ok<string>(sim, "POST", "/nodes/pve/qemu/9000/clone", { newid: 120, full: 1 });
    const task = await waitTask(sim, upid);
    expect(task.exitstatus).toContain("insufficient free space");
    expect(task.log.at(-1)).toBe(`TASK ERROR: ${task.exitstatus}`);
    const failed = await ok<{ upid: string; status: string }[]>(sim, "GET", "/nodes/pve/tasks", { errors: 1, typefilter: "qmclone" });
    expect(failed).toEqual([expect.objectContaining({ upid, status: task.exitstatus })]);
    expect((await call(sim, "GET", "/nodes/pve/qemu/120/config")).status).toBe(500);
    expect(await containerRunning(`berth-pvesim-${sim.simId}-120`)).toBeNull();
  });

  it("a VM stopped outside the API shows stopped; a vanished VM is gone", async () => {
    await cloneAndWait(sim, 130);
    expect((await waitTask(sim, await ok<string>(sim, "POST", "/nodes/pve/qemu/130/status/start"))).exitstatus).toBe("OK");
    await run("docker", ["kill", container(sim, 130)], { timeout: 15_000 });
    expect((await ok<{ status: string }>(sim, "GET", "/nodes/pve/qemu/130/status/current")).status).toBe("stopped");
    await sim.faults.vanishVm(130);
    const gone = await call(sim, "GET", "/nodes/pve/qemu/130/status/current");
    expect([gone.status, gone.reason]).toEqual([500, "Configuration file 'nodes/pve/qemu-server/130.conf' does not exist"]);
    expect(await containerRunning(container(sim, 130))).toBeNull();
  });

  it("a slow node answers late; the API goes away and comes back on the same port", async () => {
    sim.faults.setSlowness(400);
    const t0 = Date.now();
    await ok(sim, "GET", "/version");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(390);
    sim.faults.setSlowness(0);
    await sim.faults.goAway();
    await expect(call(sim, "GET", "/version")).rejects.toThrow(/ECONNREFUSED|socket hang up|ECONNRESET/);
    await sim.faults.comeBack();
    expect(await ok(sim, "GET", "/version")).toMatchObject({ version: "9.0.3" });
  });
});

describe("npm run sim:proxmox", () => {
  it("prints one JSON line whose fingerprint is the served certificate's, and its token works", async () => {
    const child = spawn("node", ["test/proxmox-sim/main.ts", "--port", "0", "--json"], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = "";
        const timer = setTimeout(() => reject(new Error("no JSON line within 20 s")), 20_000);
        child.stdout.on("data", (c: Buffer) => {
          out += c;
          if (out.includes("\n")) {
            clearTimeout(timer);
            resolve(out);
          }
        });
        child.on("exit", (code) => reject(new Error(`exited ${code}`)));
      });
      expect(line.trim().split("\n")).toHaveLength(1);
      const info = JSON.parse(line) as { url: string; node: string; token_id: string; token_secret: string; fingerprint: string };
      expect(Object.keys(info)).toEqual(["url", "node", "token_id", "token_secret", "fingerprint"]);
      expect(info.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      // Pinning as the driver will: no CA, the fingerprint compared by hand.
      const served = await new Promise<{ fp: string; status: number }>((resolve, reject) => {
        const req = request(`${info.url}/api2/json/version`, { rejectUnauthorized: false, headers: { authorization: `PVEAPIToken=${info.token_id}=${info.token_secret}` }, timeout: 10_000 }, (res) => {
          const fp = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
          res.resume();
          res.on("end", () => resolve({ fp, status: res.statusCode ?? 0 }));
        });
        req.on("error", reject);
        req.end();
      });
      expect(served).toEqual({ fp: info.fingerprint, status: 200 });
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode === null ? child.once("exit", r) : r(null)));
    }
  });
});
