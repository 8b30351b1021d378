/**
 * better-auth on D1 through its drizzle adapter: email and password, cookie
 * sessions for the SPA (`better-auth.session_token`), the same session token as
 * `Authorization: Bearer` for scripts, and usernames for DevPocket's clients.
 * Made per request because the D1 binding is per request.
 *
 * Berth's rules hold on better-auth's own routes too (see sessionPolicy below):
 * - ending a session by any route (sign-out, revoke-session(s), change-password,
 *   a reset) ends the refresh token issued with it;
 * - session lists never carry other sessions' tokens;
 * - every name or profile text a user writes follows the same character and
 *   length rules as Berth's routes, whichever route writes it;
 * - an account with two-factor on gets no session from a password alone (the twoFactor
 *   plugin; Berth's own routes in services/two-factor.ts write the same rows).
 */
import { betterAuth } from "better-auth";
import { drizzleAdapter } from "better-auth/adapters/drizzle";
import { APIError, createAuthMiddleware } from "better-auth/api";
import { admin, bearer, genericOAuth, twoFactor as twoFactorPlugin, username } from "better-auth/plugins";
import { eq } from "drizzle-orm";
import type { Database } from "../db/client";
import { expireOrphanedRefreshTokens, expireRefreshTokens, expireRefreshTokensOfSession } from "../db/refresh-tokens";
import { account, session, twoFactor, user, verification } from "../db/schema";
import { authSecret, type Env } from "../env";
import { newId, type IdPrefix } from "../lib/ids";
import { displayTextProblem, NAME_MAX } from "../lib/text";
import type { Mailer } from "../services/mail";
import { GITHUB_PROVIDER, githubConfigured, githubUserOf, githubWebUrl, recordGitHubUsername } from "../services/github";
import { createPersonalOrg } from "../services/orgs";
import { trustedOrigins } from "./origins";
import { forgetCredentials } from "./credential-cache";

const ID_PREFIX: Record<string, IdPrefix> = { user: "usr", session: "ses", account: "acc", verification: "vrf", twoFactor: "tfa" };

export const SESSION_TTL_SECONDS = 7 * 24 * 3600;

/** The issuer an authenticator app shows beside the account (otpauth:// URIs). */
export const TOTP_ISSUER = "Berth";

/** The profile fields a user writes and others may see, with their longest length. */
const USER_TEXT_FIELDS: Record<string, number> = {
  name: NAME_MAX,
  username: 30,
  displayUsername: 30,
  title: 120,
  timezone: 60,
  country: 8,
  language: 16,
};

/** Refuses a user row whose visible texts break the rules, or that is too large to store. */
function checkUserFields(fields: Record<string, unknown>) {
  for (const [field, max] of Object.entries(USER_TEXT_FIELDS)) {
    const value = fields[field];
    if (value === undefined || value === null) continue;
    const problem = typeof value === "string" ? displayTextProblem(value, max) : "must be a string";
    if (problem) throw new APIError("BAD_REQUEST", { code: "INVALID_REQUEST", message: `${field} ${problem}` });
  }
  if (typeof fields.image === "string" && fields.image.length > 2048) {
    throw new APIError("BAD_REQUEST", { code: "INVALID_REQUEST", message: "image must be a URL of at most 2048 characters" });
  }
}

type PublicSession = Record<string, unknown> & { token?: unknown };

/**
 * A better-auth plugin with Berth's session rules: `list-sessions` answers without
 * tokens (a session id instead), and `revoke-session` takes that id as well as a token.
 */
function sessionPolicy(db: Database) {
  return {
    id: "berth-session-policy",
    hooks: {
      before: [
        {
          matcher: (ctx: { path?: string }) => ctx.path === "/revoke-session",
          handler: createAuthMiddleware(async (ctx) => {
            const presented = (ctx.body as { token?: unknown } | undefined)?.token;
            if (typeof presented !== "string" || !presented.startsWith("ses_")) return;
            // better-auth still checks that the session is the caller's own before it ends it.
            const row = await db.query.session.findFirst({ columns: { token: true }, where: eq(session.id, presented) });
            return { context: { body: { token: row?.token ?? presented } } };
          }),
        },
      ],
      after: [
        {
          // Any write through better-auth (sign-out, revoke-session(s), change-password, a reset,
          // a deleted user) may have ended sessions that this isolate has validated recently.
          matcher: (ctx: { method?: string }) => ctx.method !== "GET",
          handler: createAuthMiddleware(async () => {
            forgetCredentials();
          }),
        },
        {
          // Routes that end many sessions at once: every refresh token whose session went ends too.
          matcher: (ctx: { path?: string }) => ["/revoke-sessions", "/revoke-other-sessions", "/change-password"].includes(ctx.path ?? ""),
          handler: createAuthMiddleware(async (ctx) => {
            const userId = ctx.context.session?.user.id ?? ctx.context.newSession?.user.id;
            if (userId) await expireOrphanedRefreshTokens(db, userId);
          }),
        },
        {
          // better-auth's admin plugin ends sessions of another user: their refresh tokens go too.
          matcher: (ctx: { path?: string }) =>
            ["/admin/revoke-user-session", "/admin/revoke-user-sessions", "/admin/ban-user", "/admin/set-user-password"].includes(ctx.path ?? ""),
          handler: createAuthMiddleware(async (ctx) => {
            const userId = (ctx.body as { userId?: unknown } | undefined)?.userId;
            if (typeof userId === "string") await expireOrphanedRefreshTokens(db, userId);
          }),
        },
        {
          // An administrator's list of someone's sessions carries no tokens either.
          matcher: (ctx: { path?: string }) => ctx.path === "/admin/list-user-sessions",
          handler: createAuthMiddleware(async (ctx) => {
            const returned = ctx.context.returned as { sessions?: unknown } | undefined;
            if (!returned || !Array.isArray(returned.sessions)) return;
            return ctx.json({ ...returned, sessions: returned.sessions.map(({ token: _token, ...rest }: PublicSession) => rest) });
          }),
        },
        {
          matcher: (ctx: { path?: string }) => ctx.path === "/list-sessions",
          handler: createAuthMiddleware(async (ctx) => {
            const returned = ctx.context.returned;
            if (!Array.isArray(returned)) return;
            return ctx.json(returned.map(({ token: _token, ...rest }: PublicSession) => rest));
          }),
        },
      ],
    },
  };
}

/**
 * GitHub as a sign-in and linking provider. better-auth's built-in `github` provider has
 * github.com's authorize and token URLs written in, so neither GitHub Enterprise nor the
 * tests' stand-in could be used; its maintained genericOAuth plugin takes the URLs, with
 * GitHub's as the defaults (GITHUB_URL, GITHUB_API_URL). The provider id stays `github`, so
 * the better-auth client calls (`linkSocial({ provider: "github" })`, `signIn.social`) and the
 * callback path (`/api/auth/callback/github`) are the ones the built-in provider has.
 *
 * GitHub's `login` is not part of better-auth's account: getUserInfo notes it by account id,
 * and the account hooks write it to `account.username` once better-auth has saved the row.
 */
function githubProvider(env: Env, logins: Map<string, string>) {
  const web = githubWebUrl(env);
  return genericOAuth({
    config: [
      {
        providerId: GITHUB_PROVIDER,
        name: "GitHub",
        clientId: env.GITHUB_CLIENT_ID?.trim() ?? "",
        clientSecret: env.GITHUB_CLIENT_SECRET,
        authorizationUrl: `${web}/login/oauth/authorize`,
        tokenUrl: `${web}/login/oauth/access_token`,
        // `repo` to list and clone private repositories; the profile and its verified address to sign in.
        scopes: ["read:user", "user:email", "repo"],
        authentication: "post",
        async getUserInfo(tokens) {
          if (!tokens.accessToken) return null;
          const found = await githubUserOf(env, tokens.accessToken).catch(() => null);
          if (!found) return null;
          const id = String(found.profile.id);
          if (logins.size > 1000) logins.clear();
          logins.set(id, found.profile.login);
          return {
            id,
            name: found.profile.name || found.profile.login,
            email: found.email ?? undefined,
            emailVerified: found.verified,
            image: found.profile.avatar_url,
          };
        },
      },
    ],
  });
}

export function createAuth(env: Env, db: Database, mailer: Mailer, baseURL: string) {
  /** GitHub logins seen by getUserInfo, by account id, until the account row is written. */
  const githubLogins = new Map<string, string>();
  const noteGitHubLogin = async (row: { providerId?: string; accountId?: string }) => {
    if (row.providerId !== GITHUB_PROVIDER || !row.accountId) return;
    const login = githubLogins.get(row.accountId);
    if (!login) return;
    githubLogins.delete(row.accountId);
    await recordGitHubUsername(db, row.accountId, login);
  };
  return betterAuth({
    appName: "Berth",
    baseURL,
    basePath: "/api/auth",
    secret: authSecret(env),
    trustedOrigins: trustedOrigins(env, baseURL),
    database: drizzleAdapter(db, { provider: "sqlite", schema: { user, session, account, verification, twoFactor } }),
    emailAndPassword: {
      enabled: true,
      minPasswordLength: 8,
      maxPasswordLength: 128,
      resetPasswordTokenExpiresIn: 3600,
      revokeSessionsOnPasswordReset: true,
      // Sessions end with a reset; so do the refresh tokens that could mint new ones, whichever endpoint reset it.
      onPasswordReset: async ({ user: reset }) => {
        await expireRefreshTokens(db, reset.id);
      },
      async sendResetPassword({ user, token }) {
        const link = `${env.PUBLIC_URL || baseURL}/reset-password?token=${token}`;
        await mailer.send({
          to: user.email,
          subject: "Reset your Berth password",
          text: `Someone asked to reset the password of ${user.email}.\n\nReset it within an hour: ${link}\nOr send this token to POST /api/v1/auth/password/reset: ${token}\n\nIf it was not you, ignore this mail.`,
        });
      },
    },
    session: { expiresIn: SESSION_TTL_SECONDS, updateAge: 24 * 3600 },
    account: {
      // OAuth tokens (a linked GitHub account's) are stored encrypted with the auth secret.
      encryptOAuthTokens: true,
      // A GitHub account's address is rarely the one signed up with; linking is done signed in, so it is the caller's.
      accountLinking: { enabled: true, allowDifferentEmails: true },
    },
    user: {
      additionalFields: {
        title: { type: "string", required: false },
        timezone: { type: "string", required: false },
        country: { type: "string", required: false },
        language: { type: "string", required: false },
        preferences: { type: "string", required: false, input: false },
      },
    },
    databaseHooks: {
      user: {
        create: {
          before: async (created) => checkUserFields(created),
          // Every account starts with a personal org and a default project (Suble's signup does this).
          after: async (created) => {
            await createPersonalOrg(db, { id: created.id, name: created.name, email: created.email });
          },
        },
        update: { before: async (changes) => checkUserFields(changes) },
      },
      account: {
        create: { after: async (created) => noteGitHubLogin(created) },
        update: { after: async (updated) => noteGitHubLogin(updated) },
      },
      session: {
        delete: {
          // A session ended before its time (signed out, revoked, replaced by a password change)
          // takes its refresh token with it. One that merely expired keeps it: renewing an expired
          // session is what a refresh token is for.
          after: async (ended) => {
            forgetCredentials();
            if (ended.expiresAt.getTime() > Date.now()) await expireRefreshTokensOfSession(db, ended);
          },
        },
      },
    },
    // Berth limits sign-in, sign-up and every password or mail route itself (auth/rate-limits.ts)
    // with Workers rate-limit bindings that every isolate shares; better-auth's built-in limiter
    // keeps counts in one isolate's memory.
    rateLimit: { enabled: false },
    // A TOTP secret is shown once, when it is made (README, "Two-factor sign-in"): the plugin's
    // route that shows it again for the password is not served.
    disabledPaths: ["/two-factor/get-totp-uri"],
    advanced: {
      // Native joins (the relations in db/schema/auth.ts): a session is read with its user in one query.
      database: { generateId: ({ model }) => newId(ID_PREFIX[model] ?? "usr"), joins: true },
    },
    plugins: [
      bearer(),
      username({ minUsernameLength: 3, maxUsernameLength: 30 }),
      // The platform role: `user.role = "admin"` administers the deployment (DevPocket's /admin/database/*,
      // better-auth's /api/auth/admin/*). Nobody is one by default; see README, "Platform administrators".
      admin({ defaultRole: "user", adminRoles: ["admin"] }),
      // Two-factor sign-in (TOTP and backup codes). better-auth's maintained plugin rather than
      // Berth's own: its sign-in hook withholds the session of /sign-in/email and /sign-in/username
      // until /two-factor/verify-totp (or verify-backup-code) succeeds, counts failed codes per
      // challenge and locks the account's second factor after 10 in a row, and stores the secret
      // and the backup codes encrypted with the auth secret.
      twoFactorPlugin({ issuer: TOTP_ISSUER }),
      sessionPolicy(db),
      ...(githubConfigured(env) ? [githubProvider(env, githubLogins)] : []),
    ],
  });
}

export type Auth = ReturnType<typeof createAuth>;
