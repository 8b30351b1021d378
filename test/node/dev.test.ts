/**
 * What the README promises of `npm run dev`: the control plane answers, a user can sign
 * up and use their token; and what it must never do: write a password to its output.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevServer, startDevServer } from "./support/dev-server";

let server: DevServer;

beforeAll(async () => {
  server = await startDevServer();
});

afterAll(async () => {
  await server?.stop();
});

async function call(path: string, init: { method?: string; body?: unknown; token?: string } = {}) {
  const headers: Record<string, string> = {};
  if (init.body !== undefined) headers["content-type"] = "application/json";
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(`${server.url}/api/v1${path}`, {
    method: init.method ?? (init.body !== undefined ? "POST" : "GET"),
    headers,
    body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, body, text };
}

/** Waits for wrangler to flush its request log (it is written after the response). */
async function outputSettles(): Promise<string> {
  let last = "";
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const now = server.output();
    if (now === last && i >= 5) return now;
    last = now;
  }
  return server.output();
}

const unique = () => randomBytes(6).toString("hex");

describe("npm run dev", () => {
  it("answers on the system status route", async () => {
    const res = await call("/system/status");
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("ok");
  });

  it("lets a user sign up and use the token", async () => {
    const email = `ada-${unique()}@example.com`;
    const reg = await call("/auth/register", { body: { email, password: "correct horse battery", name: "Ada" } });
    expect(reg.status, reg.text).toBe(201);
    expect(typeof reg.body.token).toBe("string");
    expect(reg.body.token.length).toBeGreaterThan(10);
    expect(reg.body.user?.email).toBe(email);

    const projects = await call("/projects", { token: reg.body.token });
    expect(projects.status, projects.text).toBe(200);
    expect(Array.isArray(projects.body)).toBe(true);
    // Sign-up makes a default project in the personal org.
    expect(projects.body.map((p: any) => p.name)).toContain("My Project");

    const anonymous = await call("/projects");
    expect(anonymous.status).toBe(401);
  });
});

describe("secret hygiene", () => {
  it("never writes a password to the dev server's output", async () => {
    const email = `grace-${unique()}@example.com`;
    const password = `pw-right-${unique()}-Zq9`;
    const wrong = `pw-wrong-${unique()}-Xk7`;
    const rejected = `pw-rejected-${unique()}-Vb3`;

    const reg = await call("/auth/register", { body: { email, password, name: "Grace" } });
    expect(reg.status, reg.text).toBe(201);

    const bad = await call("/auth/login", { body: { email, password: wrong } });
    expect(bad.status, bad.text).toBe(401);
    expect(bad.body.error?.code).toBe("invalid_credentials");

    const good = await call("/auth/login", { body: { email, password } });
    expect(good.status, good.text).toBe(200);
    expect(typeof good.body.token).toBe("string");

    // Fails validation (not an email, empty name) while carrying a password.
    const invalid = await call("/auth/register", { body: { email: "not-an-email", password: rejected, name: "" } });
    expect(invalid.status, invalid.text).toBe(400);
    expect(invalid.body.error?.code).toBe("invalid_request");

    const output = await outputSettles();
    // The requests did reach this server's log, so the check below means something.
    expect(output).toMatch(/POST \/api\/v1\/auth\/login 401/);
    expect(output).toMatch(/POST \/api\/v1\/auth\/register 400/);
    for (const secret of [password, wrong, rejected]) {
      expect(output.includes(secret), `the dev server's output contains a password (${secret})`).toBe(false);
    }
  });
});
