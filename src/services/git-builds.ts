/**
 * Apps built from git: which repository URLs are accepted, the image a build is tagged as,
 * and the push webhook's secret (made when an app gets a repository, shown once, kept
 * encrypted) and signature check (GitHub's `X-Hub-Signature-256`, HMAC-SHA256 of the body).
 */
import type { Env } from "../env";
import { newSecret } from "../lib/crypto";
import { decryptJson, encryptJson } from "../lib/secrets";

/** Repository images built from git are tagged into (the agent prunes earlier tags of it). */
export const BUILD_REPOSITORY = "berth-build";

/** `berth-build/{slug}:{deployment id}`: one tag per build, so a deploy runs exactly what it built. */
export const buildTag = (slug: string, deploymentId: string) => `${buildRepository(slug)}:${deploymentId.toLowerCase()}`;
export const buildRepository = (slug: string) => `${BUILD_REPOSITORY}/${slug.toLowerCase()}`;

/** Dockup's short form for a GitHub repository. */
const OWNER_REPO = /^[A-Za-z0-9][A-Za-z0-9-]{0,38}\/[A-Za-z0-9._-]{1,100}$/;

/**
 * Why `value` is not a repository Berth can clone, or null when it is: `owner/repo` (GitHub),
 * or an http(s) URL with a host and without credentials (they would be stored and logged in
 * clear; a private GitHub repository is cloned with the linked account's token instead).
 */
export function gitRepoUrlProblem(value: string): string | null {
  if (OWNER_REPO.test(value)) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "a repository is owner/repo (GitHub) or an http(s) URL such as https://git.example.com/team/app.git";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return `only http(s) repositories can be built, not ${url.protocol.replace(/:$/, "")}`;
  if (url.username || url.password) return "a repository URL must not carry credentials";
  if (!url.hostname) return "a repository URL needs a host";
  if (url.search || url.hash) return "a repository URL has no query or fragment";
  return null;
}

/** What the agent clones: `owner/repo` is GitHub's (github.com, or the GITHUB_URL a deployment links accounts on). */
export function gitCloneUrl(value: string, github = "https://github.com"): string {
  return OWNER_REPO.test(value) ? `${github.replace(/\/+$/, "")}/${value.replace(/\.git$/, "")}.git` : value;
}

/** A branch name git accepts as a ref (a subset: no option-looking names, no `..`, no control characters). */
export function gitBranchProblem(value: string): string | null {
  if (!/^[A-Za-z0-9._/+-]+$/.test(value)) return "a branch is letters, digits and . _ / + -";
  if (value.startsWith("-") || value.startsWith("/") || value.endsWith("/") || value.endsWith(".") || value.includes("..") || value.includes("//") || value.endsWith(".lock")) {
    return "not a valid branch name";
  }
  return null;
}

/** A new webhook secret, and its stored form. */
export async function newWebhookSecret(env: Env): Promise<{ secret: string; ciphertext: string }> {
  const secret = newSecret("bwh_");
  return { secret, ciphertext: await encryptJson(env, secret) };
}

/** The path a push webhook is sent to, under the API's base. */
export const webhookPath = (appId: string) => `/api/v1/apps/${appId}/git/webhook`;

/**
 * Whether `signature` (`sha256=<hex>`, GitHub's `X-Hub-Signature-256`) is the HMAC-SHA256 of
 * `body` under the app's secret. WebCrypto's verify compares in constant time.
 */
export async function webhookSignatureValid(env: Env, ciphertext: string, body: ArrayBuffer, signature: string | undefined): Promise<boolean> {
  const hex = /^sha256=([0-9a-f]{64})$/i.exec(signature?.trim() ?? "")?.[1];
  if (!hex) return false;
  const secret = await decryptJson<string>(env, ciphertext);
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  const mac = new Uint8Array(hex.match(/../g)!.map((b) => Number.parseInt(b, 16)));
  return crypto.subtle.verify("HMAC", key, mac, body);
}
