/** The host facts a heartbeat carries: a node that fails to answer once keeps its last facts for a while. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { ProxmoxNodeLink } from "../src/drivers/proxmox.ts";
import { collectFacts, NODE_FACTS_GRACE_MS, type NodeFactsMemory } from "../src/facts.ts";

const dir = mkdtempSync(join(tmpdir(), "berth-facts-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A node whose answers the test decides: facts, or a failure. */
function node(answer: () => "ok" | Error): ProxmoxNodeLink {
  const facts = async () => {
    const a = answer();
    if (a instanceof Error) throw a;
    return {
      node: "pve1",
      proxmox_version: "8.2.4",
      cpus: 16,
      cpu_load: 0.1,
      memory_bytes: 64 * 1024 ** 3,
      memory_free_bytes: 32 * 1024 ** 3,
      storage: [{ id: "local-lvm", type: "lvmthin", total_bytes: 1e12, free_bytes: 5e11 }],
      storage_bytes: 1e12,
      storage_free_bytes: 5e11,
      templates: [{ vmid: 9000, name: "berth-debian-12" }],
    };
  };
  return { driver: async () => ({ facts }) } as unknown as ProxmoxNodeLink;
}

describe("host facts with a Proxmox node", () => {
  it("keep the node's last facts through a failed answer within the grace, and drop them after", async () => {
    let next: "ok" | Error = "ok";
    const link = node(() => next);
    const memory: NodeFactsMemory = { facts: null, at: 0 };
    const errors: string[] = [];
    const collect = () => collectFacts({ stateDir: dir, dockerSocket: join(dir, "no-docker.sock"), proxmox: link, memory, onProxmoxError: (e) => errors.push(e.message) });

    expect((await collect()).proxmox).toMatchObject({ node: "pve1", templates: ["berth-debian-12"], storage: "local-lvm" });
    next = new Error("pve1 unreachable: connection reset");
    const during = await collect();
    expect(during.proxmox?.templates).toEqual(["berth-debian-12"]);
    expect(during.cpus).toBe(16);
    expect(errors).toEqual(["pve1 unreachable: connection reset"]);

    memory.at = Date.now() - NODE_FACTS_GRACE_MS - 1;
    const after = await collect();
    expect(after.proxmox).toBeUndefined();
    expect(errors).toHaveLength(2);

    // Without a memory (doctor, the first join) a failed answer is reported as it is.
    next = new Error("down");
    expect((await collectFacts({ stateDir: dir, dockerSocket: join(dir, "no-docker.sock"), proxmox: link })).proxmox).toBeUndefined();
  });
});
