/** One stats sample of a container, computed as `docker stats` does. */
import { type DockerApi, enc } from "./api.ts";

export interface ContainerStats {
  cpu_percent: number;
  memory_mb: number;
  memory_max_mb: number;
  net_rx_bytes: number;
  net_tx_bytes: number;
}

/** One sample, computed as `docker stats` does (takes about a second: Docker samples twice). */
export async function containerStats(api: DockerApi, id: string): Promise<ContainerStats> {
  const s = (await api.json("GET", `/containers/${enc(id)}/stats`, { stream: "false" })) as any;
  return computeStats(s);
}

function computeStats(s: any): ContainerStats {
  const cpu = s.cpu_stats ?? {};
  const pre = s.precpu_stats ?? {};
  const cpuDelta = Number(cpu.cpu_usage?.total_usage ?? 0) - Number(pre.cpu_usage?.total_usage ?? 0);
  const systemDelta = Number(cpu.system_cpu_usage ?? 0) - Number(pre.system_cpu_usage ?? 0);
  const online = Number(cpu.online_cpus ?? 0) || (cpu.cpu_usage?.percpu_usage?.length ?? 0) || 1;
  const cpuPercent = systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * online * 100 : 0;

  const mem = s.memory_stats ?? {};
  const usage = Number(mem.usage ?? 0);
  const st = mem.stats ?? {};
  // As the docker CLI: page cache does not count (cgroup v1: total_inactive_file, v2: inactive_file).
  const inactive = st.total_inactive_file !== undefined ? Number(st.total_inactive_file) : Number(st.inactive_file ?? 0);
  const used = inactive < usage ? usage - inactive : usage;

  let rx = 0;
  let tx = 0;
  for (const n of Object.values((s.networks ?? {}) as Record<string, { rx_bytes?: number; tx_bytes?: number }>)) {
    rx += Number(n.rx_bytes ?? 0);
    tx += Number(n.tx_bytes ?? 0);
  }
  const mb = (b: number) => Math.round((b / 1024 / 1024) * 100) / 100;
  return { cpu_percent: Math.round(cpuPercent * 100) / 100, memory_mb: mb(used), memory_max_mb: mb(Number(mem.limit ?? 0)), net_rx_bytes: rx, net_tx_bytes: tx };
}
