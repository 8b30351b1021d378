/**
 * The one permission table. Every route names the permission it needs; a
 * caller may act when its role grants it and, for API keys, its scope does too.
 * The README renders this table for users.
 */
import type { ApiKeyScope, Role } from "../db/schema";

export const PERMISSIONS = {
  "org:read": ["owner", "admin", "developer", "viewer"],
  "org:update": ["owner", "admin"],
  "org:delete": ["owner"],
  "member:read": ["owner", "admin", "developer", "viewer"],
  "member:manage": ["owner", "admin"],
  "project:read": ["owner", "admin", "developer", "viewer"],
  "project:create": ["owner", "admin", "developer"],
  "project:update": ["owner", "admin", "developer"],
  "project:delete": ["owner", "admin"],
  "project:lifecycle": ["owner", "admin"],
  "project:members": ["owner", "admin"],
  "apikey:read": ["owner", "admin"],
  "apikey:manage": ["owner", "admin"],
  "apikey:adopt": ["owner"],
  "audit:read": ["owner", "admin"],
  /** Outbound webhooks and their delivery log: where the org's events go, so owners and admins only. */
  "webhook:manage": ["owner", "admin"],
  "deploy": ["owner", "admin", "developer"],
  "app:exec": ["owner", "admin", "developer"],
  /** SSH profiles and commands over SSH (DevPocket): exec-like, so never viewers nor read-only or deploy keys. */
  "command:exec": ["owner", "admin", "developer"],
  "host:read": ["owner", "admin", "developer", "viewer"],
  "host:manage": ["owner", "admin"],
  "instance:read": ["owner", "admin", "developer", "viewer"],
  "instance:create": ["owner", "admin", "developer"],
  "instance:manage": ["owner", "admin", "developer"],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof PERMISSIONS;

/**
 * What each API key scope may do at most. Keys never manage credentials,
 * membership or hosts, so a leaked key cannot mint more keys, seat a new member,
 * enrol a host or run commands on one.
 */
export const SCOPE_PERMISSIONS: Record<ApiKeyScope, readonly Permission[]> = {
  "read-only": ["org:read", "member:read", "project:read", "host:read", "instance:read"],
  deploy: ["org:read", "member:read", "project:read", "host:read", "deploy", "instance:read", "instance:create", "instance:manage"],
  full: [
    "org:read", "org:update", "member:read", "project:read", "project:create", "project:update",
    "project:delete", "project:lifecycle", "audit:read", "webhook:manage", "deploy", "app:exec", "command:exec", "host:read",
    "instance:read", "instance:create", "instance:manage",
  ],
};

/**
 * Suble's key scopes, as its document names them on each instance route, and the permission
 * each one is in this table. A route declares the Suble scope (OpenAPI `security`) and checks
 * the permission, so a Suble client reads the scope it knows and Berth enforces one table.
 */
export const SUBLE_SCOPES = {
  READ_VPS: "instance:read",
  ORDER_PRODUCT: "instance:create",
  VPS_CONTROL: "instance:manage",
  VPS_DELETE: "instance:manage",
} as const satisfies Record<string, Permission>;
export type SubleScope = keyof typeof SUBLE_SCOPES;

/**
 * What concerns the person rather than an org: their profile and the orgs they create.
 * Users may do all of it; a personal key only what its scope allows, so a read-only or
 * deploy key cannot change the account it belongs to. `git:read` lists repositories and
 * branches with the linked GitHub account's token: Berth then acts at GitHub as the person,
 * so a read-only key (which reads Berth's records only) may not.
 */
export const ACCOUNT_SCOPE_PERMISSIONS = {
  "read-only": ["account:read"],
  deploy: ["account:read", "git:read"],
  full: ["account:read", "account:update", "org:create", "git:read"],
} as const satisfies Record<ApiKeyScope, readonly string[]>;

export type AccountPermission = (typeof ACCOUNT_SCOPE_PERMISSIONS)["full"][number];

export function scopeAllowsAccount(scope: ApiKeyScope, permission: AccountPermission): boolean {
  return (ACCOUNT_SCOPE_PERMISSIONS[scope] as readonly AccountPermission[]).includes(permission);
}

const RANK: Record<Role, number> = { viewer: 0, developer: 1, admin: 2, owner: 3 };

export function roleAllows(role: Role, permission: Permission): boolean {
  return (PERMISSIONS[permission] as readonly Role[]).includes(role);
}

export function scopeAllows(scope: ApiKeyScope, permission: Permission): boolean {
  return SCOPE_PERMISSIONS[scope].includes(permission);
}

/** The stronger of two roles (an org role and a project grant). */
export function strongerRole(a: Role | null, b: Role | null): Role | null {
  if (!a) return b;
  if (!b) return a;
  return RANK[a] >= RANK[b] ? a : b;
}

/** The weaker of two roles: what a key may do when its maker may do less than the key's cap. */
export function minRole(a: Role | null, b: Role): Role | null {
  if (!a) return null;
  return RANK[a] <= RANK[b] ? a : b;
}

export function outranks(a: Role, b: Role): boolean {
  return RANK[a] > RANK[b];
}
