/** What the agent tells the control plane about its host. */
import { statfsSync } from "node:fs";
import { arch, cpus, hostname, release, totalmem, type } from "node:os";
import { dockerRequest } from "./docker.ts";

export interface HostFacts {
  hostname: string;
  os: string;
  arch: string;
  cpus: number;
  memory_bytes: number;
  disk_bytes?: number;
  disk_free_bytes?: number;
  docker_version?: string | null;
  proxmox_version?: string | null;
}

export async function collectFacts(opts: { stateDir: string; dockerSocket: string }): Promise<HostFacts> {
  const facts: HostFacts = { hostname: hostname(), os: `${type()} ${release()}`, arch: arch(), cpus: cpus().length, memory_bytes: totalmem() };
  try {
    const fs = statfsSync(opts.stateDir);
    facts.disk_bytes = fs.blocks * fs.bsize;
    facts.disk_free_bytes = fs.bavail * fs.bsize;
  } catch {
    /* not every filesystem answers */
  }
  try {
    const res = await dockerRequest(opts.dockerSocket, "GET", "/version", undefined, 2_000);
    facts.docker_version = res.status === 200 ? ((res.json as { Version?: string })?.Version ?? null) : null;
  } catch {
    facts.docker_version = null;
  }
  return facts;
}
