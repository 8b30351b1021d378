/**
 * The agent against a control plane that is overloaded, then refuses it: it
 * waits at least as long as Retry-After says, and stops for good, with the
 * reason, when its credential is refused. The control plane here is a small
 * stand-in speaking the real HTTP protocol, because the real one cannot be
 * made to answer 503 on demand.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Backoff, retryAfterMs } from "../src/backoff.ts";
import { startAgent } from "../../test/node/support/agent.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("backoff", () => {
  it("waits a random time up to a doubling ceiling, capped at 60 s, and honours a floor", () => {
    const b = new Backoff(1_000, 60_000);
    const ceilings = [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000];
    for (const ceiling of ceilings) {
      const wait = b.next();
      expect(wait).toBeGreaterThanOrEqual(0);
      expect(wait).toBeLessThanOrEqual(ceiling);
    }
    b.reset();
    expect(b.next(5_000)).toBeGreaterThanOrEqual(5_000);
    // Full jitter: over many draws the waits spread over the whole range.
    const draws = Array.from({ length: 200 }, () => new Backoff(1_000, 60_000).next());
    expect(Math.min(...draws)).toBeLessThan(200);
    expect(Math.max(...draws)).toBeGreaterThan(800);
  });

  it("reads Retry-After as seconds or as an HTTP date", () => {
    expect(retryAfterMs("3")).toBe(3_000);
    expect(retryAfterMs(null)).toBe(0);
    const inFive = new Date(Date.now() + 5_000).toUTCString();
    expect(retryAfterMs(inFive)).toBeGreaterThan(3_000);
    expect(retryAfterMs("soon")).toBe(0);
  });
});

describe("agent transport", () => {
  it("honours Retry-After from an overloaded control plane, then stops with the reason when refused", async () => {
    const seen: number[] = [];
    const server = createServer((req, res) => {
      if (req.url !== "/api/v1/agent/heartbeat") {
        res.writeHead(404).end();
        return;
      }
      seen.push(Date.now());
      if (seen.length <= 2) {
        res.writeHead(503, { "content-type": "application/json", "retry-after": "2" });
        res.end(JSON.stringify({ error: { code: "overloaded", message: "try later" } }));
      } else {
        res.writeHead(401, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { code: "invalid_host_credential", message: "This host credential is not valid" } }));
      }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const url = `http://127.0.0.1:${port}`;
    const state = mkdtempSync(join(tmpdir(), "berth-transport-"));
    dirs.push(state);
    writeFileSync(join(state, "identity.json"), JSON.stringify({ url, host_id: "hst_test", credential: "bha_test", joined_at: new Date().toISOString(), join_token_sha256: null }), { mode: 0o600 });
    try {
      // Before each socket attempt the agent checks its credential with a heartbeat.
      const agent = startAgent(["--url", url, "--state-dir", state, "--docker-socket", "/nonexistent.sock"]);
      const code = await agent.exited;
      expect(code).toBe(2);
      expect(agent.output()).toMatch(/refused by the control plane: This host credential is not valid \(invalid_host_credential\)/);
      // No two attempts closer than Retry-After.
      expect(seen.length).toBeGreaterThanOrEqual(3);
      for (let i = 1; i < seen.length; i++) expect(seen[i]! - seen[i - 1]!).toBeGreaterThanOrEqual(1_900);
    } finally {
      server.close();
    }
  }, 30_000);
});
