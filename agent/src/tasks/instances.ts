/**
 * Instance jobs on a Proxmox VE node (`instance.*`): what Suble's API asks of a VM, done
 * through the Proxmox driver. Each job is safe to run again under a new lease: the VM
 * carries its instance and the job that made it (description marker and tag), so a create
 * handed out again finds the clone of the first attempt; settings are absolute (cores,
 * memory, disk size), and power actions accept a VM already in the state asked for.
 *
 * Passwords are fetched for the lease (`GET /agent/leases/{lease}/env`) and go only to the
 * node; they are never in a log line, an output line or an error.
 */
import type { InstanceJobResult } from "../../../src/protocol/agent.ts";
import { type OpOptions, type ProxmoxDriver, ProxmoxError, type VmMarker } from "../drivers/proxmox.ts";
import type { PayloadOf, TaskContext, TaskOutcome, TaskRegistry } from "../jobs/registry.ts";

/** The driver of this host's node (drivers/proxmox.ts ProxmoxNodeLink). */
export interface ProxmoxNode {
  driver(): Promise<ProxmoxDriver>;
}


/** How long a freshly started guest gets to bring up qemu-ga and an address. */
const BOOT_MS = 5 * 60_000;
/** The boot disk Berth grows: the first of these the VM has (cloud images use scsi0 or virtio0). */
const BOOT_DISKS = ["scsi0", "virtio0", "sata0", "ide0"];

/**
 * The job gives up this long before the control plane's deadline for it, so a node that does
 * not answer fails the job with the node's own reason (`… unreachable: connection refused`)
 * rather than the control plane's bare "deadline passed", and the report has time to land.
 */
const GIVE_UP_BEFORE_DEADLINE_MS = 5_000;

const ok = (result: InstanceJobResult = {}): TaskOutcome => ({ status: "succeeded", error: null, result });

/** The earlier of `deadline` and the moment this job gives up (none when the control plane names no deadline). */
function byDeadline(ctx: TaskContext, deadline?: number): number | undefined {
  const at = ctx.lease.deadline_at;
  const job = at === undefined ? undefined : Math.max(Date.now() + 1_000, at - GIVE_UP_BEFORE_DEADLINE_MS);
  return job === undefined ? deadline : Math.min(job, deadline ?? job);
}

function options(ctx: TaskContext, deadline?: number): OpOptions {
  // Proxmox's own task log lines are the job's output: the user sees what the node did.
  return { onLog: (line) => ctx.output("stdout", line), signal: ctx.signal, deadline: byDeadline(ctx, deadline) };
}

async function password(ctx: TaskContext): Promise<string> {
  const secrets = await ctx.api.call<{ password?: string | null }>("GET", `/agent/leases/${ctx.lease.lease_id}/env`);
  if (!secrets.password) throw new Error("The control plane had no password for this job (it was acknowledged or replaced); run it again");
  return secrets.password;
}

function requireVm(p: { vmid: number | null; instance_id: string }): number {
  if (p.vmid === null) throw new Error(`Instance ${p.instance_id} has no VM on this node yet`);
  return p.vmid;
}

async function templateVmid(driver: ProxmoxDriver, name: string, o: OpOptions): Promise<number> {
  const found = (await driver.templates(o)).find((t) => t.name === name);
  if (!found) throw new Error(`Node ${driver.node} has no VM template named ${name}: make one (qm template) or pick another image`);
  if (o.signal?.aborted) throw new Error("stopped");
  return found.vmid;
}

/** The boot disk's name and the config it was read from (growDisk takes it, so the config is read once). */
async function bootDisk(driver: ProxmoxDriver, vmid: number, o: OpOptions): Promise<{ disk: string; config: Record<string, string | number> }> {
  const cfg = await driver.vm.config(vmid, o);
  const boot = /order=([a-z]+\d+)/.exec(String(cfg.boot ?? ""))?.[1];
  const disk = boot && cfg[boot] && !/media=cdrom/.test(String(cfg[boot])) ? boot : BOOT_DISKS.find((d) => cfg[d] && !/media=cdrom/.test(String(cfg[d])));
  if (!disk) throw new Error(`VM ${vmid} has no boot disk Berth knows (${BOOT_DISKS.join(", ")})`);
  return { disk, config: cfg };
}

/** Starts the VM, waits for its guest agent and reads its address (null when the guest has none yet). */
async function bootAndAddress(driver: ProxmoxDriver, vmid: number, ctx: TaskContext): Promise<string | null> {
  await driver.vm.start(vmid, options(ctx));
  const deadline = byDeadline(ctx, Date.now() + BOOT_MS) as number;
  await driver.guest.waitForAgent(vmid, { signal: ctx.signal, deadline });
  for (;;) {
    const ip = await driver.guest.address(vmid, { signal: ctx.signal, deadline });
    if (ip || Date.now() + 1_000 > deadline) return ip;
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

async function powerState(driver: ProxmoxDriver, vmid: number, o: OpOptions): Promise<"running" | "stopped"> {
  return (await driver.vm.status(vmid, o)).status === "running" ? "running" : "stopped";
}

/** Sets the password for root and the image's user; the user is made by cloud-init at first boot. */
async function setPasswords(driver: ProxmoxDriver, vmid: number, users: string[], secret: string, ctx: TaskContext) {
  for (const user of [...new Set(users)]) {
    await driver.guest.setUserPassword(vmid, user, secret, { signal: ctx.signal, deadline: byDeadline(ctx, Date.now() + 60_000) });
    ctx.output("stdout", `password set for ${user}`);
  }
}

/**
 * Clone the template (or find the clone an earlier attempt made), apply the plan and
 * cloud-init, grow the disk, boot, and set the passwords through the guest agent.
 */
async function create(node: ProxmoxNode, ctx: TaskContext<PayloadOf<"instance.create">>): Promise<TaskOutcome> {
  const p = ctx.payload;
  const driver = await node.driver();
  const total = 5;
  ctx.progress(1, total, `Cloning ${p.template} on ${driver.node}`);
  // The password is needed only once the clone is there: fetched meanwhile. Should it not come, the
  // job fails with the clone made and marked; a delete (or this job handed out again) finds it.
  const secret = password(ctx);
  secret.catch(() => undefined); // awaited below; not an unhandled rejection while the clone runs
  const template = await templateVmid(driver, p.template, options(ctx));
  const marker = { instanceId: p.instance_id, jobId: ctx.lease.job_id };
  const { vmid } = await driver.vm.cloneTemplate({ template, name: p.hostname, marker }, options(ctx));
  const ipv4 = await install(driver, vmid, { ...p, disk_gb: p.plan.disk_gb, cores: p.plan.cores, memory_mb: p.plan.memory_mb, secret: await secret, marker }, ctx, total);
  return ok({ vmid, node: driver.node, ipv4, power_state: "running" });
}

/**
 * Steps 2 to 5 of a create or a rebuild on a freshly cloned VM: the plan and cloud-init,
 * the boot disk grown to the plan's size, a boot, and the passwords through qemu-ga.
 */
async function install(
  driver: ProxmoxDriver,
  vmid: number,
  spec: { hostname: string; ciuser: string; ssh_keys: string[]; disk_gb: number; cores?: number; memory_mb?: number; secret: string; marker: VmMarker; net0?: string },
  ctx: TaskContext,
  total: number,
): Promise<string | null> {
  const o = options(ctx);
  ctx.progress(2, total, spec.cores ? `Configuring VM ${vmid}: ${spec.cores} cores, ${spec.memory_mb} MB` : `Configuring VM ${vmid}`);
  await driver.vm.configure(vmid, {
    name: spec.hostname,
    cores: spec.cores,
    memory: spec.memory_mb,
    ciuser: spec.ciuser,
    cipassword: spec.secret,
    sshkeys: spec.ssh_keys.length ? spec.ssh_keys : undefined,
    ipconfig0: "ip=dhcp",
    marker: spec.marker,
    net0: spec.net0,
  }, o);
  ctx.progress(3, total, `Growing the disk to ${spec.disk_gb} GB`);
  const boot = await bootDisk(driver, vmid, o);
  await driver.vm.growDisk(vmid, boot.disk, spec.disk_gb, { ...o, config: boot.config });
  ctx.progress(4, total, "Starting the VM and waiting for its guest agent");
  const ipv4 = await bootAndAddress(driver, vmid, ctx);
  ctx.progress(5, total, "Setting the root password");
  await setPasswords(driver, vmid, ["root", spec.ciuser], spec.secret, ctx);
  return ipv4;
}

async function power(node: ProxmoxNode, ctx: TaskContext<PayloadOf<"instance.power">>): Promise<TaskOutcome> {
  const p = ctx.payload;
  const vmid = requireVm(p);
  const driver = await node.driver();
  ctx.progress(1, 1, `${p.action} VM ${vmid}`);
  const o = options(ctx);
  if (p.action === "start") await driver.vm.start(vmid, o);
  else if (p.action === "stop") await driver.vm.stop(vmid, o);
  else if (p.action === "shutdown") await driver.vm.shutdown(vmid, 60, o);
  else if (p.action === "reboot") await driver.vm.reboot(vmid, o);
  else await driver.vm.reset(vmid, o);
  return ok({ vmid, node: driver.node, power_state: await powerState(driver, vmid, o) });
}

/** Cores and memory are set now (a running VM takes them at its next boot); the disk grows at once. */
async function resize(node: ProxmoxNode, ctx: TaskContext<PayloadOf<"instance.resize">>): Promise<TaskOutcome> {
  const p = ctx.payload;
  const vmid = requireVm(p);
  const driver = await node.driver();
  const o = options(ctx);
  ctx.progress(1, 2, `Setting ${p.plan.cores} cores and ${p.plan.memory_mb} MB`);
  await driver.vm.configure(vmid, { cores: p.plan.cores, memory: p.plan.memory_mb }, o);
  ctx.progress(2, 2, `Growing the disk to ${p.plan.disk_gb} GB`);
  const boot = await bootDisk(driver, vmid, o);
  const { grown } = await driver.vm.growDisk(vmid, boot.disk, p.plan.disk_gb, { ...o, config: boot.config });
  if (!grown) ctx.output("stdout", `the disk is ${p.plan.disk_gb} GB already`);
  const state = await powerState(driver, vmid, o);
  if (state === "running") ctx.output("stdout", "the VM runs: the new cores and memory apply at its next boot");
  return ok({ vmid, node: driver.node, power_state: state });
}

/**
 * Wipe and reinstall: the VM is destroyed and the template cloned again under the same
 * vmid, keeping its network card (and so its MAC, and the address DHCP gives it).
 */
async function rebuild(node: ProxmoxNode, ctx: TaskContext<PayloadOf<"instance.rebuild">>): Promise<TaskOutcome> {
  const p = ctx.payload;
  const vmid = requireVm(p);
  if (p.backup) throw new Error("This node driver does not take backups yet: rebuild without a backup, or back the VM up on the node first. Nothing was changed");
  const driver = await node.driver();
  const o = options(ctx);
  const total = 5;
  const secret = await password(ctx);
  const template = await templateVmid(driver, p.template, o);
  const marker = { instanceId: p.instance_id, jobId: ctx.lease.job_id };
  // A rebuild handed out again finds its own clone (marked with this job) and goes on from there.
  const [mine] = await driver.vm.find(marker, o);
  let net0: string | undefined;
  if (!mine) {
    const old = await driver.vm.config(vmid, o).catch((err) => (err instanceof ProxmoxError && /does not exist/.test(err.message) ? null : Promise.reject(err)));
    net0 = old?.net0 ? String(old.net0) : undefined;
    ctx.progress(1, total, `Destroying VM ${vmid}'s disks and cloning ${p.template} into it again`);
    await driver.vm.destroy(vmid, o);
    await driver.vm.cloneTemplate({ template, name: p.hostname, marker, newid: vmid }, o);
  }
  const ipv4 = await install(driver, vmid, { ...p, secret, marker, net0 }, ctx, total);
  return ok({ vmid, node: driver.node, ipv4, power_state: "running" });
}

async function resetPassword(node: ProxmoxNode, ctx: TaskContext<PayloadOf<"instance.reset_password">>): Promise<TaskOutcome> {
  const p = ctx.payload;
  const vmid = requireVm(p);
  const driver = await node.driver();
  const secret = await password(ctx);
  ctx.progress(1, 2, "Waiting for the guest agent");
  await driver.guest.waitForAgent(vmid, { signal: ctx.signal, deadline: byDeadline(ctx, Date.now() + 60_000) });
  ctx.progress(2, 2, "Setting the password");
  await setPasswords(driver, vmid, ["root", p.ciuser], secret, ctx);
  // cloud-init would set the old one again on a rebuild of its seed: keep it in step.
  await driver.vm.configure(vmid, { cipassword: secret }, options(ctx));
  return ok({ vmid, node: driver.node });
}

/** Adds one key to the user's authorized_keys, keeping the keys already there. */
async function sshKey(node: ProxmoxNode, ctx: TaskContext<PayloadOf<"instance.ssh_key">>): Promise<TaskOutcome> {
  const p = ctx.payload;
  const vmid = requireVm(p);
  const driver = await node.driver();
  const o = { signal: ctx.signal, deadline: byDeadline(ctx, Date.now() + 60_000) };
  await driver.guest.waitForAgent(vmid, o);
  const current = await driver.guest.exec(vmid, ["/bin/sh", "-c", 'h=$(getent passwd "$1" 2>/dev/null | cut -d: -f6); cat "${h:-/home/$1}/.ssh/authorized_keys" 2>/dev/null; exit 0', "sh", p.user], o);
  const keys = current.stdout.split("\n").map((k) => k.trim()).filter(Boolean);
  const sameKey = (k: string) => k.split(/\s+/).slice(0, 2).join(" ") === p.public_key.trim().split(/\s+/).slice(0, 2).join(" ");
  if (keys.some(sameKey)) {
    ctx.output("stdout", `the key is in ${p.user}'s authorized_keys already`);
    return ok({ vmid, node: driver.node, added: false, already_present: true });
  }
  await driver.guest.installSshKeys(vmid, p.user, [...keys, p.public_key], o);
  ctx.output("stdout", `key added to ${p.user}'s authorized_keys`);
  return ok({ vmid, node: driver.node, added: true, already_present: false });
}

/** Destroys the VM and its disks; a create that never reported its vmid is found by its marker. */
async function remove(node: ProxmoxNode, ctx: TaskContext<PayloadOf<"instance.delete">>): Promise<TaskOutcome> {
  const p = ctx.payload;
  if (p.final_backup) throw new Error("This node driver does not take backups yet: delete without a final backup, or back the VM up on the node first. Nothing was changed");
  const driver = await node.driver();
  const o = options(ctx);
  const vmids = new Set<number>();
  if (p.vmid !== null) vmids.add(p.vmid);
  for (const vm of await driver.vm.find({ instanceId: p.instance_id }, o)) vmids.add(vm.vmid);
  if (!vmids.size) ctx.output("stdout", "no VM of this instance is on the node: nothing to destroy");
  for (const vmid of vmids) {
    ctx.progress(1, 1, `Destroying VM ${vmid}`);
    const { destroyed } = await driver.vm.destroy(vmid, o);
    if (!destroyed) ctx.output("stdout", `VM ${vmid} was gone already`);
  }
  return ok({ node: driver.node });
}

export function registerInstanceTasks(registry: TaskRegistry, node: ProxmoxNode): TaskRegistry {
  // An instance's jobs run one at a time on this agent too (the control plane already allows one).
  const byInstance = (p: { instance_id: string }) => `instance:${p.instance_id}`;
  return registry
    .register("instance.create", { run: (ctx) => create(node, ctx), exclusiveKey: byInstance })
    .register("instance.power", { run: (ctx) => power(node, ctx), exclusiveKey: byInstance })
    .register("instance.resize", { run: (ctx) => resize(node, ctx), exclusiveKey: byInstance })
    .register("instance.rebuild", { run: (ctx) => rebuild(node, ctx), exclusiveKey: byInstance })
    .register("instance.reset_password", { run: (ctx) => resetPassword(node, ctx), exclusiveKey: byInstance })
    .register("instance.ssh_key", { run: (ctx) => sshKey(node, ctx), exclusiveKey: byInstance })
    .register("instance.delete", { run: (ctx) => remove(node, ctx), exclusiveKey: byInstance });
}
