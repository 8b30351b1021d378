/**
 * The Proxmox VE driver against the Proxmox VE simulator (test/proxmox-sim), whose
 * VMs are real containers on the local dockerd (test/host/setup.sh). The simulator
 * checks every request against the reference OpenAPI document; the last test
 * asserts the driver sent nothing the real API would refuse.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { X509Certificate } from "node:crypto";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProxmoxSim, startProxmoxSim } from "../../test/proxmox-sim/server.ts";
import { ProxmoxClient, ProxmoxDriver, ProxmoxError, ProxmoxTaskError, parseProxmoxOptions, proxmoxChecks, type VmMarker } from "../src/drivers/proxmox.ts";

const run = promisify(execFile);
const TEMPLATE = 9000;
const KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBerthDriverKeyA alice@laptop";
const KEY_B = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQBerth+Key/B== bob's key (work)";

let sim: ProxmoxSim;
let driver: ProxmoxDriver;

const container = (vmid: number) => `berth-pvesim-${sim.simId}-${vmid}`;
async function inspect(vmid: number, format: string): Promise<string | null> {
  const r = await run("docker", ["inspect", "-f", format, container(vmid)], { timeout: 15_000 }).catch(() => null);
  return r ? r.stdout.trim() : null;
}
const connect = (over: Partial<{ fingerprint: string | null; tokenId: string; tokenSecret: string; retryWindowMs: number }> = {}) =>
  ProxmoxDriver.connect(
    { url: sim.url, tokenId: over.tokenId ?? sim.tokenId, tokenSecret: over.tokenSecret ?? sim.tokenSecret, fingerprint: over.fingerprint === undefined ? sim.fingerprint : over.fingerprint, node: sim.node },
    { retryWindowMs: over.retryWindowMs ?? 10_000, retryBaseMs: 100, retryMaxMs: 500 },
  );
let markerSeq = 0;
const newMarker = (): VmMarker => ({ instanceId: `ins_test${Date.now().toString(36)}${markerSeq++}`, jobId: `job_test${markerSeq}` });
/** qemu-ga's password check, done in the guest: the shadow hash recomputed from the password with its salt. */
async function guestPasswordIs(vmid: number, user: string, password: string): Promise<boolean> {
  const shadow = await driver.guest.exec(vmid, ["/bin/busybox", "cat", "/etc/shadow"]);
  const hash = new RegExp(`^${user}:([^:]+):`, "m").exec(shadow.stdout)?.[1];
  if (!hash) return false;
  const again = await driver.guest.exec(vmid, ["/bin/busybox", "mkpasswd", "-m", "sha512", password, hash.split("$")[2] as string]);
  return again.stdout.trim() === hash;
}

beforeAll(async () => {
  sim = await startProxmoxSim({
    port: 0,
    timings: { cloneMs: 1200, agentBootMs: 300, taskMs: 50 },
    tokens: [{ id: "berth@pve!limited", privileges: ["VM.Audit", "VM.Clone", "VM.Allocate", "VM.PowerMgmt", "Sys.Audit", "VM.Monitor"] }],
  });
  driver = await connect();
});
afterAll(async () => {
  driver?.close();
  await sim?.stop();
});

/** Docker-backed steps (each start, stop, reboot is a container operation) on a busy 2-core machine. */
const SLOW = 180_000;

describe("a VM's life through the driver", { timeout: SLOW }, () => {
  const marker = newMarker();
  const log: string[] = [];
  let vmid = 0;

  it("clones the template as a UPID task, streaming Proxmox's log, and finds the VM again by its marker", async () => {
    const res = await driver.vm.cloneTemplate({ template: TEMPLATE, name: "web-1", marker, description: "made by a test" }, { onLog: (l) => log.push(l) });
    expect(res.resumed).toBe(false);
    vmid = res.vmid;
    expect(vmid).toBeGreaterThanOrEqual(100);
    expect(log).toContain(`create full clone of drive scsi0 (local-lvm:base-${TEMPLATE}-disk-0)`);
    expect(log.some((l) => /^transferred .* \(100\.00%\)$/.test(l))).toBe(true);
    expect(log.at(-1)).toBe("TASK OK");
    // Each line once, in order: the log was read from where the last read stopped.
    const task = [...sim.tasks.byUpid.values()].find((t) => t.type === "qmclone" && t.log.includes(`  Logical volume "vm-${vmid}-disk-0" created.`));
    expect(log).toEqual(task?.log);
    // Its status was polled often in the task's first second (so a short task's end is seen soon), but never back to back.
    const polls = sim.requests.filter((r) => r.path.endsWith("/status") && decodeURIComponent(r.path).includes(task!.upid)).map((r) => r.startedMs - task!.startedMs);
    expect(polls.filter((t) => t < 1_000).length).toBeGreaterThanOrEqual(15);
    for (let i = 1; i < polls.length; i++) expect(polls[i]! - polls[i - 1]!).toBeGreaterThanOrEqual(20);
    expect(await driver.vm.find({ instanceId: marker.instanceId })).toEqual([expect.objectContaining({ vmid, marker, name: "web-1" })]);
    expect(await driver.vm.find({ instanceId: marker.instanceId, jobId: "job_other" })).toEqual([]);
    expect((await driver.vm.status(vmid)).status).toBe("stopped");
  });

  it("configures cores, memory, cloud-init and tags; sshkeys survive Proxmox's double URL-encoding", async () => {
    await driver.vm.configure(vmid, { cores: 2, memory: 768, ciuser: "berth", cipassword: "ci-Pass 1!", sshkeys: [KEY_A, KEY_B], ipconfig0: "ip=dhcp", marker, description: "web server", tags: ["web"] });
    const cfg = await driver.vm.config(vmid);
    expect(cfg).toMatchObject({ cores: 2, memory: "768", ciuser: "berth", cipassword: "**********", ipconfig0: "ip=dhcp", tags: `berth;berth-${marker.instanceId};web` });
    expect(cfg.description).toBe(`web server\n\nberth:instance=${marker.instanceId} job=${marker.jobId}`);
    expect(decodeURIComponent(String(cfg.sshkeys))).toBe(`${KEY_A}\n${KEY_B}\n`);
    // Tagged now, it is found by its tag too.
    expect((await driver.vm.find(marker)).map((v) => v.vmid)).toEqual([vmid]);
  });

  it("starts it: running, an address from the guest agent, and cloud-init's keys and password in the guest", async () => {
    const log: string[] = [];
    await driver.vm.start(vmid, { onLog: (l) => log.push(l) });
    expect(log).toEqual(["generating cloud-init ISO", "TASK OK"]);
    expect(await driver.vm.status(vmid)).toMatchObject({ status: "running", cpus: 2, maxmem: 768 * 1024 ** 2 });
    await driver.guest.waitForAgent(vmid, { deadline: Date.now() + 20_000 });
    const address = await driver.guest.address(vmid);
    expect(address).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(address).toBe(await inspect(vmid, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"));
    const keys = await driver.guest.exec(vmid, ["/bin/busybox", "cat", "/home/berth/.ssh/authorized_keys"]);
    expect(keys).toEqual({ exitcode: 0, stdout: `${KEY_A}\n${KEY_B}\n`, stderr: "" });
    expect(await guestPasswordIs(vmid, "berth", "ci-Pass 1!")).toBe(true);
    expect(await guestPasswordIs(vmid, "berth", "wrong")).toBe(false);
  });

  it("guest exec: exit code, stdout, stderr, stdin", async () => {
    const r = await driver.guest.exec(vmid, ["/bin/busybox", "sh", "-c", "read x; echo got $x; echo oops >&2; exit 3"], { input: "hi there\n" });
    expect(r).toEqual({ exitcode: 3, stdout: "got hi there\n", stderr: "oops\n" });
    await expect(driver.guest.exec(vmid, ["/no/such/program"])).rejects.toThrow(/Failed to execute child process/);
  });

  it("writes an authorized_keys file and sets a password through the guest agent, as guest exec proves", async () => {
    await driver.guest.installSshKeys(vmid, "root", [KEY_B]);
    const file = await driver.guest.exec(vmid, ["/bin/busybox", "sh", "-c", "cat /root/.ssh/authorized_keys; stat -c %a /root/.ssh /root/.ssh/authorized_keys"]);
    expect(file.stdout).toBe(`${KEY_B}\n700\n600\n`);
    await driver.guest.setUserPassword(vmid, "root", "r00t-Secret");
    expect(await guestPasswordIs(vmid, "root", "r00t-Secret")).toBe(true);
    // Any bytes survive (sent base64).
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await driver.guest.writeFile(vmid, "/tmp/bytes", bytes);
    const sum = await driver.guest.exec(vmid, ["/bin/busybox", "md5sum", "/tmp/bytes"]);
    expect(sum.stdout.split(" ")[0]).toBe("e2c865db4162bed963bfaa9ef6ac18f0");
    await expect(driver.guest.writeFile(vmid, "/no/dir/file", "x")).rejects.toThrow(/failed to open file '\/no\/dir\/file'/);
  });

  it("each power action: reboot, reset, shutdown, start, stop; start and stop are idempotent", async () => {
    const started = async () => inspect(vmid, "{{.State.StartedAt}}");
    const before = await started();
    await driver.vm.reboot(vmid);
    const afterReboot = await started();
    expect(afterReboot).not.toBe(before);
    expect((await driver.vm.status(vmid)).status).toBe("running");
    await driver.vm.reset(vmid);
    expect(await started()).not.toBe(afterReboot);
    expect(await inspect(vmid, "{{.State.Running}}")).toBe("true");
    const again: string[] = [];
    await driver.vm.start(vmid, { onLog: (l) => again.push(l) });
    expect(again.at(-1)).toMatch(/already running \(nothing to do\)$/);
    await driver.vm.shutdown(vmid, 10);
    expect(await inspect(vmid, "{{.State.Running}}")).toBe("false");
    expect((await driver.vm.status(vmid)).status).toBe("stopped");
    await driver.vm.shutdown(vmid, 10); // already down: nothing to do
    await driver.vm.start(vmid);
    expect(await inspect(vmid, "{{.State.Running}}")).toBe("true");
    await driver.vm.stop(vmid);
    expect(await inspect(vmid, "{{.State.Running}}")).toBe("false");
    expect(await driver.vm.status(vmid)).toMatchObject({ status: "stopped", uptime: 0 });
    await driver.vm.stop(vmid);
    await expect(driver.vm.reboot(vmid)).rejects.toThrow(`VM ${vmid} not running`);
  });

  it("grows the disk to an absolute size, again is a no-op, and never shrinks it", async () => {
    const log: string[] = [];
    expect(await driver.vm.growDisk(vmid, "scsi0", 5, { onLog: (l) => log.push(l) })).toEqual({ grown: true });
    expect(log).toContain(`  Size of logical volume pve/vm-${vmid}-disk-0 changed from 2G to 5G.`);
    expect((await driver.vm.config(vmid)).scsi0).toBe(`local-lvm:vm-${vmid}-disk-0,size=5G`);
    expect(await driver.vm.growDisk(vmid, "scsi0", 5)).toEqual({ grown: false });
    await expect(driver.vm.growDisk(vmid, "scsi0", 3)).rejects.toMatchObject({ code: "SHRINK_REFUSED" });
    expect((await driver.vm.config(vmid)).scsi0).toBe(`local-lvm:vm-${vmid}-disk-0,size=5G`);
    expect((await driver.vm.status(vmid)).maxdisk).toBe(5 * 1024 ** 3);
  });

  it("destroys it with purge, stopping it first: no VM and no container left; a second destroy is a no-op", async () => {
    await driver.vm.start(vmid);
    const log: string[] = [];
    expect(await driver.vm.destroy(vmid, { onLog: (l) => log.push(l) })).toEqual({ destroyed: true });
    expect(log).toContain(`purging VM ${vmid} from related configurations..`);
    expect(await driver.vm.statusOrNull(vmid)).toBeNull();
    expect((await driver.vm.list()).map((v) => v.vmid)).not.toContain(vmid);
    expect(await inspect(vmid, "{{.State.Running}}")).toBeNull();
    expect(await driver.vm.find({ instanceId: marker.instanceId })).toEqual([]);
    expect(await driver.vm.destroy(vmid)).toEqual({ destroyed: false });
    await expect(driver.vm.destroy(TEMPLATE)).rejects.toThrow(/is a template/);
  });
});

describe("failures", { timeout: SLOW }, () => {
  it("a failing clone task throws Proxmox's own exitstatus and leaves no VM", async () => {
    const message = "lvcreate 'pve/vm-1xx-disk-0' error:   Volume group \"pve\" has insufficient free space (511 extents): 512 required.";
    sim.faults.failNextTask({ type: "qmclone", vmid: TEMPLATE, message });
    const marker = newMarker();
    const log: string[] = [];
    const err = await driver.vm.cloneTemplate({ template: TEMPLATE, name: "doomed", marker }, { onLog: (l) => log.push(l) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxmoxTaskError);
    expect((err as ProxmoxTaskError).message).toBe(message);
    expect((err as ProxmoxTaskError).upid).toMatch(/^UPID:pve:.*:qmclone:9000:root@pam!berth:$/);
    expect(log.at(-1)).toBe(`TASK ERROR: ${message}`);
    expect(await driver.vm.find({ instanceId: marker.instanceId })).toEqual([]);
    expect((await driver.vm.list()).map((v) => v.vmid)).toEqual([TEMPLATE]);
  });

  it("a call on a VM locked by a running clone waits for the lock; a start whose task found the lock is run again", async () => {
    const newid = await driver.vm.nextId();
    await driver.client.post<string>(`/nodes/pve/qemu/${TEMPLATE}/clone`, { newid, full: true, name: "locked" });
    expect((await driver.vm.status(newid)).lock).toBe("clone");
    await driver.vm.configure(newid, { cores: 1, memory: 256 });
    expect(await driver.vm.config(newid)).toMatchObject({ memory: "256" });
    expect((await driver.vm.status(newid)).lock).toBeUndefined();

    const other = await driver.vm.nextId();
    await driver.client.post<string>(`/nodes/pve/qemu/${TEMPLATE}/clone`, { newid: other, full: true, name: "locked2" });
    const log: string[] = [];
    await driver.vm.start(other, { onLog: (l) => log.push(l) });
    expect(log).toContain("TASK ERROR: VM is locked (clone)");
    expect(log.at(-1)).toBe("TASK OK");
    expect((await driver.vm.status(other)).status).toBe("running");
    for (const id of [newid, other]) await driver.vm.destroy(id);
  });

  it("a bad parameter surfaces Proxmox's per-parameter message", async () => {
    const err = await driver.client.put(`/nodes/pve/qemu/${TEMPLATE}/config`, { memory: "lots" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxmoxError);
    expect((err as ProxmoxError).status).toBe(400);
    expect((err as ProxmoxError).message).toMatch(/Parameter verification failed\.: memory: invalid format/);
    sim.violations.length = 0; // this one was on purpose
  });

  it("refuses a node whose certificate does not match the pin, before any byte of the request (so the token) is sent", async () => {
    const wrong = sim.fingerprint.replace(/^../, sim.fingerprint.startsWith("00") ? "11" : "00");
    const t0 = Date.now();
    const err = await connect({ fingerprint: wrong }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "CERT_FINGERPRINT_MISMATCH" });
    expect((err as Error).message).toContain(sim.fingerprint);
    expect((err as Error).message).not.toContain(sim.tokenSecret);
    expect(Date.now() - t0).toBeLessThan(3_000); // not retried
    // Without a pin, the system CAs decide, and they do not know the node's certificate.
    await expect(connect({ fingerprint: null })).rejects.toThrow(/certificate is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\); pin it with --proxmox-fingerprint/);
    // The pin in Proxmox's notation or plain lower-case hex is the same pin.
    const plain = await connect({ fingerprint: sim.fingerprint.replace(/:/g, "").toLowerCase() });
    plain.close();

    // A server of our own, to see what reaches it.
    const dir = mkdtempSync(join(tmpdir(), "berth-pin-"));
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=impostor", "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem")], { stdio: "ignore" });
    const key = readFileSync(join(dir, "k.pem"));
    const cert = readFileSync(join(dir, "c.pem"));
    rmSync(dir, { recursive: true });
    let received = "";
    const server: TlsServer = createTlsServer({ key, cert }, (s) => s.on("data", (c: Buffer) => (received += c)));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const pinned = new ProxmoxClient({ url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret, fingerprint: sim.fingerprint }, { retryWindowMs: 0 });
      await expect(pinned.get("/version")).rejects.toMatchObject({ code: "CERT_FINGERPRINT_MISMATCH" });
      pinned.close();
      await new Promise((r) => setTimeout(r, 200));
      expect(received).toBe("");
      // The same server pinned by its own fingerprint does get the request: the check above can fail.
      const own = new ProxmoxClient({ url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret, fingerprint: new X509Certificate(cert).fingerprint256 }, { retryWindowMs: 0, requestTimeoutMs: 500 });
      await expect(own.get("/version")).rejects.toThrow();
      own.close();
      expect(received).toContain(`authorization: PVEAPIToken=${sim.tokenId}=`);
    } finally {
      server.close();
    }
  });

  it("the node going away: a call fails by its deadline; a node back within it is waited for", async () => {
    const quick = await connect({ retryWindowMs: 2_000 });
    try {
      await sim.faults.goAway();
      const t0 = Date.now();
      const err = await quick.vm.list().catch((e: unknown) => e);
      const took = Date.now() - t0;
      expect(err).toBeInstanceOf(ProxmoxError);
      expect((err as ProxmoxError).message).toMatch(/unreachable: connection refused .*gave up at the deadline/);
      expect(took).toBeGreaterThanOrEqual(1_000);
      expect(took).toBeLessThan(4_000);
      // A task being followed: the follow gives up at its deadline, the task goes on on the node.
      await sim.faults.comeBack();
      const marker = newMarker();
      const clonesBefore = sim.tasks.byUpid.size;
      const deadline = Date.now() + 5_000;
      const cloning = quick.vm.cloneTemplate({ template: TEMPLATE, name: "interrupted", marker }, { deadline });
      // The node goes away once the clone runs on it.
      for (let i = 0; i < 100 && ![...sim.tasks.byUpid.values()].slice(clonesBefore).some((t) => t.type === "qmclone"); i++) await new Promise((r) => setTimeout(r, 20));
      await sim.faults.goAway();
      await expect(cloning).rejects.toThrow(/unreachable: connection refused .*gave up at the deadline/);
      expect(Date.now()).toBeLessThan(deadline + 3_000);
      // Back within the window: the call succeeds.
      setTimeout(() => void sim.faults.comeBack(), 800);
      expect((await quick.vm.list()).length).toBeGreaterThanOrEqual(1);
      // The clone finished on the node meanwhile; the job run again picks it up.
      const again = await quick.vm.cloneTemplate({ template: TEMPLATE, name: "interrupted", marker }, { deadline: Date.now() + 20_000 });
      expect(again.resumed).toBe(true);
      expect(await quick.vm.find(marker)).toHaveLength(1);
      await quick.vm.destroy(again.vmid);
    } finally {
      await sim.faults.comeBack();
      quick.close();
    }
  });
});

describe("a job restarted after the agent was killed mid-clone", { timeout: SLOW }, () => {
  it("finds the VM the first attempt cloned instead of cloning twice", async () => {
    const marker = newMarker();
    const clonesBefore = [...sim.tasks.byUpid.values()].filter((t) => t.type === "qmclone").length;
    const fixture = fileURLToPath(new URL("./fixtures/proxmox-clone.ts", import.meta.url));
    const child = spawn(process.execPath, [fixture, JSON.stringify({ url: sim.url, tokenId: sim.tokenId, fingerprint: sim.fingerprint, node: sim.node, template: TEMPLATE, name: "first-try", ...marker })], {
      env: { ...process.env, BERTH_PROXMOX_TOKEN_SECRET: sim.tokenSecret },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the first attempt never reached the copy: ${out}${err}`)), 20_000);
      child.stdout.on("data", (c: Buffer) => {
        out += c;
        if (out.includes("log create full clone of drive scsi0")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on("exit", (code) => reject(new Error(`exited ${code}: ${out}${err}`)));
    });
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    expect(out).not.toContain("done");

    const log: string[] = [];
    const second = await driver.vm.cloneTemplate({ template: TEMPLATE, name: "second-try", marker }, { onLog: (l) => log.push(l) });
    expect(second.resumed).toBe(true);
    expect(log[0]).toBe(`VM ${second.vmid} was cloned by an earlier attempt of this job; using it`);
    expect(log.at(-1)).toBe("TASK OK");
    expect([...sim.tasks.byUpid.values()].filter((t) => t.type === "qmclone").length).toBe(clonesBefore + 1);
    const found = await driver.vm.find({ instanceId: marker.instanceId });
    expect(found).toEqual([expect.objectContaining({ vmid: second.vmid, name: "first-try", marker })]);
    expect(found[0]?.lock).toBeUndefined();
    // Usable: it starts.
    await driver.vm.start(second.vmid);
    expect(await inspect(second.vmid, "{{.State.Running}}")).toBe("true");
    await driver.vm.destroy(second.vmid);
  });
});

describe("facts, flags and doctor", () => {
  it("reports the node's CPUs, memory, storage and templates", async () => {
    const facts = await driver.facts();
    expect(facts).toMatchObject({ node: "pve", proxmox_version: "9.0.3", cpus: cpus().length, memory_bytes: totalmem(), templates: [{ vmid: TEMPLATE, name: "berth-hello" }] });
    expect(facts.memory_free_bytes).toBeGreaterThan(0);
    expect(facts.memory_free_bytes).toBeLessThanOrEqual(facts.memory_bytes);
    expect(facts.storage).toEqual([{ id: "local-lvm", type: "lvmthin", total_bytes: 500 * 1024 ** 3, free_bytes: 500 * 1024 ** 3 - 2 * 1024 ** 3 }]);
    expect(facts).toMatchObject({ storage_bytes: 500 * 1024 ** 3, storage_free_bytes: 498 * 1024 ** 3 });
    expect(await driver.templates()).toEqual([{ vmid: TEMPLATE, name: "berth-hello" }]);
  });

  it("reads the secret from the environment only", () => {
    const env = { BERTH_PROXMOX_TOKEN_SECRET: "s3cret" };
    expect(parseProxmoxOptions({}, env)).toBeNull();
    expect(parseProxmoxOptions({ "proxmox-url": "https://pve:8006", "proxmox-token-id": "root@pam!berth", "proxmox-fingerprint": sim.fingerprint.toLowerCase() }, env))
      .toEqual({ url: "https://pve:8006", tokenId: "root@pam!berth", tokenSecret: "s3cret", fingerprint: sim.fingerprint, node: null });
    expect(() => parseProxmoxOptions({ "proxmox-url": "https://pve:8006", "proxmox-token-id": "root@pam!berth" }, {})).toThrow(/BERTH_PROXMOX_TOKEN_SECRET is not set/);
    let message = "";
    try {
      parseProxmoxOptions({ "proxmox-token-secret": "leaked", "proxmox-url": "https://pve:8006" }, env);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/not a flag: set BERTH_PROXMOX_TOKEN_SECRET/);
    expect(message).not.toContain("leaked");
    expect(() => parseProxmoxOptions({ "proxmox-url": "https://pve:8006", "proxmox-token-id": "x", "proxmox-fingerprint": "AB:CD" }, env)).toThrow(/64 hex digits/);
    expect(() => parseProxmoxOptions({ "proxmox-token-id": "root@pam!berth" }, env)).toThrow(/without --proxmox-url/);
  });

  it("doctor checks the API and pin, the node, and the token's privileges", async () => {
    const settings = { url: sim.url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret, fingerprint: sim.fingerprint, node: null };
    const good = await proxmoxChecks(settings);
    expect(good.map((c) => [c.name, c.ok])).toEqual([["proxmox api", true], ["proxmox node", true], ["proxmox token", true]]);
    expect(good[1]?.detail).toMatch(/^pve: \d+ CPUs, [\d.]+ GiB memory; templates: berth-hello \(9000\)$/);

    const limited = await proxmoxChecks({ ...settings, tokenId: "berth@pve!limited", tokenSecret: sim.tokens["berth@pve!limited"] as string });
    expect(limited[2]).toMatchObject({ name: "proxmox token", ok: false });
    // VM.Monitor stands in for the guest-agent privileges (Proxmox VE 8's name); the rest are missing.
    expect(limited[2]?.detail).toBe("berth@pve!limited lacks VM.Config.CPU on /vms, VM.Config.Memory on /vms, VM.Config.Cloudinit on /vms, VM.Config.Disk on /vms, VM.Config.Options on /vms, Datastore.AllocateSpace on /storage: grant a role with them (or turn off the token's privilege separation)");

    const pinned = await proxmoxChecks({ ...settings, fingerprint: `${"AA:".repeat(31)}AA` });
    expect(pinned).toEqual([{ name: "proxmox api", ok: false, detail: expect.stringMatching(/not the pinned AA:AA.*check --proxmox-fingerprint/) }]);
    const refused = await proxmoxChecks({ ...settings, tokenSecret: "wrong" });
    expect(refused).toEqual([{ name: "proxmox api", ok: false, detail: expect.stringMatching(/token was refused/) }]);
    const away = await proxmoxChecks({ ...settings, node: "pve2" });
    expect(away[1]).toEqual({ name: "proxmox node", ok: false, detail: "no node pve2 (the API knows pve)" });
    for (const c of [...good, ...limited, ...pinned, ...refused, ...away]) expect(c.detail).not.toContain(sim.tokenSecret);
  });
});

it("sent nothing the real API would refuse, and used nothing the simulator lacks", () => {
  expect(sim.violations).toEqual([]);
  expect(sim.unsupported).toEqual([]);
});
