/**
 * What a lease report (start, renew, logs, finish) answers, in one place: the
 * HostDO's socket path and the HTTP routes turn a lease check into the same
 * status and body, and the agent sorts any answer, from either path, into what
 * it can do about it. No imports, so the Worker and the agent (Node, running
 * TypeScript directly) load it alike.
 */

export type LeaseOp = "start" | "renew" | "logs" | "finish";

/** A lease check as the HostDO returns it; `retry` means the job has not started yet. */
export type LeaseResult = { ok: true } | { ok: false; reason: string; retry?: boolean };

export type LeaseAnswer = { status: 200; body: Record<string, unknown> } | { status: 409 | 503; body: { error: { code: string; message: string } } };

/** `ok` is the success body of that report. */
export function answerLeaseReport(res: LeaseResult, ok: () => Record<string, unknown>): LeaseAnswer {
  if (res.ok) return { status: 200, body: ok() };
  if ("retry" in res) return { status: 503, body: { error: { code: "not_started", message: res.reason } } };
  return { status: 409, body: { error: { code: "lease_stale", message: res.reason } } };
}

export type FailureKind = "fatal" | "stale" | "retry";

const FATAL_CODES = new Set(["invalid_host_credential", "invalid_join_token", "join_token_expired"]);

/**
 * What the agent does about a refused call: `fatal` (refused for good: stop and
 * say why), `stale` (the lease is gone: drop that work) or `retry`.
 */
export function failureKind(status: number, code: string): FailureKind {
  if (status === 409 && code === "lease_stale") return "stale";
  if (FATAL_CODES.has(code) || status === 401) return "fatal";
  // A 403 from something in between (a proxy, a WAF) is retried; only the control plane's own codes are fatal.
  if (status === 403 || status === 429 || status >= 500) return "retry";
  // Other 4xx: a bug on one side; retrying the same request will not help, but the agent should keep running.
  return "stale";
}
