/** Dockup's persistent volumes through the API: attach, list, detach, who may, and what a deploy mounts. */
import { describe, expect, it } from "vitest";
import { api, createOrgKey, env, expectApiError, orgWithEveryRole, signUp, type TestUser } from "./helpers";

async function newApp(owner: TestUser, projectId: string) {
  const res = await api(`/projects/${projectId}/apps`, { token: owner.token, body: { name: `Vol ${Math.random().toString(36).slice(2, 8)}`, image: "127.0.0.1:5000/berth/hello:v1" } });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; slug: string };
}

async function onlineHost(owner: TestUser, orgSlug: string) {
  const created = await api(`/org/${orgSlug}/hosts`, { token: owner.token, body: { name: `h-${Math.random().toString(36).slice(2, 6)}`, kind: "docker" } });
  expect(created.status, created.text).toBe(201);
  const joined = await api("/agent/join", { body: { join_token: created.body.join_token, agent_version: "test", facts: { cpus: 2, memory_bytes: 4096 * 1024 * 1024 } } });
  expect(joined.status, joined.text).toBe(201);
  return { id: created.body.host.id as string, credential: joined.body.credential as string };
}

async function leaseOf(credential: string, jobId: string) {
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    const claim = await api("/agent/claim", { token: credential, body: { held: [], wait: 2 } });
    const lease = claim.body.leases.find((l: { job_id: string }) => l.job_id === jobId);
    if (lease) return lease;
  }
  throw new Error(`no lease for ${jobId}`);
}

describe("app volumes", () => {
  it("attach, list, detach and attach again: the same volume comes back", async () => {
    const owner = await signUp();
    const app = await newApp(owner, owner.projectId);
    expect((await api(`/apps/${app.id}/volumes`, { token: owner.token })).body).toEqual([]);

    const data = await api(`/apps/${app.id}/volumes`, { token: owner.token, body: { mount_path: "/data" } });
    expect(data.status, data.text).toBe(201);
    expect(data.body).toMatchObject({ name: `berth-vol-${app.id}-1`, mount_path: "/data", size_mb: 1024, used_bytes: null });
    const cache = await api(`/apps/${app.slug}/volumes`, { token: owner.token, body: { mount_path: "/var/cache/app/", size_mb: 200 } });
    expect(cache.status, cache.text).toBe(201);
    expect(cache.body).toMatchObject({ name: `berth-vol-${app.id}-2`, mount_path: "/var/cache/app", size_mb: 200 });

    expectApiError(await api(`/apps/${app.id}/volumes`, { token: owner.token, body: { mount_path: "/data" } }), 409, "volume_exists");
    const listed = await api(`/apps/${app.id}/volumes`, { token: owner.token });
    expect(listed.body.map((v: { mount_path: string }) => v.mount_path)).toEqual(["/data", "/var/cache/app"]);

    const detached = await api(`/apps/${app.id}/volumes?mount_path=/data`, { token: owner.token, method: "DELETE" });
    expect(detached.status, detached.text).toBe(200);
    expect(detached.body).toMatchObject({ ok: true, volume: { name: `berth-vol-${app.id}-1` } });
    expectApiError(await api(`/apps/${app.id}/volumes?mount_path=/data`, { token: owner.token, method: "DELETE" }), 404, "volume_not_found");
    expect((await api(`/apps/${app.id}/volumes`, { token: owner.token })).body.map((v: { mount_path: string }) => v.mount_path)).toEqual(["/var/cache/app"]);

    const again = await api(`/apps/${app.id}/volumes`, { token: owner.token, body: { mount_path: "/data", size_mb: 2048 } });
    expect(again.status, again.text).toBe(201);
    expect(again.body).toMatchObject({ name: `berth-vol-${app.id}-1`, size_mb: 2048 });

    // The app's history says what happened; the audit log too.
    const events = await api(`/apps/${app.id}/events`, { token: owner.token });
    expect(events.body.filter((e: { type: string }) => e.type === "volume")).toHaveLength(4);
    const audit = await api(`/org/${owner.orgSlug}/audit?action=app.volume.attach`, { token: owner.token });
    expect(audit.status, audit.text).toBe(200);
  });

  it("refuses mount paths that are not a plain absolute path, or that cover what the kernel mounts", async () => {
    const owner = await signUp();
    const app = await newApp(owner, owner.projectId);
    for (const mount_path of ["data", "/", "/data/../etc", "/proc", "/sys/fs", "/dev", "/a:b", "", "/x\u0000"]) {
      expectApiError(await api(`/apps/${app.id}/volumes`, { token: owner.token, body: { mount_path } }), 400, "invalid_request");
    }
    for (const size_mb of [0, -1, 1.5, 2_000_000]) {
      expectApiError(await api(`/apps/${app.id}/volumes`, { token: owner.token, body: { mount_path: "/data", size_mb } }), 400, "invalid_request");
    }
    expectApiError(await api(`/apps/${app.id}/volumes`, { token: owner.token, method: "DELETE" }), 400, "invalid_request");
    expect((await api(`/apps/${app.id}/volumes`, { token: owner.token })).body).toEqual([]);
  });

  it("viewers and read-only keys may list but not change; developers and deploy keys may", async () => {
    const t = await orgWithEveryRole();
    const project = await api(`/org/${t.slug}/projects`, { token: t.owner.token, body: { name: "Volumes" } });
    expect(project.status, project.text).toBe(201);
    const app = await newApp(t.owner, project.body.project.id);
    const readOnly = await createOrgKey(t.owner, t.slug, "read-only");
    const deployKey = await createOrgKey(t.owner, t.slug, "deploy");

    expect((await api(`/apps/${app.id}/volumes`, { token: t.viewer.token })).status).toBe(200);
    expect((await api(`/apps/${app.id}/volumes`, { token: readOnly.key })).status).toBe(200);
    expectApiError(await api(`/apps/${app.id}/volumes`, { token: t.viewer.token, body: { mount_path: "/data" } }), 403, "forbidden");
    expectApiError(await api(`/apps/${app.id}/volumes`, { token: readOnly.key, body: { mount_path: "/data" } }), 403, "forbidden");
    expect((await api(`/apps/${app.id}/volumes`, { token: t.developer.token, body: { mount_path: "/data" } })).status).toBe(201);
    expectApiError(await api(`/apps/${app.id}/volumes?mount_path=/data`, { token: readOnly.key, method: "DELETE" }), 403, "forbidden");
    expect((await api(`/apps/${app.id}/volumes?mount_path=/data`, { token: deployKey.key, method: "DELETE" })).status).toBe(200);
    expectApiError(await api(`/apps/${app.id}/volumes`), 401, "unauthorized");
  });

  it("a deploy mounts the attached volumes, and the host's measurements show on them (only its own apps')", async () => {
    const owner = await signUp();
    const host = await onlineHost(owner, owner.orgSlug);
    const app = await newApp(owner, owner.projectId);
    await api(`/apps/${app.id}/volumes`, { token: owner.token, body: { mount_path: "/data" } });
    await api(`/apps/${app.id}/volumes`, { token: owner.token, body: { mount_path: "/gone" } });
    await api(`/apps/${app.id}/volumes?mount_path=/gone`, { token: owner.token, method: "DELETE" });

    const deploy = await api(`/apps/${app.id}/deploy`, { token: owner.token, method: "POST" });
    expect(deploy.status, deploy.text).toBe(202);
    const lease = await leaseOf(host.credential, deploy.body.job.id);
    expect(lease.payload.volumes).toEqual([{ name: `berth-vol-${app.id}-1`, mount_path: "/data" }]);

    const name = `berth-vol-${app.id}-1`;
    const reported = await api("/agent/apps/report", { token: host.credential, body: { apps: [], volumes: [{ app_id: app.id, name, used_bytes: 12_345 }] } });
    expect(reported.status, reported.text).toBe(200);
    const [shown] = (await api(`/apps/${app.id}/volumes`, { token: owner.token })).body;
    expect(shown).toMatchObject({ name, used_bytes: 12_345, measured_at: expect.any(String) });

    // Another org's host cannot write sizes onto this app's volumes.
    const stranger = await signUp();
    const otherHost = await onlineHost(stranger, stranger.orgSlug);
    await api("/agent/apps/report", { token: otherHost.credential, body: { apps: [], volumes: [{ app_id: app.id, name, used_bytes: 1 }] } });
    expect((await api(`/apps/${app.id}/volumes`, { token: owner.token })).body[0].used_bytes).toBe(12_345);
  });

  it("an app with volumes waits for its offline host instead of starting empty elsewhere; without them it moves", async () => {
    const owner = await signUp();
    const home = await onlineHost(owner, owner.orgSlug);
    const app = await newApp(owner, owner.projectId);
    await api(`/apps/${app.id}/volumes`, { token: owner.token, body: { mount_path: "/data" } });
    expect((await api(`/apps/${app.id}/deploy`, { token: owner.token, method: "POST" })).body.job.host_id).toBe(home.id);
    await onlineHost(owner, owner.orgSlug);
    await env.DB.prepare("UPDATE host SET last_seen_at = 0 WHERE id = ?").bind(home.id).run();

    const refused = await api(`/apps/${app.id}/deploy`, { token: owner.token, method: "POST" });
    expectApiError(refused, 409, "no_host_available");
    expect(refused.body.error.message).toMatch(/volumes are on host .* offline/);

    await api(`/apps/${app.id}/volumes?mount_path=/data`, { token: owner.token, method: "DELETE" });
    const moved = await api(`/apps/${app.id}/deploy`, { token: owner.token, method: "POST" });
    expect(moved.status, moved.text).toBe(202);
    expect(moved.body.job.host_id).not.toBe(home.id);
  });
});
