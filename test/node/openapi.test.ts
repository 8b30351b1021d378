/** The published API description, served by a real `wrangler dev`: valid OpenAPI 3.1, complete, and browsable. */
import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevServer, startDevServer } from "./support/dev-server";

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

let server: DevServer;
let spec: any;

beforeAll(async () => {
  server = await startDevServer();
  const res = await fetch(`${server.url}/api/v1/openapi.json`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/application\/json/);
  spec = await res.json();
});

afterAll(async () => {
  await server?.stop();
});

describe("GET /api/v1/openapi.json", () => {
  it("is a valid OpenAPI 3.1 document", async () => {
    expect(typeof spec.openapi).toBe("string");
    expect(spec.openapi.startsWith("3.1")).toBe(true);
    const validator = new Validator();
    // Pass the object, not a string: a string is taken for a file name or YAML.
    const result = await validator.validate(spec);
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 2)?.slice(0, 4000)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it("has a title, a version and a server under /api/v1", () => {
    expect(spec.info?.title).toBeTruthy();
    expect(spec.info?.version).toBeTruthy();
    expect(spec.servers?.[0]?.url).toBe(`${server.url}/api/v1`);
  });

  it("gives every path at least one operation, and every operation responses", () => {
    const paths = Object.entries<Record<string, any>>(spec.paths ?? {});
    expect(paths.length).toBeGreaterThan(0);
    const bare: string[] = [];
    const noResponses: string[] = [];
    for (const [path, item] of paths) {
      const ops = METHODS.filter((m) => item[m]);
      if (ops.length === 0) bare.push(path);
      for (const m of ops) {
        if (!item[m].responses || Object.keys(item[m].responses).length === 0) noResponses.push(`${m.toUpperCase()} ${path}`);
      }
    }
    expect(bare, "paths without operations").toEqual([]);
    expect(noResponses, "operations without responses").toEqual([]);
  });

  it("describes the routes the README lists", () => {
    const paths = spec.paths ?? {};
    expect(paths["/system/status"]?.get).toBeDefined();
    expect(paths["/auth/register"]?.post).toBeDefined();
    expect(paths["/auth/login"]?.post).toBeDefined();
    expect(paths["/projects"]?.get).toBeDefined();
    expect(paths["/projects"]?.post).toBeDefined();
    expect(paths["/org/{slug}/api-keys"]?.get).toBeDefined();
    expect(paths["/org/{slug}/api-keys"]?.post).toBeDefined();
  });
});

describe("GET /api/v1/docs", () => {
  it("serves the reference page, pointed at openapi.json", async () => {
    const res = await fetch(`${server.url}/api/v1/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toMatch(/<html/i);
    expect(html).toContain("/api/v1/openapi.json");
  });
});

describe("GET /api/v1/system/status", () => {
  it("is public and reports status, version, uptime and base domain", async () => {
    const res = await fetch(`${server.url}/api/v1/system/status`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ status: "ok", base_domain: "localhost" });
    expect(typeof body.version).toBe("string");
    expect(body.version).toBe(spec.info.version);
    expect(typeof body.uptime).toBe("number");
    expect(body.uptime).toBeGreaterThanOrEqual(0);
    // Public in the document too: an empty security requirement overrides the global one.
    expect(spec.paths["/system/status"].get.security).toEqual([]);
  });
});
