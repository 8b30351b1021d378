/** What the agent tells the control plane about its host. */
import { statfsSync } from "node:fs";
import { arch, cpus, hostname, release, totalmem, type } from "node:os";
import type { HostFacts } from "../../src/protocol/agent.ts";
import { DockerEngine } from "./drivers/docker.ts";

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
    facts.docker_version = (await new DockerEngine(opts.dockerSocket).serverVersion(2_000)).version;
  } catch {
    facts.docker_version = null;
  }
  return facts;
}
