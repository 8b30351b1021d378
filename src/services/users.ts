import { eq } from "drizzle-orm";
import type { Database } from "../db/client";
import { user } from "../db/schema";

type UserLike = {
  id: string;
  email: string;
  name: string | null;
  emailVerified: boolean;
  createdAt: Date;
  username?: string | null;
  title?: string | null;
  timezone?: string | null;
  country?: string | null;
  language?: string | null;
  preferences?: string | null;
  twoFactorEnabled?: boolean | null;
};

export function findUser(db: Database, id: string) {
  return db.query.user.findFirst({ where: eq(user.id, id) });
}

function parsePreferences(raw: string | null | undefined): Record<string, unknown> | null {
  if (!raw) return null;
  try {
    return JSON.parse(raw) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** The public user: the union of Dockup's, Suble's and backlex's user shapes. Never a password. */
export function presentUser(u: UserLike) {
  return {
    id: u.id,
    uid: u.id,
    email: u.email,
    name: u.name,
    fullname: u.name,
    username: u.username ?? null,
    emailVerified: u.emailVerified,
    title: u.title ?? null,
    timezone: u.timezone ?? null,
    country: u.country ?? null,
    language: u.language ?? null,
    preferences: parsePreferences(u.preferences),
    // Whether signing in asks for a TOTP code (never the secret itself).
    mfaEnabled: u.twoFactorEnabled === true,
    role: "user",
    createdAt: new Date(u.createdAt).toISOString(),
    created_at: new Date(u.createdAt).toISOString(),
  };
}
