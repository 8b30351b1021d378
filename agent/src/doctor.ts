/** `npm run agent -- doctor`: checks the control plane, the credential, the Docker socket and (when configured) the Proxmox API, and says what is wrong. */
import { existsSync } from "node:fs";
import { ApiFailure, ControlPlane } from "./transport/http.ts";
import { AGENT_VERSION } from "./agent.ts";
import { DockerEngine } from "./drivers/docker.ts";
import { listenerHandoff } from "./drivers/listener-handoff.ts";
import { type ProxmoxSettings, proxmoxChecks } from "./drivers/proxmox/settings.ts";
import type { StateDir } from "./state.ts";

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export async function doctor(opts: { url: string | null; state: StateDir; dockerSocket: string; proxmox?: ProxmoxSettings | null }): Promise<Check[]> {
  const checks: Check[] = [];
  const identity = opts.state.readIdentity();
  const url = opts.url ?? identity?.url ?? null;

  if (!url) {
    checks.push({ name: "control plane", ok: false, detail: "no URL: pass --url or set BERTH_URL" });
  } else {
    try {
      const res = await fetch(`${url.replace(/\/+$/, "")}/api/v1/system/status`, { signal: AbortSignal.timeout(5_000) });
      const body = (await res.json().catch(() => null)) as { version?: string } | null;
      checks.push(res.ok
        ? { name: "control plane", ok: true, detail: `${url} answers (version ${body?.version ?? "?"})` }
        : { name: "control plane", ok: false, detail: `${url} answered HTTP ${res.status}` });
    } catch (err) {
      checks.push({ name: "control plane", ok: false, detail: `${url} is unreachable: ${(err as Error).cause ?? (err as Error).message}` });
    }
  }

  if (!identity) {
    checks.push({ name: "credential", ok: false, detail: `none in ${opts.state.root}: start the agent once with --join-token` });
  } else if (url) {
    const api = new ControlPlane(url, identity.credential, AGENT_VERSION);
    try {
      await api.call("POST", "/agent/heartbeat", { agent_version: AGENT_VERSION });
      checks.push({ name: "credential", ok: true, detail: `accepted for host ${identity.host_id}` });
    } catch (err) {
      const refused = err instanceof ApiFailure && err.kind === "fatal";
      checks.push({
        name: "credential",
        ok: false,
        detail: refused ? `refused: ${(err as Error).message} Create a join token for the host and start the agent with it.` : `could not check: ${(err as Error).message}`,
      });
    }
  }

  if (!existsSync(opts.dockerSocket)) {
    checks.push({ name: "docker", ok: false, detail: `no socket at ${opts.dockerSocket}: is dockerd running? (--docker-socket to point elsewhere; not needed on a Proxmox host)` });
  } else {
    try {
      const v = await new DockerEngine(opts.dockerSocket).serverVersion(3_000);
      checks.push({ name: "docker", ok: true, detail: `Docker ${v.version} (API ${v.apiVersion}) at ${opts.dockerSocket}` });
    } catch (err) {
      // DockerError says what to do about it (permission denied: root or the docker group; HTTP status otherwise).
      checks.push({ name: "docker", ok: false, detail: (err as Error).message });
    }
  }
  if (existsSync(opts.dockerSocket)) {
    const handoff = listenerHandoff({ turnOn: false });
    checks.push({ name: "ingress reloads", ok: handoff.state !== "denied" && handoff.state !== "absent", detail: handoff.detail });
  }
  if (opts.proxmox) checks.push(...(await proxmoxChecks(opts.proxmox)));
  return checks;
}
