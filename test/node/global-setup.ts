/**
 * Before the node tests: the host services the agent's Docker and ingress
 * tests need (dockerd, the local registry with the test images, Caddy's admin
 * API), through test/host/setup.sh. Idempotent and quick when all of it already
 * runs; on a fresh machine it installs Debian's packages first (as root), so
 * `npm test` after `npm install` is all a fresh clone needs. Then the dashboard is built
 * afresh, so every wrangler dev the tests start serves the SPA as the source is now.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { buildDashboard } from "./support/dev-server";

export default function setup() {
  const script = fileURLToPath(new URL("../host/setup.sh", import.meta.url));
  const res = spawnSync("bash", [script], { stdio: ["ignore", "inherit", "inherit"] });
  if (res.status !== 0) {
    throw new Error(`test/host/setup.sh failed (exit ${res.status}): the Docker host tests need dockerd, a registry on 127.0.0.1:5000 and Caddy; run it as root to see why`);
  }
  buildDashboard({ force: true });
}
