/** Dockup's system views: what they count, and that they count only what the caller may see. */
import { describe, expect, it } from "vitest";
import { api, createOrgKey, signUp } from "./helpers";

async function hostWithAgent(owner: Awaited<ReturnType<typeof signUp>>) {
  const created = await api(`/org/${owner.orgSlug}/hosts`, { token: owner.token, body: { name: "box", kind: "docker" } });
  expect(created.status, created.text).toBe(201);
  const joined = await api("/agent/join", {
    body: { join_token: created.body.join_token, agent_version: "test", facts: { hostname: "box", cpus: 4, memory_bytes: 8 * 1024 ** 3 } },
  });
  expect(joined.status, joined.text).toBe(201);
  return created.body.host.id as string;
}

describe("system views", () => {
  it("need a credential", async () => {
    for (const path of ["/system/resources", "/system/dashboard", "/system/containers"]) {
      const res = await api(path);
      expect(res.status, path).toBe(401);
      expect(res.body.error.code).toBe("unauthorized");
    }
  });

  it("count the caller's hosts and apps, and nobody else's", async () => {
    const owner = await signUp();
    const hostId = await hostWithAgent(owner);
    const app = await api(`/projects/${owner.projectId}/apps`, {
      token: owner.token,
      body: { name: "Web", image: "127.0.0.1:5000/berth/hello:v1", memory_limit: 256, cpu_limit: 0.5, env_vars: { SECRET_TOKEN: "do-not-show-me" } },
    });
    expect(app.status, app.text).toBe(201);

    const res = await api("/system/resources", { token: owner.token });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      cpu_cores: 4,
      memory: { total_mb: 8192, allocated_mb: 256 },
      containers_running: 0,
      containers_stopped: 1,
      containers_total: 1,
      hosts_online: 1,
      hosts_total: 1,
    });
    expect(res.body.uptime).toBeGreaterThanOrEqual(0);

    const dash = await api("/system/dashboard", { token: owner.token });
    expect(dash.status, dash.text).toBe(200);
    expect(dash.body.usage).toMatchObject({ cpu_allocated: 0.5, memory_allocated_mb: 256, apps_running: 0, apps_stopped: 1 });
    expect(dash.body.apps.map((a: any) => a.id)).toEqual([app.body.id]);
    expect(dash.text).not.toContain("do-not-show-me");

    // Another tenant sees none of it.
    const other = await signUp();
    const theirs = await api("/system/resources", { token: other.token });
    expect(theirs.body).toMatchObject({ cpu_cores: 0, containers_total: 0, hosts_total: 0 });
    expect((await api("/system/dashboard", { token: other.token })).body.apps).toEqual([]);

    // A read-only org key sees its org's hosts and apps but may not list every container.
    const key = await createOrgKey(owner, owner.orgSlug, "read-only");
    expect((await api("/system/resources", { token: key.key })).body).toMatchObject({ hosts_total: 1, containers_total: 1 });
    const containers = await api("/system/containers", { token: key.key });
    expect(containers.status).toBe(403);

    // The owner may; a host whose agent holds no socket is named, not waited on.
    const mine = await api("/system/containers", { token: owner.token });
    expect(mine.status, mine.text).toBe(200);
    // Dockup documents a bare array; the unreachable hosts are named in a header.
    expect(mine.body).toEqual([]);
    expect(mine.headers.get("x-berth-unreachable")).toBe(hostId);
  });
});
