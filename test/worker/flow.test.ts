import { describe, expect, it } from "vitest";
import { api, createOrgKey, orgWithEveryRole, signUp } from "./helpers";

describe("tenancy flow", () => {
  it("walks the main paths", async () => {
    const t = await orgWithEveryRole();
    const members = await api(`/org/${t.slug}/members`, { token: t.viewer.token });
    expect(members.status, members.text).toBe(200);
    expect(members.body.members.map((m: any) => m.role).sort()).toEqual(["admin", "developer", "owner", "viewer"]);
    const proj = await api(`/org/${t.slug}/projects`, { token: t.developer.token, body: { name: "Web shop" } });
    expect(proj.status, proj.text).toBe(201);
    const list = await api(`/projects`, { token: t.viewer.token });
    expect(list.body.map((p: any) => p.id)).toContain(proj.body.project.id);
    const pause = await api(`/org/${t.slug}/projects/${proj.body.project.slug}/pause`, { token: t.admin.token, method: "POST" });
    expect(pause.status, pause.text).toBe(200);
    expect(pause.body.project.status).toBe("paused");
    const key = await createOrgKey(t.owner, t.slug, "read-only");
    const ro = await api(`/projects`, { token: key.key, body: { name: "nope" } });
    expect(ro.status, ro.text).toBe(403);
    const audit = await api(`/org/${t.slug}/audit?limit=5`, { token: t.owner.token });
    expect(audit.status, audit.text).toBe(200);
    expect(audit.body.events[0].action).toBe("api_key.create");
    const other = await signUp();
    const peek = await api(`/projects/${proj.body.project.id}`, { token: other.token });
    expect(peek.status).toBe(404);
    const pkey = await api(`/projects/${proj.body.project.id}/api-keys`, { token: t.admin.token, body: { name: "ci" } });
    expect(pkey.status, pkey.text).toBe(201);
    const mine = await api(`/projects`, { token: pkey.body.key });
    expect(mine.body.map((p: any) => p.id)).toEqual([proj.body.project.id]);
    const me = await api(`/me`, { token: pkey.body.key });
    expect(me.status, me.text).toBe(200);
    const dk = await api(`/api-keys`, { token: t.owner.token, body: { name: "laptop" } });
    expect(dk.status, dk.text).toBe(201);
    expect(dk.body.key).toMatch(/^dkp_/);
    const spec = await api(`/openapi.json`);
    expect(spec.status, spec.text.slice(0, 500)).toBe(200);
  });
});
