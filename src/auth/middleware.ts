/** Per-request context: the database, the auth instance and the calling principal. */
import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { createDb } from "../db/client";
import type { AppEnv } from "../env";
import { ApiError } from "../lib/errors";
import { randomString } from "../lib/ids";
import { looksLikeApiKey, touchApiKey, verifyApiKey } from "../services/api-keys";
import { HOST_CREDENTIAL_PREFIX } from "../services/hosts";
import { createMailer } from "../services/mail";
import { type Auth, createAuth } from "./better-auth";
import type { Principal } from "./principal";

const authInstances = new WeakMap<Context, Auth>();

/** better-auth for this request, made on first use. */
export function authOf(c: Context<AppEnv>): Auth {
  let auth = authInstances.get(c);
  if (!auth) {
    const baseURL = c.env.PUBLIC_URL ?? new URL(c.req.url).origin;
    auth = createAuth(c.env, c.var.db, createMailer(c.env.MAIL_TRANSPORT, c.var.db), baseURL);
    authInstances.set(c, auth);
  }
  return auth;
}

export const requestContext: MiddlewareHandler<AppEnv> = async (c, next) => {
  c.set("db", createDb(c.env.DB));
  c.set("requestId", c.req.header("cf-ray") ?? randomString(12));
  c.set("principal", null);
  await next();
};

/** The credential a request carries: a bearer header, `?token=` (for WebSockets), or the session cookie. */
function presentedToken(c: Context<AppEnv>): string | null {
  const header = c.req.header("authorization");
  if (header && /^bearer\s+/i.test(header)) return header.replace(/^bearer\s+/i, "").trim() || null;
  if (c.req.method === "GET") {
    const query = c.req.query("token");
    if (query) return query;
  }
  return null;
}

/** Resolves the principal if the request carries a credential; routes that need one call requirePrincipal. */
export const authenticate: MiddlewareHandler<AppEnv> = async (c, next) => {
  const token = presentedToken(c);
  if (token?.startsWith(HOST_CREDENTIAL_PREFIX)) {
    // A host credential does agent work for its host and nothing else (see routes/agent.ts).
    c.set("authError", "Host credentials can only be used by the agent");
    return next();
  }
  if (token && looksLikeApiKey(token)) {
    const check = await verifyApiKey(c.var.db, token);
    if (!check.ok) {
      c.set("authError", check.reason);
    } else {
      const k = check.row;
      const principal: Principal = {
        type: "api_key",
        userId: k.userId,
        key: { id: k.id, kind: k.kind, orgId: k.orgId, projectId: k.projectId, scope: k.scope },
      };
      c.set("principal", principal);
      c.executionCtx.waitUntil(touchApiKey(c.var.db, k.id).catch(() => undefined));
    }
    return next();
  }
  const hasCookie = Boolean(getCookie(c, "better-auth.session_token") ?? getCookie(c, "__Secure-better-auth.session_token"));
  if (token || hasCookie) {
    const headers = new Headers(c.req.raw.headers);
    if (token) headers.set("authorization", `Bearer ${token}`);
    const result = await authOf(c).api.getSession({ headers, query: { disableRefresh: true } }).catch(() => null);
    if (result?.session) {
      c.set("principal", { type: "user", userId: result.user.id, sessionId: result.session.id, sessionToken: result.session.token });
    } else {
      c.set("authError", "Session is invalid or has expired");
    }
  }
  return next();
};

export function clientIp(c: Context<AppEnv>): string | null {
  return c.req.header("cf-connecting-ip") ?? null;
}

/**
 * Sign-in and sign-up throttling through the Workers rate-limit binding, shared by
 * every isolate: per address and account name, so one attacker cannot guess a
 * password and one busy office does not lock out its neighbours.
 */
export async function enforceAuthRateLimit(c: Context<AppEnv>, action: string, identifier: string) {
  const ip = clientIp(c);
  const perAccount = await c.env.AUTH_LIMITER.limit({ key: `${action}:${ip ?? "-"}:${identifier.toLowerCase()}` });
  const perAddress = ip ? await c.env.AUTH_IP_LIMITER.limit({ key: `${action}:${ip}` }) : { success: true };
  if (!perAccount.success || !perAddress.success) {
    throw new ApiError(429, "rate_limited", "Too many attempts; wait a minute and try again");
  }
}
