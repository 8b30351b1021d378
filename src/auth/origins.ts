/**
 * Which browser origins may act with a user's session cookie: the API's own origin,
 * `PUBLIC_URL`'s, and those listed in `TRUSTED_ORIGINS` (comma-separated, e.g. a
 * dashboard served from another host). better-auth checks its own routes against the
 * same list; `requireTrustedOrigin` checks Berth's.
 */
import type { Context } from "hono";
import type { AppEnv, Env } from "../env";
import { ApiError } from "../lib/errors";

export function trustedOrigins(env: Env, requestOrigin: string): string[] {
  const listed = (env.TRUSTED_ORIGINS ?? "")
    .split(",")
    .map((o) => o.trim())
    .filter(Boolean);
  const all = [requestOrigin, env.PUBLIC_URL, ...listed].flatMap((o) => {
    if (!o) return [];
    try {
      return [new URL(o).origin];
    } catch {
      return [];
    }
  });
  return [...new Set(all)];
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * A request that rides on the session cookie must prove it comes from a trusted page:
 * a form on another site can POST with the cookie but cannot forge `Origin`. WebSocket
 * upgrades are checked too, since a page on another site may open one with the cookie
 * (cross-site WebSocket hijacking). Bearer credentials are not sent by browsers on their
 * own, so they need no such proof.
 */
export function requireTrustedOrigin(c: Context<AppEnv>) {
  const isUpgrade = c.req.header("upgrade")?.toLowerCase() === "websocket";
  if (SAFE_METHODS.has(c.req.method) && !isUpgrade) return;
  const origin = c.req.header("origin");
  const requestOrigin = new URL(c.req.url).origin;
  if (origin && origin !== "null" && trustedOrigins(c.env, requestOrigin).includes(origin)) return;
  // Browsers that send no Origin on a same-origin request still say where it came from.
  if (!origin && c.req.header("sec-fetch-site") === "same-origin") return;
  throw new ApiError(
    "origin_not_allowed",
    origin
      ? `Requests from ${origin} may not use the session cookie; sign in from a trusted origin or send a bearer token`
      : "A request authenticated by the session cookie must carry an Origin header; scripts should send a bearer token",
  );
}
