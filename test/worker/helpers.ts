/** Test helpers: requests through the real Worker entrypoint, and users made through the real API. */
import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { expect } from "vitest";

const worker = (exports as unknown as { default: Fetcher }).default;

export interface CallOptions {
  method?: string;
  body?: unknown;
  /** Bearer credential: session token, pak_ or dkp_ key. */
  token?: string;
  cookie?: string;
  headers?: Record<string, string>;
  /** Send `body` as-is (for malformed-JSON tests). */
  raw?: string;
}

export interface CallResult<T = any> {
  status: number;
  body: T;
  headers: Headers;
  text: string;
}

export async function api<T = any>(path: string, opts: CallOptions = {}): Promise<CallResult<T>> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.cookie) headers.cookie = opts.cookie;
  let body: string | undefined;
  if (opts.raw !== undefined) {
    body = opts.raw;
    headers["content-type"] ??= "application/json";
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers["content-type"] = "application/json";
  }
  const res = await worker.fetch(`http://berth.test/api/v1${path}`, { method: opts.method ?? (body ? "POST" : "GET"), headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, body: parsed as T, headers: res.headers, text };
}

/**
 * An answer as another tenant could compare it: every error carries its own request id,
 * so that is left out; anything else that differed would tell them something.
 */
export function answerOf(res: CallResult): unknown {
  const body = res.body as { error?: Record<string, unknown> } | null;
  if (!body || typeof body !== "object" || !body.error) return res.body;
  const { request_id: _requestId, ...error } = body.error;
  return { ...body, error };
}

/** Raw fetch for paths outside /api/v1 (better-auth's /api/auth/*). */
export const fetchWorker = (url: string, init?: RequestInit) => worker.fetch(`http://berth.test${url}`, init);

/**
 * A client address no other test uses (the rate limiters are shared by every test file and
 * keyed on it): 24 random bits. It is only ever a header value; nothing is sent to it.
 */
export function uniqueIp(): string {
  const [a, b, c] = crypto.getRandomValues(new Uint8Array(3));
  return `10.${a}.${b}.${c}`;
}

/**
 * The rate limiters count in windows aligned to the wall clock (a 60 s window starts on
 * the minute); a burst that straddles a window's end starts over half-way and never
 * reaches its limit. Waits, at most `marginMs`, until a burst that takes less than that
 * fits in one window.
 */
export async function inOneLimitWindow(marginMs = 20_000, periodMs = 60_000) {
  const left = periodMs - (Date.now() % periodMs);
  if (left < marginMs) await new Promise((r) => setTimeout(r, left + 50));
}

let counter = 0;
export const uniqueEmail = (tag = "user") => `${tag}-${Date.now().toString(36)}-${++counter}-${Math.random().toString(36).slice(2, 6)}@example.com`;

export interface TestUser {
  id: string;
  email: string;
  password: string;
  token: string;
  refreshToken: string;
  /** Slug of the personal org made at sign-up. */
  orgSlug: string;
  /** Id of the default project made at sign-up. */
  projectId: string;
}

export async function signUp(opts: { email?: string; name?: string; password?: string } = {}): Promise<TestUser> {
  const email = opts.email ?? uniqueEmail();
  const password = opts.password ?? "correct horse battery";
  const res = await api("/auth/register", { body: { email, password, name: opts.name ?? "Test User" } });
  expect(res.status, res.text).toBe(201);
  const orgs = await api("/orgs", { token: res.body.token });
  const projects = await api("/projects", { token: res.body.token });
  return {
    id: res.body.user.id,
    email,
    password,
    token: res.body.token,
    refreshToken: res.body.refresh_token,
    orgSlug: orgs.body.orgs[0].slug,
    projectId: projects.body[0].id,
  };
}

/** The newest mail sent to an address (local outbox). */
export async function lastMailTo(address: string): Promise<{ subject: string; text: string }> {
  const res = await api(`/dev/outbox?to=${encodeURIComponent(address)}&limit=1`);
  expect(res.status).toBe(200);
  expect(res.body.messages.length, `no mail to ${address}`).toBeGreaterThan(0);
  return res.body.messages[0];
}

export function tokenIn(text: string, prefix: string): string {
  const match = text.match(new RegExp(`${prefix}[0-9a-f]{64}`));
  if (!match) throw new Error(`no ${prefix} token in mail`);
  return match[0];
}

/** Seats a new user in `org` with `role` through the real invitation flow. */
export async function addMember(owner: TestUser, role: "admin" | "developer" | "viewer", orgSlug = owner.orgSlug): Promise<TestUser> {
  const member = await signUp({ name: `${role} member` });
  const invite = await api(`/org/${orgSlug}/invitations`, { token: owner.token, body: { email: member.email, role } });
  expect(invite.status, invite.text).toBe(201);
  const token = tokenIn((await lastMailTo(member.email)).text, "inv_");
  const accepted = await api("/invitations/accept", { token: member.token, body: { token } });
  expect(accepted.status, accepted.text).toBe(200);
  return member;
}

/** An org with one member of every role. */
export async function orgWithEveryRole() {
  const owner = await signUp({ name: "Owner" });
  const created = await api("/org", { token: owner.token, body: { name: `Team ${counter++} ${Math.random().toString(36).slice(2, 6)}` } });
  expect(created.status, created.text).toBe(201);
  const slug: string = created.body.org.slug;
  const admin = await addMember(owner, "admin", slug);
  const developer = await addMember(owner, "developer", slug);
  const viewer = await addMember(owner, "viewer", slug);
  return { slug, orgId: created.body.org.id as string, owner, admin, developer, viewer };
}

export async function createOrgKey(owner: TestUser, orgSlug: string, scope: "full" | "deploy" | "read-only", extra: Record<string, unknown> = {}) {
  const res = await api(`/org/${orgSlug}/api-keys`, { token: owner.token, body: { name: `${scope} key`, scope, ...extra } });
  expect(res.status, res.text).toBe(201);
  return res.body.key as { id: string; key: string; prefix: string };
}

export { env };

/** Asserts the one error envelope: status, code and a message. */
export function expectApiError(res: CallResult, status: number, code: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.body, res.text).toMatchObject({ error: { code, message: expect.any(String) } });
}

/** Seats an existing user in `orgSlug` with `role` through the real invitation flow (no new sign-up). */
export async function seatExisting(inviter: TestUser, member: TestUser, role: "admin" | "developer" | "viewer", orgSlug: string) {
  const invite = await api(`/org/${orgSlug}/invitations`, { token: inviter.token, body: { email: member.email, role } });
  expect(invite.status, invite.text).toBe(201);
  const token = tokenIn((await lastMailTo(member.email)).text, "inv_");
  const accepted = await api("/invitations/accept", { token: member.token, body: { token } });
  expect(accepted.status, accepted.text).toBe(200);
}

/** Waits until `check` holds of what `fn` returns (Queues and Durable Objects answer asynchronously). */
export async function until<T>(what: string, fn: () => Promise<T>, check: (v: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (check(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A WebSocket a test holds: its JSON text frames and binary frames as they came, and how it closed. */
export interface WatchedSocket {
  ws: WebSocket;
  frames: any[];
  bytes: Uint8Array[];
  /** The binary frames as one UTF-8 string. */
  output(): string;
  closed(): { code: number; reason: string } | null;
  /** The first frame of `type` at or after index `after`, waited for. */
  next(type: string, after?: number): Promise<any>;
}

export function watchSocket(ws: WebSocket): WatchedSocket {
  const frames: any[] = [];
  const bytes: Uint8Array[] = [];
  let closed: { code: number; reason: string } | null = null;
  ws.accept();
  ws.binaryType = "arraybuffer";
  ws.addEventListener("message", (e) => {
    if (typeof e.data === "string") frames.push(JSON.parse(e.data));
    else bytes.push(new Uint8Array(e.data as ArrayBuffer));
  });
  ws.addEventListener("close", (e) => {
    closed = { code: e.code, reason: e.reason };
  });
  const output = () => new TextDecoder().decode(concatBytes(bytes));
  const next = (type: string, after = 0) => until(`a ${type} frame`, async () => frames.slice(after).find((f) => f.type === type), (f) => f !== undefined);
  return { ws, frames, bytes, output, closed: () => closed, next };
}

export function concatBytes(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
