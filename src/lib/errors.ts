import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ERROR_CODES, type ErrorCode, statusOf } from "./error-codes";

/** The one error envelope every failure uses: `{"error":{"code","message","details"}}`. */
export const ErrorEnvelope = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "not_found" }),
      message: z.string().openapi({ example: "Project not found" }),
      details: z.unknown().optional(),
      request_id: z.string().optional().openapi({ description: "The id of this request in Berth's logs; quote it when asking for help.", example: "k3f9d0a1b2c3" }),
    }),
  })
  .openapi("Error");

/** A failure a route reports: its code decides the status (lib/error-codes.ts). */
export class ApiError extends Error {
  readonly status: ContentfulStatusCode;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.status = statusOf(code) as ContentfulStatusCode;
  }
}

export const badRequest = (code: ErrorCode, message: string, details?: unknown) => new ApiError(code, message, details);
export const unauthorized = (message = "Authentication required") => new ApiError("unauthorized", message);
export const forbidden = (message = "You do not have permission to do this") => new ApiError("forbidden", message);
export const notFound = (what: string, code: ErrorCode = "not_found") => new ApiError(code, `${what} not found`);
export const conflict = (code: ErrorCode, message: string) => new ApiError(code, message);

/** The one envelope, with the request's id so a user can quote it and an operator find the log line. */
export function errorBody(code: string, message: string, details?: unknown, requestId?: string) {
  return { error: { code, message, details: details ?? null, ...(requestId ? { request_id: requestId } : {}) } };
}

/** The envelope for this request, as a response. */
export function errorJson(c: Context, code: ErrorCode, message: string, details?: unknown) {
  return c.json(errorBody(code, message, details, c.get("requestId")), statusOf(code) as ContentfulStatusCode);
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
  return errorJson(c, "invalid_request", `Invalid request${where}: ${issues[0]?.path || "body"}: ${issues[0]?.message}`, { issues });
}

/** What every route can answer with. */
const COMMON_CODES: ErrorCode[] = ["invalid_request", "invalid_json", "unauthorized", "forbidden", "not_found", "rate_limited"];

/**
 * OpenAPI `responses` entries for the codes a route can answer with (the common ones
 * included), grouped by status, each description naming its codes. Spread into a route's
 * `responses`.
 */
export function errorResponsesFor(...codes: ErrorCode[]) {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set([...COMMON_CODES, ...codes])) byStatus.set(statusOf(code), [...(byStatus.get(statusOf(code)) ?? []), code]);
  const out: Record<number, { description: string; content: { "application/json": { schema: typeof ErrorEnvelope } } }> = {};
  for (const [status, list] of byStatus) {
    out[status] = {
      description: list.map((code) => `\`${code}\`: ${ERROR_CODES[code].means}.`).join(" "),
      content: { "application/json": { schema: ErrorEnvelope } },
    };
  }
  return out;
}

export const errorResponses = errorResponsesFor();

export const conflictResponse = errorResponsesFor("slug_taken", "already_member", "last_owner", "personal_org", "registry_exists");
