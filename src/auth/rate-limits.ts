/**
 * Abuse limits for everything that checks a password, sends mail or reveals whether an
 * account exists, on Berth's routes and better-auth's alike. Two Workers rate-limit
 * bindings, shared by every isolate:
 *
 * - per account (`AUTH_LIMITER`): keyed on the account itself, whichever route or field
 *   names it (email, username, or the signed-in session), so switching routes, fields or
 *   client addresses does not buy more guesses;
 * - per address (`AUTH_IP_LIMITER`): keyed on `CF-Connecting-IP`, the address Cloudflare
 *   sets (and overwrites if a client sends it); without it (local runs) there is none.
 */
import { eq, or } from "drizzle-orm";
import type { Context, MiddlewareHandler } from "hono";
import { user, verification } from "../db/schema";
import type { AppEnv } from "../env";
import { ApiError } from "../lib/errors";
import { authOf } from "./middleware";

/** What an attempt spends: a password guess, a sign-up, a mail sent, a lookup of whether a name exists. */
export type AttemptKind = "password" | "sign-up" | "mail" | "lookup" | "token";

/** How a request names its account. */
export type AccountRef = { email: string } | { username: string } | { login: string } | { userId: string } | null;

export function clientIp(c: Context<AppEnv>): string | null {
  return c.req.header("cf-connecting-ip") ?? null;
}

/**
 * The account's own id when it exists, so its email and username share one counter; an
 * unknown name is counted under the name (guessing at it gains nothing either way).
 */
async function accountKey(c: Context<AppEnv>, ref: AccountRef): Promise<string | null> {
  if (!ref) return null;
  if ("userId" in ref) return `user:${ref.userId}`;
  const name = ("email" in ref ? ref.email : "username" in ref ? ref.username : ref.login).trim().toLowerCase().slice(0, 254);
  const byEmail = "email" in ref || ("login" in ref && name.includes("@"));
  const where = byEmail ? eq(user.email, name) : "username" in ref ? eq(user.username, name) : or(eq(user.username, name), eq(user.email, name));
  const found = await c.var.db.query.user.findFirst({ columns: { id: true }, where });
  return found ? `user:${found.id}` : `name:${name}`;
}

/** Spends one attempt of `kind` for the account and the address; 429 `rate_limited` when either is used up. */
export async function enforceAttemptLimit(c: Context<AppEnv>, kind: AttemptKind, account: AccountRef) {
  const ip = clientIp(c);
  const key = await accountKey(c, account);
  const [perAccount, perAddress] = await Promise.all([
    key ? c.env.AUTH_LIMITER.limit({ key: `${kind}:${key}` }) : { success: true },
    ip ? c.env.AUTH_IP_LIMITER.limit({ key: `${kind}:${ip}` }) : { success: true },
  ]);
  if (!perAccount.success || !perAddress.success) {
    throw new ApiError("rate_limited", "Too many attempts; wait a minute and try again");
  }
}

type Body = Record<string, unknown>;
const str = (v: unknown) => (typeof v === "string" ? v : "");

/**
 * better-auth's routes that check a password, send mail or reveal an account, with the
 * field that names the account. `session` means the signed-in caller's own account.
 */
const BETTER_AUTH_LIMITS: Record<string, { kind: AttemptKind; account: (body: Body) => AccountRef | "session" | "two-factor"; when?: (body: Body) => boolean }> = {
  "/sign-in/email": { kind: "password", account: (b) => ({ email: str(b.email) }) },
  // better-auth signs in by `username` here and ignores any `email` sent alongside it.
  "/sign-in/username": { kind: "password", account: (b) => ({ username: str(b.username) }) },
  "/sign-up/email": { kind: "sign-up", account: (b) => ({ email: str(b.email) }) },
  "/change-password": { kind: "password", account: () => "session" },
  "/verify-password": { kind: "password", account: () => "session" },
  "/delete-user": { kind: "password", account: () => "session" },
  "/change-email": { kind: "mail", account: () => "session" },
  "/request-password-reset": { kind: "mail", account: (b) => ({ email: str(b.email) }) },
  "/send-verification-email": { kind: "mail", account: (b) => ({ email: str(b.email) }) },
  "/reset-password": { kind: "token", account: () => null },
  "/is-username-available": { kind: "lookup", account: () => null },
  // Setting a username says whether someone else has it.
  "/update-user": { kind: "lookup", account: () => "session", when: (b) => "username" in b },
  // The twoFactor plugin's routes check a password or a code: the same budget as a sign-in.
  "/two-factor/enable": { kind: "password", account: () => "session" },
  "/two-factor/disable": { kind: "password", account: () => "session" },
  "/two-factor/generate-backup-codes": { kind: "password", account: () => "session" },
  "/two-factor/verify-totp": { kind: "password", account: () => "two-factor" },
  "/two-factor/verify-backup-code": { kind: "password", account: () => "two-factor" },
  "/two-factor/verify-otp": { kind: "password", account: () => "two-factor" },
};

/**
 * The account a sign-in's second step is for: the plugin's challenge cookie
 * (`better-auth.two_factor`, `<identifier>.<signature>`) names a verification row whose
 * value is the user id. The signature is not checked here (better-auth does); a forged
 * identifier can only name a real challenge, which counts against that same account.
 */
async function twoFactorChallengeAccount(c: Context<AppEnv>): Promise<AccountRef> {
  const cookies = c.req.header("cookie") ?? "";
  const raw = /(?:^|;\s*)(?:__Secure-)?[^=;]*\.two_factor=([^;]+)/.exec(cookies)?.[1];
  if (!raw) return null;
  const identifier = decodeURIComponent(raw).split(".")[0] ?? "";
  if (!identifier.startsWith("2fa-")) return null;
  const row = await c.var.db.query.verification.findFirst({ columns: { value: true }, where: eq(verification.identifier, identifier) });
  return row ? { userId: row.value } : null;
}

/** Applies BETTER_AUTH_LIMITS in front of better-auth's handler (mounted at /api/auth). */
export const limitBetterAuth: MiddlewareHandler<AppEnv> = async (c, next) => {
  const route = c.req.path.replace(/^\/api\/auth/, "");
  const rule = BETTER_AUTH_LIMITS[route];
  if (!rule || c.req.method !== "POST") return next();
  const body = ((await c.req.raw.clone().json().catch(() => null)) ?? {}) as Body;
  if (rule.when && !rule.when(body)) return next();
  let account = rule.account(body);
  if (account === "two-factor") {
    const signedIn = await authOf(c).api.getSession({ headers: c.req.raw.headers, query: { disableRefresh: true } }).catch(() => null);
    account = signedIn ? { userId: signedIn.user.id } : await twoFactorChallengeAccount(c);
  }
  if (account === "session") {
    const signedIn = await authOf(c).api.getSession({ headers: c.req.raw.headers, query: { disableRefresh: true } }).catch(() => null);
    account = signedIn ? { userId: signedIn.user.id } : null;
  }
  await enforceAttemptLimit(c, rule.kind, account);
  return next();
};
