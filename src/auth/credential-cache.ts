/**
 * Credentials validated in this isolate, kept briefly so a user's every click does not pay
 * again for checking the same one: better-auth's whole session check (its router, the bearer
 * token's HMAC signing and verifying, the session-with-user read from D1), or an API key's
 * lookup with its maker's role. Measured by `npm run bench:api`.
 *
 * What it costs: a session or key ended through another isolate, or its maker's access
 * taken away there, may go on working in this one for up to CREDENTIAL_CACHE_MS. Anything
 * that could end or narrow a credential in this isolate forgets the whole cache at once, so
 * within an isolate it is refused on the next request: better-auth's session-delete hook and
 * every better-auth write (sign-out, revoke-session(s), change-password, a reset), a replayed
 * refresh token ending its family, and every successful write through `/api/v1` (revoking or
 * adopting a key, a member removed or demoted, a project grant gone, …; writes are rare
 * beside reads, so this costs little). Only accepted credentials are kept; a refused one is
 * checked again every time.
 */
import type { Principal } from "./principal";

/** How long a validated credential is trusted without asking D1 again. */
export const CREDENTIAL_CACHE_MS = 5_000;
const MAX_ENTRIES = 2_000;

/** What a credential was validated as (how it was presented is the request's business). */
export type Validated = Exclude<Principal, { type: "user" }> | Omit<Extract<Principal, { type: "user" }>, "via">;

const entries = new Map<string, { principal: Validated; until: number }>();

/** The principal this credential (`bearer:<token>`, `cookie:<value>`, `key:<secret>`) was validated as, if still fresh. */
export function cachedCredential(credential: string, now = Date.now()): Validated | null {
  const hit = entries.get(credential);
  if (!hit) return null;
  if (hit.until <= now) {
    entries.delete(credential);
    return null;
  }
  return hit.principal;
}

/** Remembers a validated credential until the cache's limit or the credential's own expiry, whichever is sooner. */
export function rememberCredential(credential: string, principal: Validated, expiresAt: Date | null, now = Date.now()) {
  if (entries.size >= MAX_ENTRIES) {
    // Maps iterate in insertion order: drop the oldest.
    const oldest = entries.keys().next();
    if (!oldest.done) entries.delete(oldest.value);
  }
  const until = Math.min(now + CREDENTIAL_CACHE_MS, expiresAt?.getTime() ?? Number.POSITIVE_INFINITY);
  entries.set(credential, { principal, until });
}

/** Something may have ended or narrowed a credential: every one is checked against D1 again. */
export function forgetCredentials() {
  entries.clear();
}
