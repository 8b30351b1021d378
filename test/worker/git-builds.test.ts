/**
 * Apps built from git, through the API: which repositories an app may name, the push
 * webhook's secret (shown once), its signature check, and which pushes start a deploy, as
 * the host's agent then receives it. The build itself runs on a real host in
 * test/node/git-builds.test.ts.
 */
import { describe, expect, it } from "vitest";
import { api, createOrgKey, expectApiError, orgWithEveryRole, signUp, type TestUser } from "./helpers";

const REPO = "https://git.example.com/team/site.git";

async function onlineHost(owner: TestUser) {
  const created = await api(`/org/${owner.orgSlug}/hosts`, { token: owner.token, body: { name: "builder", kind: "docker" } });
  expect(created.status, created.text).toBe(201);
  const joined = await api("/agent/join", { body: { join_token: created.body.join_token, agent_version: "test", facts: { cpus: 2, memory_bytes: 4096 * 1024 * 1024 } } });
  expect(joined.status, joined.text).toBe(201);
  return joined.body.credential as string;
}

async function gitApp(owner: TestUser, extra: Record<string, unknown> = {}) {
  const res = await api(`/projects/${owner.projectId}/apps`, { token: owner.token, body: { name: `Site ${Math.random().toString(36).slice(2, 8)}`, git_repo_url: REPO, internal_port: 8080, ...extra } });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; slug: string; git_webhook_secret: string; git_webhook_url: string; image: string };
}

async function hmac(secret: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)));
  return `sha256=${[...mac].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

const SHA = "0123456789abcdef0123456789abcdef01234567";
const pushBody = (ref: string, extra: Record<string, unknown> = {}) => JSON.stringify({ ref, after: SHA, pusher: { name: "ada" }, ...extra });

async function webhook(appId: string, body: string, signature: string | null, event = "push", contentType = "application/json") {
  const headers: Record<string, string> = { "x-github-event": event, "content-type": contentType };
  if (signature !== null) headers["x-hub-signature-256"] = signature;
  return api(`/apps/${appId}/git/webhook`, { method: "POST", raw: body, headers });
}

const deploymentsOf = async (owner: TestUser, appId: string) => (await api(`/apps/${appId}/deployments`, { token: owner.token })).body as Array<{ id: string; image: string }>;

describe("apps from git", () => {
  it("take an http(s) repository or GitHub's owner/repo instead of an image, and show the webhook secret once", async () => {
    const owner = await signUp();
    const app = await gitApp(owner, { git_branch: "release/v2" });
    expect(app.image).toBe(`berth-build/${app.slug}`);
    expect(app).toMatchObject({ git_repo_url: REPO, git_branch: "release/v2", git_webhook_url: `/api/v1/apps/${app.id}/git/webhook` });
    expect(app.git_webhook_secret).toMatch(/^bwh_[0-9a-f]{64}$/);

    // Never again: not in the app, the list, its events or the audit log.
    const read = await api(`/apps/${app.id}`, { token: owner.token });
    expect(read.body.app.git_webhook_url).toBe(app.git_webhook_url);
    for (const path of [`/apps/${app.id}`, `/projects/${owner.projectId}/apps`, `/apps/${app.id}/events`, `/org/${owner.orgSlug}/audit`]) {
      const res = await api(path, { token: owner.token });
      expect(res.status, path).toBe(200);
      expect(res.text, path).not.toContain(app.git_webhook_secret);
      expect(res.text, path).not.toContain("git_webhook_secret\":");
    }

    const short = await gitApp(owner, { git_repo_url: "octo-org/site" });
    expect(short.git_webhook_secret).toMatch(/^bwh_/);
    expect(short.git_webhook_secret).not.toBe(app.git_webhook_secret);
  });

  it("refuse other schemes, credentials in the URL, odd branches, and an app with neither image nor repository, with a clear 400", async () => {
    const owner = await signUp();
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ git_repo_url: "ssh://git@github.com/team/site.git" }, /only http\(s\) repositories/],
      [{ git_repo_url: "git@github.com:team/site.git" }, /owner\/repo \(GitHub\) or an http\(s\) URL/],
      [{ git_repo_url: "file:///etc" }, /only http\(s\) repositories can be built, not file/],
      [{ git_repo_url: "ext::sh -c touch% /tmp/pwned" }, /only http\(s\) repositories can be built, not ext/],
      [{ git_repo_url: "https://ada:hunter2@git.example.com/team/site.git" }, /must not carry credentials/],
      [{ git_repo_url: "https://ghp_token@git.example.com/team/site.git" }, /must not carry credentials/],
      [{ git_repo_url: REPO, git_branch: "--upload-pack=touch" }, /branch/],
      [{ git_repo_url: REPO, git_branch: "a..b" }, /not a valid branch name/],
      [{}, /an image, or a git_repo_url/],
    ];
    for (const [body, message] of cases) {
      const res = await api(`/projects/${owner.projectId}/apps`, { token: owner.token, body: { name: "Bad", ...body } });
      expectApiError(res, 400, "invalid_request");
      expect(res.text, JSON.stringify(body)).toMatch(message);
      expect(res.text).not.toContain("hunter2");
    }
    // The same rules on update.
    const app = await gitApp(owner);
    expectApiError(await api(`/apps/${app.id}`, { method: "PUT", token: owner.token, body: { git_repo_url: "git://git.example.com/x" } }), 400, "invalid_request");
    expect((await api(`/projects/${owner.projectId}/apps`, { token: owner.token })).body).toHaveLength(1);
  });

  it("give an image app a webhook secret when it gets a repository, once; taking the repository away drops it", async () => {
    const owner = await signUp();
    const created = await api(`/projects/${owner.projectId}/apps`, { token: owner.token, body: { name: "Was an image", image: "127.0.0.1:5000/berth/hello:v1" } });
    expect(created.body.git_webhook_url).toBeNull();
    expect(created.body.git_webhook_secret).toBeUndefined();
    const set = await api(`/apps/${created.body.id}`, { method: "PUT", token: owner.token, body: { git_repo_url: REPO } });
    expect(set.status, set.text).toBe(200);
    expect(set.body.git_webhook_secret).toMatch(/^bwh_/);
    const again = await api(`/apps/${created.body.id}`, { method: "PUT", token: owner.token, body: { git_branch: "dev" } });
    expect(again.body.git_webhook_secret).toBeUndefined();
    const cleared = await api(`/apps/${created.body.id}`, { method: "PUT", token: owner.token, body: { git_repo_url: null } });
    expect(cleared.body.git_webhook_url).toBeNull();
    // Without a repository the webhook is not there, even with the old secret.
    const body = pushBody("refs/heads/dev");
    expectApiError(await webhook(created.body.id, body, await hmac(set.body.git_webhook_secret, body)), 404, "app_not_found");
  });

  it("deploy on a signed push to the app's branch: the host gets the repository, branch and the build's tag", async () => {
    const owner = await signUp();
    const credential = await onlineHost(owner);
    const app = await gitApp(owner, { git_branch: "main" });
    const body = pushBody("refs/heads/main");
    const res = await webhook(app.id, body, await hmac(app.git_webhook_secret, body));
    expect(res.status, res.text).toBe(202);
    expect(res.body).toMatchObject({ commit: SHA, deployment: { status: "pending", image: `berth-build/${app.slug}:${res.body.deployment.id}` }, job: { type: "app.deploy" } });
    expect(await deploymentsOf(owner, app.id)).toHaveLength(1);
    const events = (await api(`/apps/${app.id}/events`, { token: owner.token })).body;
    expect(events[0]).toMatchObject({ type: "deploy", data: { trigger: "push", commit_sha: SHA } });
    expect(events[0].message).toContain("by ada");

    // What the agent is handed: the clone URL and branch, and the tag to build as.
    let lease: any;
    for (let i = 0; i < 10 && !lease; i++) lease = (await api("/agent/claim", { token: credential, body: { held: [], wait: 1 } })).body.leases.find((l: any) => l.job_id === res.body.job.id);
    expect(lease?.payload).toMatchObject({ type: "app.deploy", image: res.body.deployment.image, git: { repo_url: REPO, branch: "main" } });

    // GitHub's form encoding is signed over the same raw body.
    const form = `payload=${encodeURIComponent(body)}`;
    const viaForm = await webhook(app.id, form, await hmac(app.git_webhook_secret, form), "push", "application/x-www-form-urlencoded");
    expect(viaForm.status, viaForm.text).toBe(202);

    // A deploy from the API builds too; owner/repo is GitHub's.
    const short = await gitApp(owner, { git_repo_url: "octo-org/site" });
    const deployed = await api(`/apps/${short.id}/deploy`, { token: owner.token, method: "POST" });
    expect(deployed.status, deployed.text).toBe(202);
    expect(deployed.body.image).toBe(`berth-build/${short.slug}:${deployed.body.id}`);
  });

  it("do nothing for pushes to other branches, branch deletions and other events; answer ping", async () => {
    const owner = await signUp();
    await onlineHost(owner);
    const app = await gitApp(owner, { git_branch: "main" });
    const signed = async (body: string, event = "push") => webhook(app.id, body, await hmac(app.git_webhook_secret, body), event);
    expect((await signed(pushBody("refs/heads/feature"))).status).toBe(204);
    expect((await signed(pushBody("refs/tags/main"))).status).toBe(204);
    expect((await signed(pushBody("refs/heads/main", { deleted: true, after: "0".repeat(40) }))).status).toBe(204);
    expect((await signed(JSON.stringify({ action: "opened" }), "pull_request")).status).toBe(204);
    const ping = await signed(JSON.stringify({ zen: "Keep it logically awesome." }), "ping");
    expect(ping.status, ping.text).toBe(200);
    expect(ping.body.ok).toBe(true);
    expect(await deploymentsOf(owner, app.id)).toHaveLength(0);
    // Signed, but not a push event: a clear 400.
    expectApiError(await signed("{not json"), 400, "invalid_json");
    expectApiError(await signed(JSON.stringify({ after: SHA })), 400, "invalid_request");
  });

  it("refuse a missing or wrong signature, another app's secret and a body changed after signing, with 401 and nothing done", async () => {
    const owner = await signUp();
    await onlineHost(owner);
    const app = await gitApp(owner);
    const other = await gitApp(await signUp());
    const body = pushBody("refs/heads/main");
    const good = await hmac(app.git_webhook_secret, body);
    for (const signature of [null, "", "sha256=", good.replace(/.$/, (d) => (d === "0" ? "1" : "0")), good.replace("sha256=", "sha1="), await hmac(other.git_webhook_secret, body), `sha256=${"0".repeat(64)}`]) {
      const res = await webhook(app.id, body, signature);
      expectApiError(res, 401, "invalid_signature");
    }
    expectApiError(await webhook(app.id, pushBody("refs/heads/main", { after: "f".repeat(40) }), good), 401, "invalid_signature");
    expect(await deploymentsOf(owner, app.id)).toHaveLength(0);
    // An unknown app, and an app without a repository, are the same 404.
    expectApiError(await webhook("app_doesnotexist00", body, good), 404, "app_not_found");
    const plain = await api(`/projects/${owner.projectId}/apps`, { token: owner.token, body: { name: "Plain", image: "127.0.0.1:5000/berth/hello:v1" } });
    expectApiError(await webhook(plain.body.id, body, good), 404, "app_not_found");
  });

  it("renew the secret: shown once, the old one refused at once; deploy permission, other tenants 404", async () => {
    const team = await orgWithEveryRole();
    const project = await api(`/org/${team.slug}/projects`, { token: team.owner.token, body: { name: "Git team" } });
    const projectId = project.body.project.id;
    const created = await api(`/projects/${projectId}/apps`, { token: team.owner.token, body: { name: "Team site", git_repo_url: REPO } });
    expect(created.status, created.text).toBe(201);
    const app = created.body;
    const path = `/apps/${app.id}/git/webhook-secret`;

    expectApiError(await api(path, { method: "POST", token: team.viewer.token }), 403, "forbidden");
    const readOnly = await createOrgKey(team.owner, team.slug, "read-only");
    expectApiError(await api(path, { method: "POST", token: readOnly.key }), 403, "forbidden");
    expectApiError(await api(path, { method: "POST" }), 401, "unauthorized");
    const outsider = await signUp();
    expectApiError(await api(path, { method: "POST", token: outsider.token }), 404, "app_not_found");

    const renewed = await api(path, { method: "POST", token: team.developer.token });
    expect(renewed.status, renewed.text).toBe(200);
    expect(renewed.body.git_webhook_secret).toMatch(/^bwh_/);
    expect(renewed.body.git_webhook_secret).not.toBe(app.git_webhook_secret);
    const body = pushBody("refs/heads/feature");
    expectApiError(await webhook(app.id, body, await hmac(app.git_webhook_secret, body)), 401, "invalid_signature");
    expect((await webhook(app.id, body, await hmac(renewed.body.git_webhook_secret, body))).status).toBe(204);
    const audit = await api(`/org/${team.slug}/audit?action=app.git_webhook_secret.renew`, { token: team.owner.token });
    expect(audit.text).toContain(app.id);
    expect(audit.text).not.toContain(renewed.body.git_webhook_secret);

    const plain = await api(`/projects/${projectId}/apps`, { token: team.owner.token, body: { name: "Plain team app", image: "127.0.0.1:5000/berth/hello:v1" } });
    expectApiError(await api(`/apps/${plain.body.id}/git/webhook-secret`, { method: "POST", token: team.owner.token }), 409, "git_not_configured");
  });
});
