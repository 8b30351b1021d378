/**
 * wrangler.toml as `wrangler deploy` ships it: a production Worker that serves nothing
 * until its secrets and public settings are set, and never the development conveniences
 * (the mail outbox). Runs the real config under `wrangler dev` without the development
 * variables `npm run dev` adds.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { DEVELOPMENT_VARS, type DevServer, startDevServer } from "./support/dev-server";

const servers: DevServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function get(server: DevServer, path: string) {
  const res = await fetch(`${server.url}${path}`);
  const text = await res.text();
  return { status: res.status, text, body: text.startsWith("{") ? JSON.parse(text) : text };
}

describe("wrangler.toml as deployed", () => {
  it("refuses every request, naming what is missing, until the secrets and settings are set", async () => {
    const server = await startDevServer({ production: true });
    servers.push(server);
    for (const path of ["/api/v1/system/status", "/api/v1/dev/outbox", "/api/auth/get-session", "/api/v1/openapi.json"]) {
      const res = await get(server, path);
      expect(res.status, `${path}: ${res.text}`).toBe(503);
      expect(res.body.error.code).toBe("misconfigured");
    }
    const { problems } = (await get(server, "/api/v1/system/status")).body.error.details as { problems: string[] };
    for (const name of ["AUTH_SECRET", "ENCRYPTION_KEY", "PUBLIC_URL", "BASE_DOMAIN", "MAIL_FROM"]) {
      expect(problems.some((p) => p.startsWith(name)), `${name} in ${JSON.stringify(problems)}`).toBe(true);
    }
    await server.stop();
  });

  // Two control planes start one after the other (each migrations, then wrangler dev): about a
  // minute on a busy 2-core machine, more than the default test timeout allows.
  it("serves once configured, without the mail outbox, and keeps the secrets out of its answers and output", { timeout: 180_000 }, async () => {
    const authSecret = randomBytes(48).toString("base64");
    const encryptionKey = randomBytes(32).toString("base64");
    const server = await startDevServer({
      production: true,
      secrets: { AUTH_SECRET: authSecret, ENCRYPTION_KEY: encryptionKey },
      env: {
        PUBLIC_URL: "https://berth.example.com",
        BASE_DOMAIN: "apps.example.com",
        MAIL_FROM: "berth@example.com",
      },
    });
    servers.push(server);
    const status = await get(server, "/api/v1/system/status");
    expect(status.status, status.text).toBe(200);
    expect(status.body.base_domain).toBe("apps.example.com");
    const outbox = await get(server, "/api/v1/dev/outbox");
    expect(outbox.status).toBe(404);
    expect(outbox.text).not.toContain("messages");
    const doc = await get(server, "/api/v1/openapi.json");
    expect(doc.status).toBe(200);
    expect(Object.keys(doc.body.paths)).not.toContain("/dev/outbox");

    // A short session secret is refused too.
    const weak = await startDevServer({
      production: true,
      secrets: { AUTH_SECRET: "short", ENCRYPTION_KEY: encryptionKey },
      env: { PUBLIC_URL: "https://b.example.com", BASE_DOMAIN: "a.example.com", MAIL_FROM: "b@example.com" },
    });
    servers.push(weak);
    const refused = await get(weak, "/api/v1/system/status");
    expect(refused.status).toBe(503);
    expect(refused.text).toContain("AUTH_SECRET must be at least");
    expect(refused.text).not.toContain("short\"");
    await weak.stop();

    const output = server.output();
    expect(output.includes(authSecret)).toBe(false);
    expect(output.includes(encryptionKey)).toBe(false);
    await server.stop();
  });

  it("npm run dev adds exactly the development settings the tests use", () => {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { scripts: Record<string, string> };
    const passed = [...pkg.scripts.dev!.matchAll(/--var (\w+):(\S+)/g)].map((m) => [m[1], m[2]]);
    expect(Object.fromEntries(passed)).toEqual(DEVELOPMENT_VARS);
  });
});
