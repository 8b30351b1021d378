/** Dockup's autoscale settings through the API: defaults, partial updates, bounds, who may, and what is recorded. */
import { describe, expect, it } from "vitest";
import { api, createOrgKey, expectApiError, orgWithEveryRole, signUp, type TestUser } from "./helpers";

async function newApp(owner: TestUser, projectId: string) {
  const res = await api(`/projects/${projectId}/apps`, { token: owner.token, body: { name: `Scale ${Math.random().toString(36).slice(2, 8)}`, image: "127.0.0.1:5000/berth/hello:v1" } });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; slug: string };
}

describe("app autoscale settings", () => {
  it("start at the defaults and change only the fields given, by id or slug", async () => {
    const owner = await signUp();
    const app = await newApp(owner, owner.projectId);
    const initial = await api(`/apps/${app.id}/autoscale`, { token: owner.token });
    expect(initial.status, initial.text).toBe(200);
    expect(initial.body).toMatchObject({ enabled: false, cpu_threshold: 80, min_replicas: 1, max_replicas: 3, cooldown_seconds: 300, sleep_after_minutes: 0, updated_at: null });

    const put = await api(`/apps/${app.slug}/autoscale`, { token: owner.token, method: "PUT", body: { enabled: true, cpu_threshold: 65.5, sleep_after_minutes: 15 } });
    expect(put.status, put.text).toBe(200);
    expect(put.body).toMatchObject({ enabled: true, cpu_threshold: 65.5, min_replicas: 1, max_replicas: 3, sleep_after_minutes: 15, updated_at: expect.any(String) });

    const again = await api(`/apps/${app.id}/autoscale`, { token: owner.token, method: "PUT", body: { max_replicas: 5 } });
    expect(again.body).toMatchObject({ enabled: true, cpu_threshold: 65.5, max_replicas: 5, sleep_after_minutes: 15 });
    expect((await api(`/apps/${app.id}/autoscale`, { token: owner.token })).body).toEqual(again.body);

    // Each change is in the app's history and the audit log, naming what changed.
    const events = (await api(`/apps/${app.id}/events`, { token: owner.token })).body.filter((e: { type: string }) => e.type === "autoscale");
    expect(events).toHaveLength(2);
    expect(events.map((e: { message: string }) => e.message).join("\n")).toMatch(/max_replicas=5/);
    const audit = await api(`/org/${owner.orgSlug}/audit?action=app.autoscale.update`, { token: owner.token });
    expect(audit.status, audit.text).toBe(200);
    expect(JSON.stringify(audit.body)).toContain(app.id);

    // The same values again change nothing and record nothing.
    await api(`/apps/${app.id}/autoscale`, { token: owner.token, method: "PUT", body: { max_replicas: 5 } });
    expect((await api(`/apps/${app.id}/events`, { token: owner.token })).body.filter((e: { type: string }) => e.type === "autoscale")).toHaveLength(2);
  });

  it("refuses out-of-range values and a minimum above the maximum, counting the stored one", async () => {
    const owner = await signUp();
    const app = await newApp(owner, owner.projectId);
    const bad = [
      { min_replicas: 0 },
      { max_replicas: 11 },
      { min_replicas: 1.5 },
      { cpu_threshold: 0 },
      { cpu_threshold: 101 },
      { cooldown_seconds: 5 },
      { sleep_after_minutes: -1 },
      { sleep_after_minutes: 20_000 },
      { enabled: "yes" },
      { replicas: 2 },
      { min_replicas: 4, max_replicas: 2 },
      { min_replicas: 4 },
    ];
    for (const body of bad) expectApiError(await api(`/apps/${app.id}/autoscale`, { token: owner.token, method: "PUT", body }), 400, "invalid_request");
    const raw = await api(`/apps/${app.id}/autoscale`, { token: owner.token, method: "PUT", raw: "{not json", headers: { "content-type": "application/json" } });
    expect(raw.status).toBe(400);
    // Nothing was stored by any of them.
    expect((await api(`/apps/${app.id}/autoscale`, { token: owner.token })).body).toMatchObject({ min_replicas: 1, max_replicas: 3, updated_at: null });
    // Raising both together is fine.
    const both = await api(`/apps/${app.id}/autoscale`, { token: owner.token, method: "PUT", body: { min_replicas: 4, max_replicas: 6 } });
    expect(both.status, both.text).toBe(200);
    expect(both.body).toMatchObject({ min_replicas: 4, max_replicas: 6 });
  });

  it("viewers and read-only keys may read but not change; developers and deploy keys may; other orgs see no app", async () => {
    const t = await orgWithEveryRole();
    const project = await api(`/org/${t.slug}/projects`, { token: t.owner.token, body: { name: "Autoscale" } });
    expect(project.status, project.text).toBe(201);
    const app = await newApp(t.owner, project.body.project.id);
    const readOnly = await createOrgKey(t.owner, t.slug, "read-only");
    const deployKey = await createOrgKey(t.owner, t.slug, "deploy");

    expect((await api(`/apps/${app.id}/autoscale`, { token: t.viewer.token })).status).toBe(200);
    expect((await api(`/apps/${app.id}/autoscale`, { token: readOnly.key })).status).toBe(200);
    expectApiError(await api(`/apps/${app.id}/autoscale`, { token: t.viewer.token, method: "PUT", body: { enabled: true } }), 403, "forbidden");
    expectApiError(await api(`/apps/${app.id}/autoscale`, { token: readOnly.key, method: "PUT", body: { enabled: true } }), 403, "forbidden");
    expect((await api(`/apps/${app.id}/autoscale`, { token: t.developer.token, method: "PUT", body: { enabled: true } })).status).toBe(200);
    expect((await api(`/apps/${app.id}/autoscale`, { token: deployKey.key, method: "PUT", body: { max_replicas: 4 } })).status).toBe(200);
    expectApiError(await api(`/apps/${app.id}/autoscale`), 401, "unauthorized");
    expectApiError(await api(`/apps/${app.id}/autoscale`, { method: "PUT", body: { enabled: false } }), 401, "unauthorized");

    const stranger = await signUp();
    expectApiError(await api(`/apps/${app.id}/autoscale`, { token: stranger.token }), 404, "app_not_found");
    expectApiError(await api(`/apps/${app.slug}/autoscale`, { token: stranger.token, method: "PUT", body: { enabled: false } }), 404, "app_not_found");
    expect((await api(`/apps/${app.id}/autoscale`, { token: t.owner.token })).body).toMatchObject({ enabled: true, max_replicas: 4 });
  });
});
