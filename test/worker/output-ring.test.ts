/** The terminal's output ring: what a reconnecting client is given from its byte offset. */
import { describe, expect, it } from "vitest";
import { OutputRing } from "../../src/durable/terminal/output-ring";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (r: { chunks: Uint8Array[] }) => r.chunks.map((c) => new TextDecoder().decode(c)).join("");

describe("OutputRing", () => {
  it("gives exactly the bytes after `since` while it holds them", () => {
    const ring = new OutputRing(10);
    ring.push(bytes("abc"));
    ring.push(bytes("defg"));
    expect(ring.end).toBe(7);
    expect(text(ring.since(0))).toBe("abcdefg");
    expect(ring.since(5)).toMatchObject({ from: 5 });
    expect(text(ring.since(5))).toBe("fg");
    expect(text(ring.since(7))).toBe("");
    // A client claiming more than was written gets nothing, from the end.
    expect(ring.since(99)).toMatchObject({ from: 7, chunks: [] });
  });

  it("reads up to `max` bytes from an offset, across chunks, as one array", () => {
    const ring = new OutputRing(10);
    ring.push(bytes("0123456"));
    ring.push(bytes("789abc"));
    const read = (from: number, max: number) => new TextDecoder().decode(ring.read(from, max));
    expect(read(3, 100)).toBe("3456789abc");
    expect(read(5, 4)).toBe("5678");
    expect(read(12, 4)).toBe("c");
    expect(read(13, 4)).toBe("");
  });

  it("keeps only the last `capacity` bytes, cutting inside a chunk, and says where what it has starts", () => {
    const ring = new OutputRing(10);
    ring.push(bytes("0123456"));
    ring.push(bytes("789abc"));
    expect(ring.start).toBe(3);
    expect(ring.end).toBe(13);
    const r = ring.since(1);
    expect(r.from).toBe(3);
    expect(text(r)).toBe("3456789abc");
    ring.push(bytes("x".repeat(25)));
    expect(ring.start).toBe(28);
    expect(text(ring.since(0))).toBe("x".repeat(10));
  });
});
