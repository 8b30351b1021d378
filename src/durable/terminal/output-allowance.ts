/**
 * How much terminal output one user socket may be handed now: what keeps the bytes it was
 * sent and has not taken (`bufferedAmount`) under SOCKET_QUEUE_BYTES.
 *
 * So a peer that stops reading holds at most that much of the runtime's memory, however long
 * it stalls: the rest waits in the session's ring and goes later, coalesced into one frame, and
 * the agent is acknowledged only for what the writer was handed, so a flood waits in the
 * program's own TTY. A socket of a runtime that does not report `bufferedAmount` (workerd before
 * 1.20261117; cloudflare/workerd#988) falls back to a rate: a token bucket of
 * FALLBACK_BYTES_PER_SECOND with a burst of SOCKET_QUEUE_BYTES, which bounds how fast such a
 * peer can grow memory but not how far.
 */

/** Bytes a socket may hold queued for its peer: a screenful many times over, and the ring's size. */
export const SOCKET_QUEUE_BYTES = 1024 * 1024;
/** Only where `bufferedAmount` is missing: more than a person reads, and than xterm.js draws. */
export const FALLBACK_BYTES_PER_SECOND = 4 * 1024 * 1024;

/** What the allowance reads of a socket. */
export interface QueuedBytes {
  readonly bufferedAmount?: number;
}

export class OutputAllowance {
  private tokens = SOCKET_QUEUE_BYTES;
  private last: number;

  constructor(
    private readonly socket: QueuedBytes,
    now: number,
  ) {
    this.last = now;
  }

  /** How many of `wanted` bytes may be sent now. */
  take(wanted: number, now: number): number {
    const queued = this.socket.bufferedAmount;
    if (typeof queued === "number") return Math.max(0, Math.min(wanted, SOCKET_QUEUE_BYTES - queued));
    this.tokens = Math.min(SOCKET_QUEUE_BYTES, this.tokens + ((now - this.last) * FALLBACK_BYTES_PER_SECOND) / 1000);
    this.last = now;
    const n = Math.max(0, Math.min(wanted, Math.floor(this.tokens)));
    this.tokens -= n;
    return n;
  }
}
