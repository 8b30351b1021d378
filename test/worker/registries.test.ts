/** Private registries: write-only passwords, per-org, and handed to the agent only for the deploy that needs them. */
import { describe, expect, it } from "vitest";
import { api, createOrgKey, env, orgWithEveryRole, signUp } from "./helpers";

const PRIVATE_IMAGE = "127.0.0.1:5001/berth/private:v1";

describe("registries", () => {
  it("adds, lists and removes an org's registry without ever showing the password", async () => {
    const owner = await signUp();
    const created = await api("/registries", { token: owner.token, body: { name: "private", url: "http://127.0.0.1:5001/", username: "berth", password: "registry-pass-123" } });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ name: "private", url: "127.0.0.1:5001", username: "berth", has_password: true });
    expect(created.text).not.toContain("registry-pass-123");

    const list = await api("/registries", { token: owner.token });
    expect(list.status).toBe(200);
    expect(list.body.map((r: any) => r.id)).toEqual([created.body.id]);
    expect(list.text).not.toContain("registry-pass-123");

    // Stored encrypted, and the audit log names the registry, not the password.
    const stored = await env.DB.prepare("SELECT * FROM registry WHERE id = ?").bind(created.body.id).first<Record<string, unknown>>();
    expect(JSON.stringify(stored)).not.toContain("registry-pass-123");
    const audit = await api(`/org/${owner.orgSlug}/audit?action=registry.create`, { token: owner.token });
    expect(audit.body.events).toHaveLength(1);
    expect(audit.text).not.toContain("registry-pass-123");

    const again = await api("/registries", { token: owner.token, body: { name: "dup", url: "127.0.0.1:5001", username: "x", password: "y" } });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("registry_exists");

    expect((await api(`/registries/${created.body.id}`, { token: owner.token, method: "DELETE" })).status).toBe(200);
    expect((await api("/registries", { token: owner.token })).body).toEqual([]);
    expect((await api(`/registries/${created.body.id}`, { token: owner.token, method: "DELETE" })).status).toBe(404);
  });

  it("validates input", async () => {
    const owner = await signUp();
    for (const body of [{ name: "x" }, { name: "x", url: "not a host" }, { name: "", url: "ghcr.io" }, { name: "x", url: "ghcr.io", password: 5 }]) {
      const res = await api("/registries", { token: owner.token, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe("invalid_request");
    }
    expect((await api("/registries")).status).toBe(401);
  });

  it("lets only owners and admins (and full keys) manage, and other orgs see nothing", async () => {
    const t = await orgWithEveryRole();
    const made = await api("/registries", { token: t.admin.token, body: { name: "ghcr", url: "ghcr.io", username: "u", password: "p", org: t.slug } });
    expect(made.status, made.text).toBe(201);
    expect((await api("/registries", { token: t.developer.token, body: { name: "n", url: "quay.io", org: t.slug } })).status).toBe(403);
    expect((await api(`/registries?org=${t.slug}`, { token: t.viewer.token })).body).toHaveLength(1);
    const ro = await createOrgKey(t.owner, t.slug, "read-only");
    expect((await api("/registries", { token: ro.key, body: { name: "n", url: "quay.io" } })).status).toBe(403);
    expect((await api(`/registries/${made.body.id}`, { token: t.viewer.token, method: "DELETE" })).status).toBe(403);

    const outsider = await signUp();
    expect((await api(`/registries?org=${t.slug}`, { token: outsider.token })).status).toBe(404);
    expect((await api(`/registries/${made.body.id}`, { token: outsider.token, method: "DELETE" })).status).toBe(404);
    expect((await api("/registries", { token: outsider.token })).body).toEqual([]);
  });

  it("hands the credentials to the agent for a deploy of an image from that registry, and only then", async () => {
    const owner = await signUp();
    const host = await api(`/org/${owner.orgSlug}/hosts`, { token: owner.token, body: { name: "box", kind: "docker" } });
    const joined = await api("/agent/join", { body: { join_token: host.body.join_token, agent_version: "test", facts: { cpus: 2, memory_bytes: 4 * 1024 ** 3 } } });
    const credential = joined.body.credential as string;
    await api("/registries", { token: owner.token, body: { name: "private", url: "127.0.0.1:5001", username: "berth", password: "registry-pass-123" } });

    const privateApp = await api(`/projects/${owner.projectId}/apps`, { token: owner.token, body: { name: "Private", image: PRIVATE_IMAGE } });
    const publicApp = await api(`/projects/${owner.projectId}/apps`, { token: owner.token, body: { name: "Public", image: "127.0.0.1:5000/berth/hello:v1" } });
    for (const a of [privateApp, publicApp]) expect((await api(`/apps/${a.body.id}/deploy`, { token: owner.token, method: "POST" })).status).toBe(202);

    const leases: any[] = [];
    const end = Date.now() + 10_000;
    while (leases.length < 2 && Date.now() < end) {
      const claim = await api("/agent/claim", { token: credential, body: { held: leases.map((l) => ({ job_id: l.job_id, lease_id: l.lease_id })), wait: 2 } });
      leases.push(...claim.body.leases);
    }
    const byApp = (id: string) => leases.find((l) => l.payload.app_id === id);
    expect(byApp(privateApp.body.id).payload.has_registry_auth).toBe(true);
    expect(byApp(publicApp.body.id).payload.has_registry_auth).toBe(false);
    expect(JSON.stringify(leases)).not.toContain("registry-pass-123");

    const secrets = await api(`/agent/leases/${byApp(privateApp.body.id).lease_id}/env`, { token: credential });
    expect(secrets.body.registry_auth).toEqual({ username: "berth", password: "registry-pass-123", serveraddress: "127.0.0.1:5001" });
    expect((await api(`/agent/leases/${byApp(publicApp.body.id).lease_id}/env`, { token: credential })).body.registry_auth).toBeNull();
    // Only the host's own credential, and only for a live lease.
    expect((await api(`/agent/leases/${byApp(privateApp.body.id).lease_id}/env`, { token: owner.token })).status).toBe(401);
    expect((await api(`/agent/leases/lse_gone/env`, { token: credential })).status).toBe(409);
  });
});
