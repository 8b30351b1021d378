import type { ApiKeyScope, Role } from "../db/schema";

/** Who is calling: a signed-in user (cookie or bearer session) or an API key acting for its owner. */
export type Principal =
  | { type: "user"; userId: string; sessionId: string; sessionToken: string; via: "bearer" | "cookie" }
  | {
      type: "api_key";
      /** A personal key's user; an org key's maker (or the owner who adopted it). */
      userId: string;
      key: {
        id: string;
        kind: "personal" | "org";
        orgId: string | null;
        projectId: string | null;
        scope: ApiKeyScope;
        /** Org keys: the maker's role now, capped at admin (see services/api-keys.ts). */
        role: Role | null;
      };
    };

export const actorOf = (p: Principal) =>
  p.type === "user"
    ? { actorType: "user" as const, actorId: p.userId, actorUserId: p.userId }
    : { actorType: "api_key" as const, actorId: p.key.id, actorUserId: p.userId };

/** The role an org key acts with in its own org, or null for anything else. */
export const orgKeyRole = (p: Principal, orgId: string): Role | null =>
  p.type === "api_key" && p.key.kind === "org" && p.key.orgId === orgId ? p.key.role : null;
