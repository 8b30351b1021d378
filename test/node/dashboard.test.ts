/**
 * The dashboard in a real browser (Debian's chromium, driven by Playwright) against a real
 * `wrangler dev` serving both the SPA and the API: what a person does, what another person
 * can see, accessibility (axe), the first load's JavaScript budget, and the generated API
 * client kept in step with the live OpenAPI document.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DevServer } from "./support/dev-server";
import { createProject, type Dashboard, openDashboard, PASSWORD, projectCard, seriousViolations, signUp, unique, until } from "./support/dashboard";

/** The budget for the JavaScript of the first page load, gzipped. */
const FIRST_LOAD_JS_BUDGET = 200 * 1024;

let dashboard: Dashboard;
let server: DevServer;

beforeAll(async () => {
  dashboard = await openDashboard();
  server = dashboard.server;
});

afterAll(async () => {
  await dashboard?.close();
});

const newPage = () => dashboard.newPage();

describe("the Worker serves the dashboard", () => {
  it("answers the SPA at / and at client routes, while /api/* stays the API", async () => {
    const home = await fetch(`${server.url}/`);
    expect(home.status).toBe(200);
    expect(home.headers.get("content-type")).toMatch(/text\/html/);
    const html = await home.text();
    expect(html).toContain('<div id="root">');

    // A page of the SPA opened directly (a bookmark, a reload) gets the same document.
    const deep = await fetch(`${server.url}/orgs/someone/projects`, { headers: { "sec-fetch-mode": "navigate", accept: "text/html" } });
    expect(deep.status).toBe(200);
    expect(await deep.text()).toBe(html);

    // The API is never swallowed by the SPA fallback, even when a browser navigates to it.
    const missing = await fetch(`${server.url}/api/v1/no-such-route`, { headers: { "sec-fetch-mode": "navigate", accept: "text/html" } });
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.code).toBe("not_found");
    const status = await fetch(`${server.url}/api/v1/system/status`);
    expect((await status.json()).status).toBe("ok");
  });
});

describe("a person in the browser", () => {
  it("signs up, sees the default project, creates, renames and deletes a project, signs out and back in", { timeout: 180_000 }, async () => {
    const page = await newPage();
    const { email, orgSlug } = await signUp(page, "Ada");

    // Sign-up made a personal org with the default project, and the switcher shows it.
    await until(() => projectCard(page, "My Project").count()).toBe(1);
    await until(() => page.getByLabel("Organization").locator("option:checked").textContent()).toContain("(personal)");

    await createProject(page, "Billing API");
    await until(() => page.getByRole("status").textContent()).toBe("Created project Billing API.");

    // The API's refusal, in words, with the field it is about.
    await page.getByLabel("New project name").fill("x");
    await page.getByRole("button", { name: "Create project" }).click();
    const refusal = page.getByRole("alert");
    await until(() => refusal.textContent()).toMatch(/^Please check the form: name .+/);
    await until(() => refusal.textContent()).toMatch(/Reference: \S+/);

    await page.getByRole("button", { name: "Rename Billing API" }).click();
    await page.getByLabel("New name for Billing API").fill("Billing service");
    await page.getByRole("button", { name: "Save" }).click();
    await until(() => projectCard(page, "Billing service").count()).toBe(1);
    await page.reload();
    await until(() => projectCard(page, "Billing service").count()).toBe(1);
    expect(await projectCard(page, "Billing API").count()).toBe(0);

    // Delete asks first; by keyboard: Enter opens the question with Cancel focused, Escape
    // closes it without deleting and gives the focus back.
    const deleteButton = page.getByRole("button", { name: "Delete Billing service" });
    await deleteButton.focus();
    await page.keyboard.press("Enter");
    const dialog = page.getByRole("dialog", { name: "Delete Billing service?" });
    await dialog.waitFor();
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Cancel");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
    expect(await deleteButton.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await projectCard(page, "Billing service").count()).toBe(1);

    await deleteButton.click();
    await dialog.getByRole("button", { name: "Delete project" }).click();
    await until(() => projectCard(page, "Billing service").count()).toBe(0);
    await page.reload();
    await until(() => projectCard(page, "My Project").count()).toBe(1);
    expect(await projectCard(page, "Billing service").count()).toBe(0);
    // The API agrees (the page's own cookie).
    const listed = await page.request.get(`/api/v1/org/${orgSlug}/projects`);
    expect((await listed.json()).projects.map((p: { name: string }) => p.name)).toEqual(["My Project"]);

    // Signed out, a page of the dashboard asks to sign in, and sign-in returns there.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/sign-in$/);
    expect((await page.request.get(`/api/v1/org/${orgSlug}/projects`)).status()).toBe(401);
    await page.goto(`/orgs/${orgSlug}/projects`);
    await page.waitForURL(/\/sign-in\?redirect=/);

    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await until(() => page.getByRole("alert").textContent()).toMatch(/^The email or the password is wrong\./);

    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(new RegExp(`/orgs/${orgSlug}/projects$`));
    await until(() => projectCard(page, "My Project").count()).toBe(1);
  });

  it("shows another person none of it", { timeout: 180_000 }, async () => {
    const ada = await newPage();
    const { orgSlug: adaOrg } = await signUp(ada, "Ada");
    await createProject(ada, "Secret plans");

    const bob = await newPage();
    const { orgSlug: bobOrg } = await signUp(bob, "Bob");
    await until(() => projectCard(bob, "My Project").count()).toBe(1);
    expect(await projectCard(bob, "Secret plans").count()).toBe(0);
    await until(() => bob.getByLabel("Organization").locator("option").allTextContents()).toEqual(["Bob (personal)"]);

    // Ada's org by its address: nothing of it shows, and the page says so in words.
    await bob.goto(`/orgs/${adaOrg}/projects`);
    await until(() => bob.getByRole("alert").textContent()).toMatch(/^This does not exist, or you do not have access to it\.Reference: \S+$/);
    expect(await bob.getByRole("heading", { name: "Secret plans" }).count()).toBe(0);
    expect((await bob.request.get(`/api/v1/org/${adaOrg}/projects`)).status()).toBe(404);

    // And Ada still sees only her own org.
    await ada.reload();
    await until(() => ada.getByLabel("Organization").locator("option").allTextContents()).toEqual(["Ada (personal)"]);
    expect(adaOrg).not.toBe(bobOrg);
  });

  it("says what to do next when an org has no projects, and keeps the theme chosen", { timeout: 120_000 }, async () => {
    const page = await newPage();
    await signUp(page, "Cy");
    await page.getByRole("button", { name: "Delete My Project" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete project" }).click();
    const empty = page.getByRole("heading", { name: "No projects yet" });
    await empty.waitFor();
    expect(await page.locator(".empty").textContent()).toContain("Name your first one above and press Create project.");

    await page.getByLabel("Theme").selectOption("dark");
    await page.reload();
    await empty.waitFor();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe("dark");
    expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe("rgb(17, 19, 24)");
  });
});

describe("accessibility (axe)", () => {
  it("finds no serious or critical violations on any page, light or dark", { timeout: 420_000 }, async () => {
    const found: Record<string, string[]> = {};
    for (const theme of ["light", "dark"] as const) {
      const page = await newPage();
      await page.emulateMedia({ colorScheme: theme });
      const check = async (name: string) => {
        found[`${theme} ${name}`] = await seriousViolations(page);
      };

      await page.goto("/sign-in");
      await page.getByRole("heading", { name: "Sign in to Berth" }).waitFor();
      await check("sign in");
      await page.getByLabel("Email").fill(`nobody-${unique()}@example.com`);
      await page.getByLabel("Password").fill("wrong password");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("alert").waitFor();
      await check("sign in with an error");

      await page.goto("/no-such-page");
      await page.getByRole("heading", { name: "Page not found" }).waitFor();
      await check("not found");

      await signUp(page, theme === "light" ? "Lia" : "Dan").catch(async (e) => {
        throw new Error(`sign-up failed: ${e}`);
      });
      await projectCard(page, "My Project").waitFor();
      await check("projects");
      await page.getByRole("button", { name: "Rename My Project" }).click();
      await check("projects, renaming");
      await page.getByRole("button", { name: "Cancel" }).click();
      await page.getByRole("button", { name: "Delete My Project" }).click();
      await page.getByRole("dialog").waitFor();
      await check("delete question");
      await page.getByRole("dialog").getByRole("button", { name: "Delete project" }).click();
      await page.getByRole("heading", { name: "No projects yet" }).waitFor();
      await check("projects, empty");

      await page.getByRole("button", { name: "Sign out" }).click();
      await page.goto("/sign-up");
      await page.getByRole("heading", { name: "Create your Berth account" }).waitFor();
      await check("sign up");
    }
    expect(Object.keys(found).length).toBe(16);
    expect(Object.fromEntries(Object.entries(found).filter(([, v]) => v.length))).toEqual({});
  });
});

describe("size budget", () => {
  it(`loads under ${FIRST_LOAD_JS_BUDGET / 1024} KB of JavaScript, gzipped, on the first visit`, { timeout: 120_000 }, async () => {
    const page = await newPage();
    const scripts = new Map<string, number>();
    page.on("response", async (res) => {
      if (res.request().resourceType() !== "script") return;
      const body = await res.body().catch(() => Buffer.alloc(0));
      scripts.set(res.url(), gzipSync(body, { level: 9 }).length);
    });
    // A first visit: the sign-in page, then signing up leads into the projects page.
    await signUp(page, "Eve");
    await projectCard(page, "My Project").waitFor();
    await page.waitForLoadState("networkidle");
    const total = [...scripts.values()].reduce((a, b) => a + b, 0);
    console.log(`dashboard first load: ${scripts.size} script(s), ${(total / 1024).toFixed(1)} KB gzipped (budget ${FIRST_LOAD_JS_BUDGET / 1024} KB)`);
    expect(scripts.size).toBeGreaterThan(0);
    expect(total).toBeLessThan(FIRST_LOAD_JS_BUDGET);
  });
});

describe("the generated API client", () => {
  const script = fileURLToPath(new URL("../../src/web/scripts/api-types.ts", import.meta.url));
  const runCheck = (from: string) => spawnSync(process.execPath, [script, "--check", "--from", from], { encoding: "utf8", timeout: 60_000 });

  it("matches the live OpenAPI document (else: npm run api:types)", () => {
    const res = runCheck(`${server.url}/api/v1/openapi.json`);
    expect(res.status, `${res.stdout}${res.stderr}`).toBe(0);
  });

  it("is caught when the document changes", async () => {
    const doc = await (await fetch(`${server.url}/api/v1/openapi.json`)).json();
    doc.paths["/drift-probe"] = { get: { responses: { 200: { description: "ok" } } } };
    const file = join(mkdtempSync(join(tmpdir(), "berth-openapi-")), "openapi.json");
    writeFileSync(file, JSON.stringify(doc));
    const res = runCheck(file);
    expect(res.status).toBe(1);
    expect(res.stderr).toContain("npm run api:types");
  });
});
