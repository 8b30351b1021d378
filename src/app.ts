/** The app factory: one place sets validation, errors, not-found and the OpenAPI document. */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { AppEnv } from "./env";
import { ApiError, errorJson, handleZodError, inDialect, unauthorized } from "./lib/errors";

/** Routes that declare `security: []` (or an optional `{}`) are public; agent routes check their host credential themselves. */
function isGated(route: { security?: Array<Record<string, string[]>> }) {
  if (!route.security) return true; // the document's default: a bearer token or the session cookie
  // `[]` is public; an empty requirement `{}` among others makes the credential optional.
  if (route.security.length === 0 || route.security.some((s) => Object.keys(s).length === 0)) return false;
  return !route.security.some((s) => "agent" in s);
}

/**
 * A secured operation refuses a request without a valid credential (401) before anything
 * else, body validation included: the route's declared `security` is what is enforced, so
 * the OpenAPI document and the behaviour cannot drift apart.
 */
const requireCredential: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!c.get("principal")) throw unauthorized(c.get("authError") ?? "Authentication required");
  await next();
};

/**
 * A router whose routes enforce their declared security and document their errors in
 * their path's dialect (lib/dialects.ts). Families are mounted at `/`, so a route's path
 * here is its path under `/api/v1`.
 */
export function createRouter() {
  const router = new OpenAPIHono<AppEnv>({ defaultHook: handleZodError });
  const openapi = router.openapi.bind(router);
  router.openapi = ((declared, handler, hook) => {
    const route = { ...declared, responses: inDialect(declared.responses, declared) };
    if (!isGated(route)) return openapi(route, handler, hook);
    const own = route.middleware ? (Array.isArray(route.middleware) ? route.middleware : [route.middleware]) : [];
    return openapi({ ...route, middleware: [requireCredential, ...own] }, handler, hook);
  }) as typeof router.openapi;
  return router;
}

export function createApp() {
  const app = createRouter();
  app.onError((err, c) => {
    if (err instanceof ApiError) return errorJson(c, err.code, err.message, err.details);
    if (err instanceof HTTPException && err.status < 500) {
      // Hono raises these for bodies that are not JSON and similar client mistakes. A
      // required JSON body sent with another content type (415) is, as documented, a body
      // that is not JSON.
      if (err.status === 413) return errorJson(c, "payload_too_large", err.message || "The body is too large");
      return errorJson(c, "invalid_json", err.status === 415 ? "The request body must be JSON (Content-Type: application/json)" : err.message || "Bad request");
    }
    console.error(JSON.stringify({ level: "error", requestId: c.get("requestId"), path: c.req.path, error: describeError(err) }));
    return errorJson(c, "internal_error", "Something went wrong on our side");
  });
  app.notFound((c) => errorJson(c, "not_found", `No route for ${c.req.method} ${c.req.path}`));
  return app;
}

/** A log-safe description: drizzle puts bound parameters (hashes, secrets) in its messages, so they are cut. */
function describeError(err: Error): string {
  const cause = err.cause instanceof Error ? ` (cause: ${err.cause.message})` : "";
  return `${err.name}: ${err.message.split("\nparams:")[0]}${cause}`.slice(0, 2000);
}
