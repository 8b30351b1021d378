/**
 * One simulated Proxmox VE node: its VMs (config, lock, backing container),
 * vmid allocation, storage, and the handlers for the API calls Berth's driver
 * makes. Handlers throw ApiError with Proxmox's status and message.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { cpus, totalmem, freemem, loadavg, uptime as osUptime } from "node:os";
import * as guest from "./guest.ts";
import { parseBool, type Params } from "./spec.ts";
import { type TaskContext, Tasks } from "./tasks.ts";

export class ApiError extends Error {
  readonly status: number;
  readonly errors?: Record<string, string>;
  constructor(status: number, message: string, errors?: Record<string, string>) {
    super(message);
    this.status = status;
    this.errors = errors;
  }
}

export interface TemplateSpec {
  vmid: number;
  name: string;
  /** The image whose container backs each clone (the "disk" of the template). */
  image: string;
  /** Disk size, PVE notation (e.g. "2G"). */
  disk?: string;
  cores?: number;
  memory?: number;
}

export interface Timings {
  /** How long a full clone's copy takes; a linked clone takes a fifth. */
  cloneMs: number;
  /** How long after start the guest agent answers. */
  agentBootMs: number;
  /** Work time of the other tasks. */
  taskMs: number;
}

interface Vm {
  vmid: number;
  config: Record<string, string>;
  image: string;
  lock?: string;
  running: boolean;
  startedAt: number;
  pid: number;
  agentReadyAt: number;
  /** cloud-init password, kept plain to apply at start (PVE stores it hashed). */
  cipassword?: string;
  execs: Map<number, { exited: boolean; exitcode?: number; out?: string; err?: string }>;
}

export interface Caller {
  user: string;
  can(path: string, priv: string): boolean;
  /** Every privilege the caller holds (flat: the same on every path). */
  privileges: readonly string[];
}

/**
 * Proxmox VE 9's privileges (pveum role list), written from memory of its
 * documentation; VE 9 replaced VM.Monitor with the VM.GuestAgent.* ones.
 */
export const ALL_PRIVILEGES: readonly string[] = [
  "Datastore.Allocate", "Datastore.AllocateSpace", "Datastore.AllocateTemplate", "Datastore.Audit",
  "Group.Allocate", "Mapping.Audit", "Mapping.Modify", "Mapping.Use", "Permissions.Modify", "Pool.Allocate", "Pool.Audit",
  "Realm.Allocate", "Realm.AllocateUser", "SDN.Allocate", "SDN.Audit", "SDN.Use",
  "Sys.AccessNetwork", "Sys.Audit", "Sys.Console", "Sys.Incoming", "Sys.Modify", "Sys.PowerMgmt", "Sys.Syslog", "User.Modify",
  "VM.Allocate", "VM.Audit", "VM.Backup", "VM.Clone", "VM.Config.CDROM", "VM.Config.CPU", "VM.Config.Cloudinit", "VM.Config.Disk",
  "VM.Config.HWType", "VM.Config.Memory", "VM.Config.Network", "VM.Config.Options", "VM.Console",
  "VM.GuestAgent.Audit", "VM.GuestAgent.FileRead", "VM.GuestAgent.FileSystemMgmt", "VM.GuestAgent.FileWrite", "VM.GuestAgent.Unrestricted",
  "VM.Migrate", "VM.PowerMgmt", "VM.Replicate", "VM.Snapshot", "VM.Snapshot.Rollback",
];

const GiB = 1024 ** 3;
const STORAGE = "local-lvm";
const STORAGE_TOTAL = 500 * GiB;

function sizeBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)$/.exec(s);
  if (!m) return 0;
  const mult = { "": 1, K: 1024, M: 1024 ** 2, G: GiB, T: 1024 * GiB }[m[2] as "" | "K" | "M" | "G" | "T"];
  return Math.round(Number(m[1]) * mult);
}
function sizeText(bytes: number): string {
  return bytes % GiB === 0 ? `${bytes / GiB}G` : `${Math.ceil(bytes / 1024 ** 2)}M`;
}
const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
const mac = () => `BC:24:11:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":")}`;
const diskOpt = (disk: string, key: string) => new RegExp(`(?:^|,)${key}=([^,]+)`).exec(disk)?.[1];

export class SimNode {
  readonly vms = new Map<number, Vm>();
  readonly tasks: Tasks;
  /** Each (re)boot of a guest: when its agent starts answering (epoch ms), for benchmarks. */
  readonly guestBoots: { vmid: number; readyMs: number }[] = [];
  private nextExecPid = 1000;

  readonly node: string;
  readonly simId: string;
  readonly timings: Timings;

  constructor(node: string, simId: string, timings: Timings, slowness: () => number, templates: TemplateSpec[]) {
    this.node = node;
    this.simId = simId;
    this.timings = timings;
    this.tasks = new Tasks(node, slowness);
    for (const t of templates) {
      this.vms.set(t.vmid, {
        vmid: t.vmid,
        image: t.image,
        running: false,
        startedAt: 0,
        pid: 0,
        agentReadyAt: 0,
        execs: new Map(),
        config: {
          name: t.name, template: "1", cores: String(t.cores ?? 1), sockets: "1", memory: String(t.memory ?? 512),
          agent: "1", ostype: "l26", scsihw: "virtio-scsi-single", boot: "order=scsi0",
          scsi0: `${STORAGE}:base-${t.vmid}-disk-0,size=${t.disk ?? "2G"}`, ide2: `${STORAGE}:vm-${t.vmid}-cloudinit,media=cdrom`,
          net0: `virtio=${mac()},bridge=vmbr0`, serial0: "socket", vga: "serial0", ipconfig0: "ip=dhcp",
          smbios1: `uuid=${randomUUID()}`, vmgenid: randomUUID(), meta: `creation-qemu=9.2.0,ctime=${Math.floor(Date.now() / 1000)}`,
        },
      });
    }
  }

  // ---- helpers --------------------------------------------------------------

  private confPath(vmid: number) {
    return `nodes/${this.node}/qemu-server/${vmid}.conf`;
  }
  vm(vmid: number): Vm {
    const vm = this.vms.get(vmid);
    if (!vm) throw new ApiError(500, `Configuration file '${this.confPath(vmid)}' does not exist`);
    return vm;
  }
  checkNode(node: string) {
    if (node !== this.node) throw new ApiError(500, `hostname lookup '${node}' failed - failed to get address info for: ${node}: Name or service not known`);
  }
  private checkLock(vm: Vm, p: Params, caller: Caller) {
    if (parseBool(p.skiplock)) {
      if (caller.user !== "root@pam") throw new ApiError(403, "Only root may use this option.");
      return;
    }
    if (vm.lock) throw new ApiError(500, `VM is locked (${vm.lock})`);
  }
  static require(caller: Caller, path: string, ...privs: string[]) {
    for (const priv of privs) if (!caller.can(path, priv)) throw new ApiError(403, `Permission check failed (${path}, ${priv})`);
  }
  static requireAny(caller: Caller, path: string, ...privs: string[]) {
    if (!privs.some((p) => caller.can(path, p))) throw new ApiError(403, `Permission check failed (${path}, ${privs.join(" | ")})`);
  }

  /** Reads the containers' real state: a VM whose container stopped or vanished outside the API shows so. */
  async sync(): Promise<void> {
    const states = await guest.listContainers(this.simId);
    for (const vm of this.vms.values()) {
      if (vm.config.template === "1") continue;
      const st = states.get(vm.vmid);
      const running = st?.running ?? false;
      if (running && !vm.running) this.booted(vm);
      vm.running = running;
      vm.pid = st?.pid ?? 0;
      vm.startedAt = st?.running ? Date.parse(st.startedAt) : 0;
    }
  }

  /** The guest has (re)booted: its agent answers `agentBootMs` from now. */
  private booted(vm: Vm) {
    vm.agentReadyAt = Date.now() + this.timings.agentBootMs;
    this.guestBoots.push({ vmid: vm.vmid, readyMs: vm.agentReadyAt });
  }

  digest(vm: Vm): string {
    return createHash("sha1").update(JSON.stringify(Object.entries(vm.config).sort())).digest("hex");
  }

  private usedBytes(): number {
    let used = 0;
    for (const vm of this.vms.values()) used += sizeBytes(diskOpt(vm.config.scsi0 ?? "", "size") ?? "0");
    return used;
  }

  private vmSummary(vm: Vm) {
    const memMiB = Number((vm.config.memory ?? "512").split(",")[0]?.replace("current=", ""));
    const cpus = Number(vm.config.cores ?? 1) * Number(vm.config.sockets ?? 1);
    const uptime = vm.running ? Math.max(0, Math.floor((Date.now() - vm.startedAt) / 1000)) : 0;
    return {
      vmid: vm.vmid, name: vm.config.name, status: vm.running ? "running" : "stopped", uptime, cpus,
      cpu: vm.running ? 0.01 : 0, maxmem: memMiB * 1024 ** 2, mem: vm.running ? Math.floor(memMiB * 1024 ** 2 * 0.2) : 0,
      maxdisk: sizeBytes(diskOpt(vm.config.scsi0 ?? "", "size") ?? "0"), disk: 0, netin: 0, netout: 0, diskread: 0, diskwrite: 0,
      ...(vm.running ? { pid: vm.pid } : {}),
      ...(vm.config.tags ? { tags: vm.config.tags } : {}),
      ...(vm.lock ? { lock: vm.lock } : {}),
      ...(vm.config.template === "1" ? { template: 1 } : {}),
    };
  }

  // ---- node, cluster, storage -------------------------------------------------

  version() {
    return { version: "9.0.3", release: "9.0", repoid: "sim00000" };
  }

  nodes() {
    return [{
      node: this.node, status: "online", type: "node", id: `node/${this.node}`, level: "",
      cpu: Math.min(1, loadavg()[0]! / cpus().length), maxcpu: cpus().length, mem: totalmem() - freemem(), maxmem: totalmem(),
      disk: this.usedBytes(), maxdisk: STORAGE_TOTAL, uptime: Math.floor(osUptime()),
    }];
  }

  nodeStatus() {
    const c = cpus();
    return {
      cpu: Math.min(1, loadavg()[0]! / c.length), loadavg: loadavg().map((l) => l.toFixed(2)), uptime: Math.floor(osUptime()),
      cpuinfo: { cpus: c.length, cores: c.length, sockets: 1, model: c[0]?.model ?? "unknown", mhz: String(c[0]?.speed ?? 0), hvm: "1", flags: "" },
      memory: { total: totalmem(), used: totalmem() - freemem(), free: freemem(), available: freemem() },
      swap: { total: 0, used: 0, free: 0 },
      rootfs: { total: 100 * GiB, used: 10 * GiB, free: 90 * GiB, avail: 90 * GiB },
      kversion: "Linux 6.14.8-2-pve #1 SMP PREEMPT_DYNAMIC (simulated)", pveversion: "pve-manager/9.0.3/sim00000",
      "current-kernel": { sysname: "Linux", release: "6.14.8-2-pve", version: "#1 SMP PREEMPT_DYNAMIC", machine: "x86_64" },
      "boot-info": { mode: "efi", secureboot: 0 }, ksm: { shared: 0 }, idle: 0, wait: 0,
    };
  }

  nextid(p: Params) {
    const asked = one(p.vmid);
    if (asked !== undefined) {
      if (this.vms.has(Number(asked))) throw new ApiError(400, "Parameter verification failed.", { vmid: `VM ${asked} already exists` });
      return asked;
    }
    for (let id = 100; id < 1_000_000; id++) if (!this.vms.has(id)) return String(id); // PVE answers a string here
    throw new ApiError(500, "unable to get any free VMID in range [100, 999999]");
  }

  private storageEntry() {
    const used = this.usedBytes();
    return { storage: STORAGE, type: "lvmthin", content: "images,rootdir", active: 1, enabled: 1, shared: 0, total: STORAGE_TOTAL, used, avail: STORAGE_TOTAL - used, used_fraction: used / STORAGE_TOTAL };
  }
  storageList(caller: Caller) {
    return caller.can(`/storage/${STORAGE}`, "Datastore.Audit") || caller.can(`/storage/${STORAGE}`, "Datastore.AllocateSpace") ? [this.storageEntry()] : [];
  }
  storageStatus(storage: string, caller: Caller) {
    SimNode.requireAny(caller, `/storage/${storage}`, "Datastore.Audit", "Datastore.AllocateSpace");
    if (storage !== STORAGE) throw new ApiError(500, `storage '${storage}' does not exist`);
    const { storage: _s, ...rest } = this.storageEntry();
    return rest;
  }

  // ---- VMs --------------------------------------------------------------------

  async list(caller: Caller) {
    await this.sync();
    return [...this.vms.values()].filter((vm) => caller.can(`/vms/${vm.vmid}`, "VM.Audit")).map((vm) => this.vmSummary(vm));
  }

  async current(vmid: number) {
    await this.sync();
    const vm = this.vm(vmid);
    return {
      ...this.vmSummary(vm), qmpstatus: vm.running ? "running" : "stopped", agent: vm.config.agent?.startsWith("1") ? 1 : 0, ha: { managed: 0 },
      ...(vm.running ? { "running-qemu": "9.2.0", "running-machine": "pc-i440fx-9.2+pve1" } : {}),
    };
  }

  getConfig(vmid: number) {
    const vm = this.vm(vmid);
    const out: Record<string, string | number> = { digest: this.digest(vm) };
    for (const [k, v] of Object.entries(vm.config)) out[k] = ["cores", "sockets", "template"].includes(k) ? Number(v) : v;
    if (vm.config.cipassword) out.cipassword = "**********";
    if (vm.lock) out.lock = vm.lock;
    return out;
  }

  /** The privilege each config key needs, as PVE's check_vm_modify_config_perm has it. */
  private static configPriv(key: string): string {
    if (["cores", "sockets", "cpu", "cpulimit", "cpuunits", "vcpus", "numa", "affinity"].includes(key)) return "VM.Config.CPU";
    if (["memory", "balloon", "shares"].includes(key)) return "VM.Config.Memory";
    if (key.startsWith("ipconfig") || ["ciuser", "cipassword", "sshkeys", "cicustom", "citype", "ciupgrade", "nameserver", "searchdomain"].includes(key)) return "VM.Config.Cloudinit";
    if (/^net\d+$/.test(key)) return "VM.Config.Network";
    if (/^(scsi|virtio|ide|sata|efidisk|tpmstate|unused)\d+$/.test(key)) return "VM.Config.Disk";
    return "VM.Config.Options";
  }

  updateConfig(p: Params, caller: Caller, async: boolean): string | null {
    const vmid = Number(p.vmid);
    const vm = this.vm(vmid);
    const keys = Object.keys(p).filter((k) => !["node", "vmid", "digest", "delete", "skiplock", "background_delay", "force", "revert"].includes(k));
    const deletes = (one(p.delete) ?? "").split(/[,;\s]+/).filter(Boolean);
    for (const k of [...keys, ...deletes]) SimNode.require(caller, `/vms/${vmid}`, SimNode.configPriv(k));
    this.checkLock(vm, p, caller);
    const digest = one(p.digest);
    if (digest && digest !== this.digest(vm)) throw new ApiError(500, "detected modified configuration - file changed by other user? Try again.");
    if (vm.config.template === "1" && keys.some((k) => /^(scsi|virtio|ide|sata)\d+$/.test(k))) throw new ApiError(500, "you can't change disk of a template");
    const apply = () => {
      for (const k of deletes) {
        delete vm.config[k];
        if (k === "cipassword") vm.cipassword = undefined;
      }
      for (const k of keys) {
        const v = one(p[k]) as string;
        if (k === "cipassword") {
          vm.cipassword = v;
          vm.config.cipassword = `$5$sim$${createHash("sha256").update(v).digest("base64").slice(0, 43)}`;
        } else vm.config[k] = v;
      }
    };
    if (!async) {
      apply();
      return null;
    }
    return this.tasks.start("qmconfig", String(vmid), caller.user, async (t) => {
      await t.sleep(this.timings.taskMs / 4);
      apply();
    });
  }

  resize(p: Params, caller: Caller): string {
    const vmid = Number(p.vmid);
    SimNode.require(caller, `/vms/${vmid}`, "VM.Config.Disk");
    const vm = this.vm(vmid);
    this.checkLock(vm, p, caller);
    const disk = one(p.disk) as string;
    const drive = vm.config[disk];
    if (!drive) throw new ApiError(500, `disk '${disk}' does not exist`);
    if (/media=cdrom/.test(drive)) throw new ApiError(500, "you can't resize a cdrom");
    const size = one(p.size) as string;
    const cur = sizeBytes(diskOpt(drive, "size") ?? "0");
    const next = size.startsWith("+") ? cur + sizeBytes(size.slice(1)) : sizeBytes(size);
    if (next < cur) throw new ApiError(500, `shrinking disks is not supported`);
    const volid = drive.split(",")[0];
    return this.tasks.start("qmresize", String(vmid), caller.user, async (t) => {
      await t.sleep(this.timings.taskMs / 2);
      t.log(`  Size of logical volume pve/${volid?.split(":")[1]} changed from ${sizeText(cur)} to ${sizeText(next)}.`);
      t.log(`  Logical volume pve/${volid?.split(":")[1]} successfully resized.`);
      vm.config[disk] = drive.replace(/size=[^,]+/, `size=${sizeText(next)}`);
    });
  }

  clone(p: Params, caller: Caller): string {
    const vmid = Number(p.vmid);
    const newid = Number(p.newid);
    SimNode.require(caller, `/vms/${vmid}`, "VM.Clone");
    SimNode.require(caller, `/vms/${newid}`, "VM.Allocate");
    SimNode.require(caller, `/storage/${STORAGE}`, "Datastore.AllocateSpace");
    const src = this.vm(vmid);
    const isTemplate = src.config.template === "1";
    if (!isTemplate) this.checkLock(src, p, caller);
    if (this.vms.has(newid)) throw new ApiError(500, `unable to create VM ${newid}: config file already exists`);
    const storage = one(p.storage);
    if (storage && storage !== STORAGE) throw new ApiError(500, `storage '${storage}' does not exist`);
    const full = !isTemplate || parseBool(p.full);
    const { template: _t, ...copy } = src.config;
    const config: Record<string, string> = {
      ...copy,
      name: one(p.name) ?? `Copy-of-VM-${src.config.name ?? vmid}`,
      scsi0: `${STORAGE}:vm-${newid}-disk-0,size=${diskOpt(src.config.scsi0 ?? "", "size") ?? "2G"}`,
      ide2: `${STORAGE}:vm-${newid}-cloudinit,media=cdrom`,
      net0: (src.config.net0 ?? "virtio=,bridge=vmbr0").replace(/=([0-9A-F:]{17})/i, `=${mac()}`),
      smbios1: `uuid=${randomUUID()}`, vmgenid: randomUUID(),
    };
    const description = one(p.description);
    if (description !== undefined) config.description = description;
    // The new VM exists, locked, from the moment the clone is accepted.
    const vm: Vm = { vmid: newid, config, image: src.image, lock: "clone", running: false, startedAt: 0, pid: 0, agentReadyAt: 0, execs: new Map() };
    this.vms.set(newid, vm);
    const srcDisk = (src.config.scsi0 ?? "").split(",")[0];
    const size = diskOpt(src.config.scsi0 ?? "", "size") ?? "2G";
    return this.tasks.start(
      "qmclone", String(vmid), caller.user,
      async (t: TaskContext) => {
        t.log(`create ${full ? "full" : "linked"} clone of drive ide2 (${STORAGE}:vm-${vmid}-cloudinit)`);
        t.log(`  Logical volume "vm-${newid}-cloudinit" created.`);
        t.log(`create ${full ? "full" : "linked"} clone of drive scsi0 (${srcDisk})`);
        await guest.ensureImage(src.image);
        const steps = 4;
        const total = sizeBytes(size);
        const copyMs = full ? this.timings.cloneMs : this.timings.cloneMs / 5;
        if (full) t.log(`  Logical volume "vm-${newid}-disk-0" created.`);
        for (let i = 1; i <= steps; i++) {
          await t.sleep(copyMs / steps);
          if (full) t.log(`transferred ${sizeText((total * i) / steps)} of ${size} (${((100 * i) / steps).toFixed(2)}%)`);
        }
        await guest.createContainer(this.simId, newid, src.image, config.name ?? `vm${newid}`, Number((config.memory ?? "512").replace("current=", "").split(",")[0]), Number(config.cores ?? 1), cpus().length);
        delete vm.lock;
      },
      async () => {
        // As PVE does after a failed clone: the half-made VM is removed.
        if (this.vms.get(newid) === vm) this.vms.delete(newid);
        await guest.removeContainer(guest.containerName(this.simId, newid));
      },
    );
  }

  destroy(p: Params, caller: Caller): string {
    const vmid = Number(p.vmid);
    SimNode.require(caller, `/vms/${vmid}`, "VM.Allocate");
    const vm = this.vm(vmid);
    this.checkLock(vm, p, caller);
    if (vm.running) throw new ApiError(500, `VM ${vmid} is running - destroy failed`);
    vm.lock = "destroyed";
    return this.tasks.start("qmdestroy", String(vmid), caller.user, async (t) => {
      await t.sleep(this.timings.taskMs / 2);
      await guest.removeContainer(guest.containerName(this.simId, vmid));
      t.log(`  Logical volume "vm-${vmid}-disk-0" successfully removed.`);
      t.log(`  Logical volume "vm-${vmid}-cloudinit" successfully removed.`);
      if (parseBool(p.purge)) t.log(`purging VM ${vmid} from related configurations..`);
      this.vms.delete(vmid);
    }, () => {
      if (vm.lock === "destroyed") delete vm.lock;
    });
  }

  async power(action: "start" | "stop" | "shutdown" | "reboot" | "reset", p: Params, caller: Caller): Promise<string> {
    const vmid = Number(p.vmid);
    SimNode.require(caller, `/vms/${vmid}`, "VM.PowerMgmt");
    await this.sync();
    const vm = this.vm(vmid);
    const skiplock = parseBool(p.skiplock);
    if (skiplock && caller.user !== "root@pam") throw new ApiError(403, "Only root may use this option.");
    if (vm.config.template === "1") throw new ApiError(500, action === "start" ? "you can't start a vm if it's a template" : `VM ${vmid} not running`);
    if ((action === "reboot" || action === "reset") && !vm.running) throw new ApiError(500, `VM ${vmid} not running`);
    const type = { start: "qmstart", stop: "qmstop", shutdown: "qmshutdown", reboot: "qmreboot", reset: "qmreset" }[action];
    const timeout = Number(one(p.timeout) ?? (action === "shutdown" ? 180 : 30));
    return this.tasks.start(type, String(vmid), caller.user, async (t) => {
      await t.sleep(this.timings.taskMs);
      // qemu-server checks the lock inside the worker for power actions: the call is accepted, the task fails.
      if (vm.lock && !skiplock) throw new Error(`VM is locked (${vm.lock})`);
      await this.sync();
      switch (action) {
        case "start":
          if (vm.running) throw new Error(`VM ${vmid} already running`);
          t.log("generating cloud-init ISO");
          await guest.setLimits(this.simId, vmid, Number((vm.config.memory ?? "512").replace("current=", "").split(",")[0]), Number(vm.config.cores ?? 1) * Number(vm.config.sockets ?? 1), cpus().length);
          await guest.startContainer(this.simId, vmid).catch((e: Error) => {
            throw new Error(`start failed: ${e.message}`);
          });
          await this.applyCloudInit(vm);
          this.booted(vm);
          break;
        case "stop":
          if (vm.running) await guest.killContainer(this.simId, vmid);
          break;
        case "shutdown":
          if (!vm.running) throw new Error(`VM ${vmid} not running`);
          await guest.stopContainer(this.simId, vmid, Math.min(timeout, 30));
          break;
        case "reboot":
        case "reset":
          await guest.restartContainer(this.simId, vmid, action === "reset" ? 0 : Math.min(timeout, 30));
          this.booted(vm);
          break;
      }
      await this.sync();
    });
  }

  /** What cloud-init does on the guest's boot: the user, its authorized keys, its password. */
  private async applyCloudInit(vm: Vm) {
    const user = vm.config.ciuser ?? "root";
    await guest.ensureGuestUser(this.simId, vm.vmid, user);
    if (vm.config.sshkeys) {
      const home = guest.homeOf(user);
      await guest.execInGuest(this.simId, vm.vmid, ["/bin/busybox", "mkdir", "-p", `${home}/.ssh`], undefined, 15_000);
      await guest.writeGuestFile(this.simId, vm.vmid, `${home}/.ssh/authorized_keys`, Buffer.from(decodeURIComponent(vm.config.sshkeys)));
    }
    if (vm.cipassword) await guest.setGuestPassword(this.simId, vm.vmid, user, vm.cipassword, false);
  }

  /** Removes a VM as if someone deleted it outside the API (fault injection). */
  async vanish(vmid: number) {
    this.vms.delete(vmid);
    await guest.removeContainer(guest.containerName(this.simId, vmid));
  }

  // ---- guest agent ----------------------------------------------------------------

  private async agentVm(vmid: number): Promise<Vm> {
    await this.sync();
    const vm = this.vm(vmid);
    if (!vm.config.agent || /^(0|enabled=0)/.test(vm.config.agent)) throw new ApiError(500, "No QEMU guest agent configured");
    if (!vm.running) throw new ApiError(500, `VM ${vmid} is not running`);
    if (Date.now() < vm.agentReadyAt) throw new ApiError(500, "QEMU guest agent is not running");
    return vm;
  }

  async agent(command: string, p: Params, caller: Caller): Promise<unknown> {
    const vmid = Number(p.vmid);
    const path = `/vms/${vmid}`;
    switch (command) {
      case "ping": {
        SimNode.require(caller, path, "VM.GuestAgent.Audit");
        await this.agentVm(vmid);
        return { result: {} };
      }
      case "network-get-interfaces": {
        SimNode.require(caller, path, "VM.GuestAgent.Audit");
        await this.agentVm(vmid);
        const ifs = await guest.interfaces(this.simId, vmid);
        return {
          result: ifs.map((i) => ({
            name: i.name, "hardware-address": i.mac,
            "ip-addresses": i.addresses.map((a) => ({ "ip-address": a.ip, "ip-address-type": a.type, prefix: a.prefix })),
            statistics: { "rx-bytes": 0, "rx-packets": 0, "rx-errs": 0, "rx-dropped": 0, "tx-bytes": 0, "tx-packets": 0, "tx-errs": 0, "tx-dropped": 0 },
          })),
        };
      }
      case "exec": {
        SimNode.require(caller, path, "VM.GuestAgent.Unrestricted");
        const vm = await this.agentVm(vmid);
        const cmd = ([] as string[]).concat(p.command ?? []);
        // PVE passes a single string on as one argv element; a blank command has no program.
        if (!cmd.length || !cmd[0]) throw new ApiError(500, "Agent error: Invalid parameter 'path'");
        // qemu-ga fails the exec call itself when the program cannot be started (e.g. "ls -la" sent as one string).
        if (!(await guest.canLaunch(this.simId, vmid, cmd[0]))) throw new ApiError(500, `Agent error: Guest agent command failed, error was 'Failed to execute child process "${cmd[0]}" (No such file or directory)'`);
        const pid = this.nextExecPid++;
        const state: { exited: boolean; exitcode?: number; out?: string; err?: string } = { exited: false };
        vm.execs.set(pid, state);
        void guest.execInGuest(this.simId, vmid, cmd, one(p["input-data"]), 120_000).then((r) => {
          Object.assign(state, { exited: true, exitcode: r.code, out: r.stdout, err: r.stderr });
        });
        return { pid };
      }
      case "exec-status": {
        SimNode.require(caller, path, "VM.GuestAgent.Unrestricted");
        const vm = await this.agentVm(vmid);
        const st = vm.execs.get(Number(p.pid));
        if (!st) throw new ApiError(500, `Agent error: Invalid parameter 'pid'`);
        if (!st.exited) return { exited: false };
        vm.execs.delete(Number(p.pid)); // qemu-ga forgets a reaped process
        return { exited: true, exitcode: st.exitcode, ...(st.out ? { "out-data": st.out } : {}), ...(st.err ? { "err-data": st.err } : {}) };
      }
      case "set-user-password": {
        SimNode.require(caller, path, "VM.GuestAgent.Unrestricted");
        await this.agentVm(vmid);
        try {
          await guest.setGuestPassword(this.simId, vmid, one(p.username) as string, one(p.password) as string, parseBool(p.crypted));
        } catch (e) {
          throw new ApiError(500, `Agent error: ${(e as Error).message}`);
        }
        return { result: {} };
      }
      case "file-write": {
        SimNode.require(caller, path, "VM.GuestAgent.FileWrite");
        await this.agentVm(vmid);
        const content = one(p.content) as string;
        const buf = parseBool(p.encode, true) ? Buffer.from(content, "utf8") : Buffer.from(content, "base64");
        try {
          await guest.writeGuestFile(this.simId, vmid, one(p.file) as string, buf);
        } catch (e) {
          throw new ApiError(500, `Agent error: ${(e as Error).message}`);
        }
        return null;
      }
    }
    throw new ApiError(501, `Method 'agent/${command}' not implemented by the Proxmox VE simulator`);
  }
}
