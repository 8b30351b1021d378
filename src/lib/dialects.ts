/**
 * Each seed's error dialect on its own routes, decided by one table: a seed's existing
 * client keeps reading the codes its document names. Berth's codes (lib/error-codes.ts)
 * are the source; a dialect only renames a code and, for backlex, changes one status.
 *
 * - backlex (`AppError`): upper-case codes (`UNAUTHORIZED`, `NOT_FOUND`, …), and request
 *   validation answers `422 VALIDATION`.
 * - Suble: Berth's lower-case codes, which Suble's already are, plus the field codes its
 *   document names for a bad project name (`invalid_name`) or member email
 *   (`invalid_email`).
 * - Berth (its own routes, Dockup's, DevPocket's and the shared sign-in routes): the codes
 *   as they are. Dockup and DevPocket document no error codes of their own.
 */
import { ERROR_CODES, type ErrorCode, statusOf } from "./error-codes";

export type Dialect = "berth" | "backlex" | "suble";

/** Route families, first match wins; paths are relative to `/api/v1` (DevPocket's `/api` prefix removed). */
const FAMILIES: ReadonlyArray<{ dialect: Dialect; path: RegExp; why: string }> = [
  { dialect: "berth", path: /^\/org\/[^/]+\/hosts(\/|$)/, why: "Berth's hosts, under backlex's org paths" },
  { dialect: "backlex", path: /^\/(orgs|org|invitations)(\/|$)/, why: "backlex: orgs, members, invitations, org projects, keys, audit" },
  { dialect: "backlex", path: /^\/account\/?$/, why: "backlex's account (Suble's lives under /account/…)" },
  { dialect: "suble", path: /^\/projects(\/|$)/, why: "Suble's projects (Dockup shares the path and documents no codes)" },
  { dialect: "suble", path: /^\/(me|plans|images|catalog)(\/|$)/, why: "Suble's profile and catalog" },
  { dialect: "suble", path: /^\/account\/mfa(\/|$)/, why: "Suble's two-factor enrolment" },
];

/**
 * Where Suble's document names its own code for a route: for a failing body field (`field`),
 * or instead of one of Berth's codes. Everything else on Suble's routes is Berth's code.
 */
const SUBLE_ROUTE_CODES: ReadonlyArray<{ method: string; path: RegExp; when: ErrorCode; field?: string; code: ErrorCode }> = [
  { method: "POST", path: /^\/projects\/?$/, when: "invalid_request", field: "name", code: "invalid_name" },
  { method: "PATCH", path: /^\/projects\/[^/]+\/?$/, when: "invalid_request", field: "name", code: "invalid_name" },
  { method: "POST", path: /^\/projects\/[^/]+\/members\/?$/, when: "invalid_request", field: "email", code: "invalid_email" },
  { method: "POST", path: /^\/projects\/[^/]+\/instances\/[^/]+\/ssh-key\/?$/, when: "invalid_request", field: "publicKey", code: "invalid_key" },
  // The project itself, and adding a member to it, answer a missing project with `not_found`;
  // the routes under a project (jobs, keys, instances, …) with `project_not_found`.
  { method: "*", path: /^\/projects\/[^/]+\/?$/, when: "project_not_found", code: "not_found" },
  { method: "POST", path: /^\/projects\/[^/]+\/members\/?$/, when: "project_not_found", code: "not_found" },
];

/** The path within the API: `/api/v1/api/orgs` and `/api/v1/orgs` are both `/orgs`. */
export function apiPath(path: string): string {
  return path.replace(/^\/api\/v1(\/api(?=\/|$))?/, "") || "/";
}

/** The dialect of a path relative to `/api/v1` (an OpenAPI path such as `/org/{slug}` works too). */
export function dialectOf(path: string): Dialect {
  return FAMILIES.find((f) => f.path.test(path))?.dialect ?? "berth";
}

export interface SpokenError {
  code: string;
  status: number;
}

type Route = { method: string; path: string };

/** Suble's rules for a route and one of Berth's codes (an OpenAPI path's `{param}` matches like a value). */
function subleRules(route: Route, code: ErrorCode) {
  const path = route.path.replace(/\{[^}]+\}/g, "x");
  const method = route.method.toUpperCase();
  return SUBLE_ROUTE_CODES.filter((r) => r.when === code && (r.method === "*" || r.method === method) && r.path.test(path));
}

/**
 * A Berth error as this route's dialect says it. `fields` are the body fields whose
 * validation failed (for Suble's field codes), first failure first.
 */
export function speak(dialect: Dialect, code: ErrorCode, route: Route, fields: string[] = []): SpokenError {
  if (dialect === "backlex") {
    if (code === "invalid_request") return { code: "VALIDATION", status: 422 };
    return { code: code.toUpperCase(), status: statusOf(code) };
  }
  if (dialect === "suble") {
    const rule = subleRules(route, code).find((r) => r.field === undefined || r.field === fields[0]);
    if (rule) return { code: rule.code, status: statusOf(rule.code) };
  }
  return { code, status: statusOf(code) };
}

/** The codes a route's OpenAPI document names, in its dialect: Berth's codes, spoken, plus Suble's field codes for that route. */
export function documentedCodes(codes: ErrorCode[], route: Route): Array<SpokenError & { means: string }> {
  const dialect = dialectOf(route.path);
  const out = new Map<string, SpokenError & { means: string }>();
  for (const code of codes) {
    const spoken = [speak(dialect, code, route)];
    if (dialect === "suble") spoken.push(...subleRules(route, code).map((r) => ({ code: r.code, status: statusOf(r.code) })));
    // A field code replaces the general one only for that field: both can be answered.
    if (dialect === "suble" && subleRules(route, code).every((r) => r.field)) spoken.push({ code, status: statusOf(code) });
    for (const e of spoken) out.set(e.code, { ...e, means: ERROR_CODES[e.code as ErrorCode]?.means ?? ERROR_CODES[code].means });
  }
  return [...out.values()];
}
