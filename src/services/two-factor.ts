/**
 * Two-factor enrolment for Suble's `/account/mfa/*`, on better-auth's twoFactor plugin's
 * own rows, so the plugin's sign-in step (`/two-factor/verify-totp`, backup codes) and
 * Berth's `/auth/login` check the codes of a secret enrolled here.
 *
 * Why not the plugin's `enableTwoFactor`/`verifyTOTP`/`disableTwoFactor` directly: they
 * ask for the account's password (Suble's enable takes no body, and its disable takes a
 * code instead), and confirming or disabling replaces the caller's session with a new one
 * (to refresh a session cookie cache Berth does not use), which would end a Suble
 * client's access token and the refresh token issued with it. The pieces are the
 * plugin's: its table, its secret format (32 random characters, encrypted with
 * better-auth's symmetricEncrypt under the auth secret), its backup-code format
 * (encrypted JSON list), and the same TOTP library (@better-auth/utils/otp, 6 digits, 30 s).
 */
import { base32 } from "@better-auth/utils/base32";
import { createOTP } from "@better-auth/utils/otp";
import { generateRandomString, symmetricDecrypt, symmetricEncrypt } from "better-auth/crypto";
import { and, eq } from "drizzle-orm";
import type { Context } from "hono";
import { TOTP_ISSUER } from "../auth/better-auth";
import { authOf } from "../auth/middleware";
import { enforceAttemptLimit } from "../auth/rate-limits";
import { twoFactor, user } from "../db/schema";
import type { AppEnv } from "../env";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { audited, withAlso } from "./audit";

const TOTP = { digits: 6, period: 30 } as const;
const BACKUP_CODES = 10;

async function secretKey(c: Context<AppEnv>) {
  return (await authOf(c).$context).secretConfig;
}

async function twoFactorEnabled(c: Context<AppEnv>, userId: string) {
  const row = await c.var.db.query.user.findFirst({ columns: { twoFactorEnabled: true, email: true }, where: eq(user.id, userId) });
  if (!row) throw new ApiError("user_not_found", "User not found");
  return { enabled: row.twoFactorEnabled === true, email: row.email };
}

/** The plugin's backup codes: ten `xxxxx-xxxxx` codes, each usable once at sign-in instead of a TOTP code. */
function newBackupCodes() {
  return Array.from({ length: BACKUP_CODES }, () => generateRandomString(10, "a-z", "0-9", "A-Z")).map((code) => `${code.slice(0, 5)}-${code.slice(5)}`);
}

/**
 * Starts (or restarts) enrolment: a new secret, stored encrypted and pending until a code
 * confirms it. The answer is the only place the secret is ever shown.
 */
export async function startEnrolment(c: Context<AppEnv>, userId: string) {
  const account = await twoFactorEnabled(c, userId);
  if (account.enabled) throw new ApiError("mfa_already_enabled", "Two-factor sign-in is already on; disable it first");
  const key = await secretKey(c);
  const secret = generateRandomString(32);
  const backupCodes = newBackupCodes();
  const row = {
    secret: await symmetricEncrypt({ key, data: secret }),
    backupCodes: await symmetricEncrypt({ key, data: JSON.stringify(backupCodes) }),
    verified: false,
    failedVerificationCount: 0,
    lockedUntil: null,
  };
  const db = c.var.db;
  const existing = await db.query.twoFactor.findFirst({ columns: { id: true }, where: eq(twoFactor.userId, userId) });
  const write = existing
    ? db.update(twoFactor).set(row).where(eq(twoFactor.id, existing.id))
    : db.insert(twoFactor).values({ id: newId("tfa"), userId, ...row });
  await withAlso(db, write, audited(c, () => ({ orgId: null, action: "account.mfa.enrol", targetType: "user", targetId: userId }))(userId));
  const otpauthUrl = createOTP(secret, TOTP).url(TOTP_ISSUER, account.email);
  // The URI carries the secret base32-encoded, as authenticator apps take it typed in.
  const base32 = new URL(otpauthUrl).searchParams.get("secret") ?? "";
  return { secret: base32, otpauthUrl, backupCodes };
}

/** Whether `code` is the current TOTP code of the user's stored secret (pending or confirmed). */
async function codeMatches(c: Context<AppEnv>, encryptedSecret: string, code: string) {
  const stored = await symmetricDecrypt({ key: await secretKey(c), data: encryptedSecret });
  // The plugin stores secrets imported from elsewhere as `base32:<secret>` (Berth's never are).
  const secret = stored.startsWith("base32:") ? base32.decode(stored.slice(7).toUpperCase()) : stored;
  return createOTP(secret, TOTP).verify(code);
}

/**
 * A wrong code spends one of the account's password attempts (auth/rate-limits.ts), the
 * same budget as its sign-ins: six digits cannot be guessed through these routes either.
 */
async function refuseCode(c: Context<AppEnv>, userId: string): Promise<never> {
  await enforceAttemptLimit(c, "password", { userId });
  throw new ApiError("invalid_code", "The code does not match; enter the current 6-digit code from your authenticator app");
}

/** Confirms a pending enrolment with a current code: from then on sign-in asks for a code. */
export async function confirmEnrolment(c: Context<AppEnv>, userId: string, code: string) {
  const account = await twoFactorEnabled(c, userId);
  if (account.enabled) throw new ApiError("mfa_already_enabled", "Two-factor sign-in is already on");
  const db = c.var.db;
  const pending = await db.query.twoFactor.findFirst({ where: and(eq(twoFactor.userId, userId), eq(twoFactor.verified, false)) });
  if (!pending) throw new ApiError("mfa_not_pending", "No two-factor enrolment to confirm; start one with POST /account/mfa/enable");
  if (!(await codeMatches(c, pending.secret, code))) await refuseCode(c, userId);
  await db.batch([
    db.update(twoFactor).set({ verified: true }).where(eq(twoFactor.id, pending.id)),
    db.update(user).set({ twoFactorEnabled: true, updatedAt: new Date() }).where(eq(user.id, userId)),
    ...audited(c, () => ({ orgId: null, action: "account.mfa.enable", targetType: "user", targetId: userId }))(userId),
  ]);
}

/** Turns two-factor off with a current code: the secret and the backup codes are deleted. */
export async function disableTwoFactor(c: Context<AppEnv>, userId: string, code: string) {
  const account = await twoFactorEnabled(c, userId);
  const db = c.var.db;
  const row = await db.query.twoFactor.findFirst({ where: eq(twoFactor.userId, userId) });
  if (!account.enabled || !row || row.verified === false) throw new ApiError("mfa_not_enabled", "Two-factor sign-in is off");
  if (!(await codeMatches(c, row.secret, code))) await refuseCode(c, userId);
  await db.batch([
    db.delete(twoFactor).where(eq(twoFactor.userId, userId)),
    db.update(user).set({ twoFactorEnabled: false, updatedAt: new Date() }).where(eq(user.id, userId)),
    ...audited(c, () => ({ orgId: null, action: "account.mfa.disable", targetType: "user", targetId: userId }))(userId),
  ]);
}
