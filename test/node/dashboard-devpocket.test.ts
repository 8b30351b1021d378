/**
 * DevPocket's pages in a real browser against a real `wrangler dev`, a real agent running
 * the SSH client, the test OpenSSH server (test/host/setup.sh: 127.0.0.1:2222, user
 * berthssh, its password in /tmp/berth-host/ssh/password) and the local OpenAI-compatible
 * provider (test/fake-ai/server.ts, reached through AI_BASE_URL): an SSH profile saved
 * with a password that never shows again, tested (its host key pinned), `echo hi` run,
 * found in the history and run again; an AI key saved that never shows again; on the AI
 * assistant page a command suggested (streamed) and refined, completions chosen by keyboard,
 * a command explained; a suggestion filling the Commands page's field; without a key, the
 * error and the way to save one; devices and sync, empty and then with a conflict resolved. Another
 * person sees none of it. axe on every new page, light, and dark at phone width.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeAiProvider } from "../fake-ai/server";
import { type AgentProcess, startAgent } from "./support/agent";
import { type Dashboard, openDashboard, seriousViolations, signUp, unique, until } from "./support/dashboard";
import { freePort } from "./support/dev-server";

const SSH_DIR = "/tmp/berth-host/ssh";
const SSH_USER = "berthssh";
const SSH_PASSWORD = readFileSync(join(SSH_DIR, "password"), "utf8").trim();
const fingerprint = (i: number) => execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", join(SSH_DIR, `host_key_${i}.pub`)], { encoding: "utf8" }).split(" ")[1]!;
/** The keys of the servers on 2222 and 2223. */
const HOST_KEY = fingerprint(0);
const OTHER_HOST_KEY = fingerprint(1);

/** A loopback port that forwards to 2222, or after `moveTo(2223)` to the other server: a server whose key changed under the same address. */
function startRelay() {
  let target = 2222;
  const sockets = new Set<Socket>();
  const server = createServer((inbound) => {
    const outbound = connect(target, "127.0.0.1");
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => s.destroy());
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  return {
    listening: new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port))),
    moveTo: (port: number) => {
      target = port;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
const relay = startRelay();

let dashboard: Dashboard;
let ai: Awaited<ReturnType<typeof startFakeAiProvider>>;
let agent: AgentProcess | undefined;
const dirs: string[] = [];

beforeAll(async () => {
  ai = await startFakeAiProvider();
  dashboard = await openDashboard({ env: { AI_BASE_URL: ai.url } });
}, 180_000);

afterAll(async () => {
  await agent?.kill("SIGKILL");
  await dashboard?.close();
  await ai?.close();
  relay.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A call with the page's session cookie, from the page's own origin (the API refuses cookie writes from elsewhere). */
const callAs = (page: Page, method: "GET" | "POST", path: string, data?: unknown) =>
  page.request.fetch(`/api/v1${path}`, { method, ...(data === undefined ? {} : { data }), headers: { origin: dashboard.server.url } });

async function openNav(page: Page, link: string, heading = link) {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: link, exact: true }).click();
  await page.getByRole("heading", { level: 1, name: heading }).waitFor();
}

/** Everything a person could read or copy out of the page: its text and every field's value. */
const pageContent = (page: Page) =>
  page.evaluate(() => `${document.body.textContent}\n${[...document.querySelectorAll("input, textarea")].map((e) => (e as HTMLInputElement).value).join("\n")}`);

/** Waits for `locator`; failing, says what the page says instead. */
async function see(page: Page, locator: ReturnType<Page["getByText"]>) {
  try {
    await locator.waitFor();
  } catch (err) {
    throw new Error(`not on the page; it says: ${await page.locator("main").textContent()}`, { cause: err });
  }
}

describe("DevPocket pages", () => {
  it("SSH profile, commands and history, AI key, devices and sync; nobody else sees them", { timeout: 300_000 }, async () => {
    const page = await dashboard.newPage();
    const { orgSlug } = await signUp(page, "Dev");
    const found: Record<string, string[]> = {};

    // An online host of the org runs the SSH client.
    const host = await callAs(page, "POST", `/org/${orgSlug}/hosts`, { name: "ssh-client", kind: "docker" });
    expect(host.status()).toBe(201);
    const state = mkdtempSync(join(tmpdir(), "berth-dash-devpocket-"));
    dirs.push(state);
    const { join_token } = (await host.json()) as { join_token: string };
    agent = startAgent(["--url", dashboard.server.url, "--state-dir", state, "--join-token", join_token, "--ingress-listen", `127.0.0.1:${await freePort()}`]);
    await agent.waitFor(/connected transport=websocket/, 60_000);

    // SSH profiles: empty, then one saved with a password that is never shown again.
    await openNav(page, "SSH profiles");
    await page.getByRole("heading", { name: "No SSH profiles yet" }).waitFor();
    found["ssh, empty"] = await seriousViolations(page);
    await page.getByLabel("Profile name").fill("test sshd");
    await page.getByLabel("Server address").fill("127.0.0.1");
    await page.getByLabel("Port").fill("2222");
    await page.getByLabel("Username").fill(SSH_USER);
    await page.getByLabel("Password").fill(SSH_PASSWORD);
    await page.getByRole("button", { name: "Save profile" }).click();
    const card = page.getByRole("list", { name: "SSH profiles" }).getByRole("listitem").filter({ hasText: "test sshd" });
    await card.waitFor();
    expect(await card.textContent()).toContain(`${SSH_USER}@127.0.0.1:2222`);
    expect(await card.locator("dt:text-is('Password') + dd").textContent()).toBe("set");
    expect(await pageContent(page)).not.toContain(SSH_PASSWORD);

    // Tested: connected, the server's key pinned the first time, matched the second.
    await page.getByRole("button", { name: "Test connection to test sshd" }).click();
    await until(() => card.getByRole("status").textContent()).toMatch(new RegExp(`^Connected to 127\\.0\\.0\\.1:2222 as ${SSH_USER} and signed in in \\d+ ms\\. `));
    expect(await card.getByRole("status").textContent()).toContain(`The server's host key ${HOST_KEY} is now pinned: a different key will be refused.`);
    await until(() => card.locator("dt:text-is('Host key') + dd").textContent()).toBe(HOST_KEY);
    await page.getByRole("button", { name: "Test connection to test sshd" }).click();
    await until(() => card.getByRole("status").textContent()).toContain(`The server's host key matches the pinned ${HOST_KEY}.`);
    found["ssh, a profile"] = await seriousViolations(page);

    // A server whose key changed under the same address is refused, in words, until its pin is forgotten.
    const relayPort = await relay.listening;
    await page.getByLabel("Profile name").fill("moving server");
    await page.getByLabel("Server address").fill("127.0.0.1");
    await page.getByLabel("Port").fill(String(relayPort));
    await page.getByLabel("Username").fill(SSH_USER);
    await page.getByLabel("Password").fill(SSH_PASSWORD);
    await page.getByRole("button", { name: "Save profile" }).click();
    const moving = page.getByRole("list", { name: "SSH profiles" }).getByRole("listitem").filter({ hasText: "moving server" });
    await moving.getByRole("button", { name: "Test connection to moving server" }).click();
    await until(() => moving.getByRole("status").textContent()).toContain(`${HOST_KEY} is now pinned`);
    relay.moveTo(2223);
    await moving.getByRole("button", { name: "Test connection to moving server" }).click();
    await until(() => moving.getByRole("alert").textContent()).toMatch(/^The server's host key is not the one pinned on this profile, so Berth refused to connect/);
    expect(await moving.getByRole("alert").textContent()).toContain(OTHER_HOST_KEY);
    found["ssh, a key mismatch"] = await seriousViolations(page);
    await moving.getByRole("button", { name: "Forget the pinned key of moving server" }).click();
    await page.getByRole("dialog", { name: "Forget the host key of moving server?" }).getByRole("button", { name: "Forget the key" }).click();
    await until(() => moving.locator("dt:text-is('Host key') + dd").textContent()).toMatch(/^not pinned yet/);
    await moving.getByRole("button", { name: "Test connection to moving server" }).click();
    await until(() => moving.getByRole("status").textContent()).toContain(`${OTHER_HOST_KEY} is now pinned`);

    // Commands: `echo hi` over the profile, its output, in the history, run again.
    await page.getByRole("link", { name: "Run a command on test sshd" }).click();
    await page.getByRole("heading", { level: 1, name: "Commands" }).waitFor();
    // Opened from the profile: the history shows that profile's commands, none yet.
    await see(page, page.getByText("No commands on this profile yet."));
    await page.getByLabel("Command", { exact: true }).fill("echo hi");
    await page.getByRole("button", { name: "Run", exact: true }).click();
    const result = page.getByRole("region", { name: "Result" });
    await until(() => result.getByRole("log", { name: "Standard output" }).textContent()).toBe("hi\n");
    expect(await result.locator("dt:text-is('Exit code') + dd").textContent()).toBe("0");
    expect(await result.locator("dt:text-is('Took') + dd").textContent()).toMatch(/^\d+ ms$/);
    const history = page.getByRole("region", { name: "Command history" });
    await until(() => history.getByRole("row").count()).toBe(2);
    expect(await history.getByRole("row").nth(1).textContent()).toMatch(/echo hi.*test sshd.*success/);
    found.commands = await seriousViolations(page);

    // The history's filters go to the API: nothing contains "nothing-like-this".
    await page.getByLabel("Contains").fill("nothing-like-this");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await page.getByText("No command matches these filters").waitFor();
    await page.getByRole("link", { name: "Clear filters" }).click();
    await until(() => history.getByRole("row").count()).toBe(2);

    await history.getByRole("button", { name: "Run again: echo hi" }).click();
    await page.getByRole("heading", { level: 1, name: "Command" }).waitFor();
    await until(() => page.getByRole("log", { name: "Standard output" }).textContent()).toBe("hi\n");
    await page.getByText("A rerun of").waitFor();
    const rerunId = new URL(page.url()).pathname.split("/").pop()!;
    found["a command"] = await seriousViolations(page);
    await page.getByRole("link", { name: "← All commands" }).click();
    await until(() => history.getByRole("row").count()).toBe(3);

    // AI settings: a refused key said in words, a good one checked, saved, never shown again; an explanation.
    await openNav(page, "AI settings");
    await page.getByText("No key stored yet.").waitFor();
    await page.getByLabel("AI provider key").fill(`sk-bad-${unique()}`);
    await page.getByRole("button", { name: "Save key" }).click();
    await until(() => page.getByRole("alert").textContent()).toMatch(/^The AI provider refused this key\./);
    const key = `sk-test-${unique()}${unique()}`;
    await page.getByLabel("AI provider key").fill(key);
    await page.getByRole("button", { name: "Check key" }).click();
    await until(() => page.locator("main p[role=status]:not(.sr-only)").textContent()).toMatch(/^The provider accepts this key/);
    await page.getByRole("button", { name: "Save key" }).click();
    await page.getByText("Key: set").waitFor();
    expect(await page.getByLabel("AI provider key").inputValue()).toBe("");
    expect(await pageContent(page)).not.toContain(key);
    await page.reload();
    await page.getByText("Key: set").waitFor();
    expect(await pageContent(page)).not.toContain(key);
    expect(await page.content()).not.toContain(key);
    found["ai settings"] = await seriousViolations(page);

    // The AI assistant, on the stored key: a command suggested (read as the API streams it), a follow-up that keeps the conversation.
    await openNav(page, "AI assistant");
    await see(page, page.getByText("Uses your stored AI key"));
    await page.getByLabel("What do you want to do?").fill("delete log files older than a week");
    await page.getByLabel("Shell and system (optional)").fill("bash on Debian");
    const streamed = page.waitForResponse((r) => r.url().endsWith("/api/v1/ai/suggest"));
    await page.getByRole("button", { name: "Suggest", exact: true }).click();
    expect((await streamed).headers()["content-type"]).toMatch(/^text\/event-stream/);
    const suggestion = page.getByRole("region", { name: "Suggestion" });
    const SUGGESTED = "find . -name '*.log' -mtime +7 -delete";
    await until(() => suggestion.getByLabel("Suggested command").inputValue()).toBe(SUGGESTED);
    const providerSaw = async () => (await (await fetch(`${ai.url}/__last`)).json()) as { stream: boolean; messages: { role: string; content: string }[] };
    expect(await providerSaw()).toMatchObject({ stream: true, messages: expect.arrayContaining([{ role: "system", content: "The command runs in: bash on Debian" }]) });
    await suggestion.getByRole("button", { name: "Copy" }).click();
    await until(() => suggestion.getByRole("status").textContent()).toMatch(/^(Copied to the clipboard\.|Selected: press Ctrl\+C)/);
    await page.getByLabel("Ask a follow-up, or something new").fill("only in /var/log");
    await page.getByLabel("Ask a follow-up, or something new").press("Enter");
    await page.getByText("Earlier in this conversation (1)").waitFor();
    expect((await providerSaw()).messages).toEqual(
      expect.arrayContaining([
        { role: "user", content: "delete log files older than a week" },
        { role: "assistant", content: SUGGESTED },
        { role: "user", content: "only in /var/log" },
      ]),
    );

    // Completions of a partly typed command, chosen by keyboard.
    const partial = page.getByRole("combobox", { name: "Partly typed command" });
    await partial.fill("git st");
    await partial.press("Enter");
    const completions = page.getByRole("listbox", { name: "Completions" });
    await until(() => completions.getByRole("option").allTextContents()).toEqual(["git status", "git stash list", "git switch main"]);
    expect(await completions.getByRole("option", { selected: true }).textContent()).toBe("git status");
    await partial.press("ArrowDown");
    expect(await completions.getByRole("option", { selected: true }).textContent()).toBe("git stash list");
    await partial.press("Enter");
    expect(await partial.inputValue()).toBe("git stash list");
    await until(() => completions.isHidden()).toBe(true);

    // Why a command failed.
    await page.getByLabel("Command", { exact: true }).fill("cd /srv/app");
    await page.getByLabel("What it said").fill("cd: /srv/app: No such file or directory");
    await page.getByRole("button", { name: "Explain" }).click();
    await until(() => page.getByRole("region", { name: "Explanation" }).textContent()).toContain("The directory does not exist, so cd cannot enter it.");
    expect(await page.getByRole("region", { name: "Explanation" }).textContent()).toContain("mkdir -p /srv/app");
    await partial.press("Enter");
    await completions.waitFor();
    found["ai assistant"] = await seriousViolations(page);
    expect(await pageContent(page)).not.toContain(key);

    // On the Commands page, a suggestion fills the command field.
    await page.goto(`/orgs/${orgSlug}/commands`);
    await page.getByText("Not sure of the command? Ask AI").click();
    await page.getByLabel("What do you want to do?").fill("delete old logs");
    await page.getByLabel("What do you want to do?").press("Enter");
    await page.getByRole("button", { name: "Use this command" }).click();
    expect(await page.getByLabel("Command", { exact: true }).inputValue()).toBe(SUGGESTED);
    await until(() => page.getByLabel("Command", { exact: true }).evaluate((e) => e === document.activeElement)).toBe(true);

    // Devices and sync: empty; then two devices write the same command and one conflict waits.
    await openNav(page, "Devices and sync");
    await page.getByRole("heading", { name: "No devices yet" }).waitFor();
    await page.getByText("Nothing has synced yet.").waitFor();
    await page.getByText("No open conflicts: every device agrees.").waitFor();
    found["devices, empty"] = await seriousViolations(page);
    const phone = { device_id: "phone-1", device_name: "Dev's phone", device_type: "ios" };
    const laptop = { device_id: "laptop-1", device_name: "Dev's laptop", device_type: "desktop" };
    expect((await callAs(page, "POST", "/sync/data", { ...phone, commands: [{ id: "c1", command: "ls" }] })).status()).toBe(200);
    expect((await callAs(page, "POST", "/sync/data", { ...laptop, commands: [{ id: "c1", version: 1, command: "ls -la" }] })).status()).toBe(200);
    expect((await callAs(page, "POST", "/sync/data", { ...phone, commands: [{ id: "c1", version: 1, command: "ls -lh" }] })).status()).toBe(409);
    await page.reload();
    // (Listing the open conflicts is a pull, so this browser shows up as a device too.)
    const devices = page.getByRole("list", { name: "Devices" });
    await until(() => devices.textContent()).toMatch(/Dev's laptop.*Dev's phone|Dev's phone.*Dev's laptop/);
    const conflicts = page.getByRole("list", { name: "Open conflicts" });
    await until(() => conflicts.getByRole("listitem").count()).toBe(1);
    expect(await conflicts.getByRole("log", { name: "Uploaded by Dev's phone" }).textContent()).toContain('"ls -lh"');
    expect(await conflicts.getByRole("log", { name: "Stored, from Dev's laptop" }).textContent()).toContain('"ls -la"');
    found["devices, a conflict"] = await seriousViolations(page);
    await conflicts.getByRole("button", { name: "Keep the uploaded change for command c1" }).click();
    await page.getByText("No open conflicts: every device agrees.").waitFor();
    await until(() => page.locator("dt:text-is('Conflicts resolved') + dd").textContent()).toBe("1 of 1");
    const synced = await callAs(page, "GET", `/sync/data?data_types=commands&device_id=${laptop.device_id}&device_name=${encodeURIComponent(laptop.device_name)}`);
    expect(((await synced.json()) as { data: { commands: { id: string; command: string }[] } }).data.commands).toEqual([expect.objectContaining({ id: "c1", command: "ls -lh" })]);

    // Another person, in their own org, sees none of it; Dev's org is not theirs.
    const eve = await dashboard.newPage();
    const { orgSlug: eveOrg } = await signUp(eve, "Eve");
    await openNav(eve, "SSH profiles");
    await eve.getByRole("heading", { name: "No SSH profiles yet" }).waitFor();
    await eve.goto(`/orgs/${eveOrg}/commands`);
    await eve.getByText("Add an SSH profile").waitFor();
    await eve.getByText("No commands yet. Run one on a profile above").waitFor();
    await eve.goto(`/orgs/${eveOrg}/commands/${rerunId}`);
    await until(() => eve.getByRole("alert").textContent()).toMatch(/^This command is not in your history, or it is not yours\./);
    await eve.goto(`/orgs/${orgSlug}/ssh`);
    await eve.getByText("As a non-member here you cannot use SSH profiles.").waitFor();
    // No key stored: said before asking, and the failed ask leads to where a key is saved.
    await openNav(eve, "AI assistant");
    await eve.getByText("No AI key stored yet.").waitFor();
    await eve.getByLabel("What do you want to do?").fill("list files");
    await eve.getByRole("button", { name: "Suggest", exact: true }).click();
    const noKey = eve.getByRole("alert");
    await until(() => noKey.textContent()).toMatch(/^No AI key is stored yet\. Save your own key under AI settings first\./);
    await noKey.getByRole("link", { name: "Save your AI key in AI settings" }).click();
    await eve.getByRole("heading", { level: 1, name: "AI settings" }).waitFor();
    await eve.getByText("No key stored yet.").waitFor();
    // A provider that fails mid-answer: the API's message, not a blank or a 500.
    const eveKey = `sk-cut-${unique()}${unique()}`;
    await eve.getByLabel("AI provider key").fill(eveKey);
    await eve.getByRole("button", { name: "Save key" }).click();
    await eve.getByText("Key: set").waitFor();
    await openNav(eve, "AI assistant");
    await eve.getByLabel("What do you want to do?").fill("list files");
    await eve.getByRole("button", { name: "Suggest", exact: true }).click();
    await until(() => eve.getByRole("alert").textContent()).toMatch(/^The AI provider failed mid-answer\./);
    expect(await pageContent(eve)).not.toContain(eveKey);
    await openNav(eve, "Devices and sync");
    await eve.getByRole("heading", { name: "No devices yet" }).waitFor();
    expect(await pageContent(eve)).not.toContain("test sshd");

    // Dark, at phone width: no serious axe findings, nothing wider than the screen.
    const small = await dashboard.newPage({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true, storageState: await page.context().storageState() });
    await small.emulateMedia({ colorScheme: "dark" });
    const check = async (what: string, path: string, ready: (p: Page) => ReturnType<Page["getByText"]>) => {
      await small.goto(path);
      await ready(small).waitFor();
      found[what] = await seriousViolations(small);
      const overflow = await small.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      if (overflow > 0) {
        // Name what sticks out (the innermost elements past the right edge), to say what to fix.
        const past = await small.evaluate(() =>
          [...document.querySelectorAll("main *")]
            .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1 && ![...e.children].some((c) => c.getBoundingClientRect().right > document.documentElement.clientWidth + 1))
            .slice(0, 3)
            .map((e) => `${e.tagName.toLowerCase()}.${e.className}: ${(e.textContent ?? "").slice(0, 40)}`),
        );
        found[what]!.push(`page is ${overflow}px wider than the screen (${past.join("; ")})`);
      }
    };
    await check("ssh, dark phone", `/orgs/${orgSlug}/ssh`, (p) => p.getByText(HOST_KEY));
    await check("commands, dark phone", `/orgs/${orgSlug}/commands`, (p) => p.getByRole("region", { name: "Command history" }));
    await check("a command, dark phone", `/orgs/${orgSlug}/commands/${rerunId}`, (p) => p.getByText("A rerun of"));
    await check("ai settings, dark phone", "/account/ai", (p) => p.getByText("Key: set"));
    await check("ai assistant, dark phone", "/account/assistant", (p) => p.getByText("Uses your stored AI key"));
    await check("devices, dark phone", "/account/devices", (p) => p.getByRole("heading", { name: "Dev's laptop" }));
    expect(found).toEqual(Object.fromEntries(Object.keys(found).map((k) => [k, []])));

    // Neither secret reached a log: the Worker's (wrangler dev's output) or the agent's.
    for (const log of [dashboard.server.output(), agent.output()]) {
      expect(log).not.toContain(SSH_PASSWORD);
      expect(log).not.toContain(key);
      expect(log).not.toContain(eveKey);
    }
  });
});
