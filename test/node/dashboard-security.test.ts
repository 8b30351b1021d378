/**
 * The dashboard's two-factor sign-in in a real browser against a real `wrangler dev`: turn it
 * on from Sign-in security (secret, setup link, backup codes, confirm with a code), sign out,
 * sign in again with the password and then the code (a wrong code refused), use a backup
 * code, turn it off; axe over each step in light and dark. Codes are computed as an
 * authenticator app would, with the library better-auth's plugin uses.
 */
import { base32 } from "@better-auth/utils/base32";
import { createOTP } from "@better-auth/utils/otp";
import { renderSVG } from "uqr";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Dashboard, openDashboard, PASSWORD, seriousViolations, signUp, until } from "./support/dashboard";

let dashboard: Dashboard;

beforeAll(async () => {
  dashboard = await openDashboard();
}, 180_000);

afterAll(async () => {
  await dashboard?.close();
});

const otpOf = (secret: string) => createOTP(base32.decode(secret), { digits: 6, period: 30 });
const codeOf = (secret: string) => otpOf(secret).totp();
/** A six-digit code that is none of the current, previous or next window's. */
async function wrongCodeOf(secret: string) {
  const step = Math.floor(Date.now() / 30_000);
  const near = new Set(await Promise.all([step - 1, step, step + 1].map((n) => otpOf(secret).hotp(n))));
  for (let i = 1; ; i++) {
    const candidate = String((Number(await codeOf(secret)) + i) % 1_000_000).padStart(6, "0");
    if (!near.has(candidate)) return candidate;
  }
}

async function signOutAndIn(page: Page, email: string) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/sign-in/);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function both(page: Page, found: Record<string, string[]>, name: string) {
  found[`light ${name}`] = await seriousViolations(page);
  await page.emulateMedia({ colorScheme: "dark" });
  found[`dark ${name}`] = await seriousViolations(page);
  await page.emulateMedia({ colorScheme: "light" });
}

describe("two-factor sign-in in the dashboard", () => {
  it("turns it on with a code, then signing in asks for the code (or a backup code), and turns it off", { timeout: 180_000 }, async () => {
    const page = await dashboard.newPage();
    const { email, orgSlug } = await signUp(page, "Tess");
    const found: Record<string, string[]> = {};

    await page.getByRole("link", { name: "Security" }).click();
    await page.waitForURL(/\/account\/security$/);
    const section = page.getByRole("region", { name: "Two-factor sign-in" });
    await until(() => section.textContent()).toContain("Off.");
    await both(page, found, "off");
    await page.getByRole("button", { name: "Set up two-factor sign-in" }).click();
    const secretField = page.getByRole("textbox", { name: "Secret key" });
    await secretField.waitFor();
    const secret = await secretField.inputValue();
    expect(secret).toMatch(/^[A-Z2-7]+=*$/);
    const setupLink = await page.getByRole("textbox", { name: "Setup link (otpauth://)" }).inputValue();
    expect(setupLink).toContain(`secret=${secret}`);
    // The QR code is the setup link's: the same encoding of the same text, shown as an image with words for screen readers.
    const qr = page.getByRole("img", { name: "QR code of the setup link, for your authenticator app to scan" });
    const qrSvg = decodeURIComponent((await qr.getAttribute("src"))!.replace(/^data:image\/svg\+xml;charset=utf-8,/, ""));
    expect(qrSvg).toBe(renderSVG(setupLink, { border: 2 }));
    expect(await qr.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
    const backupCodes = (await page.getByRole("textbox", { name: "Backup codes" }).inputValue()).split("\n");
    expect(backupCodes).toHaveLength(10);
    await both(page, found, "enrolling");
    // A wrong code: refused in words, still off.
    await page.getByLabel("6-digit code from your app").fill(await wrongCodeOf(secret));
    await page.getByRole("button", { name: "Turn on two-factor sign-in" }).click();
    await page.getByRole("alert").filter({ hasText: /code/i }).waitFor();
    await page.getByLabel("6-digit code from your app").fill(await codeOf(secret));
    await page.getByRole("button", { name: "Turn on two-factor sign-in" }).click();
    await until(() => section.textContent()).toContain("On.");
    expect(await page.getByRole("textbox", { name: "Secret key" }).count()).toBe(0);
    await both(page, found, "on");

    // Signing in: the password, then the code.
    await signOutAndIn(page, email);
    await page.getByRole("heading", { name: "Enter your sign-in code" }).waitFor();
    expect(new URL(page.url()).pathname).toBe("/sign-in");
    const session = await (await page.request.get("/api/auth/get-session")).json();
    expect(session).toBeNull();
    await both(page, found, "code step");
    await page.getByLabel("Code").fill(await wrongCodeOf(secret));
    await page.getByRole("button", { name: "Verify" }).click();
    await page.getByRole("alert").waitFor();
    expect(new URL(page.url()).pathname).toBe("/sign-in");
    await page.getByLabel("Code").fill(await codeOf(secret));
    await page.getByRole("button", { name: "Verify" }).click();
    await page.waitForURL(new RegExp(`/orgs/${orgSlug}/projects$`));

    // A backup code signs in instead.
    await signOutAndIn(page, email);
    await page.getByLabel("Code").fill(backupCodes[0]!);
    await page.getByRole("button", { name: "Verify" }).click();
    await page.waitForURL(new RegExp(`/orgs/${orgSlug}/projects$`));

    // Off again, with a code: the password alone signs in.
    await page.goto("/account/security");
    await until(() => section.textContent()).toContain("On.");
    await page.getByLabel("Current code from your app").fill(await codeOf(secret));
    await page.getByRole("button", { name: "Turn off two-factor sign-in" }).click();
    await until(() => section.textContent()).toContain("Off.");
    await signOutAndIn(page, email);
    await page.waitForURL(new RegExp(`/orgs/${orgSlug}/projects$`));
    expect(found).toEqual(Object.fromEntries(Object.keys(found).map((k) => [k, []])));
  });
});
