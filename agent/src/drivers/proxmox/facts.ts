/** What a Proxmox node offers: CPU, memory and storage totals and free, its Proxmox version, its templates. */
import type { ProxmoxClient } from "./client.ts";

export interface ProxmoxTemplate {
  vmid: number;
  name: string;
}

export interface ProxmoxStorage {
  id: string;
  type: string;
  total_bytes: number;
  free_bytes: number;
}

export interface ProxmoxNodeFacts {
  node: string;
  proxmox_version: string;
  cpus: number;
  /** The node's CPU use, 0..1. */
  cpu_load: number;
  memory_bytes: number;
  memory_free_bytes: number;
  /** Storages that hold VM disks (content `images`), enabled and active. */
  storage: ProxmoxStorage[];
  storage_bytes: number;
  storage_free_bytes: number;
  templates: ProxmoxTemplate[];
}

export async function templates(client: ProxmoxClient, node: string, opts: { deadline?: number; signal?: AbortSignal } = {}): Promise<ProxmoxTemplate[]> {
  const vms = await client.get<{ vmid: number; name?: string; template?: number }[]>(`/nodes/${encodeURIComponent(node)}/qemu`, {}, opts);
  return vms.filter((vm) => vm.template === 1).map((vm) => ({ vmid: vm.vmid, name: vm.name ?? `vm${vm.vmid}` })).sort((a, b) => a.vmid - b.vmid);
}

export async function nodeFacts(client: ProxmoxClient, node: string): Promise<ProxmoxNodeFacts> {
  const n = encodeURIComponent(node);
  const [version, status, storages, tpls] = await Promise.all([
    client.get<{ version: string }>("/version"),
    client.get<{ cpu: number; cpuinfo: { cpus: number }; memory: { total: number; free: number; available?: number } }>(`/nodes/${n}/status`),
    client.get<{ storage: string; type: string; content?: string; active?: number; enabled?: number; total?: number; avail?: number }[]>(`/nodes/${n}/storage`, { content: "images", enabled: true }),
    templates(client, node),
  ]);
  const storage = storages
    .filter((s) => s.active !== 0 && s.enabled !== 0 && (s.content ?? "images").split(",").includes("images"))
    .map((s) => ({ id: s.storage, type: s.type, total_bytes: s.total ?? 0, free_bytes: s.avail ?? 0 }));
  return {
    node,
    proxmox_version: version.version,
    cpus: status.cpuinfo.cpus,
    cpu_load: status.cpu,
    memory_bytes: status.memory.total,
    // `available` counts reclaimable page cache, as the node's own summary does; older nodes only say `free`.
    memory_free_bytes: status.memory.available ?? status.memory.free,
    storage,
    storage_bytes: storage.reduce((a, s) => a + s.total_bytes, 0),
    storage_free_bytes: storage.reduce((a, s) => a + s.free_bytes, 0),
    templates: tpls,
  };
}
