/**
 * The dashboard's instances page in a real browser against a real `wrangler dev`, with the
 * real agent driving the Proxmox VE simulator (test/proxmox-sim: not Proxmox VE, which
 * cannot run here; its VMs are containers on the local dockerd): order an instance, see
 * its root password once, watch it come up live, power it off and on, delete it, and axe
 * over the page in light and dark.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProxmoxSim } from "../proxmox-sim/server";
import { type AgentProcess, startAgent } from "./support/agent";
import { nodeAgent, startTestNode } from "./support/proxmox";
import { createProject, type Dashboard, openDashboard, seriousViolations, signUp, unique } from "./support/dashboard";

let dashboard: Dashboard;
let sim: ProxmoxSim;
let agent: AgentProcess | undefined;
let stateDir: string | undefined;

beforeAll(async () => {
  sim = await startTestNode();
  dashboard = await openDashboard();
}, 180_000);

afterAll(async () => {
  await agent?.kill("SIGKILL");
  await dashboard?.close();
  await sim?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

/** Polls for up to `seconds`: VMs take a few seconds to clone and boot, longer on a busy machine. */
const eventually = <T>(read: () => Promise<T> | T, seconds = 120) => expect.poll(read, { timeout: seconds * 1000, interval: 500 });

describe("instances", () => {
  it("orders an instance, shows its root password once, follows it live, powers it off and on, and deletes it", { timeout: 420_000 }, async () => {
    const page = await dashboard.newPage();
    const { orgSlug } = await signUp(page, "Vic");
    const project = `VMs ${unique()}`;
    await createProject(page, project);

    // A Proxmox node for the org: enrolled through the API with the page's session, its agent on the simulator.
    const enrolled = await page.request.post(`/api/v1/org/${orgSlug}/hosts`, { data: { name: "pve-1", kind: "proxmox" }, headers: { origin: dashboard.server.url } });
    expect(enrolled.status()).toBe(201);
    stateDir = mkdtempSync(join(tmpdir(), "berth-dash-pve-"));
    agent = startAgent(...nodeAgent(sim, { url: dashboard.server.url, stateDir, joinToken: (await enrolled.json()).join_token }));
    await agent.waitFor(/connected transport=websocket/, 60_000);

    await page.getByRole("link", { name: `Instances of ${project}` }).click();
    await page.getByRole("heading", { level: 1, name: "Instances" }).waitFor();
    await page.getByRole("heading", { name: "No instances yet" }).waitFor();

    const name = `web-${unique()}`;
    await page.getByLabel("Hostname").fill(name);
    await page.getByLabel("Plan").selectOption("bxs-1");
    await page.getByLabel("Image").selectOption({ label: "Debian 12" });
    await page.getByRole("button", { name: "Order instance" }).click();

    // The password, once: shown in its panel, then gone for good once saved.
    const field = page.getByRole("textbox", { name: `Root password of ${name}` });
    await field.waitFor();
    expect(await field.inputValue()).toMatch(/^\S{20}$/);
    await page.getByRole("button", { name: "I have saved it" }).click();
    await field.waitFor({ state: "detached" });
    await page.reload();
    await page.getByRole("heading", { level: 1, name: "Instances" }).waitFor();
    expect(await page.getByRole("textbox", { name: `Root password of ${name}` }).count()).toBe(0);

    // Live: the card goes to running with the guest's address, without a reload.
    const card = page.getByRole("list", { name: "Instances" }).getByRole("listitem").filter({ has: page.getByRole("heading", { name }) });
    await eventually(() => card.textContent()).toMatch(/running · \d+\.\d+\.\d+\.\d+/);

    await card.getByRole("button", { name: `Shutdown ${name}` }).click();
    await eventually(() => card.textContent()).toMatch(/^.*stopped/);
    await card.getByRole("button", { name: `Start ${name}` }).click();
    await eventually(() => card.textContent()).toMatch(/running/);
    const vmid = Number(/VM (\d+)/.exec((await card.textContent()) ?? "")?.[1]);
    expect(execFileSync("docker", ["inspect", "-f", "{{.State.Running}}", `berth-pvesim-${sim.simId}-${vmid}`], { encoding: "utf8" }).trim()).toBe("true");

    // axe over the page with an instance on it, light and dark.
    for (const theme of ["light", "dark"] as const) {
      await page.emulateMedia({ colorScheme: theme });
      expect(await seriousViolations(page), theme).toEqual([]);
    }

    await card.getByRole("button", { name: `Delete ${name}` }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete instance" }).click();
    await eventually(() => page.getByRole("heading", { name: "No instances yet" }).count()).toBe(1);
    expect(execFileSync("docker", ["ps", "-aq", "--filter", `name=^berth-pvesim-${sim.simId}-${vmid}$`], { encoding: "utf8" }).trim()).toBe("");
  });
});
