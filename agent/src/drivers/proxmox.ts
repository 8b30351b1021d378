/**
 * The agent's Proxmox VE driver: one node's REST API with an API token and a
 * pinned certificate. Long calls are UPID tasks followed to the end, their log
 * lines handed to the caller. The parts live in ./proxmox/: client (HTTP, pinning,
 * retries), tasks (UPIDs), vms, guest (qemu guest agent), facts, settings (flags, doctor).
 */
import { type ClientOptions, ProxmoxClient, type ProxmoxConnection } from "./proxmox/client.ts";
import { nodeFacts, type ProxmoxNodeFacts, type ProxmoxTemplate, templates } from "./proxmox/facts.ts";
import { GuestAgentOps } from "./proxmox/guest.ts";
import { type ProxmoxSettings, resolveNode } from "./proxmox/settings.ts";
import { VmOps } from "./proxmox/vms.ts";

export { type ClientOptions, formEncode, normalizeFingerprint, ProxmoxClient, type ProxmoxConnection, ProxmoxError } from "./proxmox/client.ts";
export type { ProxmoxNodeFacts, ProxmoxStorage, ProxmoxTemplate } from "./proxmox/facts.ts";
export type { ExecResult, GuestInterface } from "./proxmox/guest.ts";
export { PROXMOX_FLAGS, PROXMOX_USAGE, parseProxmoxOptions, type ProxmoxSettings, proxmoxChecks } from "./proxmox/settings.ts";
export { followTask, parseUpid, ProxmoxTaskError, type TaskLogSink, type TaskOutcome } from "./proxmox/tasks.ts";
export { encodeSshKeys, type FoundVm, markerDescription, markerTag, type OpOptions, parseMarker, type VmConfig, type VmMarker, type VmStatus } from "./proxmox/vms.ts";

export class ProxmoxDriver {
  readonly client: ProxmoxClient;
  readonly node: string;
  readonly vm: VmOps;
  readonly guest: GuestAgentOps;

  private constructor(client: ProxmoxClient, node: string) {
    this.client = client;
    this.node = node;
    this.vm = new VmOps(client, node);
    this.guest = new GuestAgentOps(client, node);
  }

  /** Connects (the first call checks the pin and the token) and settles which node to work on. */
  static async connect(conn: ProxmoxConnection & { node?: string | null }, opts: ClientOptions = {}): Promise<ProxmoxDriver> {
    const client = new ProxmoxClient(conn, opts);
    try {
      return new ProxmoxDriver(client, await resolveNode(client, conn.node ?? null));
    } catch (err) {
      client.close();
      throw err;
    }
  }

  facts(): Promise<ProxmoxNodeFacts> {
    return nodeFacts(this.client, this.node);
  }

  templates(opts: { deadline?: number; signal?: AbortSignal } = {}): Promise<ProxmoxTemplate[]> {
    return templates(this.client, this.node, { deadline: opts.deadline, signal: opts.signal });
  }

  close() {
    this.client.close();
  }
}

/**
 * The driver of the node an agent works on, connected at first use. A connect that fails
 * (the node is rebooting, the API is down) is tried again at the next use, so the agent
 * starts and keeps its other work going while the node is away.
 */
export class ProxmoxNodeLink {
  private readonly settings: ProxmoxSettings;
  private readonly options: ClientOptions;
  private current: Promise<ProxmoxDriver> | null = null;

  constructor(settings: ProxmoxSettings, options: ClientOptions = {}) {
    this.settings = settings;
    this.options = options;
  }

  driver(): Promise<ProxmoxDriver> {
    this.current ??= ProxmoxDriver.connect(this.settings, this.options).catch((err) => {
      this.current = null;
      throw err;
    });
    return this.current;
  }

  close() {
    const current = this.current;
    this.current = null;
    void current?.then((d) => d.close(), () => undefined);
  }
}
