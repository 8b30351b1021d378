/**
 * The character rules for every text a person, org or project shows to others (names,
 * titles, usernames), whichever route writes it: Berth's own routes through zod
 * (routes/schemas.ts) and better-auth's through its database hooks (auth/better-auth.ts).
 */

/**
 * C0/C1 controls, and the invisible direction marks and overrides that make a name render
 * as something else ("Trojan Source"): U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069.
 */
const UNSAFE = /[\p{Cc}\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;

/** Longest a name may be (people, orgs, projects, apps, hosts). */
export const NAME_MAX = 120;

/** Why `value` is not an acceptable display text, or null when it is. */
export function displayTextProblem(value: string, max: number): string | null {
  if (value.trim().length === 0) return "must not be blank";
  if (value.length > max) return `must be at most ${max} characters`;
  if (UNSAFE.test(value)) return "must not contain control or text-direction characters";
  return null;
}
