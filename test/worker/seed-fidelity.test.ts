/** Seed fidelity: each seed's existing client works by changing only the base URL. */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, signUp } from "./helpers";

describe("DevPocket's /api/ prefix", () => {
  it("serves the same routes at /api/v1/api/…", async () => {
    const user = await signUp();
    const direct = await api("/auth/login", { body: { email: user.email, password: user.password } });
    const prefixed = await api("/api/auth/login", { body: { email: user.email, password: user.password } });
    expect(direct.status).toBe(200);
    expect(prefixed.status, prefixed.text).toBe(200);
    const me = await api("/api/account", { token: user.token });
    expect(me.status, me.text).toBe(200);
    expect(me.body.account.email).toBe(user.email);
    // Errors, too, in the one envelope.
    const missing = await api("/api/no-such-route", { token: user.token });
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: "not_found", request_id: expect.any(String) });
    expect((await api("/api/account")).status).toBe(401);
  });
});

describe("Dockup stats history", () => {
  it("carries the documented field names: cpu_pct, memory_mb, net_rx_mb, net_tx_mb, created_at", async () => {
    const user = await signUp();
    const project = await api(`/org/${user.orgSlug}/projects`, { token: user.token, body: { name: "Stats" } });
    expect(project.status, project.text).toBe(201);
    const app = await api(`/projects/${project.body.project.id}/apps`, { token: user.token, body: { name: "Statty", image: "nginx:1" } });
    expect(app.status, app.text).toBe(201);
    const at = Date.now() - 30_000;
    await env.DB.prepare("INSERT INTO app_stat (app_id, at, cpu_percent, memory_mb, memory_max_mb, net_rx_bytes, net_tx_bytes) VALUES (?, ?, 12.5, 64, 256, ?, ?)")
      .bind(app.body.id, at, 2 * 1024 * 1024, 1024 * 1024)
      .run();
    const history = await api(`/apps/${app.body.id}/stats/history`, { token: user.token });
    expect(history.status, history.text).toBe(200);
    expect(history.body).toHaveLength(1);
    expect(history.body[0]).toMatchObject({ cpu_pct: 12.5, memory_mb: 64, net_rx_mb: 2, net_tx_mb: 1, created_at: new Date(at).toISOString() });
  });
});

describe("Dockup registries", () => {
  it("accepts URLs with a scheme and a path and keeps the host[:port] the agent uses", async () => {
    const owner = await signUp();
    for (const [url, host] of [["https://ghcr.io/", "ghcr.io"], ["https://registry.example.com/v2/", "registry.example.com"], ["http://127.0.0.1:5001/v2", "127.0.0.1:5001"]]) {
      const created = await api("/registries", { token: owner.token, body: { name: host, url, username: "u", password: "p" } });
      expect(created.status, created.text).toBe(201);
      expect(created.body.url).toBe(host);
    }
    const bad = await api("/registries", { token: owner.token, body: { name: "bad", url: "https://exa mple.com/v2/", username: "u", password: "p" } });
    expect(bad.status).toBe(400);
  });
});
