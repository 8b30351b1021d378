/**
 * The role matrix: for every permission in src/auth/permissions.ts, one representative
 * route, tried by every role (and every org key scope). What the table says is what
 * the routes must enforce: allowed is the route's success status and the change is
 * visible afterwards; refused is 403 `forbidden` and nothing changed.
 */
import { beforeAll, describe, expect, it, vi } from "vitest";
import { PERMISSIONS, SCOPE_PERMISSIONS, type Permission } from "../../src/auth/permissions";
import type { ApiKeyScope, Role } from "../../src/db/schema";
import { api, type CallResult, createOrgKey, env, expectApiError, orgWithEveryRole, seatExisting, signUp, type TestUser, uniqueEmail } from "./helpers";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 120_000 });

/** The org the action runs in, its owner (who prepares and checks), and someone outside it. */
interface Scene {
  slug: string;
  owner: TestUser;
  outsider: TestUser;
}

interface Action<S = any> {
  /** The status the route answers when allowed. */
  ok: number;
  /** Needs an org of its own with the actor seated (the action destroys it). */
  ownOrg?: boolean;
  /** Run as the owner before the attempt. */
  prepare?: (scene: Scene) => Promise<S>;
  attempt: (scene: Scene, credential: string, s: S) => Promise<CallResult>;
  /** The refusal's code: backlex's `FORBIDDEN` on its /org routes unless said otherwise (Suble's `forbidden`). */
  refused?: string;
  /** Checks, as the owner, that the change happened exactly when it was allowed. */
  after?: (scene: Scene, allowed: boolean, s: S) => Promise<void>;
}

let seq = 0;
const unique = (what: string) => `${what} ${++seq} ${Math.random().toString(36).slice(2, 6)}`;

async function ownerProject(scene: Scene) {
  const res = await api(`/org/${scene.slug}/projects`, { token: scene.owner.token, body: { name: unique("Matrix project") } });
  expect(res.status, res.text).toBe(201);
  return res.body.project as { id: string; slug: string; name: string };
}

const getProject = (scene: Scene, slug: string) => api(`/org/${scene.slug}/projects/${slug}`, { token: scene.owner.token });

/** A Proxmox node of the scene's org whose agent has just beaten, so an instance can be placed on it. */
const nodes = new Map<string, string>();
async function proxmoxNode(scene: Scene) {
  let credential = nodes.get(scene.slug);
  const facts = { cpus: 64, memory_bytes: 1024 ** 4, proxmox: { node: "pve1", templates: ["berth-debian-12"], storage_bytes: 1024 ** 5 } };
  if (!credential) {
    const enrolled = await api(`/org/${scene.slug}/hosts`, { token: scene.owner.token, body: { name: "matrix node", kind: "proxmox" } });
    expect(enrolled.status, enrolled.text).toBe(201);
    const joined = await api("/agent/join", { body: { join_token: enrolled.body.join_token, agent_version: "test", facts } });
    expect(joined.status, joined.text).toBe(201);
    credential = joined.body.credential as string;
    nodes.set(scene.slug, credential);
  }
  expect((await api("/agent/heartbeat", { token: credential, body: { agent_version: "test", facts } })).status).toBe(200);
}

/** An instance at rest in a project of the scene's org, as its create job would leave it. */
async function ownerInstance(scene: Scene) {
  const project = await ownerProject(scene);
  const id = `ins_${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`;
  await env.DB.prepare(
    "INSERT INTO instance (id, project_id, org_id, name, status, power_state, plan_code, image_id) SELECT ?, id, org_id, ?, 'running', 'running', 'bxs-1', 'img_debian12' FROM project WHERE id = ?",
  )
    .bind(id, `vm-${++seq}`, project.id)
    .run();
  return { projectId: project.id, id };
}

/** One representative action per permission. */
const ACTIONS: Partial<Record<Permission, Action>> = {
  "org:read": {
    ok: 200,
    attempt: (sc, cred) => api(`/org/${sc.slug}/overview`, { token: cred }),
  },
  "org:update": {
    ok: 200,
    prepare: async () => ({ name: unique("Renamed") }),
    attempt: (sc, cred, s) => api(`/org/${sc.slug}`, { token: cred, method: "PATCH", body: { name: s.name } }),
    after: async (sc, allowed, s) => {
      const name = (await api(`/org/${sc.slug}/overview`, { token: sc.owner.token })).body.org.name;
      if (allowed) expect(name).toBe(s.name);
      else expect(name).not.toBe(s.name);
    },
  },
  "org:delete": {
    ok: 200,
    ownOrg: true,
    attempt: (sc, cred) => api(`/org/${sc.slug}`, { token: cred, method: "DELETE" }),
    after: async (sc, allowed) => {
      expect((await api(`/org/${sc.slug}/overview`, { token: sc.owner.token })).status).toBe(allowed ? 404 : 200);
    },
  },
  "member:read": {
    ok: 200,
    attempt: (sc, cred) => api(`/org/${sc.slug}/members`, { token: cred }),
  },
  "member:manage": {
    ok: 201,
    prepare: async () => ({ email: uniqueEmail("matrix") }),
    attempt: (sc, cred, s) => api(`/org/${sc.slug}/invitations`, { token: cred, body: { email: s.email, role: "viewer" } }),
    after: async (sc, allowed, s) => {
      const list = await api(`/org/${sc.slug}/members`, { token: sc.owner.token });
      expect(list.body.members.some((m: any) => m.email === s.email && m.status === "pending")).toBe(allowed);
    },
  },
  "project:read": {
    ok: 200,
    attempt: (sc, cred) => api(`/org/${sc.slug}/projects`, { token: cred }),
  },
  "project:create": {
    ok: 201,
    prepare: async () => ({ name: unique("Created") }),
    attempt: (sc, cred, s) => api(`/org/${sc.slug}/projects`, { token: cred, body: { name: s.name } }),
    after: async (sc, allowed, s) => {
      const list = await api(`/org/${sc.slug}/projects`, { token: sc.owner.token });
      expect(list.body.projects.some((p: any) => p.name === s.name)).toBe(allowed);
    },
  },
  "project:update": {
    ok: 200,
    prepare: ownerProject,
    attempt: (sc, cred, p) => api(`/org/${sc.slug}/projects/${p.slug}`, { token: cred, method: "PATCH", body: { name: "Renamed Project" } }),
    after: async (sc, allowed, p) => {
      expect((await getProject(sc, p.slug)).body.project.name).toBe(allowed ? "Renamed Project" : p.name);
    },
  },
  "project:delete": {
    ok: 200,
    prepare: ownerProject,
    attempt: (sc, cred, p) => api(`/org/${sc.slug}/projects/${p.slug}`, { token: cred, method: "DELETE" }),
    after: async (sc, allowed, p) => {
      expect((await getProject(sc, p.slug)).status).toBe(allowed ? 404 : 200);
    },
  },
  "project:lifecycle": {
    ok: 200,
    prepare: ownerProject,
    attempt: (sc, cred, p) => api(`/org/${sc.slug}/projects/${p.slug}/pause`, { token: cred, method: "POST" }),
    after: async (sc, allowed, p) => {
      expect((await getProject(sc, p.slug)).body.project.status).toBe(allowed ? "paused" : "active");
    },
  },
  "project:members": {
    ok: 204,
    prepare: ownerProject,
    attempt: (sc, cred, p) => api(`/projects/${p.id}/members`, { token: cred, body: { email: sc.outsider.email, role: "viewer" } }),
    refused: "forbidden",
    after: async (sc, allowed, p) => {
      // An invitation was made exactly when allowed: it shows as pending in the member list.
      const members = await api(`/projects/${p.id}/members`, { token: sc.owner.token });
      const pending = members.body.find((m: any) => m.email === sc.outsider.email && m.status === "pending");
      expect(Boolean(pending)).toBe(allowed);
      // Nobody is seated before accepting.
      expect((await api(`/projects/${p.id}`, { token: sc.outsider.token })).status).toBe(404);
    },
  },
  "apikey:read": {
    ok: 200,
    attempt: (sc, cred) => api(`/org/${sc.slug}/api-keys`, { token: cred }),
  },
  "apikey:manage": {
    ok: 201,
    prepare: async () => ({ name: unique("matrix key") }),
    attempt: (sc, cred, s) => api(`/org/${sc.slug}/api-keys`, { token: cred, body: { name: s.name, scope: "read-only" } }),
    after: async (sc, allowed, s) => {
      const keys = await api(`/org/${sc.slug}/api-keys`, { token: sc.owner.token });
      expect(keys.body.keys.some((k: any) => k.name === s.name)).toBe(allowed);
    },
  },
  "apikey:adopt": {
    ok: 200,
    prepare: async (sc) => (await createOrgKey(sc.owner, sc.slug, "read-only")).id,
    attempt: (sc, cred, id) => api(`/org/${sc.slug}/api-keys/${id}/adopt`, { token: cred, method: "POST" }),
    after: async (sc, allowed, id) => {
      const keys = await api(`/org/${sc.slug}/api-keys`, { token: sc.owner.token });
      const key = keys.body.keys.find((k: any) => k.id === id);
      // Refused: the key still answers to the owner who made it.
      if (!allowed) expect(key.created_by).toBe(sc.owner.id);
    },
  },
  "audit:read": {
    ok: 200,
    attempt: (sc, cred) => api(`/org/${sc.slug}/audit`, { token: cred }),
  },
  "webhook:manage": {
    ok: 201,
    prepare: async () => ({ url: `https://example.com/hooks/${unique("matrix").replace(/ /g, "-")}` }),
    attempt: (sc, cred, s) => api(`/org/${sc.slug}/webhooks`, { token: cred, body: { url: s.url, events: ["deployment.failed"] } }),
    after: async (sc, allowed, s) => {
      const hooks = await api(`/org/${sc.slug}/webhooks`, { token: sc.owner.token });
      expect(hooks.body.webhooks.some((h: any) => h.url === s.url)).toBe(allowed);
    },
  },
  "instance:read": {
    ok: 200,
    refused: "forbidden",
    prepare: ownerInstance,
    attempt: (_sc, cred, s) => api(`/projects/${s.projectId}/instances/${s.id}`, { token: cred }),
  },
  "instance:create": {
    ok: 202,
    refused: "forbidden",
    prepare: async (sc) => {
      await proxmoxNode(sc);
      return { projectId: (await ownerProject(sc)).id, name: `vm-${++seq}` };
    },
    attempt: (_sc, cred, s) => api(`/projects/${s.projectId}/instances`, { token: cred, body: { name: s.name, plan: "bxs-1", source: { image: "img_debian12" } } }),
    after: async (sc, allowed, s) => {
      const list = await api(`/projects/${s.projectId}/instances`, { token: sc.owner.token });
      expect(list.body.instances.some((i: any) => i.name === s.name)).toBe(allowed);
    },
  },
  "instance:manage": {
    ok: 200,
    refused: "forbidden",
    prepare: ownerInstance,
    attempt: (_sc, cred, s) => api(`/projects/${s.projectId}/instances/${s.id}`, { token: cred, method: "PATCH", body: { name: `renamed-${s.id.slice(4, 12)}` } }),
    after: async (sc, allowed, s) => {
      const got = await api(`/projects/${s.projectId}/instances/${s.id}`, { token: sc.owner.token });
      expect(got.body.instance.name === `renamed-${s.id.slice(4, 12)}`).toBe(allowed);
    },
  },
  "app:exec": {
    ok: 101,
    refused: "forbidden",
    prepare: async (sc) => {
      const project = await ownerProject(sc);
      const app = await api(`/projects/${project.id}/apps`, { token: sc.owner.token, body: { name: unique("Exec app"), image: "nginx:alpine" } });
      expect(app.status, app.text).toBe(201);
      return { appId: app.body.id as string };
    },
    // Allowed, the socket opens (and closes at once saying the app is not running: it was never deployed).
    attempt: (_sc, cred, s) => api(`/apps/${s.appId}/exec`, { token: cred, headers: { upgrade: "websocket" } }),
  },
  "command:exec": {
    ok: 201,
    refused: "forbidden",
    // Saving an SSH profile: it holds credentials to run commands with, so it needs what running them needs.
    attempt: (sc, cred) => api("/ssh/profiles", { token: cred, body: { name: unique("Matrix ssh"), host: "10.0.0.9", username: "ops", password: "pw", org: sc.slug } }),
  },
};

/** Permissions without a route in this matrix: deploying apps is not served yet; hosts have their own tests. */
const NOT_HERE = (p: string) => p === "deploy" || p.startsWith("host:");

const ROLES = ["owner", "admin", "developer", "viewer"] as const satisfies readonly Role[];
const SCOPES = Object.keys(SCOPE_PERMISSIONS) as ApiKeyScope[];
const permissions = (Object.keys(ACTIONS) as Permission[]).sort();

async function newOrg(owner: TestUser) {
  const res = await api("/org", { token: owner.token, body: { name: unique("Matrix org") } });
  expect(res.status, res.text).toBe(201);
  return res.body.org.slug as string;
}

async function expectOutcome(action: Action, scene: Scene, credential: string, allowed: boolean, label: string) {
  const s = action.prepare ? await action.prepare(scene) : undefined;
  const res = await action.attempt(scene, credential, s);
  expect(`${label} → ${res.status}`, res.text).toBe(`${label} → ${allowed ? action.ok : 403}`);
  if (!allowed) expectApiError(res, 403, action.refused ?? "FORBIDDEN");
  await action.after?.(scene, allowed, s);
}

describe("the permission table", () => {
  it("has a representative action for every permission served here", () => {
    const missing = Object.keys(PERMISSIONS).filter((p) => !(p in ACTIONS) && !NOT_HERE(p));
    expect(missing).toEqual([]);
    for (const p of permissions) expect(PERMISSIONS).toHaveProperty([p]);
  });

  it("grants every permission to the owner and reads to everyone", () => {
    for (const p of Object.keys(PERMISSIONS) as Permission[]) expect(PERMISSIONS[p]).toContain("owner");
    for (const p of ["org:read", "member:read", "project:read"] as const) expect([...PERMISSIONS[p]].sort()).toEqual([...ROLES].sort());
  });
});

describe("roles: what each role may do is what the table says", () => {
  let team: Awaited<ReturnType<typeof orgWithEveryRole>>;
  let outsider: TestUser;
  beforeAll(async () => {
    team = await orgWithEveryRole();
    outsider = await signUp({ name: "Outsider" });
  });

  describe.each(permissions)("%s", (permission) => {
    const action = ACTIONS[permission]!;
    it.each(ROLES)("%s", async (role) => {
      const allowed = (PERMISSIONS[permission] as readonly Role[]).includes(role);
      const actor = team[role];
      let slug = team.slug;
      if (action.ownOrg) {
        slug = await newOrg(team.owner);
        if (role !== "owner") await seatExisting(team.owner, actor, role, slug);
      }
      await expectOutcome(action, { slug, owner: team.owner, outsider }, actor.token, allowed, `${role} ${permission}`);
    });
  });
});

describe("org API keys: admin rights capped by scope, as SCOPE_PERMISSIONS says", () => {
  let owner: TestUser;
  let outsider: TestUser;
  let slug: string;
  const keys: Partial<Record<ApiKeyScope, string>> = {};
  beforeAll(async () => {
    owner = await signUp({ name: "Key owner" });
    outsider = await signUp({ name: "Outsider" });
    slug = await newOrg(owner);
    for (const scope of SCOPES) keys[scope] = (await createOrgKey(owner, slug, scope)).key;
  });

  describe.each(permissions)("%s", (permission) => {
    const action = ACTIONS[permission]!;
    it.each(SCOPES)("%s key", async (scope) => {
      const allowed = (PERMISSIONS[permission] as readonly Role[]).includes("admin") && SCOPE_PERMISSIONS[scope].includes(permission);
      let orgSlug = slug;
      let key = keys[scope]!;
      if (action.ownOrg) {
        orgSlug = await newOrg(owner);
        key = (await createOrgKey(owner, orgSlug, scope)).key;
      }
      await expectOutcome(action, { slug: orgSlug, owner, outsider }, key, allowed, `${scope} key ${permission}`);
    });
  });
});
