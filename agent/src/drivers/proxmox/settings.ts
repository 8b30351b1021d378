/**
 * The agent's Proxmox flags and `doctor`'s Proxmox checks, kept here so main.ts
 * and doctor.ts only call in. The token secret comes from the environment only:
 * a flag would show it in the process list.
 */
import { hostname } from "node:os";
import { type ProxmoxConnection, ProxmoxClient, ProxmoxError, normalizeFingerprint } from "./client.ts";
import { templates } from "./facts.ts";

/** parseArgs options for main.ts to spread into its own. */
export const PROXMOX_FLAGS = {
  "proxmox-url": { type: "string" },
  "proxmox-token-id": { type: "string" },
  "proxmox-fingerprint": { type: "string" },
  "proxmox-node": { type: "string" },
  // Known only to be refused with a reason (see parseProxmoxOptions).
  "proxmox-token-secret": { type: "string" },
} as const;

export const PROXMOX_USAGE = `  --proxmox-url <url>     a Proxmox VE node's API, https://host:8006 (env BERTH_PROXMOX_URL)
  --proxmox-token-id <id> API token, user@realm!name (env BERTH_PROXMOX_TOKEN_ID); its secret only
                          from env BERTH_PROXMOX_TOKEN_SECRET
  --proxmox-fingerprint <sha256>  the node certificate's SHA-256 to pin (env BERTH_PROXMOX_FINGERPRINT;
                          without it the system CAs must trust the node)
  --proxmox-node <name>   the node (env BERTH_PROXMOX_NODE; default: the only node, or this host's name)
`;

export interface ProxmoxSettings extends ProxmoxConnection {
  node: string | null;
}

type FlagValues = { [K in keyof typeof PROXMOX_FLAGS]?: string };

/** null when this is not a Proxmox host (no URL and no token given); throws with a message for the user otherwise. */
export function parseProxmoxOptions(values: FlagValues, env: NodeJS.ProcessEnv = process.env): ProxmoxSettings | null {
  if (values["proxmox-token-secret"] !== undefined) {
    throw new Error("--proxmox-token-secret is not a flag: set BERTH_PROXMOX_TOKEN_SECRET in the environment (a flag shows in the process list)");
  }
  const url = values["proxmox-url"] ?? env.BERTH_PROXMOX_URL;
  const tokenId = values["proxmox-token-id"] ?? env.BERTH_PROXMOX_TOKEN_ID;
  const fingerprint = values["proxmox-fingerprint"] ?? env.BERTH_PROXMOX_FINGERPRINT ?? null;
  const node = values["proxmox-node"] ?? env.BERTH_PROXMOX_NODE ?? null;
  if (!url && !tokenId) return null;
  if (!url) throw new Error("--proxmox-token-id given without --proxmox-url");
  if (!tokenId) throw new Error("--proxmox-url given without --proxmox-token-id (user@realm!name)");
  const tokenSecret = env.BERTH_PROXMOX_TOKEN_SECRET ?? "";
  if (!tokenSecret) throw new Error("BERTH_PROXMOX_TOKEN_SECRET is not set: the Proxmox token's secret is read from the environment only");
  return { url, tokenId, tokenSecret, fingerprint: fingerprint ? normalizeFingerprint(fingerprint) : null, node };
}

/** The node to work on: the one named, else the only one, else the one named like this host. */
export async function resolveNode(client: ProxmoxClient, wanted: string | null, opts: { deadline?: number } = {}): Promise<string> {
  const nodes = await client.get<{ node: string; status?: string }[]>("/nodes", {}, opts);
  const names = nodes.map((n) => n.node);
  const pick = wanted ?? (names.length === 1 ? names[0] : names.find((n) => n === hostname().split(".")[0]));
  if (!pick) throw new ProxmoxError(`the cluster has nodes ${names.join(", ")}: name one with --proxmox-node`);
  const found = nodes.find((n) => n.node === pick);
  if (!found) throw new ProxmoxError(`no node ${pick} (the API knows ${names.join(", ") || "none"})`);
  if (found.status && found.status !== "online") throw new ProxmoxError(`node ${pick} is ${found.status}`);
  return pick;
}

/**
 * Privileges the driver's calls need, by the path they are checked on (Proxmox VE 9
 * names; VE 8 guards the guest agent with VM.Monitor instead).
 */
export const REQUIRED_PRIVILEGES: { privilege: string; alternatives?: string[]; path: (node: string) => string; for: string }[] = [
  ...["VM.Allocate", "VM.Clone", "VM.Audit", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Cloudinit", "VM.Config.Disk", "VM.Config.Options", "VM.PowerMgmt"]
    .map((privilege) => ({ privilege, path: () => "/vms", for: "VMs" })),
  ...["VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted", "VM.GuestAgent.FileWrite"]
    .map((privilege) => ({ privilege, alternatives: ["VM.Monitor"], path: () => "/vms", for: "the guest agent" })),
  { privilege: "Datastore.AllocateSpace", path: () => "/storage", for: "cloning disks" },
  { privilege: "Sys.Audit", path: (node) => `/nodes/${node}`, for: "node facts" },
];

type Permissions = Record<string, Record<string, number | boolean>>;

/** Whether `priv` holds on `path`: the most specific listed path decides; an ancestor's privilege counts only if it propagates. */
export function holds(perms: Permissions, path: string, priv: string): boolean {
  for (let p = path; ; p = p.slice(0, p.lastIndexOf("/")) || "/") {
    const set = perms[p];
    if (set) return p === path ? priv in set : Boolean(set[priv]);
    if (p === "/") return false;
  }
}

export function missingPrivileges(perms: Permissions, node: string): string[] {
  return REQUIRED_PRIVILEGES
    .filter((r) => ![r.privilege, ...(r.alternatives ?? [])].some((p) => holds(perms, r.path(node), p)))
    .map((r) => `${r.privilege} on ${r.path(node)}`);
}

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** doctor's Proxmox checks: the API (and the pinned certificate), the node, the token's privileges. */
export async function proxmoxChecks(settings: ProxmoxSettings, opts: { retryWindowMs?: number } = {}): Promise<Check[]> {
  const client = new ProxmoxClient(settings, { retryWindowMs: opts.retryWindowMs ?? 5_000, requestTimeoutMs: 10_000 });
  const checks: Check[] = [];
  try {
    try {
      const v = await client.get<{ version: string }>("/version");
      checks.push({ name: "proxmox api", ok: true, detail: `Proxmox VE ${v.version} at ${settings.url}${settings.fingerprint ? " (certificate pinned)" : ""}` });
    } catch (err) {
      const e = err as ProxmoxError;
      const detail = e.code === "CERT_FINGERPRINT_MISMATCH" ? `${e.message}; check --proxmox-fingerprint (pvenode cert info on the node)`
        : e.status === 401 ? `the token was refused (${e.message}): check --proxmox-token-id and BERTH_PROXMOX_TOKEN_SECRET`
        : e.message;
      checks.push({ name: "proxmox api", ok: false, detail });
      return checks;
    }
    let node: string;
    try {
      node = await resolveNode(client, settings.node);
      const [st, tpls] = await Promise.all([
        client.get<{ cpuinfo: { cpus: number }; memory: { total: number } }>(`/nodes/${encodeURIComponent(node)}/status`),
        templates(client, node),
      ]);
      const names = tpls.map((t) => `${t.name} (${t.vmid})`).join(", ") || "none";
      checks.push({ name: "proxmox node", ok: true, detail: `${node}: ${st.cpuinfo.cpus} CPUs, ${(st.memory.total / 1024 ** 3).toFixed(1)} GiB memory; templates: ${names}` });
    } catch (err) {
      checks.push({ name: "proxmox node", ok: false, detail: (err as Error).message });
      return checks;
    }
    try {
      const perms = await client.get<Permissions>("/access/permissions");
      const missing = missingPrivileges(perms, node);
      checks.push(missing.length
        ? { name: "proxmox token", ok: false, detail: `${settings.tokenId} lacks ${missing.join(", ")}: grant a role with them (or turn off the token's privilege separation)` }
        : { name: "proxmox token", ok: true, detail: `${settings.tokenId} holds every privilege the driver uses` });
    } catch (err) {
      checks.push({ name: "proxmox token", ok: false, detail: `could not read the token's permissions: ${(err as Error).message}` });
    }
    return checks;
  } finally {
    client.close();
  }
}
