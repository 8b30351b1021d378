/** Hashing for stored credentials: API keys, invitation and refresh tokens are kept only as SHA-256. */
export async function sha256Hex(input: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(input));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A secret token: `prefix` then 32 random bytes as hex (256 bits). */
export function newSecret(prefix = ""): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return prefix + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
