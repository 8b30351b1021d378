/**
 * HTTP to the control plane. Failures are sorted into what the agent can do
 * about them: `fatal` (refused for good: stop and say why), `stale` (a lease
 * is gone: drop that work), or `retry` (unreachable, overloaded: try again).
 */
import { failureKind, type LeaseOp } from "../../src/protocol/lease-answers.ts";
import { retryAfterMs } from "./backoff.ts";

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

export type { LeaseOp };
/** Sends a lease report over the agent's socket; null when the socket is not up. */
export type SocketReporter = (op: LeaseOp, leaseId: string, body: unknown) => Promise<{ status: number; body: any }> | null;

export class ControlPlane {
  readonly baseUrl: string;
  credential: string | null;
  socketReporter: SocketReporter | null = null;
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
   * A report about a lease: over the socket when it is up (no HTTP round trip,
   * no credential lookup), else over HTTP. Both answer the same way.
   */
  async report<T>(op: LeaseOp, leaseId: string, body: unknown = {}): Promise<T> {
    const viaSocket = this.socketReporter?.(op, leaseId, body);
    if (viaSocket) {
      try {
        const res = await viaSocket;
        if (res.status === 200) return res.body as T;
        const code: string = res.body?.error?.code ?? `http_${res.status}`;
        throw new ApiFailure(failureKind(res.status, code), res.status, code, res.body?.error?.message ?? "refused");
      } catch (err) {
        if (!(err instanceof ApiFailure) || err.kind !== "retry") throw err;
        // The socket went away mid-report: say it again over HTTP (reports are idempotent).
      }
    }
    return this.call<T>("POST", `/agent/leases/${leaseId}/${op}`, body);
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
