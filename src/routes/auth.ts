/**
 * The seeds' own sign-up and sign-in endpoints, each answering in its seed's
 * shape (the union where two seeds share a path). All of them run through
 * better-auth; the SPA also gets the session cookie.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { APIError } from "better-auth/api";
import type { Context } from "hono";
import { createRouter } from "../app";
import { requirePrincipal, requireUser } from "../auth/access";
import { authOf } from "../auth/middleware";
import { enforceAttemptLimit } from "../auth/rate-limits";
import type { AppEnv } from "../env";
import { ApiError, errorResponses, errorResponsesFor } from "../lib/errors";
import { endSession, issueTokenPair, newSession, revokeRefreshTokens, rotateRefreshToken } from "../services/sessions";
import { touchDevice } from "../services/sync";
import { findUser, presentUser } from "../services/users";
import { email, json, jsonBody as body, name, Ok, password, User } from "./schemas";

const router = createRouter();

const TokenPair = z
  .object({
    user: User,
    user_id: z.string(),
    token: z.string().openapi({ description: "Session token; send as `Authorization: Bearer <token>`." }),
    access_token: z.string(),
    refresh_token: z.string().openapi({ description: "Single-use; exchange at POST /auth/refresh." }),
    token_type: z.literal("Bearer"),
    expires_in: z.number().int(),
  })
  .openapi("TokenPair");


/** better-auth refusals in Berth's envelope and the seeds' codes. */
function translate(err: unknown): never {
  if (err instanceof APIError) {
    const code = String((err.body as { code?: string } | undefined)?.code ?? "");
    if (code.includes("USER_ALREADY_EXISTS") || code.includes("EMAIL")) {
      if (code.includes("EXISTS")) throw new ApiError("email_taken", "An account with this email already exists");
    }
    if (code.includes("USERNAME_IS_ALREADY_TAKEN")) throw new ApiError("username_taken", "This username is taken");
    if (code.includes("INVALID_EMAIL_OR_PASSWORD") || code.includes("INVALID_USERNAME_OR_PASSWORD") || code === "CREDENTIAL_ACCOUNT_NOT_FOUND") {
      throw new ApiError("invalid_credentials", "Email or password is wrong");
    }
    if (code.includes("INVALID_TOKEN")) throw new ApiError("invalid_token", "Reset token is invalid, used or expired");
    if (code.includes("PASSWORD_TOO")) throw new ApiError("invalid_request", err.message);
    if (code.includes("USERNAME")) throw new ApiError("invalid_request", err.message);
    if (err.statusCode === 401) throw new ApiError("invalid_credentials", "Email or password is wrong");
    if (err.statusCode >= 400 && err.statusCode < 500) throw new ApiError("invalid_request", err.message);
  }
  throw err;
}

/** Passes better-auth's session cookie on, so a browser calling the seed endpoints is signed in too. */
function forwardCookies(c: Context<AppEnv>, headers: Headers) {
  for (const cookie of headers.getSetCookie()) c.header("set-cookie", cookie, { append: true });
}

type SignedIn = { token: string | null; user: Parameters<typeof presentUser>[0] };

async function tokensFor(c: Context<AppEnv>, result: { headers: Headers; response: SignedIn }) {
  forwardCookies(c, result.headers);
  const userId = result.response.user.id;
  const sessionToken = result.response.token ?? (await newSession(c, userId));
  const row = await findUser(c.var.db, userId);
  return { user: presentUser(row ?? result.response.user), user_id: userId, ...(await issueTokenPair(c, userId, sessionToken)) };
}

async function signUp(c: Context<AppEnv>, input: { email: string; password: string; name: string; username?: string; country?: string; language?: string }) {
  await enforceAttemptLimit(c, "sign-up", { email: input.email });
  const result = await authOf(c)
    .api.signUpEmail({ body: input, headers: c.req.raw.headers, returnHeaders: true })
    .catch(translate);
  return tokensFor(c, result as { headers: Headers; response: SignedIn });
}

// ---------------------------------------------------------------- sign-up

const RegisterInput = z
  .object({
    email,
    password,
    name: name(120).optional(),
    username: z.string().trim().min(3).max(30).regex(/^[a-zA-Z0-9_.]+$/, "letters, digits, _ and . only").optional(),
    device_id: z.string().max(200).optional(),
    device_type: z.enum(["ios", "android", "web"]).optional(),
  })
  .openapi("RegisterInput");

router.openapi(
  createRoute({
    method: "post",
    path: "/auth/register",
    tags: ["Auth"],
    security: [],
    summary: "Register a new account (Dockup, DevPocket)",
    description: "Creates the user, a personal org and a default project, and signs in. `name` (Dockup) or `username` (DevPocket) names the account.",
    request: body(RegisterInput),
    responses: { 201: json(TokenPair, "Signed up and signed in"), 409: json(z.any(), "email_taken or username_taken"), ...errorResponses },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const displayName = input.name ?? input.username ?? input.email.split("@")[0]!;
    const tokens = await signUp(c, { email: input.email, password: input.password, name: displayName, username: input.username });
    if (input.device_id) await touchDevice(c.var.db, tokens.user_id, { deviceId: input.device_id, deviceType: input.device_type });
    return c.json(tokens, 201);
  },
);

const SignupInput = z
  .object({
    email,
    password,
    fullname: name(120),
    country: z.string().length(2).toUpperCase().optional(),
    language: z.enum(["da", "en"]).optional(),
    isCompany: z.boolean().optional(),
  })
  .openapi("SignupInput");

router.openapi(
  createRoute({
    method: "post",
    path: "/auth/signup",
    tags: ["Auth"],
    security: [],
    summary: "Create an account, its personal org and default project, and sign in (Suble)",
    request: body(SignupInput),
    responses: { 201: json(TokenPair, "Signed up and signed in"), 409: json(z.any(), "email_taken"), ...errorResponses },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const tokens = await signUp(c, {
      email: input.email,
      password: input.password,
      name: input.fullname,
      country: input.country ?? "DK",
      language: input.language ?? "da",
    });
    return c.json(tokens, 201);
  },
);

// ---------------------------------------------------------------- sign-in

const LoginInput = z
  .object({
    email: z.string().trim().min(1).max(254).optional(),
    username: z.string().trim().min(1).max(254).optional().openapi({ description: "Username or email (DevPocket)." }),
    password: z.string().min(1).max(128),
    code: z.string().max(10).optional().openapi({ description: "The current 6-digit TOTP code, on the second step when the account has two-factor sign-in on." }),
    device_id: z.string().max(200).optional(),
    device_type: z.enum(["ios", "android", "web"]).optional(),
  })
  .refine((v) => v.email || v.username, { message: "email or username is required", path: ["email"] })
  .openapi("LoginInput");

const MfaRequired = z
  .object({ mfa_required: z.literal(true).openapi({ description: "The password is right and the account has two-factor sign-in on: send the same request again with `code`." }) })
  .openapi("MfaRequired");

type TwoFactorRedirect = { twoFactorRedirect: true; twoFactorMethods?: string[] };

/**
 * The second step of a sign-in the twoFactor plugin held back: the plugin's own
 * `verifyTOTP` with the challenge cookie it set on the first step, which checks the code,
 * counts it against the challenge (5 tries) and the account (10 failures in a row lock
 * the second factor for 15 minutes), and makes the session.
 */
async function verifySecondFactor(c: Context<AppEnv>, signIn: Headers, code: string, login: string) {
  const challenge = signIn
    .getSetCookie()
    .map((cookie) => cookie.split(";")[0]!)
    .find((pair) => /^(__Secure-)?[^=]*\.two_factor=./.test(pair));
  if (!challenge) throw new Error("the two-factor plugin held back a sign-in without setting its challenge cookie");
  // Only the challenge: a session the caller also sent (cookie or bearer) would make the plugin check that session's account instead.
  const headers = new Headers(c.req.raw.headers);
  headers.delete("authorization");
  headers.set("cookie", challenge);
  return authOf(c)
    .api.verifyTOTP({ body: { code }, headers, returnHeaders: true })
    .catch(async (err: unknown) => {
      // A wrong code spends another of the account's password attempts: six digits are no easier to guess than a password.
      await enforceAttemptLimit(c, "password", { login });
      if (err instanceof APIError && err.statusCode === 429) throw new ApiError("rate_limited", "Too many wrong codes; wait 15 minutes and try again");
      if (err instanceof APIError && err.statusCode < 500) throw new ApiError("invalid_mfa_code", "The two-factor code is wrong; send the current 6-digit code from your authenticator app");
      throw err;
    });
}

router.openapi(
  createRoute({
    method: "post",
    path: "/auth/login",
    tags: ["Auth"],
    security: [],
    summary: "Sign in with email or username and password (Dockup, Suble, DevPocket)",
    description:
      "For an account with two-factor sign-in on, a call without `code` answers `200 {\"mfa_required\": true}` and signs nobody in; the same call with the current 6-digit `code` signs in. A wrong code is `401 invalid_mfa_code` and spends one more of the account's sign-in attempts.",
    request: body(LoginInput),
    responses: { 200: json(z.union([TokenPair, MfaRequired]), "Signed in, or the second step is needed"), ...errorResponsesFor("invalid_mfa_code") },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const login = (input.email ?? input.username)!;
    await enforceAttemptLimit(c, "password", { login });
    const auth = authOf(c);
    const headers = c.req.raw.headers;
    const result = login.includes("@")
      ? await auth.api.signInEmail({ body: { email: login.toLowerCase(), password: input.password }, headers, returnHeaders: true }).catch(translate)
      : await auth.api.signInUsername({ body: { username: login, password: input.password }, headers, returnHeaders: true }).catch(translate);
    let signedIn = result as { headers: Headers; response: SignedIn | TwoFactorRedirect };
    if ("twoFactorRedirect" in signedIn.response && signedIn.response.twoFactorRedirect) {
      // Suble: the first step answers 200 without tokens; the plugin has already ended the session it held back.
      if (!input.code) return c.json({ mfa_required: true as const }, 200);
      signedIn = await verifySecondFactor(c, signedIn.headers, input.code, login);
    }
    const tokens = await tokensFor(c, signedIn as { headers: Headers; response: SignedIn });
    // DevPocket's clients name their device at sign-in: it is then one of the user's devices (GET /user/devices).
    if (input.device_id) await touchDevice(c.var.db, tokens.user_id, { deviceId: input.device_id, deviceType: input.device_type });
    return c.json(tokens, 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/auth/refresh",
    tags: ["Auth"],
    // Suble sends only the refresh token; DevPocket may renew the bearer session it sends.
    security: [{}, { bearer: [] }] as Array<Record<string, string[]>>,
    summary: "Exchange a refresh token for a new token pair (Suble), or renew the bearer session (DevPocket)",
    request: {
      body: { content: { "application/json": { schema: z.object({ refresh_token: z.string().min(1).max(200).optional() }) } }, required: false },
    },
    responses: { 200: json(TokenPair.omit({ user: true, user_id: true }), "A new token pair"), ...errorResponses },
  }),
  async (c) => {
    const presented = c.req.valid("json")?.refresh_token;
    // Every refresh makes a session: limited per address like other token submissions.
    await enforceAttemptLimit(c, "token", null);
    if (presented) return c.json(await rotateRefreshToken(c, presented), 200);
    // Suble: no refresh_token and no credential at all is a malformed request, not a failed sign-in.
    if (!c.get("principal") && !c.get("authError")) throw new ApiError("invalid_request", "refresh_token is required");
    // DevPocket: the bearer session itself is renewed.
    const p = requirePrincipal(c);
    if (p.type !== "user") throw new ApiError("invalid_request", "refresh_token is required");
    const token = await newSession(c, p.userId);
    await endSession(c, p.sessionToken);
    return c.json(await issueTokenPair(c, p.userId, token), 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/auth/logout",
    tags: ["Auth"],
    summary: "End the current session (DevPocket)",
    responses: { 200: json(Ok, "Signed out"), ...errorResponses },
  }),
  async (c) => {
    const p = requirePrincipal(c);
    if (p.type === "user") await endSession(c, p.sessionToken);
    c.header("set-cookie", "better-auth.session_token=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
    return c.json({ ok: true }, 200);
  },
);

// ---------------------------------------------------------------- password reset

router.openapi(
  createRoute({
    method: "post",
    path: "/auth/password/forgot",
    tags: ["Auth"],
    security: [],
    summary: "Mail a password-reset link (Suble)",
    description: "Always 204, whether or not the address has an account, so accounts cannot be discovered.",
    request: body(z.object({ email })),
    responses: { 204: { description: "If the account exists, a reset link was mailed" }, ...errorResponses },
  }),
  async (c) => {
    const { email: address } = c.req.valid("json");
    await enforceAttemptLimit(c, "mail", { email: address });
    await authOf(c).api.requestPasswordReset({ body: { email: address }, headers: c.req.raw.headers }).catch(() => undefined);
    return c.body(null, 204);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/auth/password/reset",
    tags: ["Auth"],
    security: [],
    summary: "Set a new password with a mailed reset token (Suble)",
    description: "Consumes the token, signs out every session of the account and revokes its refresh tokens.",
    request: body(z.object({ token: z.string().min(1).max(200), password })),
    responses: { 204: { description: "Password changed" }, ...errorResponses },
  }),
  async (c) => {
    const input = c.req.valid("json");
    await enforceAttemptLimit(c, "token", null);
    const auth = authOf(c);
    // better-auth keeps the reset token as verification `reset-password:<token>` whose value is the user id.
    const pending = await (await auth.$context).internalAdapter.findVerificationValue(`reset-password:${input.token}`);
    await auth.api.resetPassword({ body: { token: input.token, newPassword: input.password }, headers: c.req.raw.headers }).catch(translate);
    // better-auth ends the account's sessions; the refresh tokens that could mint new ones go too.
    if (pending?.value) await revokeRefreshTokens(c, pending.value);
    return c.body(null, 204);
  },
);

// ---------------------------------------------------------------- who am I

const meRoute = (path: string, summary: string) =>
  createRoute({ method: "get", path, tags: ["Auth"], summary, responses: { 200: json(User, "The caller's user"), ...errorResponses } });

for (const [path, summary] of [
  ["/auth/me", "The signed-in user (Dockup)"],
  ["/me", "The signed-in user, or the owner of the API key (Suble)"],
] as const) {
  router.openapi(meRoute(path, summary), async (c) => {
    const p = path === "/me" ? requirePrincipal(c) : requireUser(c, "account:read");
    const u = await findUser(c.var.db, p.userId);
    if (!u) throw new ApiError("user_not_found", "User not found");
    return c.json(presentUser(u), 200);
  });
}

export default router;
