import type { ApiKeyScope } from "../db/schema";

/** Who is calling: a signed-in user (cookie or bearer session) or an API key acting for its owner. */
export type Principal =
  | { type: "user"; userId: string; sessionId: string; sessionToken: string }
  | {
      type: "api_key";
      userId: string;
      key: { id: string; kind: "personal" | "org"; orgId: string | null; projectId: string | null; scope: ApiKeyScope };
    };

export const actorOf = (p: Principal) =>
  p.type === "user"
    ? { actorType: "user" as const, actorId: p.userId, actorUserId: p.userId }
    : { actorType: "api_key" as const, actorId: p.key.id, actorUserId: p.userId };
