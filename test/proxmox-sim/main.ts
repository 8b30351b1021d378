/**
 * `npm run sim:proxmox -- --port 8006 [--node pve] [--json]`: a Proxmox VE
 * simulator for the agent's Proxmox driver and for `npm run dev` trials. It is
 * NOT Proxmox VE; see README.md for what it models and what it does not.
 */
import { parseArgs } from "node:util";
import { DEFAULT_TEMPLATES, startProxmoxSim } from "./server.ts";
import type { TemplateSpec } from "./node.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8006" },
    node: { type: "string", default: "pve" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  process.stdout.write("usage: npm run sim:proxmox -- [--port 8006] [--node pve] [--json]\n");
  process.exit(0);
}
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`sim:proxmox: --port must be a port number, got '${values.port}'\n`);
  process.exit(2);
}

// The templates of Berth's OS image catalog (migrations/0009_catalog_seed.sql), so an instance can be
// ordered through the API against this node; each boots the same small test image.
const CATALOG: TemplateSpec[] = [
  { vmid: 9001, name: "berth-ubuntu-2404", image: "127.0.0.1:5000/berth/hello:v1", disk: "10G" },
  { vmid: 9002, name: "berth-ubuntu-2204", image: "127.0.0.1:5000/berth/hello:v1", disk: "10G" },
  { vmid: 9003, name: "berth-debian-12", image: "127.0.0.1:5000/berth/hello:v1", disk: "8G" },
];
const templates = [...DEFAULT_TEMPLATES, ...CATALOG];
const sim = await startProxmoxSim({ port, node: values.node, templates });
if (values.json) {
  process.stdout.write(`${JSON.stringify({ url: sim.url, node: sim.node, token_id: sim.tokenId, token_secret: sim.tokenSecret, fingerprint: sim.fingerprint })}\n`);
} else {
  process.stdout.write(
    [
      "Proxmox VE simulator (not Proxmox VE; see test/proxmox-sim/README.md)",
      `  url          ${sim.url}`,
      `  node         ${sim.node}`,
      `  token id     ${sim.tokenId}`,
      `  token secret ${sim.tokenSecret}`,
      `  fingerprint  ${sim.fingerprint}`,
      `  templates    ${templates.map((t) => `${t.vmid} ${t.name}`).join(", ")} (each boots 127.0.0.1:5000/berth/hello:v1)`,
      `  containers   label berth.pvesim.sim=${sim.simId} (removed on exit)`,
      "",
    ].join("\n"),
  );
}

let stopping = false;
const shutdown = () => {
  if (stopping) return;
  stopping = true;
  // Bounded: containers are removed, but a stuck dockerd does not keep the process alive.
  const timer = setTimeout(() => process.exit(1), 30_000);
  void sim.stop().then(() => {
    clearTimeout(timer);
    process.exit(0);
  });
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
