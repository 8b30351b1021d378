/**
 * The dashboard tests' shared parts: a real `wrangler dev` serving the SPA and the API,
 * Debian's chromium driven by Playwright, and what a person does on the pages (sign up,
 * read their mail in the dev outbox), plus axe's serious findings.
 */
import AxeBuilder from "@axe-core/playwright";
import { randomBytes } from "node:crypto";
import { type Browser, type BrowserContext, type BrowserContextOptions, chromium, type Page } from "playwright-core";
import { expect } from "vitest";
import { type DevServer, type DevServerOptions, startDevServer } from "./dev-server";

/** Debian's chromium; test/host/setup.sh installs it. */
const CHROMIUM = "/usr/bin/chromium";
export const PASSWORD = "correct horse battery";

export interface Dashboard {
  server: DevServer;
  browser: Browser;
  /** A page in a fresh browser context (its own cookies), on the server's origin. */
  newPage(options?: BrowserContextOptions): Promise<Page>;
  close(): Promise<void>;
}

/** `options` reach the dev server (e.g. `env: { AI_BASE_URL }` for a local AI provider). */
export async function openDashboard(options: DevServerOptions = {}): Promise<Dashboard> {
  const server = await startDevServer(options);
  let browser: Browser;
  try {
    // As root, chromium's sandbox cannot start; /dev/shm is small in containers.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
  } catch (err) {
    await server.stop();
    throw err;
  }
  const contexts: BrowserContext[] = [];
  return {
    server,
    browser,
    async newPage(options = {}) {
      const context = await browser.newContext({ baseURL: server.url, ...options });
      contexts.push(context);
      const page = await context.newPage();
      page.setDefaultTimeout(20_000);
      return page;
    },
    async close() {
      await browser.close();
      await server.stop();
    },
  };
}

export const unique = () => randomBytes(5).toString("hex");

/** Polls until it holds: pages answer within seconds even on a busy 2-core machine. */
export const until = <T>(read: () => Promise<T> | T) => expect.poll(read, { timeout: 20_000, interval: 200 });

/** Signs up through the page, as a person does; resolves on their projects page. */
export async function signUp(page: Page, name: string, email = `${name.toLowerCase()}-${unique()}@example.com`) {
  await page.goto("/sign-up");
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(/\/orgs\/[^/]+\/projects$/);
  const orgSlug = new URL(page.url()).pathname.split("/")[2]!;
  return { email, orgSlug };
}

export const projectCard = (page: Page, name: string) => page.getByRole("list", { name: "Projects" }).getByRole("heading", { name, exact: true });

export async function createProject(page: Page, name: string) {
  await page.getByLabel("New project name").fill(name);
  await page.getByRole("button", { name: "Create project" }).click();
  try {
    await until(() => projectCard(page, name).count()).toBe(1);
  } catch (err) {
    throw new Error(`project ${name} did not appear; the page says: ${await page.locator("body").textContent()}`, { cause: err });
  }
}

/** Serious and critical axe violations on the page as it is now, one line each. */
export async function seriousViolations(page: Page): Promise<string[]> {
  const result = await new AxeBuilder({ page }).analyze();
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

type Mail = { to: string; subject: string; text: string };

/**
 * The newest mail to `to` whose subject matches, from the dev outbox (GET /api/v1/dev/outbox,
 * served only with MAIL_TRANSPORT=outbox in development), waiting for it to arrive.
 */
export async function readMail(server: DevServer, to: string, subject: RegExp): Promise<Mail> {
  let found: Mail | undefined;
  await until(async () => {
    const res = await fetch(`${server.url}/api/v1/dev/outbox?to=${encodeURIComponent(to)}`);
    const { messages } = (await res.json()) as { messages: Mail[] };
    found = messages.find((m) => subject.test(m.subject));
    return !!found;
  }).toBe(true);
  return found!;
}

/** The path and query of the first link to this site in a mail (`/reset-password?token=…`), to open in the browser. */
export function linkIn(mail: Mail, server: DevServer, path: string): string {
  const escaped = `${server.url}${path}`.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const match = mail.text.match(new RegExp(`${escaped}\\?[^\\s]+`));
  if (!match) throw new Error(`no ${path} link in the mail "${mail.subject}"`);
  const url = new URL(match[0]);
  return `${url.pathname}${url.search}`;
}
