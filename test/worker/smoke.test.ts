import { exports } from "cloudflare:workers";
import { expect, it } from "vitest";

it("serves system status", async () => {
  const res = await exports.default.fetch("http://x/api/v1/system/status");
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ status: "ok", base_domain: "localhost" });
});

it("registers and reads me", async () => {
  const res = await exports.default.fetch("http://x/api/v1/auth/register", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "a@example.com", password: "correct horse", name: "Ada" }),
  });
  const body = await res.json() as any;
  expect(res.status, JSON.stringify(body)).toBe(201);
  const me = await exports.default.fetch("http://x/api/v1/auth/me", { headers: { authorization: `Bearer ${body.token}` } });
  expect(me.status).toBe(200);
  expect(await me.json()).toMatchObject({ email: "a@example.com" });
});
