/**
 * The typed API client: openapi-fetch over the types generated from the API's own
 * OpenAPI document (openapi.gen.ts, `npm run api:types`). The browser's session cookie
 * rides along (same origin); every failure becomes an ApiError.
 */
import createClient from "openapi-fetch";
import { toApiError } from "./errors";
import type { components, paths } from "./openapi.gen";

export const api = createClient<paths>({ baseUrl: "/api/v1", credentials: "same-origin" });

export type Project = components["schemas"]["Project"];
export type Member = components["schemas"]["Member"];
export type ApiKey = components["schemas"]["ApiKey"];
export type AuditEvent = components["schemas"]["AuditEvent"];
export type Host = components["schemas"]["Host"];
export type Instance = components["schemas"]["Instance"];
export type Plan = components["schemas"]["Plan"];
export type Image = components["schemas"]["Image"];
export type App = components["schemas"]["App"];
export type Deployment = components["schemas"]["Deployment"];
export type Job = components["schemas"]["Job"];
export type JobLogLine = components["schemas"]["JobLogLine"];
export type AppStats = components["schemas"]["AppStats"];
export type AppStatsSample = components["schemas"]["AppStatsSample"];
export type SshProfile = components["schemas"]["SshProfile"];
export type SshConnected = components["schemas"]["SshConnected"];
export type Command = components["schemas"]["Command"];
export type SyncConflict = components["schemas"]["SyncConflict"];
export type Device = components["schemas"]["DevPocketDevice"];

/** The data of a successful answer; an ApiError otherwise (for TanStack Query to hold). */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (error !== undefined || !response.ok) throw toApiError(response.status, error);
  return data as T;
}
