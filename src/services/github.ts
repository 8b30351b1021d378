/**
 * GitHub for linked accounts: where it lives (github.com, an Enterprise server, the tests'
 * stand-in), the linked account's token (kept encrypted by better-auth, read here only to
 * call GitHub), and the REST calls Dockup's `/git/repos` routes need, following GitHub's
 * `Link` pagination. Every failure of GitHub's becomes an ApiError that names GitHub's side,
 * never a 500, and never carries the token.
 */
import { symmetricDecrypt } from "better-auth/crypto";
import { and, eq } from "drizzle-orm";
import type { Database } from "../db/client";
import { account } from "../db/schema";
import { authSecret, type Env } from "../env";
import { ApiError } from "../lib/errors";
import { gitCloneUrl } from "./git-builds";

/** better-auth's provider id for a linked GitHub account (account.provider_id). */
export const GITHUB_PROVIDER = "github";
const DEFAULT_WEB_URL = "https://github.com";
const DEFAULT_API_URL = "https://api.github.com";
const DEFAULT_TIMEOUT_MS = 10_000;
/** GitHub's largest page; and the most pages read for one list (1000 repositories, branches). */
const PER_PAGE = 100;
const MAX_PAGES = 10;
const USER_AGENT = "Berth";

type GitHubEnv = Pick<Env, "GITHUB_URL" | "GITHUB_API_URL" | "GITHUB_TIMEOUT_MS" | "GITHUB_CLIENT_ID">;

const trimmed = (value: string | undefined, fallback: string) => (value?.trim() || fallback).replace(/\/+$/, "");

/** Where users authorize and codes become tokens. */
export const githubWebUrl = (env: GitHubEnv) => trimmed(env.GITHUB_URL, DEFAULT_WEB_URL);
/** GitHub's REST API. */
export const githubApiUrl = (env: GitHubEnv) => trimmed(env.GITHUB_API_URL, DEFAULT_API_URL);
/** Whether this deployment can link GitHub accounts at all. */
export const githubConfigured = (env: GitHubEnv) => Boolean(env.GITHUB_CLIENT_ID?.trim());

function timeoutMs(env: GitHubEnv): number {
  const n = Number(env.GITHUB_TIMEOUT_MS);
  return Number.isFinite(n) && n > 0 ? n : DEFAULT_TIMEOUT_MS;
}

/** The headers GitHub's REST API asks for (it refuses a request without a User-Agent). */
export const githubHeaders = (token: string) => ({
  authorization: `Bearer ${token}`,
  accept: "application/vnd.github+json",
  "x-github-api-version": "2022-11-28",
  "user-agent": USER_AGENT,
});

/** The caller's linked account of `provider`, or null. */
export async function findLinkedAccount(db: Database, userId: string, provider = GITHUB_PROVIDER) {
  return (await db.query.account.findFirst({ where: and(eq(account.userId, userId), eq(account.providerId, provider)) })) ?? null;
}

/** The caller's linked GitHub account and its token in clear, or `git_account_not_linked`. */
export async function linkedGitHubToken(db: Database, env: Env, userId: string): Promise<{ token: string; username: string | null }> {
  const row = await findLinkedAccount(db, userId);
  if (!row?.accessToken) throw new ApiError("git_account_not_linked", "No GitHub account is linked: link one in the dashboard's account settings (better-auth's POST /api/auth/link-social with provider github)");
  return { token: await decryptAccessToken(env, row.accessToken), username: row.username };
}

/** A token better-auth stored with `encryptOAuthTokens`. */
export async function decryptAccessToken(env: Env, stored: string): Promise<string> {
  try {
    return await symmetricDecrypt({ key: authSecret(env), data: stored });
  } catch {
    throw new ApiError("git_token_invalid", "The linked GitHub account's token cannot be read (the auth secret changed?): unlink the account and link it again");
  }
}

/** One GET of GitHub's API; a network failure or timeout becomes the matching ApiError. */
async function get(env: GitHubEnv, token: string, url: string): Promise<Response> {
  const signal = AbortSignal.timeout(timeoutMs(env));
  try {
    return await fetch(url, { headers: githubHeaders(token), signal, redirect: "manual" });
  } catch (err) {
    if (signal.aborted) throw new ApiError("git_provider_timeout", `GitHub did not answer within ${Math.round(timeoutMs(env) / 1000)} s`);
    throw new ApiError("git_provider_unavailable", "GitHub could not be reached", { cause: err instanceof Error ? err.name : "network" });
  }
}

/** What GitHub's refusal means to the caller; GitHub's own message is passed on as details. */
async function refusal(res: Response, notFound: () => ApiError): Promise<ApiError> {
  let message: string | undefined;
  try {
    const body = (await res.json()) as { message?: unknown };
    if (typeof body.message === "string") message = body.message.slice(0, 300);
  } catch {
    /* not JSON: keep nothing of it */
  }
  const details = { provider_status: res.status, ...(message ? { provider_message: message } : {}) };
  if (res.status === 401) return new ApiError("git_token_invalid", "GitHub refused the linked account's token (revoked or expired): unlink the account and link it again", details);
  if ((res.status === 403 || res.status === 429) && (res.headers.get("x-ratelimit-remaining") === "0" || res.status === 429)) {
    const reset = res.headers.get("x-ratelimit-reset");
    return new ApiError("git_provider_rate_limited", "GitHub rate-limited the linked account; try again later", { ...details, ...(reset ? { reset_at: new Date(Number(reset) * 1000).toISOString() } : {}) });
  }
  if (res.status === 404) return notFound();
  if (res.status === 403) return new ApiError("git_provider_forbidden", "GitHub does not let the linked account do this (the OAuth app may need the org's approval)", details);
  return new ApiError("git_provider_error", `GitHub failed (${res.status})`, details);
}

/** The `rel="next"` URL of a Link header, when it stays on the API's origin (the token goes with it). */
function nextPage(env: GitHubEnv, link: string | null): string | null {
  const next = link?.split(",").map((part) => /<([^>]+)>\s*;\s*rel="?next"?/.exec(part)?.[1]).find(Boolean);
  if (!next) return null;
  try {
    const url = new URL(next);
    return url.origin === new URL(githubApiUrl(env)).origin ? url.href : null;
  } catch {
    return null;
  }
}

/** Every page of a list, up to MAX_PAGES; `truncated` when there were more. */
async function allPages<T>(env: GitHubEnv, token: string, path: string, notFound: () => ApiError): Promise<{ items: T[]; truncated: boolean }> {
  const items: T[] = [];
  let url: string | null = `${githubApiUrl(env)}${path}${path.includes("?") ? "&" : "?"}per_page=${PER_PAGE}`;
  for (let page = 0; url; page++) {
    if (page === MAX_PAGES) return { items, truncated: true };
    const res = await get(env, token, url);
    if (!res.ok) throw await refusal(res, notFound);
    const body = (await res.json().catch(() => null)) as unknown;
    if (!Array.isArray(body)) throw new ApiError("git_provider_error", "GitHub answered with something that is not a list");
    items.push(...(body as T[]));
    url = nextPage(env, res.headers.get("link"));
  }
  return { items, truncated: false };
}

interface GitHubRepo {
  id: number;
  name: string;
  full_name: string;
  private: boolean;
  owner?: { login?: string };
  description?: string | null;
  default_branch?: string;
  html_url?: string;
  clone_url?: string;
  updated_at?: string | null;
  pushed_at?: string | null;
}

interface GitHubBranch {
  name: string;
  commit?: { sha?: string };
  protected?: boolean;
}

/** A repository as Dockup lists it: `full_name`, `default_branch`, `provider`, and what a picker shows. */
export const presentRepo = (r: GitHubRepo) => ({
  id: String(r.id),
  name: r.name,
  full_name: r.full_name,
  owner: r.owner?.login ?? r.full_name.split("/")[0] ?? "",
  private: Boolean(r.private),
  description: r.description ?? null,
  default_branch: r.default_branch ?? "main",
  provider: GITHUB_PROVIDER,
  html_url: r.html_url ?? null,
  clone_url: r.clone_url ?? null,
  updated_at: r.pushed_at ?? r.updated_at ?? null,
});

export const presentBranch = (b: GitHubBranch) => ({ name: b.name, commit_sha: b.commit?.sha ?? null, protected: Boolean(b.protected) });

/** The repositories the token's user may read: their own, collaborations and their orgs'. */
export async function listRepos(env: GitHubEnv, token: string) {
  const { items, truncated } = await allPages<GitHubRepo>(env, token, "/user/repos?sort=pushed&affiliation=owner,collaborator,organization_member", () => new ApiError("git_provider_error", "GitHub has no repository list here (is GITHUB_API_URL right?)"));
  return { repos: items.map(presentRepo), truncated };
}

export async function listBranches(env: GitHubEnv, token: string, owner: string, repo: string) {
  const { items, truncated } = await allPages<GitHubBranch>(
    env,
    token,
    `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/branches`,
    () => new ApiError("repo_not_found", `GitHub has no repository ${owner}/${repo} that the linked account can read`),
  );
  return { branches: items.map(presentBranch), truncated };
}

/**
 * The GitHub user behind a token (`/user`, with the primary address from `/user/emails` when
 * the profile hides it), for better-auth's sign-in and linking. Null when GitHub refuses.
 */
export async function githubUserOf(env: GitHubEnv, token: string) {
  const res = await get(env, token, `${githubApiUrl(env)}/user`);
  if (!res.ok) return null;
  const profile = (await res.json()) as { id: number; login: string; name?: string | null; email?: string | null; avatar_url?: string };
  let email = profile.email ?? null;
  let verified = false;
  const emails = await get(env, token, `${githubApiUrl(env)}/user/emails`);
  if (emails.ok) {
    const list = ((await emails.json().catch(() => [])) as Array<{ email: string; primary?: boolean; verified?: boolean }>) ?? [];
    const chosen = (email ? list.find((e) => e.email === email) : undefined) ?? list.find((e) => e.primary) ?? list[0];
    if (!email && chosen) email = chosen.email;
    verified = Boolean(chosen?.verified && chosen.email === email);
  }
  return { profile, email, verified };
}

/** Whether a repository URL is on the linked provider, so a build may clone it with the account's token. */
export function isOnGitHub(env: GitHubEnv, cloneUrl: string): boolean {
  try {
    const url = new URL(cloneUrl);
    return url.origin === new URL(githubWebUrl(env)).origin;
  } catch {
    return false;
  }
}

/**
 * The linked GitHub account a build of `repoUrl` clones with: the caller's, when the repository
 * is on GitHub (as `owner/repo` or a URL on GITHUB_URL) and the caller has linked one; else null.
 * Whoever sets an app's repository lends their own account, never someone else's.
 */
export async function gitAccountFor(db: Database, env: GitHubEnv, userId: string, repoUrl: string | null | undefined): Promise<string | null> {
  if (!repoUrl || !githubConfigured(env) || !isOnGitHub(env, gitCloneUrl(repoUrl, githubWebUrl(env)))) return null;
  return (await findLinkedAccount(db, userId))?.id ?? null;
}

/** The token of the linked account a build clones with, or null when it is gone or unreadable. */
export async function buildToken(db: Database, env: Env, accountId: string): Promise<string | null> {
  const row = await db.query.account.findFirst({ columns: { accessToken: true, providerId: true }, where: eq(account.id, accountId) });
  if (!row?.accessToken || row.providerId !== GITHUB_PROVIDER) return null;
  return decryptAccessToken(env, row.accessToken).catch(() => null);
}

/** Remembers a linked account's login until better-auth writes the account row (see better-auth.ts). */
export async function recordGitHubUsername(db: Database, accountId: string, login: string) {
  await db.update(account).set({ username: login }).where(and(eq(account.providerId, GITHUB_PROVIDER), eq(account.accountId, accountId)));
}
