import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { apiPath, dialectOf, documentedCodes, speak } from "./dialects";
import { type ErrorCode, statusOf } from "./error-codes";

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

/**
 * The envelope for this request, as a response, in the dialect of the route family the
 * request is for (lib/dialects.ts): every error Berth answers with goes through here.
 */
export function errorJson(c: Context, code: ErrorCode, message: string, details?: unknown) {
  const route = { method: c.req.method, path: apiPath(c.req.path) };
  const fields = code === "invalid_request" ? failingFields(details) : [];
  const spoken = speak(dialectOf(route.path), code, route, fields);
  return c.json(errorBody(spoken.code, message, details, c.get("requestId")), spoken.status as ContentfulStatusCode);
}

function failingFields(details: unknown): string[] {
  const issues = (details as { issues?: Array<{ path?: unknown }> } | undefined)?.issues;
  return Array.isArray(issues) ? issues.map((i) => String(i.path ?? "")) : [];
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

type ErrorResponse = { description: string; content: { "application/json": { schema: typeof ErrorEnvelope } } };

/** The Berth codes behind each error response entry, so a route's entries can be re-said in its path's dialect. */
const codesOfResponse = new WeakMap<object, ErrorCode[]>();

/**
 * OpenAPI `responses` entries for the codes a route can answer with (the common ones
 * included), grouped by status, each description naming its codes. Spread into a route's
 * `responses`; `createRouter` re-says them in the route's dialect (`inDialect`).
 */
export function errorResponsesFor(...codes: ErrorCode[]) {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set([...COMMON_CODES, ...codes])) byStatus.set(statusOf(code), [...(byStatus.get(statusOf(code)) ?? []), code]);
  const out: Record<number, ErrorResponse> = {};
  for (const [status, list] of byStatus) {
    out[status] = describe(documentedCodes(list, { method: "GET", path: "/" }));
    codesOfResponse.set(out[status], list);
  }
  return out;
}

function describe(spoken: Array<{ code: string; means: string }>): ErrorResponse {
  return {
    description: spoken.map((e) => `\`${e.code}\`: ${e.means}.`).join(" "),
    content: { "application/json": { schema: ErrorEnvelope } },
  };
}

/** A route's `responses` with its error entries said in the dialect of its path (statuses and codes). */
export function inDialect<R extends Record<string, unknown>>(responses: R, route: { method: string; path: string }): R {
  const codes: ErrorCode[] = [];
  const kept: Record<string, unknown> = {};
  for (const [status, entry] of Object.entries(responses)) {
    const behind = entry && typeof entry === "object" ? codesOfResponse.get(entry) : undefined;
    if (behind) codes.push(...behind);
    else kept[status] = entry;
  }
  if (!codes.length) return responses;
  // A route that names a project in its path answers for one it cannot see.
  if (/\{project(Id|Slug)?\}|^\/projects\/\{id\}/.test(route.path)) codes.push("project_not_found");
  const byStatus = new Map<number, Array<{ code: string; status: number; means: string }>>();
  for (const spoken of documentedCodes(codes, route)) byStatus.set(spoken.status, [...(byStatus.get(spoken.status) ?? []), spoken]);
  for (const [status, list] of byStatus) kept[status] = describe(list);
  return kept as R;
}

export const errorResponses = errorResponsesFor();

export const conflictResponse = errorResponsesFor("slug_taken", "already_member", "last_owner", "personal_org", "registry_exists");
