/**
 * QEMU VMs on one node: clone a template, configure (CPU, memory, cloud-init,
 * tags), grow a disk, power actions, status, destroy, and finding the VM an
 * earlier attempt of a job made (by the marker written into its description and tags).
 */
import { sleep } from "../../backoff.ts";
import { type ProxmoxClient, ProxmoxError } from "./client.ts";
import { followTask, ProxmoxTaskError, type TaskLogSink, type TaskOutcome } from "./tasks.ts";

/** Which instance and which job a VM was made for; written at clone time, so a restarted job finds it. */
export interface VmMarker {
  instanceId: string;
  jobId: string;
}

export interface OpOptions {
  onLog?: TaskLogSink;
  /** Epoch ms; defaults per operation (DEFAULT_DEADLINE_MS). */
  deadline?: number;
  signal?: AbortSignal;
}

export interface VmConfig {
  name?: string;
  cores?: number;
  /** MiB */
  memory?: number;
  ciuser?: string;
  cipassword?: string;
  /** OpenSSH public keys, one per entry. */
  sshkeys?: string[];
  /** e.g. `ip=dhcp` or `ip=10.0.0.5/24,gw=10.0.0.1` */
  ipconfig0?: string;
  nameserver?: string;
  /** The network card, e.g. `virtio=BC:24:11:00:00:01,bridge=vmbr0` (a rebuild keeps the old one's MAC). */
  net0?: string;
  /** Free text shown in Proxmox's notes; with `marker`, the marker line is added below it. */
  description?: string;
  tags?: string[];
  marker?: VmMarker;
}

export interface VmStatus {
  vmid: number;
  name?: string;
  status: "running" | "stopped" | string;
  qmpstatus?: string;
  uptime: number;
  lock?: string;
  cpus?: number;
  maxmem?: number;
  maxdisk?: number;
  tags?: string;
  template?: number;
}

export interface FoundVm {
  vmid: number;
  name?: string;
  status: string;
  lock?: string;
  marker: VmMarker;
}

export const DEFAULT_DEADLINE_MS = { clone: 30 * 60_000, task: 10 * 60_000 };

const MARKER_LINE = /^berth:instance=(\S+) job=(\S+)$/m;
export const markerTag = (instanceId: string) => `berth-${instanceId.toLowerCase()}`;
export function markerDescription(marker: VmMarker, text = ""): string {
  const line = `berth:instance=${marker.instanceId} job=${marker.jobId}`;
  const rest = text.replace(MARKER_LINE, "").trim();
  return rest ? `${rest}\n\n${line}` : line;
}
export function parseMarker(description: string | undefined): VmMarker | null {
  const m = MARKER_LINE.exec(description ?? "");
  return m ? { instanceId: m[1] as string, jobId: m[2] as string } : null;
}

/**
 * sshkeys is a `urlencoded` string in the API, and the form encoding then encodes
 * it again: Proxmox decodes both. encodeURIComponent leaves `!'()*`, which the
 * format allows; a space must be %20, never `+`.
 */
export function encodeSshKeys(keys: string[]): string {
  return encodeURIComponent(`${keys.map((k) => k.trim()).filter(Boolean).join("\n")}\n`);
}

const isMissing = (err: unknown) => err instanceof ProxmoxError && err.status === 500 && /does not exist/.test(err.message);
const sizeGiB = (drive: string) => {
  const m = /(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)/.exec(drive);
  if (!m) return 0;
  return Number(m[1]) * ({ "": 1 / 1024 ** 3, K: 1 / 1024 ** 2, M: 1 / 1024, G: 1, T: 1024 }[m[2] as "G"] ?? 1);
};

export class VmOps {
  private readonly client: ProxmoxClient;
  readonly node: string;

  constructor(client: ProxmoxClient, node: string) {
    this.client = client;
    this.node = node;
  }

  private path(vmid: number, rest = "") {
    return `/nodes/${encodeURIComponent(this.node)}/qemu/${vmid}${rest}`;
  }
  private deadline(opts: OpOptions, kind: keyof typeof DEFAULT_DEADLINE_MS = "task") {
    return opts.deadline ?? Date.now() + DEFAULT_DEADLINE_MS[kind];
  }

  /** Runs a call that answers a UPID and follows the task; a task that found the VM locked is started again until the deadline. */
  private async task(start: () => Promise<string>, opts: OpOptions, deadline: number): Promise<TaskOutcome> {
    for (let attempt = 0; ; attempt++) {
      const upid = await start();
      // Older nodes answer some calls (resize before VE 8) synchronously, with null.
      if (!upid) return { upid: "", exitstatus: "OK", log: [] };
      try {
        return await followTask(this.client, upid, { onLog: opts.onLog, deadline, signal: opts.signal });
      } catch (err) {
        const wait = Math.min(5_000, 500 * 2 ** attempt);
        if (!(err instanceof ProxmoxTaskError && err.transient) || Date.now() + wait > deadline) throw err;
        opts.onLog?.(`(${err.exitstatus}: trying again in ${Math.round(wait / 100) / 10} s)`);
        await sleep(wait, opts.signal);
      }
    }
  }

  async nextId(opts: OpOptions = {}): Promise<number> {
    return Number(await this.client.get<string>("/cluster/nextid", {}, { deadline: opts.deadline, signal: opts.signal }));
  }

  async list(opts: OpOptions = {}): Promise<VmStatus[]> {
    return this.client.get<VmStatus[]>(`/nodes/${encodeURIComponent(this.node)}/qemu`, {}, { deadline: opts.deadline, signal: opts.signal });
  }

  async config(vmid: number, opts: OpOptions = {}): Promise<Record<string, string | number>> {
    return this.client.get(this.path(vmid, "/config"), {}, { deadline: opts.deadline, signal: opts.signal });
  }

  async status(vmid: number, opts: OpOptions = {}): Promise<VmStatus> {
    return this.client.get<VmStatus>(this.path(vmid, "/status/current"), {}, { deadline: opts.deadline, signal: opts.signal });
  }

  /** null when the VM does not exist. */
  async statusOrNull(vmid: number, opts: OpOptions = {}): Promise<VmStatus | null> {
    return this.status(vmid, opts).catch((err) => {
      if (isMissing(err)) return null;
      throw err;
    });
  }

  /**
   * The VMs carrying this instance's marker (and job's, when given), newest first.
   * A VM is tagged only after its clone, so VMs without any Berth tag are looked at too.
   */
  async find(filter: { instanceId: string; jobId?: string }, opts: OpOptions = {}): Promise<FoundVm[]> {
    const mine = markerTag(filter.instanceId);
    const candidates = (await this.list(opts))
      .filter((vm) => vm.template !== 1)
      .filter((vm) => {
        const tags = (vm.tags ?? "").split(/[;,\s]+/).filter(Boolean);
        return tags.includes(mine) || !tags.some((t) => t.startsWith("berth-"));
      })
      .sort((a, b) => b.vmid - a.vmid);
    const found: FoundVm[] = [];
    for (let i = 0; i < candidates.length; i += 4) {
      const batch = await Promise.all(candidates.slice(i, i + 4).map(async (vm) => {
        const cfg = await this.config(vm.vmid, opts).catch((err) => (isMissing(err) ? null : Promise.reject(err)));
        const marker = parseMarker(cfg ? String(cfg.description ?? "") : undefined);
        if (!marker || marker.instanceId !== filter.instanceId || (filter.jobId && marker.jobId !== filter.jobId)) return null;
        return { vmid: vm.vmid, name: vm.name, status: vm.status, lock: (cfg?.lock as string | undefined) ?? vm.lock, marker };
      }));
      for (const f of batch) if (f) found.push(f);
    }
    return found;
  }

  /**
   * Full clone of a template, unless an earlier attempt of the same job already
   * made the VM: then that VM is waited for (its clone may still run) and returned.
   */
  async cloneTemplate(spec: { template: number; name: string; marker: VmMarker; description?: string; storage?: string; newid?: number }, opts: OpOptions = {}): Promise<{ vmid: number; resumed: boolean }> {
    const deadline = this.deadline(opts, "clone");
    const o = { ...opts, deadline };
    for (let tries = 0; ; tries++) {
      const [earlier] = await this.find(spec.marker, o);
      if (earlier) {
        opts.onLog?.(`VM ${earlier.vmid} was cloned by an earlier attempt of this job; using it`);
        if (await this.waitForClone(spec.template, earlier.vmid, o)) return { vmid: earlier.vmid, resumed: true };
        opts.onLog?.(`the earlier clone into VM ${earlier.vmid} did not finish; cloning again`);
      }
      // A rebuild clones into the vmid it keeps; otherwise the cluster names the next free id.
      const newid = spec.newid ?? (await this.nextId(o));
      let upid: string;
      try {
        upid = await this.client.post<string>(this.path(spec.template, "/clone"), {
          newid, full: true, name: spec.name, description: markerDescription(spec.marker, spec.description), storage: spec.storage,
        }, { deadline, signal: opts.signal, idempotent: true }); // a second POST for the same newid is refused, never a second clone
      } catch (err) {
        // Taken meanwhile (another clone, or our own request whose answer was lost): look again.
        if (err instanceof ProxmoxError && /already exists/.test(err.message) && tries < 5 && spec.newid === undefined) continue;
        throw err;
      }
      await followTask(this.client, upid, { onLog: opts.onLog, deadline, signal: opts.signal });
      return { vmid: newid, resumed: false };
    }
  }

  /**
   * Waits until a VM found mid-clone is unlocked. The running clone task is followed
   * (its log streamed) when it can be told apart; true when the VM is there and unlocked.
   */
  private async waitForClone(template: number, vmid: number, opts: OpOptions & { deadline: number }): Promise<boolean> {
    let st = await this.statusOrNull(vmid, opts);
    if (st?.lock === "clone") {
      const active = await this.client.get<{ upid: string }[]>(`/nodes/${encodeURIComponent(this.node)}/tasks`, { source: "active", vmid: template, typefilter: "qmclone" }, opts);
      if (active.length === 1 && active[0]) {
        opts.onLog?.(`following the clone task ${active[0].upid}`);
        await followTask(this.client, active[0].upid, opts).catch((err) => {
          if (!(err instanceof ProxmoxTaskError)) throw err;
        });
      }
    }
    for (;;) {
      st = await this.statusOrNull(vmid, opts);
      if (!st) return false;
      if (!st.lock) return true;
      if (Date.now() + 500 > opts.deadline) throw new ProxmoxError(`VM ${vmid} still locked (${st.lock}) at the deadline`, { code: "TASK_DEADLINE" });
      await sleep(500, opts.signal);
    }
  }

  /** Sets config at once (PUT, synchronous); a locked VM is retried until the deadline. */
  async configure(vmid: number, cfg: VmConfig, opts: OpOptions = {}): Promise<void> {
    const params: Record<string, string | number | undefined> = {
      name: cfg.name, cores: cfg.cores, memory: cfg.memory, ciuser: cfg.ciuser, cipassword: cfg.cipassword,
      sshkeys: cfg.sshkeys ? encodeSshKeys(cfg.sshkeys) : undefined, ipconfig0: cfg.ipconfig0, nameserver: cfg.nameserver, net0: cfg.net0,
    };
    if (cfg.marker || cfg.description !== undefined) params.description = cfg.marker ? markerDescription(cfg.marker, cfg.description) : cfg.description;
    if (cfg.marker || cfg.tags) params.tags = [...new Set([...(cfg.marker ? ["berth", markerTag(cfg.marker.instanceId)] : []), ...(cfg.tags ?? [])])].join(";");
    if (Object.values(params).every((v) => v === undefined)) return;
    await this.client.put(this.path(vmid, "/config"), params, { deadline: this.deadline(opts), signal: opts.signal, idempotent: true });
  }

  /**
   * Grows a disk to `sizeGiB` (absolute, so a retried call does not grow it twice); never shrinks.
   * `config`: the VM's config as just read by the caller, to save reading it again.
   */
  async growDisk(vmid: number, disk: string, size: number, opts: OpOptions & { config?: Record<string, string | number> } = {}): Promise<{ grown: boolean }> {
    const deadline = this.deadline(opts);
    const drive = String((opts.config ?? (await this.config(vmid, { ...opts, deadline })))[disk] ?? "");
    if (!drive) throw new ProxmoxError(`VM ${vmid} has no disk ${disk}`);
    const current = sizeGiB(drive);
    if (size < current) throw new ProxmoxError(`disk ${disk} of VM ${vmid} is ${current} GiB; disks only grow, not to ${size} GiB`, { code: "SHRINK_REFUSED" });
    if (size === current) return { grown: false };
    await this.task(() => this.client.put<string>(this.path(vmid, "/resize"), { disk, size: `${size}G` }, { deadline, signal: opts.signal, idempotent: true }), opts, deadline);
    return { grown: true };
  }

  /** Starts the VM; one already running is fine. */
  async start(vmid: number, opts: OpOptions = {}): Promise<void> {
    await this.power(vmid, "start", {}, opts, /already running/);
  }
  /** Pulls the plug; a stopped VM is fine. */
  async stop(vmid: number, opts: OpOptions = {}): Promise<void> {
    await this.power(vmid, "stop", {}, opts, /not running/);
  }
  /** ACPI shutdown, then stop after `timeoutSeconds` (forceStop); a stopped VM is fine. */
  async shutdown(vmid: number, timeoutSeconds = 60, opts: OpOptions = {}): Promise<void> {
    await this.power(vmid, "shutdown", { timeout: timeoutSeconds, forceStop: true }, opts, /not running/);
  }
  async reboot(vmid: number, opts: OpOptions = {}): Promise<void> {
    await this.power(vmid, "reboot", {}, opts);
  }
  async reset(vmid: number, opts: OpOptions = {}): Promise<void> {
    await this.power(vmid, "reset", {}, opts);
  }

  private async power(vmid: number, action: string, params: Record<string, number | boolean>, opts: OpOptions, alreadyThere?: RegExp): Promise<void> {
    const deadline = this.deadline(opts);
    try {
      // Not idempotent on the wire (a second reboot reboots again): only refused connections are retried.
      await this.task(() => this.client.post<string>(this.path(vmid, `/status/${action}`), params, { deadline, signal: opts.signal }), opts, deadline);
    } catch (err) {
      if (alreadyThere && err instanceof ProxmoxError && alreadyThere.test(err.message)) {
        opts.onLog?.(`VM ${vmid}: ${err instanceof ProxmoxTaskError ? err.exitstatus : err.message} (nothing to do)`);
        return;
      }
      throw err;
    }
  }

  /** Stops the VM if needed and destroys it with purge; a VM that is already gone is fine. */
  async destroy(vmid: number, opts: OpOptions = {}): Promise<{ destroyed: boolean }> {
    const deadline = this.deadline(opts);
    const o = { ...opts, deadline };
    const st = await this.statusOrNull(vmid, o);
    if (!st) return { destroyed: false };
    if (st.template === 1) throw new ProxmoxError(`VM ${vmid} is a template; Berth does not destroy templates`);
    if (st.status === "running") await this.stop(vmid, o);
    try {
      await this.task(() => this.client.delete<string>(this.path(vmid), { purge: true, "destroy-unreferenced-disks": true }, { deadline, signal: opts.signal, idempotent: true }), o, deadline);
    } catch (err) {
      if (isMissing(err)) return { destroyed: false };
      throw err;
    }
    return { destroyed: true };
  }
}
