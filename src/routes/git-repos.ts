/**
 * Dockup's linked accounts and repository pickers: `GET /auth/oauth/accounts` (the caller's
 * OAuth accounts, never their tokens), `GET /git/repos` and
 * `GET /git/repos/{owner}/{repo}/branches` (listed at GitHub with the linked account's
 * token). Linking and unlinking are better-auth's own routes (`POST /api/auth/link-social`,
 * `POST /api/auth/unlink-account` with the `id` listed here), which the dashboard calls.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, eq, ne } from "drizzle-orm";
import { createRouter } from "../app";
import { requireUser } from "../auth/access";
import { account } from "../db/schema";
import { ApiError, errorResponsesFor } from "../lib/errors";
import { GITHUB_PROVIDER, linkedGitHubToken, listBranches, listRepos } from "../services/github";
import { json } from "./schemas";

const router = createRouter();

const OAuthAccount = z
  .object({
    id: z.string(),
    provider: z.string().openapi({ example: "github" }),
    username: z.string().nullable().openapi({ description: "The login at the provider (GitHub's `login`)" }),
    account_id: z.string().openapi({ description: "The provider's id of the account" }),
    scopes: z.array(z.string()),
    created_at: z.string(),
  })
  .openapi("OAuthAccount");

const GitRepo = z
  .object({
    id: z.string(),
    name: z.string(),
    full_name: z.string().openapi({ example: "octocat/hello-world" }),
    owner: z.string(),
    private: z.boolean(),
    description: z.string().nullable(),
    default_branch: z.string(),
    provider: z.string().openapi({ example: "github" }),
    html_url: z.string().nullable(),
    clone_url: z.string().nullable(),
    updated_at: z.string().nullable(),
  })
  .openapi("GitRepo");

const GitBranch = z.object({ name: z.string(), commit_sha: z.string().nullable(), protected: z.boolean() }).openapi("GitBranch");

const ProviderQuery = z.object({
  provider: z.string().max(40).optional().openapi({ description: "The provider whose repositories to list; only `github` (the default)" }),
});

/** Only GitHub can be listed; anything else is said plainly rather than answered with nothing. */
function requireGitHub(provider: string | undefined) {
  if (provider !== undefined && provider.toLowerCase() !== GITHUB_PROVIDER) {
    throw new ApiError("provider_not_supported", `Berth lists repositories of linked GitHub accounts only, not "${provider.slice(0, 40)}"`);
  }
}

/** GitHub's names: an owner is letters, digits and hyphens; a repository also dots and underscores. */
const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const REPO = /^[A-Za-z0-9._-]{1,100}$/;

const GIT_ERRORS = ["git_account_not_linked", "git_token_invalid", "provider_not_supported", "git_provider_error", "git_provider_unavailable", "git_provider_timeout", "git_provider_rate_limited", "git_provider_forbidden"] as const;

router.openapi(
  createRoute({
    method: "get",
    path: "/auth/oauth/accounts",
    tags: ["Auth"],
    summary: "Your connected OAuth accounts (GitHub), with provider and username; never their tokens",
    description: "Link an account with better-auth's `POST /api/auth/link-social` (`{\"provider\":\"github\",\"callbackURL\":\"/settings\"}`), unlink it with `POST /api/auth/unlink-account` (`{\"accountId\":<id>}`, the `id` listed here; a session younger than a day).",
    responses: { 200: json(z.array(OAuthAccount), "The caller's OAuth accounts, oldest first"), ...errorResponsesFor() },
  }),
  async (c) => {
    const p = requireUser(c, "account:read");
    const rows = await c.var.db
      .select({ id: account.id, providerId: account.providerId, accountId: account.accountId, username: account.username, scope: account.scope, createdAt: account.createdAt })
      .from(account)
      .where(and(eq(account.userId, p.userId), ne(account.providerId, "credential")))
      .orderBy(asc(account.createdAt));
    return c.json(
      rows.map((r) => ({
        id: r.id,
        provider: r.providerId,
        username: r.username,
        account_id: r.accountId,
        scopes: (r.scope ?? "").split(/[\s,]+/).filter(Boolean),
        created_at: r.createdAt.toISOString(),
      })),
      200,
    );
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/git/repos",
    tags: ["Git"],
    summary: "Repositories of your linked GitHub account (yours, your collaborations and your orgs'), most recently pushed first",
    description: "Every page of GitHub's list, up to 1000 repositories. `git_account_not_linked` when no GitHub account is linked; `git_token_invalid` when GitHub refuses its token.",
    request: { query: ProviderQuery },
    responses: { 200: json(z.array(GitRepo), "Repositories with full_name, default_branch and provider"), ...errorResponsesFor(...GIT_ERRORS) },
  }),
  async (c) => {
    const p = requireUser(c, "git:read");
    requireGitHub(c.req.valid("query").provider);
    const { token } = await linkedGitHubToken(c.var.db, c.env, p.userId);
    const { repos, truncated } = await listRepos(c.env, token);
    if (truncated) c.header("x-berth-truncated", "true");
    return c.json(repos, 200);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/git/repos/{owner}/{repo}/branches",
    tags: ["Git"],
    summary: "Branches of a repository, read with your linked GitHub account",
    request: {
      params: z.object({
        owner: z.string().regex(OWNER, "a GitHub owner is letters, digits and hyphens").openapi({ param: { name: "owner", in: "path" } }),
        repo: z.string().regex(REPO, "a repository name is letters, digits, . _ and -").openapi({ param: { name: "repo", in: "path" } }),
      }),
      query: ProviderQuery,
    },
    responses: { 200: json(z.array(GitBranch), "The repository's branches"), ...errorResponsesFor("repo_not_found", ...GIT_ERRORS) },
  }),
  async (c) => {
    const p = requireUser(c, "git:read");
    requireGitHub(c.req.valid("query").provider);
    const { owner, repo } = c.req.valid("param");
    const { token } = await linkedGitHubToken(c.var.db, c.env, p.userId);
    const { branches, truncated } = await listBranches(c.env, token, owner, repo.replace(/\.git$/, ""));
    if (truncated) c.header("x-berth-truncated", "true");
    return c.json(branches, 200);
  },
);

export default router;
