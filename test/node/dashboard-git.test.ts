/**
 * The dashboard's git pages in a real browser against a real `wrangler dev` and the GitHub
 * stand-in (test/fake-github/server.ts): link GitHub from Git accounts (GitHub's page and
 * better-auth's callback bring the browser back), create an app from a repository picked from
 * the linked account with one of its branches, see the push webhook's secret and URL once,
 * renew the secret on the app's page (the old one refused from then on), unlink the account; axe over the pages in light and dark.
 */
import { createHmac } from "node:crypto";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAKE_GITHUB_CLIENT_ID, FAKE_GITHUB_CLIENT_SECRET, startFakeGitHub } from "../fake-github/server";
import { type Dashboard, openDashboard, seriousViolations, signUp, until } from "./support/dashboard";

let dashboard: Dashboard;
/** The webhook secret the create page showed. */
let shownSecret = "";

/** GitHub's `ping` to the app's push webhook, from outside the browser, signed with `secret` as GitHub signs (HMAC-SHA256 of the body); the status. */
async function ping(page: Page, appId: string, secret: string): Promise<number> {
  const body = JSON.stringify({ zen: "Keep it logically awesome.", hook_id: 1 });
  const signature = `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
  const res = await fetch(new URL(`/api/v1/apps/${appId}/git/webhook`, page.url()), {
    method: "POST",
    body,
    headers: { "content-type": "application/json", "x-github-event": "ping", "x-hub-signature-256": signature },
  });
  return res.status;
}
let github: Awaited<ReturnType<typeof startFakeGitHub>>;

beforeAll(async () => {
  github = await startFakeGitHub();
  dashboard = await openDashboard({ env: { GITHUB_CLIENT_ID: FAKE_GITHUB_CLIENT_ID, GITHUB_URL: github.url, GITHUB_API_URL: github.apiUrl }, secrets: { GITHUB_CLIENT_SECRET: FAKE_GITHUB_CLIENT_SECRET } });
}, 180_000);

afterAll(async () => {
  await dashboard?.close();
  await github?.close();
});

describe("git accounts and apps from git", () => {
  it("links GitHub, creates an app from a picked repository and branch, shows the webhook secret once, renews it, unlinks", { timeout: 180_000 }, async () => {
    const page = await dashboard.newPage();
    const { orgSlug } = await signUp(page, "Gitta");
    const found: Record<string, string[]> = {};

    await page.getByRole("link", { name: "Git accounts" }).click();
    await page.getByText("No account linked yet.").waitFor();
    found["light unlinked"] = await seriousViolations(page);
    await page.getByRole("button", { name: "Link GitHub" }).click();
    // GitHub's page (the stand-in signs in as octocat) and better-auth's callback bring the browser back.
    await page.waitForURL(/\/account\/git$/);
    const linked = page.getByRole("region", { name: "Linked accounts" });
    await until(() => linked.textContent()).toContain("GitHub: octocat");
    await page.emulateMedia({ colorScheme: "dark" });
    found["dark linked"] = await seriousViolations(page);
    await page.emulateMedia({ colorScheme: "light" });

    const projects = (await (await page.request.get("/api/v1/projects")).json()) as Array<{ id: string }>;
    await page.goto(`/orgs/${orgSlug}/projects/${projects[0]!.id}/apps`);
    await page.getByLabel("App name").fill("From git");
    await page.getByRole("radio", { name: /Build from git/ }).check();
    const repo = page.getByLabel("Repository", { exact: true });
    await until(() => repo.locator("option").count()).toBe(6);
    await repo.selectOption("octocat/repo-2");
    const branch = page.getByLabel("Branch");
    await until(() => branch.locator("option").allTextContents()).toEqual(["main (default)", "dev", "feature/x"]);
    await branch.selectOption("dev");
    found["light create form"] = await seriousViolations(page);
    await page.getByRole("button", { name: "Create app" }).click();

    const secret = page.getByRole("textbox", { name: "Webhook secret" });
    await secret.waitFor();
    expect(await secret.inputValue()).toMatch(/^bwh_/);
    shownSecret = await secret.inputValue();
    expect(await page.getByRole("textbox", { name: "Payload URL" }).inputValue()).toMatch(/\/api\/v1\/apps\/app_[^/]+\/git\/webhook$/);
    found["light webhook secret"] = await seriousViolations(page);
    await page.getByRole("button", { name: "I have saved it: open the app" }).click();
    await page.waitForURL(/\/apps\/app_[^/]+$/);
    const appId = new URL(page.url()).pathname.split("/").pop()!;
    const app = (await (await page.request.get(`/api/v1/apps/${appId}`)).json()) as { app: { git_repo_url: string; git_branch: string } };
    expect(app.app).toMatchObject({ git_repo_url: "octocat/repo-2", git_branch: "dev" });

    // Lost the secret: the app's page renews it, after asking, and shows the new one once.
    const firstSecret = shownSecret;
    const hook = page.getByRole("region", { name: "Push webhook" });
    expect(await hook.getByRole("textbox", { name: "Payload URL" }).inputValue()).toMatch(new RegExp(`/api/v1/apps/${appId}/git/webhook$`));
    await hook.getByRole("button", { name: "Renew webhook secret" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Renew secret" }).click();
    const renewed = page.getByRole("region", { name: "The push webhook's new secret" });
    const secondSecret = await renewed.getByRole("textbox", { name: "Webhook secret" }).inputValue();
    expect(secondSecret).toMatch(/^bwh_/);
    expect(secondSecret).not.toBe(firstSecret);
    found["light renewed secret"] = await seriousViolations(page);
    // GitHub's ping, signed with each: the old secret is refused, the new one accepted.
    expect(await ping(page, appId, firstSecret)).toBe(401);
    expect(await ping(page, appId, secondSecret)).toBe(200);
    await renewed.getByRole("button", { name: "I have put it in the webhook's settings" }).click();
    await hook.waitFor();
    expect(await page.getByRole("textbox", { name: "Webhook secret" }).count()).toBe(0);

    // A typed URL works too, without picking.
    await page.goto(`/orgs/${orgSlug}/projects/${projects[0]!.id}/apps`);
    await page.getByLabel("App name").fill("Typed git");
    await page.getByRole("radio", { name: /Build from git/ }).check();
    await page.getByLabel("Repository URL").fill("https://git.example.com/team/site.git");
    await page.getByRole("button", { name: "Create app" }).click();
    await page.getByRole("textbox", { name: "Webhook secret" }).waitFor();

    await page.goto("/account/git");
    await page.getByRole("button", { name: "Unlink github account octocat" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Unlink" }).click();
    await page.getByText("No account linked yet.").waitFor();
    expect(found).toEqual(Object.fromEntries(Object.keys(found).map((k) => [k, []])));
  });
});
