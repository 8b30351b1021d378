/**
 * better-auth on D1 through its drizzle adapter: email and password, cookie
 * sessions for the SPA (`better-auth.session_token`), the same session token as
 * `Authorization: Bearer` for scripts, and usernames for DevPocket's clients.
 * Made per request because the D1 binding is per request.
 */
import { betterAuth } from "better-auth";
import { drizzleAdapter } from "better-auth/adapters/drizzle";
import { bearer, username } from "better-auth/plugins";
import type { Database } from "../db/client";
import { expireRefreshTokens } from "../db/refresh-tokens";
import { account, session, user, verification } from "../db/schema";
import { authSecret, type Env } from "../env";
import { newId, type IdPrefix } from "../lib/ids";
import type { Mailer } from "../services/mail";
import { createPersonalOrg } from "../services/orgs";

const ID_PREFIX: Record<string, IdPrefix> = { user: "usr", session: "ses", account: "acc", verification: "vrf" };

export const SESSION_TTL_SECONDS = 7 * 24 * 3600;

export function createAuth(env: Env, db: Database, mailer: Mailer, baseURL: string) {
  return betterAuth({
    appName: "Berth",
    baseURL,
    basePath: "/api/auth",
    secret: authSecret(env),
    database: drizzleAdapter(db, { provider: "sqlite", schema: { user, session, account, verification } }),
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
        const link = `${env.PUBLIC_URL ?? baseURL}/reset-password?token=${token}`;
        await mailer.send({
          to: user.email,
          subject: "Reset your Berth password",
          text: `Someone asked to reset the password of ${user.email}.\n\nReset it within an hour: ${link}\nOr send this token to POST /api/v1/auth/password/reset: ${token}\n\nIf it was not you, ignore this mail.`,
        });
      },
    },
    session: { expiresIn: SESSION_TTL_SECONDS, updateAge: 24 * 3600 },
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
          // Every account starts with a personal org and a default project (Suble's signup does this).
          after: async (created) => {
            await createPersonalOrg(db, { id: created.id, name: created.name, email: created.email });
          },
        },
      },
    },
    // Berth limits sign-in and sign-up itself with the AUTH_LIMITER binding, which every
    // isolate shares; better-auth's built-in limiter keeps counts in one isolate's memory.
    rateLimit: { enabled: false },
    advanced: {
      database: { generateId: ({ model }) => newId(ID_PREFIX[model] ?? "usr") },
    },
    plugins: [bearer(), username({ minUsernameLength: 3, maxUsernameLength: 30 })],
  });
}

export type Auth = ReturnType<typeof createAuth>;
