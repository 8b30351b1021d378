/**
 * How much terminal output one user socket may be handed now: a token bucket of
 * OUTPUT_BYTES_PER_SECOND with a burst of OUTPUT_BURST_BYTES.
 *
 * Why a rate and not the socket's backlog: workerd's WebSocket has no `bufferedAmount` (nor any
 * other sign of what the peer has read; cloudflare/workerd#988), so whatever a Durable Object
 * `send()`s to a peer that does not read waits in the runtime's memory. The object therefore
 * decides itself how much each socket is handed: output beyond the allowance waits in the
 * session's ring and goes later, coalesced into one frame, and the agent is acknowledged only
 * for what the writer was handed, so a flood waits in the program's own TTY.
 */

/** A terminal is a screen: 4 MiB/s is more than a person reads, and than xterm.js draws. */
export const OUTPUT_BYTES_PER_SECOND = 4 * 1024 * 1024;
/** A burst after a quiet spell (and a replay of the whole 1 MiB ring) goes at once. */
export const OUTPUT_BURST_BYTES = 1024 * 1024;

export class OutputAllowance {
  private tokens: number;
  private last: number;

  constructor(
    now: number,
    private readonly rate = OUTPUT_BYTES_PER_SECOND,
    private readonly burst = OUTPUT_BURST_BYTES,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes up to `wanted` bytes of the allowance; how many may be sent now. */
  take(wanted: number, now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
    const n = Math.max(0, Math.min(wanted, Math.floor(this.tokens)));
    this.tokens -= n;
    return n;
  }
}
