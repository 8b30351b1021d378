/**
 * The control plane over HTTP: every call when the agent's socket is not up,
 * and the ones that only exist over HTTP (join, claim). Failures are sorted
 * into what the agent can do about them: `fatal` (refused for good: stop and
 * say why), `stale` (a lease is gone: drop that work), or `retry`
 * (unreachable, overloaded: try again).
 */
import { failureKind } from "../../../src/protocol/lease-answers.ts";
import { retryAfterMs } from "../backoff.ts";

/** Why a call failed, sorted by what the agent does about it; the socket's answers are sorted the same way. */
export class ApiFailure extends Error {
  readonly kind: "fatal" | "stale" | "retry";
  readonly status: number;
  readonly code: string;
  readonly retryAfterMs: number;

  constructor(kind: "fatal" | "stale" | "retry", status: number, code: string, message: string, retryAfter = 0) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfter;
  }
}

export class ControlPlane {
  readonly baseUrl: string;
  readonly credential: string | null;
  private readonly userAgent: string;

  constructor(baseUrl: string, credential: string | null, agentVersion: string) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.credential = credential;
    this.userAgent = `berth-agent/${agentVersion}`;
  }

  url(path: string): string {
    return `${this.baseUrl}/api/v1${path}`;
  }

  /**
   * A GET whose answer is a stream (an uploaded image): resolves with the response once it
   * is 200, its body unread; other answers are ApiFailures like `call`'s.
   */
  async download(path: string, opts: { signal?: AbortSignal } = {}): Promise<Response> {
    const headers: Record<string, string> = { "user-agent": this.userAgent };
    if (this.credential) headers.authorization = `Bearer ${this.credential}`;
    let res: Response;
    try {
      res = await fetch(this.url(path), { headers, signal: opts.signal ?? null });
    } catch (err) {
      throw new ApiFailure("retry", 0, "unreachable", `control plane unreachable: ${(err as Error).cause ?? (err as Error).message}`);
    }
    if (res.ok && res.body) return res;
    const text = await res.text();
    let parsed: { error?: { code?: string; message?: string } } | null = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    const code = parsed?.error?.code ?? `http_${res.status}`;
    throw new ApiFailure(failureKind(res.status, code), res.status, code, parsed?.error?.message ?? (text.slice(0, 200) || res.statusText));
  }

  async call<T>(method: string, path: string, body?: unknown, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<T> {
    const headers: Record<string, string> = { "user-agent": this.userAgent };
    if (this.credential) headers.authorization = `Bearer ${this.credential}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? 15_000);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    let res: Response;
    try {
      res = await fetch(this.url(path), { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
    } catch (err) {
      throw new ApiFailure("retry", 0, "unreachable", `control plane unreachable: ${(err as Error).cause ?? (err as Error).message}`);
    }
    const text = await res.text();
    let parsed: any = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    if (res.ok) return parsed as T;
    const code: string = parsed?.error?.code ?? `http_${res.status}`;
    const message: string = parsed?.error?.message ?? (text.slice(0, 200) || res.statusText);
    const kind = failureKind(res.status, code);
    throw new ApiFailure(kind, res.status, code, message, kind === "retry" ? retryAfterMs(res.headers.get("retry-after")) : 0);
  }
}
