/**
 * Sign-in state through better-auth's own client: its endpoints under /api/auth set and
 * end the `better-auth.session_token` cookie. The session is held in TanStack Query like
 * every other server state, so one cache decides what the pages show.
 */
import { queryOptions } from "@tanstack/react-query";
import { createAuthClient } from "better-auth/client";
import { twoFactorClient } from "better-auth/client/plugins";
import { toApiError } from "./api/errors";

// twoFactorClient adds /two-factor/verify-totp and verify-backup-code; the sign-in page itself
// notices `twoFactorRedirect` and asks for the code, so the plugin is given no redirect page.
export const authClient = createAuthClient({ baseURL: window.location.origin, basePath: "/api/auth", plugins: [twoFactorClient()] });

/** A sign-in the twoFactor plugin held back until a code is sent. */
export function needsSecondFactor(answer: unknown): boolean {
  return typeof answer === "object" && answer !== null && (answer as { twoFactorRedirect?: unknown }).twoFactorRedirect === true;
}

type AuthResult<T> = { data: T | null; error: { status: number; code?: string; message?: string } | null };

/** better-auth's `{data, error}` answer as data or an ApiError. */
export async function authCall<T>(call: Promise<AuthResult<T>>): Promise<T> {
  const { data, error } = await call;
  if (error) throw toApiError(error.status, { code: error.code, message: error.message });
  return data as T;
}

export const sessionQuery = queryOptions({
  queryKey: ["session"],
  queryFn: () => authCall(authClient.getSession()),
  staleTime: 60_000,
});
