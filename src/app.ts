/** The app factory: one place sets validation, errors, not-found and the OpenAPI document. */
import { OpenAPIHono } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import type { AppEnv } from "./env";
import { ApiError, errorBody, handleZodError } from "./lib/errors";

export function createRouter() {
  return new OpenAPIHono<AppEnv>({ defaultHook: handleZodError });
}

export function createApp() {
  const app = createRouter();
  app.onError((err, c) => {
    if (err instanceof ApiError) return c.json(errorBody(err.code, err.message, err.details), err.status);
    if (err instanceof HTTPException) {
      // Hono raises these for bodies that are not JSON and similar client mistakes.
      if (err.status === 415) {
        // A required JSON body sent with another content type: as documented, a body that is not JSON is 400 invalid_json.
        return c.json(errorBody("invalid_json", "The request body must be JSON (Content-Type: application/json)"), 400);
      }
      const status = err.status;
      const code = status === 400 ? "invalid_json" : status === 413 ? "payload_too_large" : "http_error";
      return c.json(errorBody(code, err.message || "Bad request"), status);
    }
    console.error(JSON.stringify({ level: "error", requestId: c.get("requestId"), path: c.req.path, error: describeError(err) }));
    return c.json(errorBody("internal_error", "Something went wrong on our side"), 500);
  });
  app.notFound((c) => c.json(errorBody("not_found", `No route for ${c.req.method} ${c.req.path}`), 404));
  return app;
}

/** A log-safe description: drizzle puts bound parameters (hashes, secrets) in its messages, so they are cut. */
function describeError(err: Error): string {
  const cause = err.cause instanceof Error ? ` (cause: ${err.cause.message})` : "";
  return `${err.name}: ${err.message.split("\nparams:")[0]}${cause}`.slice(0, 2000);
}
