/** The app factory: one place sets validation, errors, not-found and the OpenAPI document. */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { AppEnv } from "./env";
import { ApiError, errorBody, errorJson, handleZodError, unauthorized } from "./lib/errors";

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

export function createRouter() {
  const router = new OpenAPIHono<AppEnv>({ defaultHook: handleZodError });
  const openapi = router.openapi.bind(router);
  router.openapi = ((route, handler, hook) => {
    if (!isGated(route)) return openapi(route, handler, hook);
    const own = route.middleware ? (Array.isArray(route.middleware) ? route.middleware : [route.middleware]) : [];
    return openapi({ ...route, middleware: [requireCredential, ...own] }, handler, hook);
  }) as typeof router.openapi;
  return router;
}

export function createApp() {
  const app = createRouter();
  app.onError((err, c) => {
    const requestId = c.get("requestId");
    if (err instanceof ApiError) {
      return c.json(errorBody(err.code, err.message, err.details, requestId), err.status);
    }
    if (err instanceof HTTPException) {
      // Hono raises these for bodies that are not JSON and similar client mistakes.
      if (err.status === 415) {
        // A required JSON body sent with another content type: as documented, a body that is not JSON is 400 invalid_json.
        return errorJson(c, "invalid_json", "The request body must be JSON (Content-Type: application/json)");
      }
      const status = err.status;
      const code = status === 400 ? "invalid_json" : status === 413 ? "payload_too_large" : "http_error";
      return c.json(errorBody(code, err.message || "Bad request", undefined, requestId), status);
    }
    console.error(JSON.stringify({ level: "error", requestId, path: c.req.path, error: describeError(err) }));
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
