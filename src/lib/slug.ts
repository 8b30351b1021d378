import { randomString } from "./ids";

export const SLUG_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Lowercase alphanumerics and single hyphens, at most 48 characters; "" if nothing is left. */
export function slugify(input: string): string {
  return input
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 48)
    .replace(/-+$/g, "");
}

/** The slug of `name`, or that slug with a short random suffix when `taken` says it is in use. */
export async function availableSlug(name: string, taken: (slug: string) => Promise<boolean>, fallback = "item"): Promise<string> {
  const base = slugify(name) || fallback;
  if (!(await taken(base))) return base;
  for (let i = 0; i < 5; i++) {
    const candidate = `${base.slice(0, 41)}-${randomString(6)}`;
    if (!(await taken(candidate))) return candidate;
  }
  throw new Error("could not find a free slug");
}
