/**
 * The QEMU guest agent through Proxmox: ping, the guest's addresses, running a
 * program (exec + exec-status), setting a password, writing a file. Each needs
 * the VM running and qemu-ga up inside it; `waitForAgent` covers the boot.
 */
import { sleep } from "../../backoff.ts";
import { type ProxmoxClient, ProxmoxError } from "./client.ts";
import type { OpOptions } from "./vms.ts";

export interface GuestInterface {
  name: string;
  "hardware-address"?: string;
  "ip-addresses"?: { "ip-address": string; "ip-address-type": "ipv4" | "ipv6"; prefix: number }[];
}

export interface ExecResult {
  exitcode: number;
  stdout: string;
  stderr: string;
}

/** What Proxmox says while the guest boots: worth waiting for, unlike a missing VM or agent=0. */
const NOT_YET = /QEMU guest agent is not running|is not running|got timeout|guest-ping failed/i;
/** file-write's `content` may be at most 61440 characters, and we send it base64-encoded. */
const MAX_FILE_BYTES = Math.floor(61440 / 4) * 3;

export class GuestAgentOps {
  private readonly client: ProxmoxClient;
  readonly node: string;

  constructor(client: ProxmoxClient, node: string) {
    this.client = client;
    this.node = node;
  }

  private path(vmid: number, command: string) {
    return `/nodes/${encodeURIComponent(this.node)}/qemu/${vmid}/agent/${command}`;
  }
  private call(opts: OpOptions) {
    return { deadline: opts.deadline ?? Date.now() + 60_000, signal: opts.signal };
  }

  async ping(vmid: number, opts: OpOptions = {}): Promise<void> {
    await this.client.post(this.path(vmid, "ping"), {}, { ...this.call(opts), idempotent: true });
  }

  /**
   * Waits until qemu-ga answers (the guest has booted), up to the deadline (default 5 minutes).
   * Pinged every 200 ms for the first 10 s, so a guest that is up quickly is seen quickly, then every second.
   */
  async waitForAgent(vmid: number, opts: OpOptions = {}): Promise<void> {
    const deadline = opts.deadline ?? Date.now() + 5 * 60_000;
    const began = Date.now();
    let last = "";
    for (;;) {
      try {
        await this.client.post(this.path(vmid, "ping"), {}, { deadline: Math.min(deadline, Date.now() + 10_000), signal: opts.signal, idempotent: true });
        return;
      } catch (err) {
        if (!(err instanceof ProxmoxError) || (err.status !== 0 && !NOT_YET.test(err.message))) throw err;
        last = err.message;
      }
      // A booting guest's agent comes up within seconds: ask often then, and back off after.
      const waited = Date.now() - began;
      const wait = waited < 5_000 ? 50 : waited < 10_000 ? 200 : 1_000;
      if (opts.signal?.aborted || Date.now() + wait > deadline) throw new ProxmoxError(`the guest agent of VM ${vmid} did not answer by the deadline (${last})`, { code: "TASK_DEADLINE" });
      await sleep(wait, opts.signal);
    }
  }

  async interfaces(vmid: number, opts: OpOptions = {}): Promise<GuestInterface[]> {
    const res = await this.client.get<{ result: GuestInterface[] }>(this.path(vmid, "network-get-interfaces"), {}, this.call(opts));
    return res?.result ?? [];
  }

  /** The guest's first routable address: IPv4 before IPv6, never loopback or link-local. */
  async address(vmid: number, opts: OpOptions = {}): Promise<string | null> {
    const all = (await this.interfaces(vmid, opts)).flatMap((i) => i["ip-addresses"] ?? []);
    const usable = all.filter((a) => !/^(127\.|169\.254\.|::1$|fe80:)/i.test(a["ip-address"]));
    return (usable.find((a) => a["ip-address-type"] === "ipv4") ?? usable[0])?.["ip-address"] ?? null;
  }

  /**
   * Runs `argv` in the guest (no shell unless argv names one), `input` on stdin,
   * and waits for it to exit. Output is as qemu-ga captured it.
   */
  async exec(vmid: number, argv: string[], opts: OpOptions & { input?: string } = {}): Promise<ExecResult> {
    if (!argv.length || !argv[0]) throw new ProxmoxError("guest exec needs a program");
    const deadline = opts.deadline ?? Date.now() + 5 * 60_000;
    // Never retried on a cut connection: the program might run twice.
    const { pid } = await this.client.post<{ pid: number }>(this.path(vmid, "exec"), { command: argv, "input-data": opts.input }, { deadline, signal: opts.signal });
    let wait = 100;
    for (;;) {
      const st = await this.client.get<{ exited: boolean | number; exitcode?: number; "out-data"?: string; "err-data"?: string }>(this.path(vmid, "exec-status"), { pid }, { deadline, signal: opts.signal });
      if (st.exited) return { exitcode: st.exitcode ?? -1, stdout: st["out-data"] ?? "", stderr: st["err-data"] ?? "" };
      if (opts.signal?.aborted || Date.now() + wait > deadline) throw new ProxmoxError(`guest command ${argv[0]} in VM ${vmid} still running at the deadline (pid ${pid})`, { code: "TASK_DEADLINE" });
      await sleep(wait, opts.signal);
      wait = Math.min(1_000, wait * 2);
    }
  }

  /** Sets a guest user's password through qemu-ga (the user must exist). The password is never logged. */
  async setUserPassword(vmid: number, username: string, password: string, opts: OpOptions = {}): Promise<void> {
    await this.client.post(this.path(vmid, "set-user-password"), { username, password }, { ...this.call(opts), idempotent: true });
  }

  /** Writes a file in the guest (created or truncated; its directory must exist). Sent base64, so any bytes survive. */
  async writeFile(vmid: number, file: string, content: string | Buffer, opts: OpOptions = {}): Promise<void> {
    const bytes = typeof content === "string" ? Buffer.from(content, "utf8") : content;
    if (bytes.length > MAX_FILE_BYTES) throw new ProxmoxError(`${file}: ${bytes.length} bytes is more than the guest agent's file-write takes (${MAX_FILE_BYTES})`);
    await this.client.post(this.path(vmid, "file-write"), { file, content: bytes.toString("base64"), encode: false }, { ...this.call(opts), idempotent: true });
  }

  /**
   * Installs OpenSSH keys for `user` on a running guest: makes ~/.ssh, writes
   * authorized_keys, fixes owner and modes (sshd ignores a group-writable file).
   */
  async installSshKeys(vmid: number, user: string, keys: string[], opts: OpOptions = {}): Promise<void> {
    const home = await this.exec(vmid, ["/bin/sh", "-c", 'getent passwd "$1" 2>/dev/null | cut -d: -f6 || true', "sh", user], opts);
    const dir = `${home.stdout.trim() || (user === "root" ? "/root" : `/home/${user}`)}/.ssh`;
    const mk = await this.exec(vmid, ["/bin/sh", "-c", 'mkdir -p "$1" && chmod 700 "$1"', "sh", dir], opts);
    if (mk.exitcode !== 0) throw new ProxmoxError(`could not make ${dir} in VM ${vmid}: ${mk.stderr.trim() || `exit ${mk.exitcode}`}`);
    await this.writeFile(vmid, `${dir}/authorized_keys`, `${keys.map((k) => k.trim()).filter(Boolean).join("\n")}\n`, opts);
    const fix = await this.exec(vmid, ["/bin/sh", "-c", 'chmod 600 "$1/authorized_keys" || exit 1; chown -R "$2" "$1" 2>/dev/null; exit 0', "sh", dir, user], opts);
    if (fix.exitcode !== 0) throw new ProxmoxError(`could not set modes on ${dir} in VM ${vmid}: ${fix.stderr.trim()}`);
  }
}
