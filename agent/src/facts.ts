/** What the agent tells the control plane about its host, and about its Proxmox node when it drives one. */
import { statfsSync } from "node:fs";
import { arch, cpus, hostname, release, totalmem, type } from "node:os";
import type { HostFacts } from "../../src/protocol/agent.ts";
import { DockerEngine } from "./drivers/docker.ts";
import type { ProxmoxNodeLink } from "./drivers/proxmox.ts";

/**
 * How long the node's last answered facts stand in for a heartbeat whose node query failed:
 * one slow or failed answer (a busy node) must not take the node out of placement; a node
 * that keeps not answering is reported without its facts once this has passed.
 */
export const NODE_FACTS_GRACE_MS = 60_000;

/** The node's facts from the last time it answered, kept by the caller across heartbeats. */
export interface NodeFactsMemory {
  facts: Partial<HostFacts> | null;
  at: number;
}

export async function collectFacts(opts: {
  stateDir: string;
  dockerSocket: string;
  proxmox?: ProxmoxNodeLink | null;
  onProxmoxError?: (err: Error) => void;
  memory?: NodeFactsMemory;
}): Promise<HostFacts> {
  const facts: HostFacts = { hostname: hostname(), os: `${type()} ${release()}`, arch: arch(), cpus: cpus().length, memory_bytes: totalmem() };
  try {
    const fs = statfsSync(opts.stateDir);
    facts.disk_bytes = fs.blocks * fs.bsize;
    facts.disk_free_bytes = fs.bavail * fs.bsize;
  } catch {
    /* not every filesystem answers */
  }
  const [docker, node] = await Promise.all([
    new DockerEngine(opts.dockerSocket).serverVersion(2_000).then((v) => v.version, () => null),
    opts.proxmox ? nodeFactsOrLast(opts.proxmox, opts.memory, opts.onProxmoxError) : null,
  ]);
  facts.docker_version = docker;
  if (node) Object.assign(facts, node);
  return facts;
}

async function nodeFactsOrLast(link: ProxmoxNodeLink, memory: NodeFactsMemory | undefined, onError?: (err: Error) => void): Promise<Partial<HostFacts> | null> {
  try {
    const facts = await proxmoxFacts(link);
    if (memory) Object.assign(memory, { facts, at: Date.now() });
    return facts;
  } catch (err) {
    onError?.(err as Error);
    return memory?.facts && Date.now() - memory.at < NODE_FACTS_GRACE_MS ? memory.facts : null;
  }
}

/**
 * The node's own CPU and memory (the agent may run beside the node rather than on it), its
 * VM storage and the names of its templates: what placement on this host is decided by.
 */
async function proxmoxFacts(link: ProxmoxNodeLink): Promise<Partial<HostFacts>> {
  const f = await (await link.driver()).facts();
  const main = [...f.storage].sort((a, b) => b.free_bytes - a.free_bytes)[0];
  return {
    cpus: f.cpus,
    memory_bytes: f.memory_bytes,
    proxmox_version: f.proxmox_version.slice(0, 64),
    proxmox: {
      node: f.node,
      templates: f.templates.map((t) => t.name.slice(0, 128)).slice(0, 1000),
      storage: main?.id.slice(0, 64),
      storage_bytes: f.storage_bytes,
      storage_free_bytes: f.storage_free_bytes,
    },
  };
}
