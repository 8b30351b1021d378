/**
 * The dashboard's account and organization pages in a real browser against a real
 * `wrangler dev`: a password reset through the dev outbox, members and invitations by
 * role, API keys shown once and working as bearers, the audit log with its filters, a host
 * enrolled and brought online (live, through its events socket) by the real agent started with the command the page shows,
 * and axe over all of it, light and dark, at phone width too.
 */
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentProcess, startAgent } from "./support/agent";
import { type Dashboard, linkIn, openDashboard, PASSWORD, readMail, seriousViolations, signUp, unique, until } from "./support/dashboard";

let dashboard: Dashboard;
const agents: AgentProcess[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  dashboard = await openDashboard();
});

afterAll(async () => {
  for (const a of agents) await a.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await dashboard?.close();
});

const newPage = (options?: Parameters<Dashboard["newPage"]>[0]) => dashboard.newPage(options);
const api = (path: string, init: RequestInit = {}) => fetch(`${dashboard.server.url}/api/v1${path}`, init);
const bearer = (secret: string) => ({ headers: { authorization: `Bearer ${secret}` } });
/** A POST with the page's session cookie, from the page's own origin (the API refuses cookie writes from elsewhere). */
const postAs = (page: Page, path: string, data: unknown) => page.request.post(`/api/v1${path}`, { data, headers: { origin: dashboard.server.url } });

/** Goes to one of the org's pages through the navigation, as a person does. */
async function openNav(page: Page, name: string) {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true }).click();
  await page.getByRole("heading", { level: 1, name }).waitFor();
}

const statusText = (page: Page) => page.locator("main [role=status]").first().textContent();
/** The page's own announcement (ui/Page.tsx), not a live badge's. */
const pageStatus = (page: Page) => page.locator("main p.sr-only[role=status]").textContent();

describe("a forgotten password", () => {
  it("is reset through the mailed link, and only the new password signs in", { timeout: 180_000 }, async () => {
    const page = await newPage();
    const { email, orgSlug } = await signUp(page, "Rae");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/sign-in$/);

    await page.getByRole("link", { name: "Forgot your password?" }).click();
    await page.getByRole("heading", { name: "Reset your password" }).waitFor();
    await page.getByLabel("Email").fill(email);
    await page.getByRole("button", { name: "Mail me a reset link" }).click();
    await until(() => page.getByRole("status").textContent()).toContain(`If ${email} has a Berth account, a link to set a new password is on its way`);

    const mail = await readMail(dashboard.server, email, /Reset your Berth password/);
    const link = linkIn(mail, dashboard.server, "/reset-password");
    await page.goto(link);
    await page.getByRole("heading", { name: "Set a new password" }).waitFor();

    // Two different passwords are caught before anything is sent.
    await page.getByLabel("New password", { exact: true }).fill("a brand new secret");
    await page.getByLabel("New password again").fill("a brand new secreT");
    await page.getByRole("button", { name: "Set new password" }).click();
    await until(() => page.getByRole("alert").textContent()).toBe("The two passwords differ. Type the same new password twice.");

    await page.getByLabel("New password again").fill("a brand new secret");
    await page.getByRole("button", { name: "Set new password" }).click();
    await page.waitForURL(/\/sign-in\?reset=true$/);
    await until(() => page.getByRole("status").textContent()).toContain("Your password was changed");

    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await until(() => page.getByRole("alert").textContent()).toMatch(/^The email or the password is wrong\./);
    await page.getByLabel("Password").fill("a brand new secret");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(new RegExp(`/orgs/${orgSlug}/projects$`));

    // The link works once.
    await page.goto(link);
    await page.getByLabel("New password", { exact: true }).fill("yet another secret");
    await page.getByLabel("New password again").fill("yet another secret");
    await page.getByRole("button", { name: "Set new password" }).click();
    await until(() => page.getByRole("alert").textContent()).toMatch(/^This reset link is invalid, already used or expired\. Ask for a new one\./);
  });
});

describe("members and invitations", () => {
  it("an owner invites a developer, who accepts from the mail and is offered only what a developer may do", { timeout: 240_000 }, async () => {
    const ada = await newPage();
    const { orgSlug } = await signUp(ada, "Ada");
    await openNav(ada, "Members");
    const people = ada.getByRole("list", { name: "Members" });
    await until(() => people.getByRole("listitem").count()).toBe(1);
    expect(await people.textContent()).toContain("owner");

    const bobEmail = `bob-${unique()}@example.com`;
    await ada.getByLabel("Email to invite").fill(bobEmail);
    await ada.getByLabel("Role", { exact: true }).selectOption("developer");
    await ada.getByRole("button", { name: "Send invitation" }).click();
    await until(() => statusText(ada)).toBe(`Invited ${bobEmail} as developer. They join when they open the link in the mail.`);
    const pending = ada.getByRole("list", { name: "Pending invitations" });
    await until(() => pending.getByRole("heading", { name: bobEmail }).count()).toBe(1);

    // A second invitation, revoked after a confirmation.
    const carolEmail = `carol-${unique()}@example.com`;
    await ada.getByLabel("Email to invite").fill(carolEmail);
    await ada.getByRole("button", { name: "Send invitation" }).click();
    await until(() => pending.getByRole("heading", { name: carolEmail }).count()).toBe(1);
    await ada.getByRole("button", { name: `Revoke the invitation to ${carolEmail}` }).click();
    const revokeDialog = ada.getByRole("dialog", { name: `Revoke the invitation to ${carolEmail}?` });
    await revokeDialog.getByRole("button", { name: "Revoke invitation" }).click();
    await until(() => pending.getByRole("heading", { name: carolEmail }).count()).toBe(0);

    // Bob has no account yet: the link in his mail asks him to sign in, he signs up
    // instead with the invited address, and comes back to the invitation.
    const bob = await newPage();
    const invitation = await readMail(dashboard.server, bobEmail, /invited/i);
    await bob.goto(linkIn(invitation, dashboard.server, "/invitations/accept"));
    await bob.waitForURL(/\/sign-in\?redirect=/);
    await bob.getByRole("link", { name: "Create an account" }).click();
    await bob.getByLabel("Name").fill("Bob");
    await bob.getByLabel("Email").fill(bobEmail);
    await bob.getByLabel("Password").fill(PASSWORD);
    await bob.getByRole("button", { name: "Create account" }).click();
    await bob.waitForURL(/\/invitations\/accept\?token=/);
    await bob.getByRole("button", { name: "Accept invitation" }).click();
    await bob.waitForURL(new RegExp(`/orgs/${orgSlug}/projects$`));
    await until(() => bob.getByTestId("org-role").textContent()).toBe("Your role: developer");
    await until(() => bob.getByLabel("Organization").locator("option:checked").textContent()).toBe("Ada (personal)");

    // As a developer: projects can be made, but members, keys and the audit log are not managed.
    await bob.getByLabel("New project name").waitFor();
    const nav = bob.getByRole("navigation", { name: "Main" });
    expect(await nav.getByRole("link", { name: "API keys" }).count()).toBe(0);
    expect(await nav.getByRole("link", { name: "Audit log" }).count()).toBe(0);
    await openNav(bob, "Members");
    await until(() => bob.getByRole("list", { name: "Members" }).getByRole("listitem").count()).toBe(2);
    expect(await bob.getByLabel("Email to invite").count()).toBe(0);
    expect(await bob.getByRole("button", { name: /^(Remove|Change role)/ }).count()).toBe(0);
    expect(await bob.locator("main").textContent()).toContain("Only owners and admins can invite people");
    // …which is what the API says too.
    const refused = await postAs(bob, `/org/${orgSlug}/invitations`, { email: `x-${unique()}@example.com`, role: "viewer" });
    expect(refused.status()).toBe(403);
    // (backlex's routes say their codes in upper case)
    expect((await refused.json()).error.code.toLowerCase()).toBe("forbidden");
    await bob.goto(`/orgs/${orgSlug}/api-keys`);
    await until(() => bob.locator("main").textContent()).toContain("Only owners and admins can see and manage this organization's API keys");
    expect(await bob.getByRole("button", { name: "Create key" }).count()).toBe(0);

    // Ada sees Bob as a developer and makes him a viewer; Bob is then not offered project creation.
    await ada.reload();
    const bobCard = ada.getByRole("list", { name: "Members" }).getByRole("listitem").filter({ hasText: bobEmail });
    await until(() => bobCard.textContent()).toContain("developer");
    await ada.getByLabel("Role of Bob", { exact: true }).selectOption("viewer");
    await ada.getByRole("button", { name: "Change role of Bob" }).click();
    await until(() => statusText(ada)).toBe("Bob is now viewer.");
    await bob.goto(`/orgs/${orgSlug}/projects`);
    await until(() => bob.getByTestId("org-role").textContent()).toBe("Your role: viewer");
    await bob.getByRole("heading", { name: "My Project" }).waitFor();
    expect(await bob.getByLabel("New project name").count()).toBe(0);

    // Removing asks first; then Bob is gone, and his view of the org with him.
    await ada.getByRole("button", { name: "Remove Bob" }).click();
    await ada.getByRole("dialog", { name: "Remove Bob?" }).getByRole("button", { name: "Remove member" }).click();
    await until(() => ada.getByRole("list", { name: "Members" }).getByRole("listitem").count()).toBe(1);
    expect((await bob.request.get(`/api/v1/org/${orgSlug}/projects`)).status()).toBe(404);
  });
});

describe("API keys", () => {
  it("shows an org key's secret once; it works as a bearer until revoked", { timeout: 180_000 }, async () => {
    const page = await newPage();
    const { orgSlug } = await signUp(page, "Kim");
    await openNav(page, "API keys");
    await until(() => page.locator(".empty").textContent()).toContain("No keys yet.");

    await page.getByLabel("Key name").fill("CI read");
    await page.getByLabel("Scope").selectOption("read-only");
    await page.getByRole("button", { name: "Create key" }).click();
    const secretField = page.getByLabel("Secret of the key CI read");
    await secretField.waitFor();
    const secret = await secretField.inputValue();
    expect(secret).toMatch(/^pak_/);
    expect(await page.locator(".secret-panel").textContent()).toContain("Copy it now: you will not see this again.");
    await until(() => page.getByRole("list", { name: "API keys" }).getByRole("heading", { name: "CI read" }).count()).toBe(1);

    const projects = await api(`/org/${orgSlug}/projects`, bearer(secret));
    expect(projects.status).toBe(200);
    expect(((await projects.json()) as { projects: { name: string }[] }).projects.map((p) => p.name)).toEqual(["My Project"]);
    // read-only: it may not create.
    const create = await api(`/org/${orgSlug}/projects`, { method: "POST", headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" }, body: '{"name":"Nope"}' });
    expect(create.status).toBe(403);

    // Once dismissed (or after a reload) the secret is nowhere on the page.
    await page.getByRole("button", { name: "I have copied it" }).click();
    await until(() => secretField.count()).toBe(0);
    await page.reload();
    await page.getByRole("list", { name: "API keys" }).getByRole("heading", { name: "CI read" }).waitFor();
    expect(await page.content()).not.toContain(secret);

    await page.getByRole("button", { name: "Revoke CI read" }).click();
    await page.getByRole("dialog", { name: "Revoke CI read?" }).getByRole("button", { name: "Revoke key" }).click();
    await until(() => page.locator(".empty").textContent()).toContain("No keys yet.");
    expect((await api(`/org/${orgSlug}/projects`, bearer(secret))).status).toBe(401);
  });

  it("does the same for a personal key", { timeout: 120_000 }, async () => {
    const page = await newPage();
    const { email } = await signUp(page, "Pat");
    await page.getByRole("link", { name: "Personal keys" }).click();
    await page.getByRole("heading", { name: "Personal API keys" }).waitFor();
    await page.getByLabel("Key name").fill("laptop");
    await page.getByRole("button", { name: "Create key" }).click();
    const secret = await page.getByLabel("Secret of the key laptop").inputValue();
    expect(secret).toMatch(/^dkp_/);
    const me = await api("/me", bearer(secret));
    expect(me.status).toBe(200);
    expect(((await me.json()) as { email: string }).email).toBe(email);

    await page.getByRole("button", { name: "Revoke laptop" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Revoke key" }).click();
    await until(() => page.getByRole("list", { name: "API keys" }).count()).toBe(0);
    expect((await api("/me", bearer(secret))).status).toBe(401);
  });
});

describe("the audit log", () => {
  it("shows what was done, narrows by action and dates, and pages", { timeout: 240_000 }, async () => {
    const page = await newPage();
    const { orgSlug } = await signUp(page, "Aud");
    await openNav(page, "Audit log");
    await until(() => page.locator(".empty").textContent()).toContain("Nothing recorded yet.");

    // Some actions through the pages…
    await openNav(page, "API keys");
    await page.getByLabel("Key name").fill("deployer");
    await page.getByLabel("Scope").selectOption("deploy");
    await page.getByRole("button", { name: "Create key" }).click();
    await page.getByLabel("Secret of the key deployer").waitFor();
    await page.getByRole("button", { name: "Revoke deployer" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Revoke key" }).click();
    await until(() => page.getByRole("list", { name: "API keys" }).count()).toBe(0);
    // …and enough projects for more than one page of them.
    for (let i = 1; i <= 27; i++) {
      const res = await postAs(page, `/org/${orgSlug}/projects`, { name: `Project ${i}` });
      expect(res.status()).toBe(201);
    }

    await openNav(page, "Audit log");
    const rows = page.getByRole("region", { name: "Audit events" }).locator("tbody tr");
    await until(() => rows.count()).toBe(25);
    const actions = () => rows.locator("td:nth-child(2)").allTextContents();
    expect(await actions()).toContain("project.create");

    await page.getByLabel("Action").selectOption("api_key.create");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await page.waitForURL(/action=api_key.create/);
    await until(actions).toEqual(["api_key.create"]);
    expect(await rows.first().textContent()).toContain("Aud");
    expect(await rows.first().textContent()).toContain("scope: deploy");

    await page.getByLabel("Action").selectOption("api_key.revoke");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await until(actions).toEqual(["api_key.revoke"]);

    // Dates: from tomorrow on there is nothing yet.
    const tomorrow = new Date(Date.now() + 36 * 3600_000).toISOString().slice(0, 10);
    await page.getByLabel("Action").selectOption("");
    await page.getByLabel("From").fill(tomorrow);
    await page.getByRole("button", { name: "Apply filters" }).click();
    await until(() => page.locator(".empty").textContent()).toContain("Nothing matches these filters.");
    await page.getByRole("link", { name: "Clear filters" }).click();

    // Pages of 25: the 27 project.create events end on page 2.
    await page.getByLabel("Action").selectOption("project.create");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await until(() => rows.count()).toBe(25);
    await page.getByRole("navigation", { name: "Audit log pages" }).getByRole("link", { name: "Older events" }).click();
    await until(() => rows.count()).toBe(2);
    expect(new Set(await actions())).toEqual(new Set(["project.create"]));
    expect(await rows.last().textContent()).toContain("name: Project 1");
    expect(await page.getByRole("link", { name: "Older events" }).count()).toBe(0);
    await page.getByRole("link", { name: "Newer events" }).click();
    await until(() => rows.count()).toBe(25);
  });
});

describe("hosts", () => {
  it("enrols a host, shows the agent command, the host comes online with its facts, and is deleted", { timeout: 240_000 }, async () => {
    const page = await newPage();
    const { orgSlug } = await signUp(page, "Hal");
    await openNav(page, "Hosts");
    await page.getByRole("heading", { name: "No hosts yet" }).waitFor();

    await page.getByLabel("Host name").fill("edge-1");
    await page.getByLabel("Kind").selectOption("docker");
    await page.getByRole("button", { name: "Enrol host" }).click();
    const commandField = page.getByLabel("Agent command for edge-1", { exact: true });
    await commandField.waitFor();
    const command = await commandField.inputValue();
    expect(command).toMatch(new RegExp(`^npm run agent -- --url ${dashboard.server.url} --join-token \\S+$`));
    const card = page.getByRole("list", { name: "Hosts" }).getByRole("listitem").filter({ hasText: "edge-1" });
    await until(() => card.textContent()).toContain("waiting for its agent");

    // The command as shown, run (with a state directory of its own and no Docker here).
    const args = command.replace(/^npm run agent -- /, "").split(" ");
    const state = mkdtempSync(join(tmpdir(), "berth-dash-agent-"));
    dirs.push(state);
    const agent = startAgent([...args, "--state-dir", state, "--docker-socket", "/nonexistent.sock"]);
    agents.push(agent);
    await agent.waitFor(/connected/, 60_000);

    // Online without a reload, with what the agent reported: told by the host's events socket
    // within seconds (the list itself is asked again only every 15 s).
    await expect.poll(() => card.locator(".status").textContent(), { timeout: 5_000, interval: 100 }).toBe("online");
    await until(() => card.locator(".facts").textContent()).toMatch(/Hostname\S+/);
    expect(await card.locator(".facts").textContent()).toMatch(/CPUs\d+/);
    await until(() => statusText(page)).toBe("edge-1 is online.");

    await page.getByRole("button", { name: "Delete edge-1" }).click();
    await page.getByRole("dialog", { name: "Delete edge-1?" }).getByRole("button", { name: "Delete host" }).click();
    await page.getByRole("heading", { name: "No hosts yet" }).waitFor();
    const hosts = await page.request.get(`/api/v1/org/${orgSlug}/hosts`);
    expect((await hosts.json()).hosts).toEqual([]);
    await agent.kill();
  });
});

describe("accessibility of the new pages (axe)", () => {
  it("finds no serious or critical violations, light at desktop width and dark at phone width", { timeout: 480_000 }, async () => {
    const found: Record<string, string[]> = {};
    for (const theme of ["light", "dark"] as const) {
      const phone = theme === "dark";
      const page = await newPage(phone ? { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true } : {});
      await page.emulateMedia({ colorScheme: theme });
      const check = async (name: string) => {
        found[`${theme} ${name}`] = await seriousViolations(page);
        if (phone) {
          // Nothing wider than the phone's screen, except inside a region that scrolls on purpose.
          const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
          if (overflow > 0) found[`${theme} ${name}`]!.push(`page is ${overflow}px wider than the screen`);
        }
      };

      await page.goto("/forgot-password");
      await page.getByRole("heading", { name: "Reset your password" }).waitFor();
      await check("forgot password");
      await page.goto("/reset-password?token=not-a-real-token");
      await page.getByRole("heading", { name: "Set a new password" }).waitFor();
      await page.getByLabel("New password", { exact: true }).fill("some new secret");
      await page.getByLabel("New password again").fill("some new secret");
      await page.getByRole("button", { name: "Set new password" }).click();
      await page.getByRole("alert").waitFor();
      await check("reset password, refused");

      const { orgSlug } = await signUp(page, theme === "light" ? "Lux" : "Nox");
      await page.goto("/invitations/accept?token=inv_not-a-real-token");
      await page.getByRole("button", { name: "Accept invitation" }).click();
      await page.getByRole("alert").waitFor();
      await check("accept invitation, refused");

      await page.goto(`/orgs/${orgSlug}/members`);
      await page.getByLabel("Email to invite").fill(`inv-${unique()}@example.com`);
      await page.getByRole("button", { name: "Send invitation" }).click();
      await page.getByRole("list", { name: "Pending invitations" }).waitFor();
      await check("members");
      await page.getByRole("button", { name: /^Revoke the invitation/ }).click();
      await page.getByRole("dialog").waitFor();
      await check("revoke question");
      await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();

      await page.goto(`/orgs/${orgSlug}/api-keys`);
      await page.getByText("No keys yet.").waitFor();
      await check("api keys, empty");
      await page.getByLabel("Key name").fill("axe");
      await page.getByRole("button", { name: "Create key" }).click();
      await page.getByLabel("Secret of the key axe").waitFor();
      await check("api keys, secret shown");

      await page.goto("/account/api-keys");
      await page.getByRole("heading", { name: "Personal API keys" }).waitFor();
      await page.getByText("No keys yet.").waitFor();
      await check("personal keys");

      await page.goto(`/orgs/${orgSlug}/audit`);
      await page.getByRole("region", { name: "Audit events" }).waitFor();
      await check("audit log");

      await page.goto(`/orgs/${orgSlug}/hosts`);
      await page.getByRole("heading", { name: "No hosts yet" }).waitFor();
      await check("hosts, empty");
      await page.getByLabel("Host name").fill("axe-host");
      await page.getByRole("button", { name: "Enrol host" }).click();
      await page.getByLabel("Agent command for axe-host", { exact: true }).waitFor();
      await page.getByRole("list", { name: "Hosts" }).waitFor();
      await check("hosts, enrolled");
    }
    expect(Object.keys(found).length).toBe(22);
    expect(Object.fromEntries(Object.entries(found).filter(([, v]) => v.length))).toEqual({});
  });
});

describe("webhooks and notifications", () => {
  it("adds a webhook with its secret shown once, sends a signed test the receiver verifies, shows the delivery, and deletes it", { timeout: 180_000 }, async () => {
    // A receiver on loopback, as a team's own service would be.
    const got: Array<{ event?: string; signature?: string; body: string }> = [];
    const receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c)).on("end", () => {
        got.push({ event: req.headers["x-berth-event"] as string, signature: req.headers["x-berth-signature-256"] as string, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/berth`;
    try {
      const page = await newPage();
      await signUp(page, "Wes");
      await openNav(page, "Webhooks");
      await page.getByText("No webhooks yet.").waitFor();
      expect(await seriousViolations(page)).toEqual([]);

      await page.getByLabel("Payload URL").fill(hookUrl);
      await page.getByRole("button", { name: "Add webhook" }).click();
      const secretField = page.getByLabel(`Signing secret of the webhook to ${hookUrl}`);
      await secretField.waitFor();
      const secret = await secretField.inputValue();
      expect(secret).toMatch(/^whsec_[0-9a-f]{64}$/);
      const card = page.getByRole("list", { name: "Webhooks" }).getByRole("listitem");
      await until(() => card.textContent()).toContain("deployment.failed");
      await page.getByRole("button", { name: "I have copied it" }).click();
      await until(() => secretField.count()).toBe(0);
      expect(await page.content()).not.toContain(secret);

      await page.getByRole("button", { name: `Send test to ${hookUrl}` }).click();
      await until(() => got.length).toBe(1);
      expect(got[0]!.event).toBe("webhook.test");
      expect(got[0]!.signature).toBe(`sha256=${createHmac("sha256", secret).update(got[0]!.body).digest("hex")}`);
      const table = page.getByRole("table", { name: "Recent deliveries" });
      await until(() => table.textContent()).toContain("delivered");
      expect(await table.textContent()).toContain("HTTP 204");
      expect(await seriousViolations(page)).toEqual([]);

      await openNav(page, "Notifications");
      await page.getByText("Nothing to tell you yet.").waitFor();
      expect(await seriousViolations(page)).toEqual([]);

      // Dark, at phone width: no violations and nothing wider than the screen.
      await page.setViewportSize({ width: 375, height: 740 });
      await page.emulateMedia({ colorScheme: "dark" });
      for (const [path, ready] of [
        ["webhooks", () => page.getByRole("table", { name: "Recent deliveries" }).waitFor()],
        ["notifications", () => page.getByText("Nothing to tell you yet.").waitFor()],
      ] as const) {
        await page.goto(new URL(page.url()).pathname.replace(/\/[^/]+$/, `/${path}`));
        await ready();
        expect(await seriousViolations(page), path).toEqual([]);
        expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth), path).toBeLessThanOrEqual(0);
      }
      await page.setViewportSize({ width: 1280, height: 800 });

      await openNav(page, "Webhooks");
      await page.getByRole("button", { name: `Delete the webhook to ${hookUrl}` }).click();
      await page.getByRole("dialog", { name: "Delete this webhook?" }).getByRole("button", { name: "Delete webhook" }).click();
      await page.getByText("No webhooks yet.").waitFor();
    } finally {
      receiver.close();
    }
  });
});

describe("an app's volumes and scaling", () => {
  it("attaches a volume (a bad path refused by field), detaches it keeping the data; saves autoscale and sleep settings (min above max refused) that persist; axe light and dark at phone width", { timeout: 240_000 }, async () => {
    const page = await newPage();
    const { orgSlug } = await signUp(page, "Vol");
    await page.getByRole("link", { name: "Apps of My Project" }).click();
    await page.getByLabel("App name").fill(`Store ${unique()}`);
    await page.getByLabel("Image").fill("127.0.0.1:5000/berth/hello:v1");
    await page.getByLabel("Port it listens on").fill("8080");
    await page.getByRole("button", { name: "Create app" }).click();
    await page.waitForURL(/\/apps\/app_[^/]+$/);
    const appId = new URL(page.url()).pathname.split("/").at(-1)!;

    // Volumes: none, a refused path shown beside its field, then one attached and listed.
    const volumes = page.getByRole("region", { name: "Volumes" });
    await volumes.getByText("No volumes: the app keeps nothing across deploys.").waitFor();
    const attach = page.getByRole("form", { name: "Attach a volume" });
    await attach.getByLabel("Mount path").fill("/proc/data");
    await attach.getByRole("button", { name: "Attach volume" }).click();
    const mountPath = attach.getByLabel("Mount path");
    await until(() => mountPath.getAttribute("aria-invalid")).toBe("true");
    expect(await mountPath.evaluate((el) => el.getAttribute("aria-describedby")?.split(" ").map((id) => document.getElementById(id)?.textContent))).toContain(
      "cannot be /proc, /sys, /dev or under them",
    );
    await mountPath.fill("/data");
    await attach.getByLabel("Size (MB)").fill("256");
    await attach.getByRole("button", { name: "Attach volume" }).click();
    await until(() => pageStatus(page)).toMatch(/^Volume attached at \/data\. Redeploy .* to mount it\.$/);
    const rows = volumes.getByRole("table").getByRole("row");
    await until(() => rows.count()).toBe(2);
    expect(await rows.nth(1).textContent()).toMatch(new RegExp(`^/databerth-vol-${appId}-\\d+256 MBnot measured yet`));
    expect(await attach.getByLabel("Mount path").getAttribute("aria-invalid")).toBeNull();
    // The same path again: the API's 409 in words.
    await attach.getByLabel("Mount path").fill("/data");
    await attach.getByRole("button", { name: "Attach volume" }).click();
    await until(() => volumes.getByRole("alert").count()).toBe(1);

    // Scaling: min above max refused beside the minimum; valid values saved and there after a reload.
    const scaling = page.getByRole("region", { name: "Replicas, autoscale and sleep" });
    expect(await scaling.textContent()).toContain("must answer GET / with a status below 400");
    const form = page.getByRole("form", { name: "Scaling settings" });
    expect(await form.getByLabel("Sleep after (minutes idle)").inputValue()).toBe("0");
    await form.getByLabel("Minimum replicas").fill("2");
    await form.getByLabel("Maximum replicas").fill("1");
    await form.getByRole("button", { name: "Save scaling" }).click();
    const minimum = form.getByLabel("Minimum replicas");
    await until(() => minimum.getAttribute("aria-invalid")).toBe("true");
    expect(await form.textContent()).toContain("must not exceed max_replicas");
    await form.getByLabel("Autoscale on CPU").check();
    await form.getByLabel("CPU threshold (%)").fill("65");
    await form.getByLabel("Maximum replicas").fill("3");
    await form.getByLabel("Cool-down (seconds)").fill("120");
    await form.getByLabel("Sleep after (minutes idle)").fill("15");
    await form.getByRole("button", { name: "Save scaling" }).click();
    await until(() => pageStatus(page)).toMatch(/^Scaling of .* saved: autoscale on, 2 to 3 replicas; sleep after 15 minutes idle\.$/);
    const stored = await (await page.request.get(`/api/v1/apps/${appId}/autoscale`)).json();
    expect(stored).toMatchObject({ enabled: true, cpu_threshold: 65, min_replicas: 2, max_replicas: 3, cooldown_seconds: 120, sleep_after_minutes: 15, sleeping: false });
    await page.reload();
    await form.getByLabel("Minimum replicas").waitFor();
    expect(await form.getByLabel("Autoscale on CPU").isChecked()).toBe(true);
    expect(
      await Promise.all(["CPU threshold (%)", "Minimum replicas", "Maximum replicas", "Cool-down (seconds)", "Sleep after (minutes idle)"].map((l) => form.getByLabel(l).inputValue())),
    ).toEqual(["65", "2", "3", "120", "15"]);
    expect(await minimum.getAttribute("aria-invalid")).toBeNull();
    expect(await scaling.locator("dl").first().textContent()).toMatch(/^Replicas2Runningnot reported yetScalingnoAsleepnoLast requestnever$/);

    // Axe with the volume listed and an error shown, light at desktop width, then dark at phone width.
    await attach.getByLabel("Mount path").fill("relative");
    await attach.getByRole("button", { name: "Attach volume" }).click();
    await until(() => attach.getByLabel("Mount path").getAttribute("aria-invalid")).toBe("true");
    expect(await seriousViolations(page), "light").toEqual([]);
    await page.setViewportSize({ width: 375, height: 740 });
    await page.emulateMedia({ colorScheme: "dark" });
    expect(await seriousViolations(page), "dark, phone").toEqual([]);
    expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBeLessThanOrEqual(0);

    // Detach, after a question that says the data stays.
    await volumes.getByRole("button", { name: "Detach the volume at /data" }).click();
    const dialog = page.getByRole("dialog", { name: "Detach the volume at /data?" });
    expect(await dialog.textContent()).toContain("its data are kept on the host");
    expect(await seriousViolations(page), "detach question").toEqual([]);
    await dialog.getByRole("button", { name: "Detach volume" }).click();
    await until(() => pageStatus(page)).toMatch(/^Volume at \/data detached; its data is kept on the host\./);
    await volumes.getByText("No volumes: the app keeps nothing across deploys.").waitFor();
    expect(await (await page.request.get(`/api/v1/apps/${appId}/volumes`)).json()).toEqual([]);

    // A viewer sees the settings and the volumes, and nothing to change them with.
    const viewerEmail = `val-${unique()}@example.com`;
    expect((await postAs(page, `/org/${orgSlug}/invitations`, { email: viewerEmail, role: "viewer" })).status()).toBe(201);
    const viewer = await newPage();
    await signUp(viewer, "Val", viewerEmail);
    await viewer.goto(linkIn(await readMail(dashboard.server, viewerEmail, /invited/i), dashboard.server, "/invitations/accept"));
    await viewer.getByRole("button", { name: "Accept invitation" }).click();
    await viewer.waitForURL(new RegExp(`/orgs/${orgSlug}/projects$`));
    await viewer.goto(new URL(page.url()).pathname);
    const seen = viewer.getByRole("region", { name: "Replicas, autoscale and sleep" });
    await until(() => seen.locator("dl").nth(1).textContent()).toBe("AutoscaleonCPU threshold65 %Replicas2 to 3Cool-down120 sSleep after15 minutes idle");
    await viewer.getByRole("region", { name: "Volumes" }).getByText("No volumes: the app keeps nothing across deploys.").waitFor();
    expect(await viewer.getByRole("form").count()).toBe(0);
    expect(await viewer.locator("main input, main button.danger-outline").count()).toBe(0);
  });
});
