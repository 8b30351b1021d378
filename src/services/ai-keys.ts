/** The user's own AI provider key, stored encrypted (lib/secrets.ts); only its last four characters are ever shown. */
import { eq, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { aiKey } from "../db/schema";
import type { Env } from "../env";
import { ApiError } from "../lib/errors";
import { decryptJson, encryptJson } from "../lib/secrets";

type KeyEnv = Pick<Env, "ENVIRONMENT" | "ENCRYPTION_KEY">;

export const keyHint = (key: string) => `…${key.slice(-4)}`;

export async function storeAiKey(db: Database, env: KeyEnv, userId: string, key: string) {
  const encrypted = await encryptJson(env, { key });
  const hint = keyHint(key);
  await db
    .insert(aiKey)
    .values({ userId, encrypted, hint })
    .onConflictDoUpdate({ target: aiKey.userId, set: { encrypted, hint, updatedAt: sql`(unixepoch('subsec') * 1000)` } });
}

export async function findAiKeyInfo(db: Database, userId: string) {
  const [row] = await db.select({ hint: aiKey.hint, createdAt: aiKey.createdAt, updatedAt: aiKey.updatedAt }).from(aiKey).where(eq(aiKey.userId, userId));
  return row ?? null;
}

/** The stored key in clear, or null when there is none. */
export async function storedAiKey(db: Database, env: KeyEnv, userId: string): Promise<string | null> {
  const [row] = await db.select({ encrypted: aiKey.encrypted }).from(aiKey).where(eq(aiKey.userId, userId));
  if (!row) return null;
  try {
    return (await decryptJson<{ key: string }>(env, row.encrypted)).key;
  } catch {
    throw new ApiError("ai_key_unreadable", "The stored AI key cannot be decrypted with the current ENCRYPTION_KEY; store it again with PUT /ai/key");
  }
}

export async function deleteAiKey(db: Database, userId: string): Promise<boolean> {
  const gone = await db.delete(aiKey).where(eq(aiKey.userId, userId)).returning({ userId: aiKey.userId });
  return gone.length > 0;
}
