/**
 * The VMs' bodies: one container per VM on the local dockerd, driven through
 * the docker CLI (every call bounded by a timeout). Labelled so a test, or
 * `docker rm -f $(docker ps -aq --filter label=berth.pvesim)`, can clean up.
 */
import { spawn } from "node:child_process";

export const LABEL = "berth.pvesim";

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function docker(args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<DockerResult> {
  return new Promise((resolve) => {
    const child = spawn("docker", args, { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout: "", stderr: String(e) });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
    });
    // A command that does not read its stdin (or has exited) closes the pipe: EPIPE here is no failure, its exit status tells.
    child.stdin.on("error", () => {});
    child.stdin.end(opts.input ?? "");
  });
}

async function must(args: string[], timeoutMs?: number): Promise<string> {
  const r = await docker(args, { timeoutMs });
  if (r.code !== 0) throw new Error(`docker ${args[0]} failed: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

export function containerName(simId: string, vmid: number): string {
  return `berth-pvesim-${simId}-${vmid}`;
}

/** Pulls the template's image when dockerd lacks it (the local registry, never the internet). */
export async function ensureImage(image: string): Promise<void> {
  if ((await docker(["image", "inspect", image], { timeoutMs: 15_000 })).code === 0) return;
  await must(["pull", "-q", image], 120_000);
}

export async function createContainer(simId: string, vmid: number, image: string, hostname: string, memoryMiB: number, cores: number, cpuLimit: number): Promise<void> {
  await must([
    // --init: an init as PID 1 passes the ACPI-like SIGTERM on, so a guest shuts down when asked
    // instead of sitting out the whole timeout (a shell or httpd as PID 1 ignores SIGTERM).
    "create", "--init", "--name", containerName(simId, vmid), "--hostname", hostname,
    "--label", `${LABEL}=1`, "--label", `${LABEL}.sim=${simId}`, "--label", `${LABEL}.vmid=${vmid}`,
    "--memory", `${Math.max(memoryMiB, 16)}m`, "--cpus", String(Math.min(cores, cpuLimit)),
    image,
  ], 60_000);
}

/** The VM's cores and memory as container limits; applied at start, as a VM's hardware is fixed at boot. */
export async function setLimits(simId: string, vmid: number, memoryMiB: number, cores: number, cpuLimit: number): Promise<void> {
  const mem = Math.max(memoryMiB, 16);
  await must(["update", "--memory", `${mem}m`, "--memory-swap", `${mem * 2}m`, "--cpus", String(Math.min(cores, cpuLimit)), containerName(simId, vmid)], 30_000);
}

export const startContainer = (simId: string, vmid: number) => must(["start", containerName(simId, vmid)], 30_000);
/** Pulling the plug. */
export const killContainer = async (simId: string, vmid: number) => { await docker(["kill", containerName(simId, vmid)], { timeoutMs: 30_000 }); };
/** ACPI shutdown: SIGTERM, then the plug after `timeout` seconds. */
export const stopContainer = (simId: string, vmid: number, timeout: number) => must(["stop", "-t", String(timeout), containerName(simId, vmid)], (timeout + 30) * 1000);
export const restartContainer = (simId: string, vmid: number, timeout: number) => must(["restart", "-t", String(timeout), containerName(simId, vmid)], (timeout + 30) * 1000);
export const removeContainer = async (name: string) => { await docker(["rm", "-f", "-v", name], { timeoutMs: 30_000 }); };

export interface ContainerState {
  running: boolean;
  pid: number;
  startedAt: string;
}

/** State of every container of one simulator, by vmid, in one docker call. */
export async function listContainers(simId: string): Promise<Map<number, ContainerState>> {
  const ids = (await must(["ps", "-aq", "--filter", `label=${LABEL}.sim=${simId}`], 15_000)).split("\n").filter(Boolean);
  const out = new Map<number, ContainerState>();
  if (!ids.length) return out;
  const rows = JSON.parse(await must(["inspect", ...ids], 15_000)) as { Config: { Labels: Record<string, string> }; State: { Running: boolean; Pid: number; StartedAt: string } }[];
  for (const r of rows) out.set(Number(r.Config.Labels[`${LABEL}.vmid`]), { running: r.State.Running, pid: r.State.Pid, startedAt: r.State.StartedAt });
  return out;
}

export interface GuestInterface {
  name: string;
  mac: string;
  addresses: { ip: string; prefix: number; type: "ipv4" | "ipv6" }[];
}

/** The container's real interfaces, as qemu-ga's network-get-interfaces reports a guest's. */
export async function interfaces(simId: string, vmid: number): Promise<GuestInterface[]> {
  const [row] = JSON.parse(await must(["inspect", containerName(simId, vmid)], 15_000)) as { NetworkSettings: { Networks: Record<string, { IPAddress: string; IPPrefixLen: number; MacAddress: string; GlobalIPv6Address: string; GlobalIPv6PrefixLen: number }> } }[];
  const list: GuestInterface[] = [{ name: "lo", mac: "00:00:00:00:00:00", addresses: [{ ip: "127.0.0.1", prefix: 8, type: "ipv4" }, { ip: "::1", prefix: 128, type: "ipv6" }] }];
  let i = 0;
  for (const n of Object.values(row?.NetworkSettings.Networks ?? {})) {
    const addresses: GuestInterface["addresses"] = [];
    if (n.IPAddress) addresses.push({ ip: n.IPAddress, prefix: n.IPPrefixLen, type: "ipv4" });
    if (n.GlobalIPv6Address) addresses.push({ ip: n.GlobalIPv6Address, prefix: n.GlobalIPv6PrefixLen, type: "ipv6" });
    list.push({ name: `eth${i++}`, mac: n.MacAddress, addresses });
  }
  return list;
}

/** Whether the guest can launch `program` (a path, or a name looked up in PATH), as qemu-ga's spawn would. */
export async function canLaunch(simId: string, vmid: number, program: string): Promise<boolean> {
  const r = await docker(["exec", containerName(simId, vmid), "/bin/busybox", "sh", "-c", `case "$1" in */*) [ -x "$1" ] ;; *) command -v "$1" >/dev/null ;; esac`, "sh", program], { timeoutMs: 15_000 });
  return r.code === 0;
}

/** Runs a program inside the guest; stdin from `input`. */
export function execInGuest(simId: string, vmid: number, command: string[], input: string | undefined, timeoutMs: number): Promise<DockerResult> {
  return docker(["exec", "-i", containerName(simId, vmid), ...command], { input, timeoutMs });
}

/**
 * qemu-ga's guest-file-open/-write/-close: the file is created or truncated, but its
 * directory must exist (the agent does not make it), as on a real guest.
 */
export async function writeGuestFile(simId: string, vmid: number, path: string, content: Buffer): Promise<void> {
  const script = `[ -d "$(dirname "$1")" ] || { echo "No such file or directory" >&2; exit 2; }; cat > "$1"`;
  const r = await docker(["exec", "-i", containerName(simId, vmid), "/bin/busybox", "sh", "-c", script, "sh", path], { input: content, timeoutMs: 30_000 }); // the bytes as they are (a string would be re-encoded as UTF-8)
  if (r.code !== 0) throw new Error(`failed to open file '${path}': ${r.stderr.trim() || `exit ${r.code}`}`);
}

/** cloud-init's user creation: the user and its home exist afterwards. */
export async function ensureGuestUser(simId: string, vmid: number, user: string): Promise<void> {
  const script = `u="$1"; grep -q "^$u:" /etc/passwd && exit 0; h=/home/$u; [ "$u" = root ] && h=/root; mkdir -p "$h" && echo "$u:x:1000:1000::$h:/bin/sh" >> /etc/passwd`;
  const r = await docker(["exec", containerName(simId, vmid), "/bin/busybox", "sh", "-c", script, "sh", user], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`could not create user ${user}: ${r.stderr.trim()}`);
}

/** qemu-ga's guest-set-user-password (chpasswd): a crypt() line in /etc/shadow; the user must exist. */
export async function setGuestPassword(simId: string, vmid: number, user: string, password: string, crypted: boolean): Promise<void> {
  const script = [
    // The password comes on stdin, not argv, so it never shows in the host's process list.
    `u="$1"; pw=$(cat)`,
    `grep -q "^$u:" /etc/passwd || { echo "chpasswd: unknown user $u" >&2; exit 1; }`,
    crypted ? `h="$pw"` : `h=$(printf '%s' "$pw" | busybox mkpasswd -m sha512 -P 0)`,
    `[ -n "$h" ] || exit 3`,
    `touch /etc/shadow && { grep -v "^$u:" /etc/shadow; echo "$u:$h:19000:0:99999:7:::"; } > /etc/shadow.new && mv /etc/shadow.new /etc/shadow && chmod 600 /etc/shadow`,
  ].join("\n");
  const r = await docker(["exec", "-i", containerName(simId, vmid), "/bin/busybox", "sh", "-c", script, "sh", user], { input: password, timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`child process has failed to set user password (${r.stderr.trim() || `exit ${r.code}`})`);
}

export function homeOf(user: string): string {
  return user === "root" ? "/root" : `/home/${user}`;
}

