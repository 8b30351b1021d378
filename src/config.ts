/**
 * What a deployment must have before it serves anything. A plain `wrangler deploy` of
 * wrangler.toml is a production Worker: it refuses every request (503
 * `misconfigured`, naming what is missing, never a value) until its secrets and public
 * settings are set. Development settings exist only under `npm run dev` and the tests,
 * which pass `ENVIRONMENT=development|test` themselves.
 */
import type { Env } from "./env";

export const LOCAL_ENVIRONMENTS = ["development", "test"] as const;

export const isLocal = (env: Pick<Env, "ENVIRONMENT">) => (LOCAL_ENVIRONMENTS as readonly string[]).includes(env.ENVIRONMENT);

/** The shortest session-signing secret accepted outside development (better-auth asks for 32). */
const MIN_SECRET_LENGTH = 32;

function isUrl(value: string | undefined): boolean {
  if (!value) return false;
  try {
    const u = new URL(value);
    return u.protocol === "https:" || u.protocol === "http:";
  } catch {
    return false;
  }
}

/** Everything wrong with this deployment's configuration; empty when it may serve. */
export function configProblems(env: Env): string[] {
  const problems: string[] = [];
  if (!["production", "staging", ...LOCAL_ENVIRONMENTS].includes(env.ENVIRONMENT)) {
    problems.push(`ENVIRONMENT must be production, staging, development or test (is "${String(env.ENVIRONMENT).slice(0, 40)}")`);
  }
  if (env.MAIL_TRANSPORT === "outbox" && !isLocal(env)) problems.push("MAIL_TRANSPORT=outbox is for local development only; use cloudflare");
  if (isLocal(env)) return problems;

  if (!env.AUTH_SECRET) problems.push("AUTH_SECRET is not set: `openssl rand -base64 48 | wrangler secret put AUTH_SECRET`");
  else if (env.AUTH_SECRET.length < MIN_SECRET_LENGTH) problems.push(`AUTH_SECRET must be at least ${MIN_SECRET_LENGTH} characters`);
  if (!env.ENCRYPTION_KEY?.trim()) problems.push("ENCRYPTION_KEY is not set: `openssl rand -base64 32 | wrangler secret put ENCRYPTION_KEY`");
  if (!isUrl(env.PUBLIC_URL)) problems.push("PUBLIC_URL must be the API's public origin, e.g. https://berth.example.com (mailed links use it)");
  if (env.GITHUB_CLIENT_ID?.trim() && !env.GITHUB_CLIENT_SECRET) problems.push("GITHUB_CLIENT_ID is set but GITHUB_CLIENT_SECRET is not: `wrangler secret put GITHUB_CLIENT_SECRET` (GitHub account linking)");
  for (const name of ["GITHUB_URL", "GITHUB_API_URL"] as const) {
    if (env[name] && !isUrl(env[name])) problems.push(`${name} must be an http(s) URL, e.g. https://ghe.example.com`);
  }
  if (!env.BASE_DOMAIN) problems.push("BASE_DOMAIN must be set: apps are served at {slug}-app.{BASE_DOMAIN}");
  if (env.MAIL_TRANSPORT === "cloudflare") {
    if (!env.MAIL) problems.push("MAIL_TRANSPORT=cloudflare needs the send_email binding MAIL");
    if (!env.MAIL_FROM) problems.push("MAIL_FROM must be set: the address mail is sent from");
  } else if (env.MAIL_TRANSPORT !== "outbox") {
    problems.push(`MAIL_TRANSPORT must be cloudflare (is "${String(env.MAIL_TRANSPORT).slice(0, 40)}")`);
  }
  return problems;
}

const checked = new WeakMap<object, string[]>();

/** configProblems, worked out once per isolate and environment, and logged once when not empty. */
export function cachedConfigProblems(env: Env): string[] {
  let problems = checked.get(env);
  if (!problems) {
    problems = configProblems(env);
    checked.set(env, problems);
    if (problems.length) console.error(JSON.stringify({ level: "error", msg: "refusing to serve: configuration incomplete", problems }));
  }
  return problems;
}
