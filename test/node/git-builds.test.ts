/**
 * Apps built from git end to end on this machine: wrangler dev, a real agent, dockerd's
 * builder, the local registry (the base image, 127.0.0.1:5000/berth/busybox:1.36) and Caddy
 * (test/host/setup.sh), and a git server the test starts: `git http-backend` (git's own
 * smart HTTP, which shallow clones need) behind a small node:http server on loopback,
 * serving bare repositories the test pushes to.
 */
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAKE_GITHUB_CLIENT_ID, FAKE_GITHUB_CLIENT_SECRET, startFakeGitHub } from "../fake-github/server";
import { type AgentProcess, startAgent } from "./support/agent";
import { type Client, signedUp, waitForJob } from "./support/client";
import { type DevServer, freePort, startDevServer } from "./support/dev-server";
import { startGitServer } from "./support/git-server";
import { getWithHost } from "./support/http";

const BASE_REGISTRY = "127.0.0.1:5000/berth";
const BASE_IMAGE = `${BASE_REGISTRY}/busybox:1.36`;

let server: DevServer;
let api: Client;
let projectId: string;
let ingress: number;
let agent: AgentProcess;
let git: Server;
let gitUrl: string;
let root: string;
let token: string;
let github: Awaited<ReturnType<typeof startFakeGitHub>>;
const createdApps: Array<{ id: string; slug: string }> = [];

function run(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { cwd, encoding: "utf8", env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: root } }).trim();
}

/** A bare repository served at `${gitUrl}/{name}.git` (or, under "github", by the GitHub stand-in) and a working copy to commit in. */
function newRepo(name: string, under = "repos"): string {
  run("git", ["init", "-q", "--bare", "-b", "main", join(root, under, `${name}.git`)]);
  const work = join(root, "work", name);
  mkdirSync(work, { recursive: true });
  run("git", ["init", "-q", "-b", "main"], work);
  run("git", ["remote", "add", "origin", join(root, under, `${name}.git`)], work);
  return work;
}

/** Writes `files` (null removes one), commits and pushes to main; answers the commit's sha. */
function commitAndPush(work: string, files: Record<string, string | null>, message: string): string {
  for (const [path, text] of Object.entries(files)) {
    if (text === null) rmSync(join(work, path), { force: true });
    else writeFileSync(join(work, path), text);
  }
  run("git", ["add", "-A"], work);
  run("git", ["-c", "user.name=Test", "-c", "user.email=test@example.com", "commit", "-q", "-m", message], work);
  run("git", ["push", "-q", "origin", "main"], work);
  return run("git", ["rev-parse", "HEAD"], work);
}

const dockerfile = (version: string, extra = "") =>
  [`FROM ${BASE_IMAGE}`, "COPY index.html /www/index.html", `RUN echo "building site ${version}"${extra}`, "EXPOSE 8080", 'CMD ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]', ""].join("\n");

const viaCaddy = (slug: string, path = "/") => getWithHost(ingress, `${slug}-app.localhost`, path);
const waitJob = (jobId: string, seconds = 180) => waitForJob(api, projectId, jobId, { seconds, context: () => agent.output().slice(-3000) });
const jobLog = async (jobId: string) => ((await api.call("GET", `/projects/${projectId}/jobs/${jobId}/logs`)).body.logs as Array<{ text?: string; data?: string; line?: string }>).map((l) => JSON.stringify(l)).join("\n");
const builtTags = (slug: string) => run("docker", ["images", "--format", "{{.Repository}}:{{.Tag}}", `berth-build/${slug}`]).split("\n").filter(Boolean);

async function pushWebhook(appId: string, secret: string, sha: string) {
  const body = JSON.stringify({ ref: "refs/heads/main", after: sha, pusher: { name: "test" } });
  const res = await fetch(`${server.url}/api/v1/apps/${appId}/git/webhook`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-github-event": "push", "x-hub-signature-256": `sha256=${createHmac("sha256", secret).update(body).digest("hex")}` },
    body,
  });
  return { status: res.status, body: (await res.json()) as any };
}

beforeAll(async () => {
  for (const [name, url] of [["registry", "http://127.0.0.1:5000/v2/"], ["caddy admin", "http://127.0.0.1:2019/config/"]] as const) {
    if (!(await fetch(url).then((r) => r.ok, () => false))) throw new Error(`${name} is not answering at ${url}: run test/host/setup.sh first (.ci/run does)`);
  }
  root = mkdtempSync(join(tmpdir(), "berth-git-"));
  git = await startGitServer(join(root, "repos"));
  gitUrl = `http://127.0.0.1:${(git.address() as AddressInfo).port}`;
  // GitHub for linked accounts: the stand-in, which also serves private repositories over git's smart HTTP.
  github = await startFakeGitHub({ gitRoot: join(root, "github") });
  server = await startDevServer({ env: { GITHUB_CLIENT_ID: FAKE_GITHUB_CLIENT_ID, GITHUB_URL: github.url, GITHUB_API_URL: github.apiUrl }, secrets: { GITHUB_CLIENT_SECRET: FAKE_GITHUB_CLIENT_SECRET } });
  let slug: string;
  ({ api, slug, token } = await signedUp(server.url));
  projectId = (await api.call("GET", "/projects")).body[0].id;
  const host = await api.call("POST", `/org/${slug}/hosts`, { name: "builder-1", kind: "docker" });
  expect(host.status).toBe(201);
  ingress = await freePort();
  const stateDir = join(root, "agent");
  agent = startAgent([
    "--url", server.url, "--state-dir", stateDir, "--join-token", host.body.join_token,
    "--ingress-listen", `127.0.0.1:${ingress}`, "--build-base-registry", BASE_REGISTRY,
  ]);
  await agent.waitFor(/connected transport=websocket/);
}, 180_000);

afterAll(async () => {
  for (const { id, slug } of createdApps) {
    const ids = run("docker", ["ps", "-aq", "--filter", `label=berth.app=${id}`]).split("\n").filter(Boolean);
    if (ids.length) run("docker", ["rm", "-f", ...ids]);
    await fetch(`http://127.0.0.1:2019/id/berth-app-${id}`, { method: "DELETE" }).catch(() => undefined);
    const tags = builtTags(slug);
    if (tags.length) run("docker", ["rmi", "-f", ...tags]);
  }
  await agent?.kill("SIGTERM");
  await server?.stop();
  await new Promise((r) => (git ? git.close(r) : r(null)));
  await github?.close();
  rmSync(root, { recursive: true, force: true });
});

describe("git builds on a real Docker host", () => {
  let site: { id: string; slug: string; git_webhook_secret: string };
  let work: string;
  let v2: string;

  it("builds a repository's Dockerfile on deploy: the build's output and commit in the job log, the app served through Caddy", async () => {
    work = newRepo("site");
    const v1 = commitAndPush(work, { "index.html": "site v1\n", Dockerfile: dockerfile("v1") }, "v1");
    const created = await api.call("POST", `/projects/${projectId}/apps`, {
      name: `Site ${Date.now().toString(36)}`,
      git_repo_url: `${gitUrl}/site.git`,
      git_branch: "main",
      internal_port: 8080,
      memory_limit: 64,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    site = created.body;
    createdApps.push(site);
    expect(site.git_webhook_secret).toMatch(/^bwh_/);

    const dep = await api.call("POST", `/apps/${site.id}/deploy`);
    expect(dep.status, JSON.stringify(dep.body)).toBe(202);
    const job = await waitJob(dep.body.job.id);
    expect(job.status, job.error).toBe("succeeded");
    const log = await jobLog(dep.body.job.id);
    expect(log).toContain(`commit ${v1}`);
    expect(log).toContain("Step 1/5 : FROM 127.0.0.1:5000/berth/busybox:1.36");
    expect(log).toContain("building site v1");
    expect(log).toMatch(/built berth-build\/[^ ]+ \([0-9a-f]{12}\) from commit/);

    expect((await viaCaddy(site.slug)).text).toContain("site v1");
    const deployments = (await api.call("GET", `/apps/${site.id}/deployments`)).body;
    expect(deployments[0]).toMatchObject({ status: "succeeded", commit_sha: v1, image: `berth-build/${site.slug}:${dep.body.id}` });
    expect(builtTags(site.slug)).toEqual([`berth-build/${site.slug}:${dep.body.id}`]);
  });

  it("deploys a new commit when the signed push webhook arrives, and prunes the earlier build", async () => {
    v2 = commitAndPush(work, { "index.html": "site v2\n", Dockerfile: dockerfile("v2") }, "v2");
    const hook = await pushWebhook(site.id, site.git_webhook_secret, v2);
    expect(hook.status, JSON.stringify(hook.body)).toBe(202);
    expect(hook.body.commit).toBe(v2);
    const job = await waitJob(hook.body.job.id);
    expect(job.status, job.error).toBe("succeeded");
    const log = await jobLog(hook.body.job.id);
    expect(log).toContain(`commit ${v2}`);
    expect(log).toContain("building site v2");
    expect(log).toContain("removed the earlier built image");
    expect((await viaCaddy(site.slug)).text).toContain("site v2");
    expect(builtTags(site.slug)).toEqual([`berth-build/${site.slug}:${hook.body.deployment.id}`]);

    // A wrongly signed push does nothing.
    const forged = await pushWebhook(site.id, "bwh_not-the-secret", v2);
    expect(forged.status).toBe(401);
    expect(forged.body.error.code).toBe("invalid_signature");
  });

  it("fails a broken build with the builder's own message, and the previous version keeps serving", async () => {
    const broken = commitAndPush(work, { Dockerfile: dockerfile("v3", ' && echo "about to fail" && false') }, "broken");
    const hook = await pushWebhook(site.id, site.git_webhook_secret, broken);
    expect(hook.status, JSON.stringify(hook.body)).toBe(202);
    const job = await waitJob(hook.body.job.id);
    expect(job.status).toBe("failed");
    expect(job.error).toMatch(/^The build failed: The command .*false.* returned a non-zero code: 1\. The previous version keeps serving\.$/);
    const log = await jobLog(hook.body.job.id);
    expect(log).toContain(`commit ${broken}`);
    expect(log).toContain("about to fail");
    expect((await viaCaddy(site.slug)).text).toContain("site v2");
    const deployments = (await api.call("GET", `/apps/${site.id}/deployments`)).body;
    expect(deployments[0]).toMatchObject({ status: "failed", commit_sha: broken });
    expect(deployments[1]).toMatchObject({ status: "succeeded", commit_sha: v2 });
    expect((await api.call("GET", `/apps/${site.id}`)).body.app.status).toBe("running");

    // A branch that is not there: git's own words.
    expect((await api.call("PUT", `/apps/${site.id}`, { git_branch: "nope" })).status).toBe(200);
    const missing = await api.call("POST", `/apps/${site.id}/deploy`);
    const failed = await waitJob(missing.body.job.id);
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatch(/Remote branch nope not found/);
    expect((await viaCaddy(site.slug)).text).toContain("site v2");
  });

  it("builds a static site without a Dockerfile from a generated one, on the configured base registry", async () => {
    const staticWork = newRepo("static");
    commitAndPush(staticWork, { "index.html": "<h1>static from git</h1>\n", "about.html": "about page\n" }, "static site");
    const created = await api.call("POST", `/projects/${projectId}/apps`, { name: `Static ${Date.now().toString(36)}`, git_repo_url: `${gitUrl}/static.git`, internal_port: 8080, memory_limit: 64 });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    createdApps.push(created.body);
    const dep = await api.call("POST", `/apps/${created.body.id}/deploy`);
    const job = await waitJob(dep.body.job.id);
    expect(job.status, job.error).toBe("succeeded");
    const log = await jobLog(dep.body.job.id);
    expect(log).toContain("no Dockerfile in the repository: detected a static app");
    expect(log).toContain(`FROM ${BASE_IMAGE}`);
    expect((await viaCaddy(created.body.slug)).text).toContain("static from git");
    expect((await viaCaddy(created.body.slug, "/about.html")).text).toContain("about page");
    // The generated Dockerfile built the image; it is not served from it.
    expect((await viaCaddy(created.body.slug, "/Dockerfile")).status).toBe(404);
  });

  it("builds a private GitHub repository with the linked account's token, which no log, answer or URL shows", async () => {
    const login = `octo-${Math.random().toString(36).slice(2, 8)}`;
    const privateWork = newRepo(`${login}/private-site`, "github");
    const sha = commitAndPush(privateWork, { "index.html": "private site\n", Dockerfile: dockerfile("private") }, "private");
    const created = await api.call("POST", `/projects/${projectId}/apps`, { name: `Private ${Date.now().toString(36)}`, git_repo_url: `${login}/private-site`, internal_port: 8080, memory_limit: 64 });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    createdApps.push(created.body);
    const appId: string = created.body.id;

    // Without a linked account the clone is refused, in git's words.
    const refused = await waitJob((await api.call("POST", `/apps/${appId}/deploy`)).body.job.id);
    expect(refused.status).toBe("failed");
    expect(refused.error).toMatch(/git clone of .*\/private-site\.git .*failed/);

    // Link the GitHub account as the dashboard does: better-auth's link-social, GitHub's page, the callback.
    const start = await fetch(`${server.url}/api/auth/link-social`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ provider: "github", callbackURL: "/settings" }),
    });
    expect(start.status).toBe(200);
    const authorize = new URL(((await start.json()) as { url: string }).url);
    authorize.searchParams.set("login", login);
    const callback = new URL((await fetch(authorize, { redirect: "manual" })).headers.get("location") ?? "");
    const cookie = start.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
    const linked = await fetch(`${server.url}${callback.pathname}${callback.search}`, { headers: { cookie }, redirect: "manual" });
    expect(linked.headers.get("location")).toMatch(/\/settings$/);
    const [githubToken] = (await (await fetch(`${github.url}/__tokens/${login}`)).json()) as string[];
    expect(githubToken).toMatch(/^gho_/);

    // Setting the repository (again) lends the caller's linked account to its builds.
    expect((await api.call("PUT", `/apps/${appId}`, { git_repo_url: `${login}/private-site` })).status).toBe(200);
    const dep = await api.call("POST", `/apps/${appId}/deploy`);
    expect(dep.status, JSON.stringify(dep.body)).toBe(202);
    const job = await waitJob(dep.body.job.id);
    expect(job.status, job.error).toBe("succeeded");
    const log = await jobLog(dep.body.job.id);
    expect(log).toContain(`commit ${sha}`);
    expect(log).toContain(`cloning ${github.url}/${login}/private-site.git (branch main) with the linked GitHub account`);
    expect((await viaCaddy(created.body.slug)).text).toContain("private site");
    expect((await (await fetch(`${github.url}/__git-auth`)).json()) as string[]).toContain("Basic");

    // The token is in no log, answer or stored URL.
    const seenBy = [log, agent.output(), JSON.stringify((await api.call("GET", `/apps/${appId}`)).body), JSON.stringify((await api.call("GET", `/apps/${appId}/deployments`)).body), JSON.stringify((await api.call("GET", `/apps/${appId}/events`)).body)];
    for (const text of seenBy) expect(text).not.toContain(githubToken);
  });
});
