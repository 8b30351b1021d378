/**
 * The dashboard's apps in a real browser against a real `wrangler dev`, a real agent, the
 * local dockerd, registry and Caddy (test/host/setup.sh): sign up, enrol a Docker host by
 * running the command the page shows, create an app, change its image, port and env vars
 * (values never shown), deploy it from the offer that follows and watch the job live, see
 * its log lines arrive live, open it through Caddy, change its limits, type in a terminal in
 * its container (echo, resize, the close reason once stopped), stop it, delete it;
 * another person sees none of it; pause and resume a project; axe over the new pages in
 * light and dark, at phone width too.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentProcess, startAgent } from "./support/agent";
import { type Dashboard, openDashboard, seriousViolations, signUp, unique } from "./support/dashboard";
import { freePort } from "./support/dev-server";
import { getWithHost } from "./support/http";

const IMAGE = "127.0.0.1:5000/berth/hello:v1";

let dashboard: Dashboard;
let agent: AgentProcess | undefined;
let ingress: number;
const dirs: string[] = [];
const apps: string[] = [];

const docker = (...args: string[]) => execFileSync("docker", args, { encoding: "utf8" }).trim();

beforeAll(async () => {
  for (const [name, url] of [
    ["registry", "http://127.0.0.1:5000/v2/"],
    ["caddy admin", "http://127.0.0.1:2019/config/"],
  ] as const) {
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (!ok) throw new Error(`${name} is not answering at ${url}: run test/host/setup.sh first (.ci/run does)`);
  }
  ingress = await freePort();
  dashboard = await openDashboard();
}, 180_000);

afterAll(async () => {
  // Whatever a failed run left on the host goes, so the next run starts clean.
  for (const appId of apps) {
    const ids = docker("ps", "-aq", "--filter", `label=berth.app=${appId}`).split("\n").filter(Boolean);
    if (ids.length) docker("rm", "-f", ...ids);
    await fetch(`http://127.0.0.1:2019/id/berth-app-${appId}`, { method: "DELETE" }).catch(() => undefined);
  }
  await agent?.kill("SIGKILL");
  await dashboard?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Polls for up to `seconds`: a deploy pulls, starts and waits for the app, longer on a busy machine. */
const eventually = <T>(read: () => Promise<T> | T, seconds = 90) => expect.poll(read, { timeout: seconds * 1000, interval: 250 });

/** Enrols a Docker host on the Hosts page and starts the agent with the command the page shows. */
async function enrolDockerHost(page: Page) {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Hosts", exact: true }).click();
  await page.getByLabel("Host name").fill("docker-1");
  await page.getByLabel("Kind").selectOption("docker");
  await page.getByRole("button", { name: "Enrol host" }).click();
  const command = await page.getByLabel("Agent command for docker-1", { exact: true }).inputValue();
  expect(command).toMatch(/^npm run agent -- --url \S+ --join-token \S+$/);
  const state = mkdtempSync(join(tmpdir(), "berth-dash-apps-"));
  dirs.push(state);
  // The command as shown, with a state directory of its own and Caddy's app server on a free port.
  agent = startAgent([...command.replace(/^npm run agent -- /, "").split(" "), "--state-dir", state, "--ingress-listen", `127.0.0.1:${ingress}`], {
    BERTH_APP_SWEEP_SECONDS: "2",
  });
  await agent.waitFor(/connected transport=websocket/, 60_000);
  const card = page.getByRole("list", { name: "Hosts" }).getByRole("listitem").filter({ hasText: "docker-1" });
  await eventually(() => card.locator(".status").textContent(), 30).toBe("online");
}

describe("apps", () => {
  it("creates an app, edits its image, port and env vars, deploys it live, follows its logs, opens it through Caddy, changes its limits, stops and deletes it; nobody else sees it", { timeout: 480_000 }, async () => {
    const page = await dashboard.newPage();
    const { orgSlug } = await signUp(page, "Ada");
    await enrolDockerHost(page);

    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Projects", exact: true }).click();
    await page.getByRole("link", { name: "Apps of My Project" }).click();
    await page.getByRole("heading", { level: 1, name: "Apps" }).waitFor();
    await page.getByRole("heading", { name: "No apps yet" }).waitFor();
    await eventually(() => page.getByRole("status", { name: "Live updates: Live" }).count(), 30).toBe(1);
    const projectId = new URL(page.url()).pathname.split("/")[4]!;
    expect(await seriousViolations(page), "apps, empty").toEqual([]);

    const slug = `hello-${unique()}`;
    const name = `Hello ${slug}`;
    await page.getByLabel("App name").fill(name);
    await page.getByLabel("Address name (optional)").fill(slug);
    // Made with the wrong tag and port, put right on its page below before the first deploy.
    await page.getByLabel("Image").fill(IMAGE.replace(/:v1$/, ":v2"));
    await page.getByLabel("Port it listens on").fill("9000");
    await page.getByLabel("Environment variables (optional)").fill("GREETING=secret-greeting-value\nMODE=test");
    await page.getByLabel("CPU limit (cores)").fill("0.25");
    await page.getByLabel("Memory limit (MB)").fill("64");
    await page.getByRole("button", { name: "Create app" }).click();
    await page.waitForURL(/\/apps\/app_[^/]+$/);
    const appId = new URL(page.url()).pathname.split("/").at(-1)!;
    apps.push(appId);
    await page.getByRole("heading", { level: 1, name }).waitFor();
    const summary = page.getByRole("region", { name: "Summary" });
    await eventually(() => summary.textContent()).toContain("not deployed yet");
    expect(await summary.textContent()).toContain("env: GREETING, MODE");
    expect(await page.locator("body").textContent()).not.toContain("secret-greeting-value");

    // Its settings after creation: the tag and the port put right, one variable replaced, one
    // removed, one added. Stored values are never on the page, only their names, each "set".
    const SECRETS = ["secret-greeting-value", "replaced-greeting-value", "added-extra-value"];
    const settings = page.getByRole("form", { name: "Settings" });
    expect(await settings.getByLabel("Image").inputValue()).toBe("127.0.0.1:5000/berth/hello");
    expect(await settings.getByLabel("Tag").inputValue()).toBe("v2");
    const variables = settings.getByRole("list", { name: "Variables set" }).getByRole("listitem");
    expect((await variables.allTextContents()).map((t) => t.replace(/Remove$/, ""))).toEqual(["GREETINGset", "MODEset"]);
    expect(await settings.getByLabel("New value for GREETING").inputValue()).toBe("");
    await settings.getByLabel("Tag").fill("v1");
    await settings.getByLabel("Port it listens on").fill("8080");
    await settings.getByLabel("New value for GREETING").fill("replaced-greeting-value");
    await settings.getByRole("button", { name: "Remove MODE" }).click();
    await settings.getByLabel("Add variables (optional)").fill("EXTRA=added-extra-value");
    await settings.getByRole("button", { name: "Save settings" }).click();
    await eventually(() => page.locator("main p.sr-only[role=status]").textContent(), 30).toBe(
      `Settings of ${name} saved: image, port, environment variables. Deploy to run them.`,
    );
    const saved = await page.request.get(`/api/v1/apps/${appId}`);
    expect(saved.status()).toBe(200);
    const savedApp = (await saved.json()).app;
    expect(savedApp).toMatchObject({ image: IMAGE, internal_port: 8080 });
    expect(Object.keys(savedApp.env_vars).sort()).toEqual(["EXTRA", "GREETING"]);
    await eventually(() => summary.textContent(), 30).toContain("env: EXTRA, GREETING");
    expect((await variables.allTextContents()).map((t) => t.replace(/Remove$/, ""))).toEqual(["EXTRAset", "GREETINGset"]);
    // Not in the text, the markup, or any field's value.
    const shown = [await page.content(), ...(await page.locator("input, textarea").evaluateAll((els) => els.map((e) => (e as HTMLInputElement).value)))].join("\n");
    for (const secret of SECRETS) expect(shown).not.toContain(secret);

    // Deploy, offered after the save, and watch the job move without a reload: state, the steps as they come, then the end.
    await page.getByRole("region", { name: "Saved settings" }).getByRole("button", { name: "Deploy now" }).click();
    const job = page.getByRole("region", { name: /^(Current|Last) job$/ });
    await job.waitFor();
    await eventually(() => job.textContent()).toMatch(/app\.deploy/);
    await eventually(() => job.textContent(), 180).toContain("succeeded");
    const steps = await job.locator("ol.steps li").allTextContents();
    expect(steps.length, `steps seen live: ${JSON.stringify(steps)}`).toBeGreaterThanOrEqual(2);
    expect(steps.join(" | ")).toMatch(/Pulling|Creating the container|Waiting for the app to answer|Routing|Stopping the previous container/);
    await eventually(() => summary.locator(".status").textContent()).toBe("running");

    // Its logs, live: the line it wrote on start, then the request made through Caddy below.
    const logs = page.getByRole("log", { name: `Logs of ${name}` });
    await eventually(() => logs.textContent(), 30).toContain("hello v1 listening");
    const open = summary.getByRole("link", { name: `Open http://${slug}-app.localhost (${name}, in a new tab)` });
    const href = await open.getAttribute("href");
    expect(href).toBe(`http://${slug}-app.localhost`);
    expect(await open.getAttribute("target")).toBe("_blank");
    // The link as it is, on the port this test's Caddy server listens on instead of 80 (chromium resolves *.localhost itself).
    const site = await page.context().newPage();
    await site.goto(`${href}:${ingress}/`);
    expect(await site.locator("body").textContent()).toContain("hello v1");
    await site.close();
    await eventually(() => logs.textContent(), 30).toMatch(/response:200/);

    // Usage now, and the history chart once the host has sent a few samples.
    await eventually(() => page.getByRole("region", { name: "Resources" }).textContent(), 30).toMatch(/Memory now\d+ of 64 MB/);
    await page.waitForTimeout(5_000);
    await page.reload();
    await eventually(() => page.getByRole("img", { name: /^Memory: now/ }).count(), 30).toBe(1);

    // New limits reach the running container without a restart.
    const limits = page.getByRole("form", { name: "Limits" });
    await limits.getByLabel("Memory limit (MB)").fill("96");
    await limits.getByRole("button", { name: "Save limits" }).click();
    await eventually(() => page.locator("main p.sr-only[role=status]").textContent(), 30).toBe(
      `Limits of ${name} are now 0.25 CPU and 96 MB, applied to the running container.`,
    );
    const containerId = docker("ps", "-q", "--no-trunc", "--filter", `label=berth.app=${appId}`);
    await eventually(() => docker("inspect", "-f", "{{.HostConfig.Memory}}", containerId), 30).toBe(String(96 * 1024 * 1024));
    // The container runs with the variables as edited.
    const containerEnv: string[] = JSON.parse(docker("inspect", "-f", "{{json .Config.Env}}", containerId));
    expect(containerEnv).toEqual(expect.arrayContaining(["GREETING=replaced-greeting-value", "EXTRA=added-extra-value"]));
    expect(containerEnv.filter((e) => e.startsWith("MODE="))).toEqual([]);

    // The deployment is listed; axe over the page as it is, light.
    const deployments = page.getByRole("region", { name: "Deployments" });
    await eventually(() => deployments.textContent()).toContain("succeeded");
    expect(await deployments.textContent()).toContain(IMAGE);
    await page.emulateMedia({ colorScheme: "light" });
    expect(await seriousViolations(page), "app page, light").toEqual([]);

    // A terminal in the running container, opened from the app's page in a tab of its own.
    const terminalLink = summary.getByRole("link", { name: `Open a terminal in ${name}` });
    const terminalPath = await terminalLink.getAttribute("href");
    expect(terminalPath).toBe(`/orgs/${orgSlug}/projects/${projectId}/apps/${appId}/terminal`);
    const term = await page.context().newPage();
    await term.goto(terminalPath!);
    await term.getByRole("heading", { level: 1, name: `Terminal in ${name}` }).waitFor();
    await eventually(() => term.getByRole("status", { name: "Terminal: Connected" }).count(), 60).toBe(1);
    const screen = term.getByRole("region", { name: `Terminal in ${name}` });
    const rows = () => screen.locator(".xterm-rows > div").allTextContents().then((r) => r.map((line) => line.replaceAll("\u00a0", " ").trimEnd()));
    // Typed into the focused terminal; the quotes keep the echoed command from matching the answer.
    await term.keyboard.type("echo h''i\n");
    await eventually(() => rows(), 30).toContain("hi");
    // Watched read-only from another tab: what was written so far, and it says so.
    const watchPath = await term.getByRole("link", { name: "Watch read-only in a new tab" }).getAttribute("href");
    expect(watchPath).toMatch(/\/terminal\?session=trm_[0-9a-f]{32}&view=1$/);
    const watch = await page.context().newPage();
    await watch.goto(watchPath!);
    await watch.getByRole("status").filter({ hasText: "Read-only: you are watching this terminal" }).waitFor();
    const watched = () => watch.locator(".xterm-rows > div").allTextContents().then((r) => r.map((line) => line.replaceAll("\u00a0", " ").trimEnd()));
    await eventually(() => watched(), 30).toContain("hi");
    await watch.close();
    // A smaller window: the terminal fits it and the program is told its new size.
    const before = await term.getByText(/^Size \d+×\d+$/).textContent();
    await term.setViewportSize({ width: 760, height: 560 });
    await eventually(() => term.getByText(/^Size \d+×\d+$/).textContent(), 10).not.toBe(before);
    const [cols, lines] = (await term.getByText(/^Size \d+×\d+$/).textContent())!.slice(5).split("×");
    await term.keyboard.type("busybox stty size\n");
    await eventually(() => rows(), 30).toContain(`${lines} ${cols}`);
    // Keyboard: Esc then Tab leaves the terminal for the page's controls.
    await term.keyboard.press("Escape");
    await term.keyboard.press("Tab");
    expect(await term.evaluate(() => document.activeElement?.textContent)).toBe("New terminal");
    expect(await seriousViolations(term), "terminal, light").toEqual([]);

    // Stop: the container stops and Caddy no longer serves it.
    await page.getByRole("button", { name: `Stop ${name}` }).click();
    await eventually(() => summary.locator(".status").textContent(), 120).toBe("stopped");
    // The terminal says it ended, and a new one says why there is none.
    await eventually(() => term.getByRole("status", { name: "Terminal: Ended" }).count(), 60).toBe(1);
    expect(await term.getByRole("alert").textContent()).toMatch(/^The program ended with exit status \d+/);
    await term.getByRole("button", { name: "Open a new terminal" }).click();
    await eventually(() => term.getByRole("alert").textContent(), 30).toBe(
      "The app is not running, so there is no container to open a terminal in. Start the app, then open the terminal again.",
    );
    await term.emulateMedia({ colorScheme: "dark" });
    expect(await seriousViolations(term), "terminal, dark").toEqual([]);
    await term.close();
    expect(docker("inspect", "-f", "{{.State.Running}}", containerId)).toBe("false");
    expect((await getWithHost(ingress, `${slug}-app.localhost`)).status).not.toBe(200);
    await summary.getByRole("button", { name: `Start ${name}` }).waitFor();

    // The project's jobs, live: the deploy, the new limits, the stop.
    await page.getByRole("link", { name: "all apps" }).click();
    const list = page.getByRole("list", { name: "Apps" });
    await eventually(() => list.textContent()).toContain("stopped");
    await page.getByRole("link", { name: "jobs", exact: true }).click();
    const jobs = page.getByRole("list", { name: "Jobs" });
    await eventually(() => jobs.getByRole("listitem").count()).toBe(3);
    expect(await jobs.textContent()).toMatch(/app\.stop.*app\.deploy/s);

    // axe, dark and at phone width, over the list, the app and the jobs.
    const phone = await dashboard.newPage({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true, storageState: await page.context().storageState() });
    await phone.emulateMedia({ colorScheme: "dark" });
    const found: Record<string, string[]> = {};
    const check = async (what: string) => {
      found[what] = await seriousViolations(phone);
      const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      if (overflow > 0) found[what]!.push(`page is ${overflow}px wider than the screen`);
    };
    await phone.goto(`/orgs/${orgSlug}/projects/${projectId}/apps`);
    await phone.getByRole("list", { name: "Apps" }).waitFor();
    await check("apps, dark phone");
    await phone.goto(`/orgs/${orgSlug}/projects/${projectId}/apps/${appId}`);
    await phone.getByRole("region", { name: "Deployments" }).waitFor();
    await check("app, dark phone");
    await phone.getByRole("button", { name: `Delete ${name}` }).click();
    await phone.getByRole("dialog").waitFor();
    await check("delete question, dark phone");
    await phone.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
    await phone.goto(`/orgs/${orgSlug}/projects/${projectId}/jobs`);
    await phone.getByRole("list", { name: "Jobs" }).waitFor();
    await phone.getByRole("button", { name: /^Show output of app\.deploy/ }).click();
    await phone.getByRole("region", { name: /^app\.deploy / }).waitFor();
    await check("jobs, dark phone");
    expect(Object.fromEntries(Object.entries(found).filter(([, v]) => v.length))).toEqual({});

    // Another person sees none of it, by address or through the API.
    const bob = await dashboard.newPage();
    await signUp(bob, "Bob");
    await bob.goto(`/orgs/${orgSlug}/projects/${projectId}/apps/${appId}`);
    await eventually(() => bob.getByRole("alert").textContent(), 30).toMatch(/^This app does not exist, or you do not have access to it/);
    expect(await bob.locator("main").textContent()).not.toContain(slug);
    await bob.goto(`/orgs/${orgSlug}/projects/${projectId}/apps`);
    await eventually(() => bob.getByRole("alert").first().textContent(), 30).toMatch(/does not exist, or you do not have access to it/);
    expect(await bob.locator("main").textContent()).not.toContain(slug);
    expect((await bob.request.get(`/api/v1/apps/${appId}`)).status()).toBe(404);
    expect((await bob.request.get(`/api/v1/projects/${projectId}/jobs`)).status()).toBe(404);

    // Delete, after the question: the container goes and the list says what to do next.
    await page.goto(`/orgs/${orgSlug}/projects/${projectId}/apps/${appId}`);
    await page.getByRole("button", { name: `Delete ${name}` }).click();
    await page.getByRole("dialog", { name: `Delete ${name}?` }).getByRole("button", { name: "Delete app" }).click();
    await page.getByRole("heading", { name: "No apps yet" }).waitFor();
    await eventually(() => docker("ps", "-aq", "--filter", `label=berth.app=${appId}`), 60).toBe("");
  });
});

describe("project pause and resume", () => {
  it("an owner pauses a project and resumes it from its card", { timeout: 120_000 }, async () => {
    const page = await dashboard.newPage();
    await signUp(page, "Pia");
    const card = page.getByRole("list", { name: "Projects" }).getByRole("listitem").filter({ has: page.getByRole("heading", { name: "My Project", exact: true }) });
    await eventually(() => card.textContent(), 30).toContain("active");
    await card.getByRole("button", { name: "Pause My Project" }).click();
    await eventually(() => card.textContent(), 30).toContain("paused");
    await eventually(() => page.locator("main p.sr-only[role=status]").textContent(), 30).toBe("My Project is paused.");
    await card.getByRole("button", { name: "Resume My Project" }).click();
    await eventually(() => card.textContent(), 30).toContain("active");
    await eventually(() => page.locator("main p.sr-only[role=status]").textContent(), 30).toBe("My Project is active again.");
  });
});
