/** backlex's account: the signed-in person's profile; Suble's two-factor enrolment (`/account/mfa/*`). */
import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { createRouter } from "../app";
import { requireSignedIn, requireUser } from "../auth/access";
import { user } from "../db/schema";
import { errorResponses, errorResponsesFor, notFound } from "../lib/errors";
import { audited, withAlso } from "../services/audit";
import { confirmEnrolment, disableTwoFactor, startEnrolment } from "../services/two-factor";
import { findUser } from "../services/users";
import { displayText, json, jsonBody, name, Ok } from "./schemas";

const router = createRouter();

const Account = z
  .object({
    id: z.string(),
    email: z.string(),
    name: z.string().nullable(),
    username: z.string().nullable(),
    emailVerified: z.boolean(),
    title: z.string().nullable(),
    timezone: z.string().nullable(),
    preferences: z.record(z.string(), z.unknown()).nullable(),
  })
  .openapi("Account");

router.openapi(
  createRoute({
    method: "get",
    path: "/account",
    tags: ["Account"],
    summary: "Your profile and preferences",
    responses: { 200: json(z.object({ account: Account }), "Account"), ...errorResponses },
  }),
  async (c) => {
    const u = await findUser(c.var.db, requireUser(c, "account:read").userId);
    if (!u) throw notFound("User", "user_not_found");
    const preferences = u.preferences ? (JSON.parse(u.preferences) as Record<string, unknown>) : null;
    return c.json(
      {
        account: {
          id: u.id,
          email: u.email,
          name: u.name,
          username: u.username,
          emailVerified: u.emailVerified,
          title: u.title,
          timezone: u.timezone,
          preferences,
        },
      },
      200,
    );
  },
);

const UpdateAccountInput = z
  .object({
    name: name(120).optional(),
    title: displayText(120).optional(),
    timezone: displayText(60).optional(),
    preferences: z
      .record(z.string().max(64), z.unknown())
      .refine((v) => JSON.stringify(v).length <= 16_384, "preferences may be at most 16 KiB")
      .optional(),
  })
  .openapi("UpdateAccountInput");

router.openapi(
  createRoute({
    method: "patch",
    path: "/account",
    tags: ["Account"],
    summary: "Update your profile",
    request: jsonBody(UpdateAccountInput),
    responses: { 200: json(Ok, "Updated"), ...errorResponses },
  }),
  async (c) => {
    const p = requireUser(c, "account:update");
    const input = c.req.valid("json");
    const { preferences, ...rest } = input;
    const update = c.var.db
      .update(user)
      .set({ ...rest, ...(preferences ? { preferences: JSON.stringify(preferences) } : {}), updatedAt: new Date() })
      .where(eq(user.id, p.userId));
    await withAlso(c.var.db, update, audited(c, () => ({ orgId: null, action: "account.update", targetType: "user", targetId: p.userId, metadata: { fields: Object.keys(input) } }))(p.userId));
    return c.json({ ok: true }, 200);
  },
);

// ---------------------------------------------------------------- two-factor (Suble)

const MfaEnrolment = z
  .object({
    secret: z.string().openapi({ description: "The TOTP secret, base32, to type into an authenticator app. Shown only here.", example: "JBSWY3DPEHPK3PXP" }),
    otpauthUrl: z.string().openapi({ description: "The otpauth:// URI with the same secret, for a QR code.", example: "otpauth://totp/Berth:alex%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Berth&digits=6&period=30" }),
    backupCodes: z.array(z.string()).openapi({ description: "Ten single-use codes that sign in instead of a TOTP code (better-auth's `/two-factor/verify-backup-code`). Shown only here." }),
  })
  .openapi("MfaEnrolment");

const MfaCode = z.object({ code: z.string().regex(/^\d{6}$/, "Enter the 6-digit code") }).openapi("MfaCode");

const MFA_WHO = "manage two-factor sign-in";

router.openapi(
  createRoute({
    method: "post",
    path: "/account/mfa/enable",
    tags: ["Account"],
    summary: "Begin two-factor (TOTP) enrolment (Suble)",
    description: "Makes a new TOTP secret, stored encrypted and pending until `POST /account/mfa/confirm`; answers the base32 secret, its otpauth:// URI and ten backup codes. Calling it again before confirming replaces the pending secret. Signed-in people only (no API keys).",
    responses: { 200: json(MfaEnrolment, "The pending secret"), ...errorResponsesFor("mfa_already_enabled", "user_not_found") },
  }),
  async (c) => {
    const p = requireSignedIn(c, MFA_WHO);
    return c.json(await startEnrolment(c, p.userId), 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/account/mfa/confirm",
    tags: ["Account"],
    summary: "Confirm two-factor enrolment with a code (Suble)",
    description: "Checks a current 6-digit code against the pending secret; from then on signing in asks for a code. A wrong code is `400 invalid_code` and spends one of the account's sign-in attempts (10 a minute).",
    request: jsonBody(MfaCode), responses: { 204: { description: "Two-factor sign-in is on" }, ...errorResponsesFor("invalid_code", "mfa_already_enabled", "mfa_not_pending", "user_not_found") },
  }),
  async (c) => {
    const p = requireSignedIn(c, MFA_WHO);
    await confirmEnrolment(c, p.userId, c.req.valid("json").code);
    return c.body(null, 204);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/account/mfa/disable",
    tags: ["Account"],
    summary: "Turn two-factor sign-in off with a code (Suble)",
    description: "Checks a current 6-digit code, then deletes the secret and the backup codes. A wrong code is `400 invalid_code` and spends one of the account's sign-in attempts.",
    request: jsonBody(MfaCode), responses: { 204: { description: "Two-factor sign-in is off" }, ...errorResponsesFor("invalid_code", "mfa_not_enabled", "user_not_found") },
  }),
  async (c) => {
    const p = requireSignedIn(c, MFA_WHO);
    await disableTwoFactor(c, p.userId, c.req.valid("json").code);
    return c.body(null, 204);
  },
);

export default router;
