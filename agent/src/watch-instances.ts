/**
 * Keeps the control plane's view of this node's VMs true: every sweep (30 s by default)
 * reports the VMs Berth made, with their power state, so a VM stopped, started or
 * destroyed outside Berth shows so on its instance.
 */
import type { InstanceReport } from "../../src/protocol/agent.ts";
import { sleep } from "./backoff.ts";
import type { ProxmoxNodeLink } from "./drivers/proxmox.ts";
import type { LeaseReporter } from "./jobs/registry.ts";
import type { Logger } from "./log.ts";

export class InstanceWatcher {
  private readonly link: ProxmoxNodeLink;
  private readonly api: LeaseReporter;
  private readonly log: Logger;
  private readonly intervalMs: number;

  constructor(link: ProxmoxNodeLink, api: LeaseReporter, log: Logger, intervalMs = 30_000) {
    this.link = link;
    this.api = api;
    this.log = log;
    this.intervalMs = intervalMs;
  }

  async run(signal: AbortSignal): Promise<void> {
    let failing = false;
    while (!signal.aborted) {
      try {
        await this.sweep(signal);
        if (failing) this.log.info("the node answers again; instance sweeps resumed");
        failing = false;
      } catch (err) {
        // Said once per outage, not every sweep.
        if (!failing && !signal.aborted) this.log.warn("instance sweep failed", { error: (err as Error).message });
        failing = true;
      }
      await sleep(this.intervalMs, signal);
    }
  }

  async sweep(signal?: AbortSignal): Promise<void> {
    const driver = await this.link.driver();
    const readAt = Date.now();
    const vms = await driver.vm.list({ signal, deadline: readAt + 20_000 });
    const report: InstanceReport = {
      observed_ms_ago: 0,
      vms: vms
        .filter((vm) => vm.template !== 1)
        .map((vm) => ({ vmid: vm.vmid, status: vm.status, tags: (vm.tags ?? "").split(/[;,\s]+/).filter((t) => t === "berth" || t.startsWith("berth-")).slice(0, 32) }))
        .filter((vm) => vm.tags.length > 0)
        .slice(0, 5000),
    };
    report.observed_ms_ago = Math.min(600_000, Date.now() - readAt);
    await this.api.call("POST", "/agent/instances/report", report);
  }
}
