/**
 * Security cases for every operation the OpenAPI document lists, so a new route is covered
 * by construction: a secured operation answers 401 without a credential (before it even
 * reads the body); an operation on a tenant's resources answers another tenant 404, exactly
 * as for something that does not exist, and changes nothing. An operation with no case in
 * OTHER_TENANT and no reason in NOT_TENANT_SCOPED fails the test until it is given one.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { addMember, api, type CallResult, createOrgKey, env, signUp, type TestUser } from "./helpers";

interface Operation {
  method: string;
  path: string;
  security: Array<Record<string, string[]>> | undefined;
  responses: Record<string, { description?: string }>;
}

/** The error codes an operation's document names for a status (each description lists them in backticks). */
const documented = (op: Operation, status: number) => [...(op.responses[String(status)]?.description ?? "").matchAll(/`([A-Za-z_]+)`/g)].map((m) => m[1] ?? "");

/** The ids of one tenant's resources, by the path parameter that names them. */
interface Tenant {
  owner: TestUser;
  slug: string;
  projectId: string;
  projectSlug: string;
  appId: string;
  appSlug: string;
  hostId: string;
  jobId: string;
  memberId: string;
  memberEmail: string;
  orgKeyId: string;
  projectKeyId: string;
  personalKeyId: string;
  registryId: string;
  instanceId: string;
  sshProfileId: string;
  commandId: string;
  /** An open sync conflict of the owner's (DevPocket). */
  conflictId: string;
  webhookId: string;
  /** A notification of the owner's. */
  notificationId: string;
}

const key = (op: { method: string; path: string }) => `${op.method.toUpperCase()} ${op.path}`;

/** Fills a documented path with a tenant's ids. */
function fill(path: string, t: Tenant): string {
  const byParam: Record<string, (p: string) => string> = {
    slug: (p) => (p.startsWith("/deploy/") ? t.appSlug : t.slug),
    project: () => t.projectId,
    projectId: () => t.projectId,
    projectSlug: () => t.projectSlug,
    appId: () => t.appId,
    job: () => t.jobId,
    instance: () => t.instanceId,
    conflict_id: () => t.conflictId,
    email: () => encodeURIComponent(t.memberEmail),
    key: () => t.projectKeyId,
    lease: () => "lse_00000000000000000",
    session: () => `trm_${"0".repeat(32)}`,
    command_id: () => t.commandId,
    owner: () => "octocat",
    repo: () => "hello-world",
    id: (p) =>
      p.startsWith("/org/{slug}/hosts/")
        ? t.hostId
        : p.startsWith("/org/{slug}/members/")
          ? t.memberId
          : p.startsWith("/org/{slug}/api-keys/")
            ? t.orgKeyId
            : p.startsWith("/registries/")
              ? t.registryId
              : p.startsWith("/ssh/profiles/")
                ? t.sshProfileId
                : p.startsWith("/org/{slug}/webhooks/")
                  ? t.webhookId
                  : p.startsWith("/org/{slug}/notifications/")
                    ? t.notificationId
                    : t.personalKeyId,
  };
  return path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const resolve = byParam[name];
    if (!resolve) throw new Error(`no value for {${name}} in ${path}: add it to fill()`);
    return resolve(path);
  });
}

/** Bodies that would succeed for the tenant's own owner, so another tenant's 404 is about tenancy, not validation. */
const OTHER_TENANT: Record<string, { body?: (t: Tenant) => unknown; query?: string }> = {
  "GET /org/{slug}/overview": {},
  "PATCH /org/{slug}": { body: () => ({ name: "Taken over" }) },
  "DELETE /org/{slug}": {},
  "GET /org/{slug}/members": {},
  "PATCH /org/{slug}/members/{id}": { body: () => ({ role: "viewer" }) },
  "DELETE /org/{slug}/members/{id}": {},
  "POST /org/{slug}/members/{id}/resend": {},
  "POST /org/{slug}/invitations": { body: () => ({ email: "planted@example.com", role: "admin" }) },
  "GET /org/{slug}/projects": {},
  "POST /org/{slug}/projects": { body: () => ({ name: "Planted" }) },
  "GET /org/{slug}/projects/{projectSlug}": {},
  "PATCH /org/{slug}/projects/{projectSlug}": { body: () => ({ name: "Renamed" }) },
  "DELETE /org/{slug}/projects/{projectSlug}": {},
  "POST /org/{slug}/projects/{projectSlug}/pause": {},
  "POST /org/{slug}/projects/{projectSlug}/resume": {},
  "GET /projects/{project}": {},
  "PATCH /projects/{project}": { body: () => ({ name: "Renamed" }) },
  "DELETE /projects/{project}": {},
  "GET /projects/{project}/members": {},
  "POST /projects/{project}/members": { body: () => ({ email: "planted@example.com", role: "admin" }) },
  "PATCH /projects/{project}/members/{email}": { body: () => ({ role: "admin" }) },
  "DELETE /projects/{project}/members/{email}": {},
  "GET /projects/{projectId}/apps": {},
  "POST /projects/{projectId}/apps": { body: () => ({ name: "Planted", image: "127.0.0.1:5000/berth/hello:v1", internal_port: 8080 }) },
  "GET /apps/{appId}": {},
  "PUT /apps/{appId}": { body: () => ({ memory_limit: 256 }) },
  "DELETE /apps/{appId}": {},
  "GET /apps/{appId}/deployments": {},
  "GET /apps/{appId}/events": {},
  "GET /apps/{appId}/volumes": {},
  "POST /apps/{appId}/volumes": { body: () => ({ mount_path: "/data" }) },
  "DELETE /apps/{appId}/volumes": { query: "?mount_path=/data" },
  "GET /apps/{appId}/autoscale": {},
  "PUT /apps/{appId}/autoscale": { body: () => ({ enabled: true }) },
  "GET /apps/{appId}/logs": {},
  "GET /apps/{appId}/stats": {},
  "GET /apps/{appId}/stats/history": {},
  "GET /apps/{appId}/logs/stream": {},
  "GET /apps/{appId}/exec": {},
  "POST /apps/{appId}/deploy": {},
  "POST /deploy/{slug}": { body: () => ({}) },
  // The app is looked up (and hidden) before a byte of the upload is read.
  "POST /apps/{appId}/upload-image": {},
  "POST /apps/{appId}/git/webhook-secret": {},
  "POST /apps/{appId}/start": {},
  "POST /apps/{appId}/stop": {},
  "POST /apps/{appId}/restart": {},
  "DELETE /api-keys/{id}": {},
  "GET /org/{slug}/api-keys": {},
  "POST /org/{slug}/api-keys": { body: () => ({ name: "planted", scope: "full" }) },
  "DELETE /org/{slug}/api-keys/{id}": {},
  "POST /org/{slug}/api-keys/{id}/adopt": {},
  "GET /projects/{project}/api-keys": {},
  "POST /projects/{project}/api-keys": { body: () => ({ name: "planted" }) },
  "DELETE /projects/{project}/api-keys/{key}": {},
  "GET /org/{slug}/audit": {},
  "GET /org/{slug}/hosts": {},
  "POST /org/{slug}/hosts": { body: () => ({ name: "planted", kind: "docker" }) },
  "GET /org/{slug}/hosts/{id}": {},
  "GET /org/{slug}/hosts/{id}/events": {},
  "DELETE /org/{slug}/hosts/{id}": {},
  "POST /org/{slug}/hosts/{id}/join-token": {},
  "POST /org/{slug}/hosts/{id}/exec": { body: () => ({ command: "id", timeout_seconds: 30 }) },
  "GET /org/{slug}/hosts/{id}/jobs": {},
  "GET /org/{slug}/hosts/{id}/jobs/{job}": {},
  "GET /org/{slug}/hosts/{id}/jobs/{job}/logs": {},
  "GET /org/{slug}/hosts/{id}/jobs/{job}/wait": {},
  "POST /org/{slug}/hosts/{id}/jobs/{job}/cancel": {},
  "GET /projects/{project}/jobs": {},
  "GET /projects/{project}/jobs/{job}": {},
  "GET /projects/{project}/jobs/{job}/logs": {},
  "GET /projects/{project}/jobs/{job}/wait": {},
  "POST /projects/{project}/jobs/{job}/cancel": {},
  "GET /projects/{project}/events": {},
  "DELETE /registries/{id}": {},
  "GET /projects/{project}/instances": {},
  "POST /projects/{project}/instances": { body: () => ({ name: "planted", plan: "bxs-1", source: { image: "img_debian12" } }) },
  "GET /projects/{project}/instances/{instance}": {},
  "PATCH /projects/{project}/instances/{instance}": { body: () => ({ name: "taken-over" }) },
  "DELETE /projects/{project}/instances/{instance}": {},
  "POST /projects/{project}/instances/{instance}/password/acknowledge": {},
  "POST /projects/{project}/instances/{instance}/actions": { body: () => ({ type: "stop" }) },
  "POST /projects/{project}/instances/{instance}/resize": { body: () => ({ plan: "bxs-4-8" }) },
  "POST /projects/{project}/instances/{instance}/rebuild": { body: () => ({ source: { image: "img_debian12" } }) },
  "POST /projects/{project}/instances/{instance}/password": { body: () => ({}) },
  "POST /projects/{project}/instances/{instance}/ssh-key": { body: () => ({ publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlanted x" }) },
  "GET /projects/{project}/instances/{instance}/events": {},
  "GET /ssh/profiles/{id}": {},
  "PATCH /ssh/profiles/{id}": { body: () => ({ host: "attacker.example" }) },
  "DELETE /ssh/profiles/{id}": {},
  "GET /commands/{command_id}": {},
  "POST /commands/{command_id}/rerun": {},
  "POST /sync/conflicts/{conflict_id}/resolve": { body: () => ({ resolution: "merge", resolved_data: { host: "taken-over" } }) },
  "GET /org/{slug}/webhooks": {},
  "POST /org/{slug}/webhooks": { body: () => ({ url: "https://attacker.example/hook", events: ["*"] }) },
  "DELETE /org/{slug}/webhooks/{id}": {},
  "POST /org/{slug}/webhooks/{id}/test": {},
  "GET /org/{slug}/webhook-deliveries": {},
  "GET /org/{slug}/notifications": {},
  "POST /org/{slug}/notifications/{id}/read": {},
  "POST /org/{slug}/notifications/read-all": {},
};

/** Operations about the caller rather than a tenant's resource, and why they cannot leak one. */
const NOT_TENANT_SCOPED: Record<string, string> = {
  "GET /system/resources": "counts only the caller's own hosts and apps (system.test.ts)",
  "GET /system/dashboard": "counts only the caller's own hosts and apps (system.test.ts)",
  "GET /system/containers": "lists containers on the hosts the caller manages (system.test.ts)",
  "POST /auth/logout": "ends the caller's own session",
  "GET /auth/me": "the caller",
  "GET /me": "the caller",
  "GET /account": "the caller",
  "PATCH /account": "the caller",
  "POST /account/mfa/enable": "the caller's own two-factor (two-factor.test.ts: another user's session cannot touch it)",
  "POST /account/mfa/confirm": "the caller's own two-factor (two-factor.test.ts)",
  "POST /account/mfa/disable": "the caller's own two-factor (two-factor.test.ts)",
  "GET /orgs": "the caller's own memberships",
  "POST /org": "creates an org the caller owns",
  "POST /invitations/accept": "needs a mailed token addressed to the caller (members.test.ts)",
  "GET /projects": "the caller's own projects; ?org= of another tenant is 404 (tenancy.test.ts)",
  "POST /projects": "creates in the caller's org; org= of another tenant is 404 (tenancy.test.ts)",
  "GET /api-keys": "the caller's own personal keys",
  "POST /api-keys": "a personal key of the caller's",
  "GET /registries": "the caller's orgs' registries (registries.test.ts)",
  "POST /registries": "stored in the caller's org (registries.test.ts)",
  "GET /plans": "the catalog is the same for everyone",
  "GET /images": "the catalog is the same for everyone",
  "GET /catalog/apps": "the catalog is the same for everyone",
  "POST /ai/suggest": "the caller's own or stored key (devpocket-ai.test.ts)",
  "POST /ai/explain": "the caller's own or stored key (devpocket-ai.test.ts)",
  "POST /ai/complete": "the caller's own or stored key (devpocket-ai.test.ts)",
  "POST /ai/validate-key": "checks the key it is given",
  "GET /ai/key": "the caller's own stored key (devpocket-ai.test.ts)",
  "PUT /ai/key": "the caller's own stored key",
  "DELETE /ai/key": "the caller's own stored key",
  "GET /sync/data": "the caller's own items and conflicts (devpocket-sync.test.ts)",
  "POST /sync/data": "the caller's own items (devpocket-sync.test.ts)",
  "GET /sync/stats": "the caller's own counts (devpocket-sync.test.ts)",
  "GET /user/profile": "the caller",
  "PUT /user/profile": "the caller",
  "GET /user/devices": "the caller's own devices (devpocket-sync.test.ts)",
  "GET /admin/database/status": "platform administrators only (devpocket-admin.test.ts)",
  "POST /admin/database/migrate": "platform administrators only (devpocket-admin.test.ts)",
  "GET /admin/database/stats": "platform administrators only (devpocket-admin.test.ts)",
  "POST /admin/database/backup": "platform administrators only (devpocket-admin.test.ts)",
  "POST /admin/database/seed": "platform administrators only; makes test users of its own (devpocket-admin.test.ts)",
  "POST /admin/database/reset": "platform administrators only; development deployments only (devpocket-admin.test.ts)",
  "GET /subscription/current": "the caller's personal org; ?org= of another tenant is 404 (devpocket-user.test.ts)",
  "GET /catalog/apps/{slug}": "the catalog is the same for everyone",
  "GET /ssh/profiles": "the caller's own profiles; ?org= of another tenant is 404 (ssh.test.ts)",
  "POST /ssh/profiles": "saved in the caller's org, for the caller (ssh.test.ts)",
  "POST /ssh/connect": "the caller's own profile (another's is 404, ssh.test.ts) or inline credentials in the caller's org",
  "POST /commands/execute": "over the caller's own profile; another's is 404 (ssh.test.ts)",
  "GET /commands/history": "the caller's own commands (ssh.test.ts)",
  "GET /auth/oauth/accounts": "the caller's own linked accounts (github.test.ts)",
  "GET /git/repos": "listed with the caller's own linked account; another's is never used (github.test.ts)",
  "GET /git/repos/{owner}/{repo}/branches": "read with the caller's own linked account (github.test.ts)",
  "GET /ws/terminal": "the caller's own socket; ?org= of another tenant is 404, another's profile, host or session is refused (ws-terminal.test.ts)",
};

const isPublic = (op: Operation) => Boolean(op.security && (op.security.length === 0 || op.security.some((s) => Object.keys(s).length === 0)));
const isAgent = (op: Operation) => Boolean(op.security?.some((s) => "agent" in s));

function call(op: Operation, path: string, token?: string, body?: unknown): Promise<CallResult> {
  const upgrade = path.endsWith("/logs/stream") || path.endsWith("/events") || path === "/agent/connect" || path === "/ws/terminal" || (path.endsWith("/exec") && op.method === "get");
  return api(path, {
    method: op.method.toUpperCase(),
    token,
    body: body ?? (["POST", "PUT", "PATCH"].includes(op.method.toUpperCase()) ? {} : undefined),
    headers: upgrade ? { upgrade: "websocket" } : undefined,
  });
}

async function makeTenant(): Promise<Tenant> {
  const owner = await signUp({ name: "Tenant owner" });
  const project = await api(`/projects/${owner.projectId}`, { token: owner.token });
  const member = await addMember(owner, "developer");
  const members = await api(`/org/${owner.orgSlug}/members`, { token: owner.token });
  const seat = members.body.members.find((m: { userId: string }) => m.userId === member.id);
  const app = await api(`/projects/${owner.projectId}/apps`, {
    token: owner.token,
    body: { name: "Tenant app", image: "127.0.0.1:5000/berth/hello:v1", internal_port: 8080 },
  });
  expect(app.status, app.text).toBe(201);
  const host = await api(`/org/${owner.orgSlug}/hosts`, { token: owner.token, body: { name: "tenant box", kind: "docker" } });
  expect(host.status, host.text).toBe(201);
  const job = await api(`/org/${owner.orgSlug}/hosts/${host.body.host.id}/exec`, { token: owner.token, body: { command: "true", timeout_seconds: 30 } });
  expect(job.status, job.text).toBe(202);
  const orgKey = await createOrgKey(owner, owner.orgSlug, "read-only");
  const projectKey = await api(`/projects/${owner.projectId}/api-keys`, { token: owner.token, body: { name: "ci" } });
  const personal = await api("/api-keys", { token: owner.token, body: { name: "laptop" } });
  const registry = await api("/registries", {
    token: owner.token,
    body: { name: "private", url: "127.0.0.1:5001", username: "berth", password: "registry password" },
  });
  expect(registry.status, registry.text).toBe(201);
  // An instance at rest, as its create job would leave it (placing one needs a Proxmox node; instances.test.ts does that).
  const instanceId = `ins_${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`;
  await env.DB.prepare("INSERT INTO instance (id, project_id, org_id, name, status, power_state, plan_code, image_id, vmid, node) VALUES (?, ?, ?, 'tenant-vm', 'running', 'running', 'bxs-1', 'img_debian12', 100, 'pve1')")
    .bind(instanceId, owner.projectId, project.body.org_id)
    .run();
  const ssh = await api("/ssh/profiles", { token: owner.token, body: { name: "tenant ssh", host: "10.0.0.7", username: "ops", password: "tenant ssh password" } });
  expect(ssh.status, ssh.text).toBe(201);
  // A command as its job would leave it (running one needs an agent; test/node/ssh.test.ts does that).
  const commandId = `cmd_${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`;
  await env.DB.prepare("INSERT INTO command (id, org_id, user_id, profile_id, command, timeout_seconds, status, stdout) VALUES (?, ?, ?, ?, 'uptime', 30, 'success', 'up 1 day')")
    .bind(commandId, project.body.org_id, owner.id, ssh.body.id)
    .run();
  // A sync conflict: two devices wrote the same item from the same base.
  await api("/sync/data", { token: owner.token, body: { device_id: "a", ssh_profiles: [{ id: "p1", host: "one" }] } });
  await api("/sync/data", { token: owner.token, body: { device_id: "a", ssh_profiles: [{ id: "p1", version: 1, host: "two" }] } });
  const conflicted = await api("/sync/data", { token: owner.token, body: { device_id: "b", ssh_profiles: [{ id: "p1", version: 1, host: "three" }] } });
  expect(conflicted.status, conflicted.text).toBe(409);
  const hook = await api(`/org/${owner.orgSlug}/webhooks`, { token: owner.token, body: { url: "https://example.com/hooks/tenant", events: ["deployment.*"] } });
  expect(hook.status, hook.text).toBe(201);
  // A notification as a failed deploy would leave it (webhooks.test.ts makes them that way).
  const notificationId = `ntf_${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`;
  await env.DB.prepare("INSERT INTO notification (id, org_id, user_id, event_id, kind, title) VALUES (?, ?, ?, 'evt_tenant', 'deployment.failed', 'Deploy of tenant app failed')")
    .bind(notificationId, project.body.org_id, owner.id)
    .run();
  return {
    webhookId: hook.body.webhook.id,
    notificationId,
    sshProfileId: ssh.body.id,
    commandId,
    owner,
    slug: owner.orgSlug,
    projectId: owner.projectId,
    projectSlug: project.body.slug,
    appId: app.body.id ?? app.body.app.id,
    appSlug: app.body.slug ?? app.body.app.slug,
    hostId: host.body.host.id,
    jobId: job.body.job.id,
    memberId: seat.id,
    memberEmail: member.email,
    orgKeyId: orgKey.id,
    projectKeyId: projectKey.body.id,
    personalKeyId: personal.body.id,
    registryId: registry.body.id ?? registry.body.registry.id,
    instanceId,
    conflictId: conflicted.body.conflicts[0].conflict_id,
  };
}

describe("security cases for every documented operation", { timeout: 120_000 }, () => {
  let ops: Operation[];
  let a: Tenant;
  let b: Tenant;

  beforeAll(async () => {
    const doc = await api("/openapi.json");
    ops = Object.entries(doc.body.paths as Record<string, Record<string, Omit<Operation, "method" | "path">>>).flatMap(([path, byMethod]) =>
      Object.entries(byMethod).map(([method, op]) => ({ method, path, security: op.security, responses: op.responses })),
    );
    [a, b] = await Promise.all([makeTenant(), makeTenant()]);
  });

  it("covers every secured operation: each has another-tenant case or a reason it names no tenant", () => {
    const secured = ops.filter((op) => !isPublic(op) && !isAgent(op));
    expect(secured.length).toBeGreaterThan(60);
    const missing = secured.map(key).filter((k) => !(k in OTHER_TENANT) && !(k in NOT_TENANT_SCOPED));
    expect(missing, "operations without a security case: add them to OTHER_TENANT or NOT_TENANT_SCOPED").toEqual([]);
    const stale = [...Object.keys(OTHER_TENANT), ...Object.keys(NOT_TENANT_SCOPED)].filter((k) => !secured.some((op) => key(op) === k));
    expect(stale, "cases for operations the document no longer lists").toEqual([]);
  });

  it("answers 401 without a credential, or with a garbage one, on every secured operation, before reading the body, with the code its document names", async () => {
    const wrong: string[] = [];
    for (const op of ops.filter((o) => !isPublic(o) && !isAgent(o))) {
      const path = fill(op.path, a);
      // `unauthorized` in Berth's and Suble's dialect, `UNAUTHORIZED` in backlex's.
      const named = documented(op, 401);
      if (!named.some((code) => /^unauthorized$/i.test(code))) wrong.push(`${key(op)}: its document names no 401 unauthorized (${named.join(", ")})`);
      for (const token of [undefined, "garbage", `pak_${"0".repeat(64)}`]) {
        const res = await call(op, path, token);
        if (res.status !== 401 || !named.includes(res.body?.error?.code)) wrong.push(`${key(op)} (${token ?? "none"}): ${res.status} ${res.text.slice(0, 120)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("answers agent operations only with a host credential", async () => {
    const wrong: string[] = [];
    for (const op of ops.filter(isAgent)) {
      for (const token of [undefined, a.owner.token]) {
        const res = await call(op, fill(op.path, a), token);
        if (res.status !== 401 || res.body?.error?.code !== "invalid_host_credential") wrong.push(`${key(op)} (${token ? "session" : "none"}): ${res.status}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("answers another tenant 404 on every tenant-scoped operation, as for something that does not exist, and changes nothing", async () => {
    const wrong: string[] = [];
    for (const op of ops.filter((o) => key(o) in OTHER_TENANT)) {
      const body = OTHER_TENANT[key(op)]!.body?.(a);
      const res = await call(op, fill(op.path, a) + (OTHER_TENANT[key(op)]!.query ?? ""), b.owner.token, body);
      if (res.status !== 404 || !documented(op, 404).includes(res.body?.error?.code)) wrong.push(`${key(op)}: ${res.status} ${res.text.slice(0, 160)} (documented: ${documented(op, 404).join(", ")})`);
    }
    expect(wrong).toEqual([]);

    // Everything of A's is still there, unchanged.
    const t = a.owner.token;
    expect((await api(`/org/${a.slug}/overview`, { token: t })).body.org.name).not.toBe("Taken over");
    expect((await api(`/projects/${a.projectId}`, { token: t })).body).toMatchObject({ id: a.projectId, status: "active" });
    expect((await api(`/apps/${a.appId}`, { token: t })).status).toBe(200);
    expect((await api(`/org/${a.slug}/hosts/${a.hostId}`, { token: t })).status).toBe(200);
    const members = await api(`/org/${a.slug}/members`, { token: t });
    expect(members.body.members.find((m: { id: string }) => m.id === a.memberId)).toMatchObject({ role: "developer" });
    const keys = await api(`/org/${a.slug}/api-keys`, { token: t });
    expect(keys.body.keys.map((k: { id: string }) => k.id)).toEqual(expect.arrayContaining([a.orgKeyId, a.projectKeyId]));
    expect(keys.body.keys.find((k: { id: string }) => k.id === a.orgKeyId).created_by).toBe(a.owner.id);
    expect((await api("/api-keys", { token: t })).body.map((k: { id: string }) => k.id)).toContain(a.personalKeyId);
    expect((await api("/registries", { token: t })).text).toContain(a.registryId);
    expect((await api(`/projects/${a.projectId}/members`, { token: t })).text).not.toContain("planted@example.com");
    expect((await api(`/projects/${a.projectId}/instances/${a.instanceId}`, { token: t })).body.instance).toMatchObject({ name: "tenant-vm", status: "running", job_uid: null });
    expect((await api(`/projects/${a.projectId}/instances`, { token: t })).body.instances).toHaveLength(1);
    expect((await api(`/ssh/profiles/${a.sshProfileId}`, { token: t })).body).toMatchObject({ host: "10.0.0.7" });
    expect((await api("/commands/history", { token: t })).body).toMatchObject({ total: 1, commands: [{ id: a.commandId }] });
    const synced = await api("/sync/data?data_types=ssh_profiles&device_id=a&device_name=a", { token: t });
    expect(synced.body).toMatchObject({ data: { ssh_profiles: [expect.objectContaining({ host: "two", version: 2 })] }, conflicts: [expect.objectContaining({ conflict_id: a.conflictId })] });
  });
});
