/**
 * Linked GitHub accounts against the local stand-in (test/fake-github/server.ts, through
 * GITHUB_URL / GITHUB_API_URL): linking through better-auth's link-social and its callback,
 * `GET /auth/oauth/accounts`, `GET /git/repos` and `/git/repos/{owner}/{repo}/branches` read
 * page by page, the token stored encrypted and in no answer, GitHub's refusals and outages
 * as clear errors, other users and key scopes, and unlinking.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { configProblems } from "../../src/config";
import { api, createOrgKey, env, expectApiError, fetchWorker, signUp, type TestUser } from "./helpers";

const GITHUB = env.GITHUB_URL as string;

/** The Set-Cookie pairs of a response, as a Cookie header. */
const cookiesOf = (res: Response) =>
  res.headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .join("; ");

/**
 * Links `login` at the stand-in to `user` as the dashboard does: better-auth's link-social,
 * GitHub's authorize page (which the stand-in answers for `login`), better-auth's callback.
 * Returns where the callback sent the browser.
 */
async function linkGitHub(user: TestUser, login: string): Promise<string> {
  const start = await fetchWorker("/api/auth/link-social", {
    method: "POST",
    headers: { authorization: `Bearer ${user.token}`, "content-type": "application/json" },
    body: JSON.stringify({ provider: "github", callbackURL: "/settings" }),
  });
  const started = (await start.json()) as { url: string };
  expect(start.status, JSON.stringify(started)).toBe(200);
  const authorize = new URL(started.url);
  expect(authorize.origin + authorize.pathname).toBe(`${GITHUB}/login/oauth/authorize`);
  expect(authorize.searchParams.get("scope")).toContain("repo");
  authorize.searchParams.set("login", login);
  const consent = await fetch(authorize, { redirect: "manual" });
  expect(consent.status).toBe(302);
  const callback = new URL(consent.headers.get("location") ?? "");
  expect(callback.pathname).toBe("/api/auth/callback/github");
  const done = await fetchWorker(callback.pathname + callback.search, { headers: { cookie: cookiesOf(start) }, redirect: "manual" });
  expect(done.status).toBe(302);
  return done.headers.get("location") ?? "";
}

const liveTokens = async (login: string) => (await (await fetch(`${GITHUB}/__tokens/${login}`)).json()) as string[];
const unique = (tag: string) => `${tag}-${Math.random().toString(36).slice(2, 8)}`;

let ada: TestUser;
let bob: TestUser;
let adaLogin: string;
beforeAll(async () => {
  [ada, bob] = await Promise.all([signUp({ name: "Ada" }), signUp({ name: "Bob" })]);
  adaLogin = unique("ada");
  expect(await linkGitHub(ada, adaLogin)).toMatch(/\/settings$/);
});

describe("GET /auth/oauth/accounts", () => {
  it("lists the linked GitHub account with its login, and no token anywhere", async () => {
    const res = await api("/auth/oauth/accounts", { token: ada.token });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual([expect.objectContaining({ provider: "github", username: adaLogin, scopes: expect.arrayContaining(["repo"]) })]);
    const [token] = await liveTokens(adaLogin);
    expect(token).toMatch(/^gho_/);
    expect(res.text).not.toContain(token);
    // Stored encrypted: the row does not hold the token as it is.
    const row = await env.DB.prepare("SELECT access_token FROM account WHERE user_id = ? AND provider_id = 'github'").bind(ada.id).first<{ access_token: string }>();
    expect(row?.access_token).toBeTruthy();
    expect(row?.access_token).not.toContain(token!.slice(4));
    // better-auth's own account list carries no token either.
    const listed = await fetchWorker("/api/auth/list-accounts", { headers: { authorization: `Bearer ${ada.token}` } });
    expect(listed.status).toBe(200);
    expect(await listed.text()).not.toContain(token!.slice(4));
  });

  it("is empty for someone with no linked account, and never shows another user's", async () => {
    const res = await api("/auth/oauth/accounts", { token: bob.token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual([]);
  });

  it("answers 401 without a credential", async () => {
    expectApiError(await api("/auth/oauth/accounts"), 401, "unauthorized");
  });
});

describe("GET /git/repos", () => {
  it("lists every repository of the linked account, following GitHub's pages", async () => {
    const res = await api("/git/repos?provider=github", { token: ada.token });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toHaveLength(5);
    expect(res.body.map((r: { full_name: string }) => r.full_name)).toEqual([1, 2, 3, 4, 5].map((i) => `${adaLogin}/repo-${i}`));
    expect(res.body[1]).toMatchObject({ name: "repo-2", owner: adaLogin, private: true, default_branch: "main", provider: "github", clone_url: `${GITHUB}/${adaLogin}/repo-2.git` });
    const seen = (await (await fetch(`${GITHUB}/__seen`)).json()) as string[];
    expect(seen.filter((s) => s.startsWith("GET /user/repos")).length).toBeGreaterThanOrEqual(3);
    const [token] = await liveTokens(adaLogin);
    expect(res.text).not.toContain(token);
  });

  it("defaults to GitHub and refuses another provider with 400", async () => {
    expect((await api("/git/repos", { token: ada.token })).body).toHaveLength(5);
    expectApiError(await api("/git/repos?provider=gitlab", { token: ada.token }), 400, "provider_not_supported");
  });

  it("answers 409 git_account_not_linked to someone without a linked account, never another user's repositories", async () => {
    const res = await api("/git/repos", { token: bob.token });
    expectApiError(res, 409, "git_account_not_linked");
    expect(res.text).not.toContain(adaLogin);
  });

  it("answers 401 without a credential", async () => {
    expectApiError(await api("/git/repos"), 401, "unauthorized");
  });
});

describe("GET /git/repos/{owner}/{repo}/branches", () => {
  it("lists a repository's branches across pages", async () => {
    const res = await api(`/git/repos/${adaLogin}/repo-2/branches?provider=github`, { token: ada.token });
    expect(res.status, res.text).toBe(200);
    expect(res.body.map((b: { name: string }) => b.name)).toEqual(["main", "dev", "feature/x"]);
    expect(res.body[0]).toMatchObject({ protected: true, commit_sha: expect.stringMatching(/^[0-9a-f]{40}$/) });
  });

  it("answers 404 repo_not_found for a repository the account cannot read, 400 for a name GitHub cannot have", async () => {
    expectApiError(await api(`/git/repos/someone-else/secret/branches`, { token: ada.token }), 404, "repo_not_found");
    expectApiError(await api(`/git/repos/-bad-/repo/branches`, { token: ada.token }), 400, "invalid_request");
  });

  it("does not read another user's repository with their account", async () => {
    expectApiError(await api(`/git/repos/${adaLogin}/repo-2/branches`, { token: bob.token }), 409, "git_account_not_linked");
  });

  it("answers 401 without a credential", async () => {
    expectApiError(await api(`/git/repos/${adaLogin}/repo-1/branches`), 401, "unauthorized");
  });
});

describe("personal and org keys", () => {
  it("lets a deploy or full dkp_ key list repositories; a read-only one sees the accounts only; org keys neither", async () => {
    const key = async (scope: string) => {
      const res = await api("/api-keys", { token: ada.token, body: { name: `${scope} key`, scope } });
      expect(res.status, res.text).toBe(201);
      return res.body.key as string;
    };
    const [readOnly, deploy, full] = await Promise.all([key("read-only"), key("deploy"), key("full")]);
    expect((await api("/auth/oauth/accounts", { token: readOnly })).body).toHaveLength(1);
    expectApiError(await api("/git/repos", { token: readOnly }), 403, "forbidden");
    expectApiError(await api(`/git/repos/${adaLogin}/repo-1/branches`, { token: readOnly }), 403, "forbidden");
    expect((await api("/git/repos", { token: deploy })).body).toHaveLength(5);
    expect((await api(`/git/repos/${adaLogin}/repo-1/branches`, { token: full })).status).toBe(200);
    const orgKey = await createOrgKey(ada, ada.orgSlug, "full");
    expectApiError(await api("/auth/oauth/accounts", { token: orgKey.key }), 403, "forbidden");
    expectApiError(await api("/git/repos", { token: orgKey.key }), 403, "forbidden");
  });
});

describe("when GitHub says no", () => {
  it("answers 409 git_token_invalid once the token is revoked, and works again after linking again", async () => {
    const user = await signUp({ name: "Revoked" });
    const login = unique("rev");
    await linkGitHub(user, login);
    expect((await api("/git/repos", { token: user.token })).status).toBe(200);
    await fetch(`${GITHUB}/__revoke/${login}`, { method: "POST" });
    const res = await api("/git/repos", { token: user.token });
    expectApiError(res, 409, "git_token_invalid");
    expect(res.body.error.details).toMatchObject({ provider_status: 401, provider_message: "Bad credentials" });
    // Linking the same GitHub account again replaces the token and keeps one account.
    await linkGitHub(user, login);
    expect((await api("/git/repos", { token: user.token })).status).toBe(200);
    expect((await api("/auth/oauth/accounts", { token: user.token })).body).toEqual([expect.objectContaining({ username: login })]);
  });

  it("answers 502 git_provider_error when GitHub fails", async () => {
    const user = await signUp({ name: "Outage" });
    await linkGitHub(user, unique("outage"));
    const res = await api("/git/repos", { token: user.token });
    expectApiError(res, 502, "git_provider_error");
    expect(res.body.error.details).toMatchObject({ provider_status: 503 });
  });
});

describe("unlinking", () => {
  it("better-auth's unlink-account removes the account; listing then says it is not linked", async () => {
    const user = await signUp({ name: "Unlinker" });
    const login = unique("unl");
    await linkGitHub(user, login);
    const [linked] = (await api("/auth/oauth/accounts", { token: user.token })).body;
    expect(linked).toMatchObject({ provider: "github", username: login });
    const res = await fetchWorker("/api/auth/unlink-account", {
      method: "POST",
      headers: { authorization: `Bearer ${user.token}`, "content-type": "application/json" },
      body: JSON.stringify({ accountId: linked.id }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await api("/auth/oauth/accounts", { token: user.token })).body).toEqual([]);
    expectApiError(await api("/git/repos", { token: user.token }), 409, "git_account_not_linked");
    // Ada's link is untouched.
    expect((await api("/auth/oauth/accounts", { token: ada.token })).body).toHaveLength(1);
  });
});

describe("private repositories", () => {
  it("a deploy of a repository on GitHub hands the agent the linked token for its lease only; an org key lends no one's", async () => {
    const created = await api(`/org/${ada.orgSlug}/hosts`, { token: ada.token, body: { name: "builder", kind: "docker" } });
    const joined = await api("/agent/join", { body: { join_token: created.body.join_token, agent_version: "test", facts: { cpus: 2, memory_bytes: 4096 * 1024 * 1024 } } });
    expect(joined.status, joined.text).toBe(201);
    const credential = joined.body.credential as string;
    // Leases this test's "agent" holds: naming them keeps them (an unnamed one is handed out again).
    const held: Array<{ job_id: string; lease_id: string }> = [];
    const leaseOf = async (jobId: string) => {
      let lease: any;
      for (let i = 0; i < 10 && !lease; i++) {
        const claimed = (await api("/agent/claim", { token: credential, body: { held, wait: 1 } })).body.leases as any[];
        held.push(...claimed.map((l) => ({ job_id: l.job_id, lease_id: l.lease_id })));
        lease = claimed.find((l) => l.job_id === jobId);
      }
      expect(lease, `no lease for ${jobId}`).toBeTruthy();
      return lease;
    };
    const [token] = await liveTokens(adaLogin);

    const app = await api(`/projects/${ada.projectId}/apps`, { token: ada.token, body: { name: "Private site", git_repo_url: `${adaLogin}/repo-2`, internal_port: 8080 } });
    expect(app.status, app.text).toBe(201);
    const deployed = await api(`/apps/${app.body.id}/deploy`, { token: ada.token, method: "POST" });
    expect(deployed.status, deployed.text).toBe(202);
    const lease = await leaseOf(deployed.body.job.id);
    expect(lease.payload.git).toEqual({ repo_url: `${GITHUB}/${adaLogin}/repo-2.git`, branch: "main", has_token: true });
    expect(JSON.stringify(lease)).not.toContain(token);
    const secrets = await api(`/agent/leases/${lease.lease_id}/env`, { token: credential });
    expect(secrets.status, secrets.text).toBe(200);
    expect(secrets.body.git_token).toBe(token);
    for (const path of [`/apps/${app.body.id}`, `/apps/${app.body.id}/deployments`, `/apps/${app.body.id}/events`]) {
      expect((await api(path, { token: ada.token })).text).not.toContain(token);
    }

    // An org key sets up the same repository: nobody's account is lent, the clone goes without a token.
    const orgKey = await createOrgKey(ada, ada.orgSlug, "full");
    const byKey = await api(`/projects/${ada.projectId}/apps`, { token: orgKey.key, body: { name: "Key site", git_repo_url: `${adaLogin}/repo-2`, internal_port: 8080 } });
    expect(byKey.status, byKey.text).toBe(201);
    const keyDeploy = await api(`/apps/${byKey.body.id}/deploy`, { token: ada.token, method: "POST" });
    const keyLease = await leaseOf(keyDeploy.body.job.id);
    expect(keyLease.payload.git).toMatchObject({ has_token: false });
    expect((await api(`/agent/leases/${keyLease.lease_id}/env`, { token: credential })).body.git_token).toBeNull();

    // Someone without a linked account setting the repository again takes the lent account away.
    const withOthers = await api(`/apps/${app.body.id}`, { token: orgKey.key, method: "PUT", body: { git_repo_url: `${adaLogin}/repo-2` } });
    expect(withOthers.status, withOthers.text).toBe(200);
    // (The app's first deploy still holds its lease, so the next one would wait: the stored link says it.)
    const row = await env.DB.prepare("SELECT git_account_id FROM app WHERE id = ?").bind(app.body.id).first<{ git_account_id: string | null }>();
    expect(row?.git_account_id).toBeNull();
  });
});

describe("configuration", () => {
  it("a production deployment with a GitHub client id but no secret, or a GitHub URL that is not one, does not serve", () => {
    const production = { ...env, ENVIRONMENT: "production" };
    expect(configProblems({ ...production, GITHUB_CLIENT_SECRET: undefined }).join("\n")).toContain("GITHUB_CLIENT_SECRET is not");
    expect(configProblems({ ...production, GITHUB_API_URL: "api.github.com" }).join("\n")).toContain("GITHUB_API_URL must be an http(s) URL");
    expect(configProblems(production).join("\n")).not.toContain("GITHUB");
  });
});
