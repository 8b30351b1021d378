/**
 * A Proxmox VE node for end-to-end tests: the simulator (test/proxmox-sim: not Proxmox VE,
 * which cannot run here) with the catalog's Debian 12 template, and the arguments that
 * start the real agent on it as a Proxmox host without Docker.
 */
import { join } from "node:path";
import { type ProxmoxSim, startProxmoxSim } from "../../proxmox-sim/server";

export const REGISTRY = "127.0.0.1:5000";

export async function startTestNode(): Promise<ProxmoxSim> {
  const registry = await fetch(`http://${REGISTRY}/v2/`).then((r) => r.ok, () => false);
  if (!registry) throw new Error(`the registry is not answering at ${REGISTRY}: run test/host/setup.sh first (.ci/run does)`);
  return startProxmoxSim({
    port: 0,
    // The catalog's Debian 12 image is a template of that name on the node; its VMs boot the test image.
    templates: [{ vmid: 9003, name: "berth-debian-12", image: `${REGISTRY}/berth/hello:v1`, disk: "8G" }],
    timings: { cloneMs: 600, agentBootMs: 300, taskMs: 40 },
  });
}

/** `startAgent` arguments and environment for an agent driving `sim`; the token secret only in the environment. */
export function nodeAgent(sim: ProxmoxSim, opts: { url: string; stateDir: string; joinToken: string; env?: Record<string, string> }): [string[], Record<string, string>] {
  return [
    [
      "--url", opts.url, "--state-dir", opts.stateDir, "--join-token", opts.joinToken,
      // A Proxmox node without Docker: the agent works through the node's API only.
      "--docker-socket", join(opts.stateDir, "no-docker.sock"),
      "--proxmox-url", sim.url, "--proxmox-token-id", sim.tokenId, "--proxmox-fingerprint", sim.fingerprint, "--proxmox-node", sim.node,
    ],
    { BERTH_PROXMOX_TOKEN_SECRET: sim.tokenSecret, ...opts.env },
  ];
}
