import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** The one error envelope every failure uses: `{"error":{"code","message","details"}}`. */
export const ErrorEnvelope = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "not_found" }),
      message: z.string().openapi({ example: "Project not found" }),
      details: z.unknown().optional(),
    }),
  })
  .openapi("Error");

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const badRequest = (code: string, message: string, details?: unknown) =>
  new ApiError(400, code, message, details);
export const unauthorized = (message = "Authentication required") => new ApiError(401, "unauthorized", message);
export const forbidden = (message = "You do not have permission to do this") => new ApiError(403, "forbidden", message);
export const notFound = (what: string, code = "not_found") => new ApiError(404, code, `${what} not found`);
export const conflict = (code: string, message: string) => new ApiError(409, code, message);

export function errorBody(code: string, message: string, details?: unknown) {
  return { error: { code, message, details: details ?? null } };
}

/** Validation failures from zod become 400 `invalid_request`, listing each issue by path. */
export function handleZodError(
  result: { success: true } | { success: false; error: z.ZodError; target?: string },
  c: Context,
) {
  if (result.success) return;
  const issues = result.error.issues.map((i) => ({
    path: i.path.join("."),
    message: i.message,
    code: i.code,
  }));
  const where = "target" in result && result.target ? ` in ${result.target}` : "";
  return c.json(errorBody("invalid_request", `Invalid request${where}: ${issues[0]?.path || "body"}: ${issues[0]?.message}`, { issues }), 400);
}

const response = (description: string) => ({
  description,
  content: { "application/json": { schema: ErrorEnvelope } },
});

/** Spread into every route's `responses` so the document lists the failures a client must handle. */
export const errorResponses = {
  400: response("The request is malformed or fails validation (`invalid_request`)."),
  401: response("No valid credential (`unauthorized`)."),
  403: response("The credential may not do this (`forbidden`)."),
  404: response("Not found, or not visible to this credential (`not_found`)."),
  429: response("Too many attempts (`rate_limited`)."),
} as const;

export const conflictResponse = { 409: response("Conflicts with existing state.") } as const;
