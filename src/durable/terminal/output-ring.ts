/**
 * The last bytes a terminal wrote, kept so a browser that reconnects (or a viewer that
 * joins) sees what it missed. Offsets count every byte since the session began, so a client
 * that knows how much it got (`since`) is given exactly the rest, or told how much was lost
 * when the ring no longer holds it.
 */
export class OutputRing {
  private chunks: Uint8Array[] = [];
  private held = 0;
  /** Offset of the first byte held. */
  private first = 0;

  constructor(private readonly capacity: number) {}

  /** Offset just past the last byte written. */
  get end(): number {
    return this.first + this.held;
  }

  get start(): number {
    return this.first;
  }

  push(bytes: Uint8Array) {
    if (!bytes.length) return;
    this.chunks.push(bytes);
    this.held += bytes.length;
    while (this.held > this.capacity) {
      const over = this.held - this.capacity;
      const head = this.chunks[0]!;
      if (head.length <= over) {
        this.chunks.shift();
        this.held -= head.length;
        this.first += head.length;
      } else {
        this.chunks[0] = head.subarray(over);
        this.held -= over;
        this.first += over;
      }
    }
  }

  /** Up to `max` bytes from `from` (at or after `start`), as one array. */
  read(from: number, max: number): Uint8Array {
    const out = new Uint8Array(Math.max(0, Math.min(max, this.end - from)));
    let at = 0;
    for (const c of this.since(from).chunks) {
      if (at === out.length) break;
      const part = c.subarray(0, out.length - at);
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  /** The bytes from `since` on, as held; `from` says where they start (later than `since` when some were lost). */
  since(since: number): { from: number; chunks: Uint8Array[] } {
    const from = Math.min(Math.max(since, this.first), this.end);
    let skip = from - this.first;
    const out: Uint8Array[] = [];
    for (const c of this.chunks) {
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      out.push(skip ? c.subarray(skip) : c);
      skip = 0;
    }
    return { from, chunks: out };
  }
}
