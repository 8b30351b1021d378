/** Per-request context: the database, the auth instance and the calling principal. */
import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { createDb } from "../db/client";
import type { AppEnv } from "../env";
import { randomString } from "../lib/ids";
import { looksLikeApiKey, touchApiKey, verifyApiKey } from "../services/api-keys";
import { HOST_CREDENTIAL_PREFIX } from "../services/hosts";
import { createMailer } from "../services/mail";
import { type Auth, createAuth } from "./better-auth";
import { requireTrustedOrigin } from "./origins";
import { cachedCredential, forgetCredentials, rememberCredential } from "./credential-cache";

const authInstances = new WeakMap<AppEnv["Bindings"], Map<string, Auth>>();

/**
 * better-auth for this request's environment and public origin. Building it (plugins, router,
 * schemas) costs more than most requests, and it keeps no request state (that rides in its
 * AsyncLocalStorage), so an isolate makes one per environment and origin and reuses it.
 */
export function authOf(c: Context<AppEnv>): Auth {
  const baseURL = c.env.PUBLIC_URL || new URL(c.req.url).origin;
  let byOrigin = authInstances.get(c.env);
  if (!byOrigin) {
    byOrigin = new Map();
    authInstances.set(c.env, byOrigin);
  }
  let auth = byOrigin.get(baseURL);
  if (!auth) {
    // Locally the origin comes from the request; a deployment has one PUBLIC_URL. Keep a handful.
    if (byOrigin.size >= 8) byOrigin.clear();
    const db = createDb(c.env.DB);
    auth = createAuth(c.env, db, createMailer(c.env, db), baseURL);
    byOrigin.set(baseURL, auth);
  }
  return auth;
}

export const requestContext: MiddlewareHandler<AppEnv> = async (c, next) => {
  c.set("db", createDb(c.env.DB));
  c.set("requestId", c.req.header("cf-ray") ?? randomString(12));
  c.set("principal", null);
  await next();
};

type Presented = { token: string; via: "bearer" | "query" } | { token: null; via: "cookie" | "none" };

const isWebSocketUpgrade = (c: Context<AppEnv>) => c.req.header("upgrade")?.toLowerCase() === "websocket";

/** The WebSocket endpoints, the only places a credential may come in the URL. */
const WEBSOCKET_PATHS = [/\/apps\/[^/]+\/logs\/stream$/, /\/apps\/[^/]+\/exec$/, /\/projects\/[^/]+\/events$/, /\/ws\/terminal$/];
const isWebSocketEndpoint = (c: Context<AppEnv>) => WEBSOCKET_PATHS.some((p) => p.test(c.req.path));

/**
 * The credential a request carries: a bearer header; `?token=` only on a WebSocket upgrade,
 * where a browser cannot send a header (a token in any other URL ends up in logs and
 * history); or the session cookie.
 */
function presentedCredential(c: Context<AppEnv>): Presented {
  const header = c.req.header("authorization");
  if (header && /^bearer\s+/i.test(header)) {
    const token = header.replace(/^bearer\s+/i, "").trim();
    if (token) return { token, via: "bearer" };
  }
  if (c.req.method === "GET" && isWebSocketUpgrade(c) && isWebSocketEndpoint(c)) {
    const query = c.req.query("token");
    if (query) return { token: query, via: "query" };
  }
  return sessionCookie(c) ? { token: null, via: "cookie" } : { token: null, via: "none" };
}

const sessionCookie = (c: Context<AppEnv>) => getCookie(c, "better-auth.session_token") ?? getCookie(c, "__Secure-better-auth.session_token");

/** Resolves the principal if the request carries a credential; routes that need one call requirePrincipal. */
export const authenticate: MiddlewareHandler<AppEnv> = async (c, next) => {
  const { token, via } = presentedCredential(c);
  if (token?.startsWith(HOST_CREDENTIAL_PREFIX)) {
    // A host credential does agent work for its host and nothing else (see routes/agent.ts).
    c.set("authError", "Host credentials can only be used by the agent");
    return next();
  }
  if (token && looksLikeApiKey(token)) {
    const credential = `key:${token}`;
    let principal = cachedCredential(credential);
    if (!principal) {
      const check = await verifyApiKey(c.var.db, token);
      if (!check.ok) {
        c.set("authError", check.reason);
        return next();
      }
      const k = check.row;
      principal = {
        type: "api_key",
        userId: k.userId,
        key: { id: k.id, kind: k.kind, orgId: k.orgId, projectId: k.projectId, scope: k.scope, role: check.makerRole },
      };
      rememberCredential(credential, principal, k.expiresAt);
    }
    if (principal.type === "api_key") {
      c.set("principal", principal);
      const keyId = principal.key.id;
      c.executionCtx.waitUntil(touchApiKey(c.var.db, keyId).catch(() => undefined));
    }
    return next();
  }
  if (via === "none") return next();
  // The cookie rides along on any request a browser makes, including a form on another site.
  if (via === "cookie") requireTrustedOrigin(c);
  // A presented token is checked alone: were the cookie passed along too, better-auth would
  // fall back to it when the token is bad, and a cross-site request could ride on it unchecked.
  const credential = token ? `bearer:${token}` : `cookie:${sessionCookie(c)}`;
  let valid = cachedCredential(credential);
  if (!valid) {
    const headers = token ? new Headers({ authorization: `Bearer ${token}` }) : new Headers({ cookie: c.req.header("cookie") ?? "" });
    const result = await authOf(c).api.getSession({ headers, query: { disableRefresh: true } }).catch(() => null);
    const presentedSession = token?.split(".")[0];
    if (result?.session && (!presentedSession || result.session.token === presentedSession)) {
      valid = { type: "user", userId: result.user.id, sessionId: result.session.id, sessionToken: result.session.token };
      rememberCredential(credential, valid, new Date(result.session.expiresAt));
    }
  }
  if (valid?.type === "user") {
    c.set("principal", { ...valid, via: via === "cookie" ? "cookie" : "bearer" });
  } else {
    c.set("authError", "Session is invalid or has expired");
  }
  return next();
};

/**
 * A write may have ended or narrowed a credential (a key revoked or adopted, a member removed
 * or demoted, a grant gone): once it has succeeded, nothing validated before it is trusted
 * from the cache (see auth/credential-cache.ts).
 */
export const forgetCredentialsAfterWrites: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  if (c.req.method === "GET" || c.req.method === "HEAD" || c.res.status >= 400) return;
  // Agents write all the time (heartbeats, job reports) and can change no one's credentials.
  if (c.req.path.startsWith("/api/v1/agent/")) return;
  forgetCredentials();
};
