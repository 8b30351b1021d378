/** Exponential backoff with full jitter: a random wait in [0, min(max, base · 2^n)]. */
export class Backoff {
  private attempt = 0;
  private readonly baseMs: number;
  private readonly maxMs: number;

  constructor(baseMs = 1_000, maxMs = 60_000) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
  }

  /** The next wait; `atLeastMs` (from a Retry-After) is honoured as a floor. */
  next(atLeastMs = 0): number {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.max(atLeastMs, Math.round(Math.random() * ceiling));
  }

  reset() {
    this.attempt = 0;
  }
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

/** `Retry-After` in milliseconds (seconds or an HTTP date), or 0. */
export function retryAfterMs(value: string | null): number {
  if (!value) return 0;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : 0;
}
