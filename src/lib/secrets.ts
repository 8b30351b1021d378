/**
 * Secrets at rest (app env vars): AES-256-GCM with WebCrypto, keyed by the Worker
 * secret `ENCRYPTION_KEY`. The key is 32 bytes in base64, or any other string, from
 * which 32 bytes are derived with HKDF/SHA-256. Development and tests run with a fixed
 * key so `npm run dev` needs no set-up; anywhere else a missing key is an error.
 *
 * Format: `v1.<iv, base64>.<ciphertext and GCM tag, base64>`; a fresh 96-bit IV per value.
 * The version leaves room for key rotation without guessing at old values.
 */
import type { Env } from "../env";

type KeyEnv = Pick<Env, "ENVIRONMENT" | "ENCRYPTION_KEY">;

const FORMAT = "v1";
const DEV_KEY_MATERIAL = "berth-local-development-encryption-key-not-for-production";
const HKDF_SALT = "berth/secrets";
const HKDF_INFO = "berth secrets v1: AES-256-GCM";

const utf8 = new TextEncoder();

/** Imported keys by their material; importing (and deriving) once per isolate. */
const keys = new Map<string, Promise<CryptoKey>>();

function keyMaterial(env: KeyEnv): string {
  const configured = env.ENCRYPTION_KEY?.trim();
  if (configured) return configured;
  if (env.ENVIRONMENT === "development" || env.ENVIRONMENT === "test") return DEV_KEY_MATERIAL;
  throw new Error(
    "ENCRYPTION_KEY is not set: run `openssl rand -base64 32 | wrangler secret put ENCRYPTION_KEY` (app env vars are encrypted with it)",
  );
}

/** The 32 bytes a base64 (or base64url) key stands for, or null when it is not one. */
function rawKeyBytes(material: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(material)) return null;
  try {
    const bytes = fromBase64(material.replace(/-/g, "+").replace(/_/g, "/"));
    return bytes.length === 32 ? bytes : null;
  } catch {
    return null;
  }
}

function aesKey(env: KeyEnv): Promise<CryptoKey> {
  const material = keyMaterial(env);
  let key = keys.get(material);
  if (!key) {
    key = importKey(material);
    keys.set(material, key);
    // A failed import is not cached: the next call tries again.
    key.catch(() => keys.delete(material));
  }
  return key;
}

async function importKey(material: string): Promise<CryptoKey> {
  const raw = rawKeyBytes(material);
  if (raw) return crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
  const ikm = await crypto.subtle.importKey("raw", utf8.encode(material), "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: utf8.encode(HKDF_SALT), info: utf8.encode(HKDF_INFO) },
    ikm,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** Encrypts `value` as JSON; the result is safe to store, and says nothing of the value but its length. */
export async function encryptJson(env: KeyEnv, value: unknown): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const plaintext = utf8.encode(JSON.stringify(value));
  const ciphertext = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await aesKey(env), plaintext);
  return `${FORMAT}.${toBase64(iv)}.${toBase64(new Uint8Array(ciphertext))}`;
}

/** Decrypts what `encryptJson` made; throws on another key, a tampered value or an unknown format. */
export async function decryptJson<T = unknown>(env: KeyEnv, text: string): Promise<T> {
  const [version, iv, ciphertext, ...rest] = text.split(".");
  if (version !== FORMAT || !iv || !ciphertext || rest.length) throw new Error("Unrecognised encrypted value format");
  let plaintext: ArrayBuffer;
  try {
    plaintext = await crypto.subtle.decrypt({ name: "AES-GCM", iv: fromBase64(iv) }, await aesKey(env), fromBase64(ciphertext));
  } catch (err) {
    if (err instanceof Error && err.message.startsWith("ENCRYPTION_KEY")) throw err;
    // Never echo the value; the cause is one of these two.
    throw new Error("Could not decrypt a stored secret: it was encrypted with another ENCRYPTION_KEY, or altered");
  }
  return JSON.parse(new TextDecoder().decode(plaintext)) as T;
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  // In chunks: spreading megabytes into one call overflows the stack.
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
