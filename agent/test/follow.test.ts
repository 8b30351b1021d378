/**
 * Following an app's container logs: what the agent sends must be what the control plane
 * accepts. Docker hands over a backlog all at once (the lines since the last one sent,
 * when the agent reconnects; whatever piled up while the agent was starved of CPU), and
 * the HostDO refuses an `app_log` message of more lines than the protocol allows, so an
 * oversized batch would be lost without a word. And dockerd 20.10 itself sends some lines
 * again, within one follow, when the container's json-file log rotates: those must reach
 * the control plane once, while real lines that look alike (the same text, the same
 * millisecond) all still do.
 */
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { AgentMessage, type AppLogLine } from "../../src/protocol/agent.ts";
import type { DockerEngine, LogLine } from "../src/drivers/docker.ts";
import { LogFollower } from "../src/follow.ts";
import { createLogger } from "../src/log.ts";

/** A Docker whose one container of the app has `backlog` lines ready at once, then nothing until aborted. */
function dockerWithBacklog(backlog: number): DockerEngine {
  const start = Date.parse("2026-11-20T10:00:00.000Z");
  const fake = {
    async list() {
      return [{ id: "c1", names: ["berth-app"], image: "app", labels: {}, state: "running", status: "Up", created: new Date(start).toISOString() }];
    },
    logs(_id: string, opts: { signal?: AbortSignal }) {
      return (async function* (): AsyncGenerator<LogLine> {
        for (let i = 1; i <= backlog; i++) yield { time: new Date(start + i).toISOString(), stream: "stdout", text: `line ${i}` };
        await new Promise<void>((resolve) => opts.signal?.addEventListener("abort", () => resolve(), { once: true }));
      })();
    },
  };
  return fake as unknown as DockerEngine;
}

/** A Docker whose follow yields `lines` (as dockerd sends them, repeats and all), then nothing until aborted. */
function dockerYielding(lines: LogLine[]): DockerEngine {
  const fake = {
    async list() {
      return [{ id: "c1", names: ["berth-app"], image: "app", labels: {}, state: "running", status: "Up", created: "2026-11-20T10:00:00.000Z" }];
    },
    logs(_id: string, opts: { signal?: AbortSignal }) {
      return (async function* (): AsyncGenerator<LogLine> {
        yield* lines;
        await new Promise<void>((resolve) => opts.signal?.addEventListener("abort", () => resolve(), { once: true }));
      })();
    },
  };
  return fake as unknown as DockerEngine;
}

async function followed(docker: DockerEngine, expected: number): Promise<AppLogLine[]> {
  const sent: AppLogLine[][] = [];
  const quiet = createLogger("plain", "error", new Writable({ write: (_c, _e, cb) => cb() }));
  const follower = new LogFollower(docker, quiet, (_appId, lines) => sent.push(lines));
  follower.start("app_1", null);
  const end = Date.now() + 2_000;
  // Until the expected lines came and a batch time more passed (a repeat sent in error would be in it).
  while (sent.flat().length < expected && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200));
  follower.stopAll();
  return sent.flat();
}

describe("log follow", () => {
  it("sends once the lines dockerd sends again when the log file rotates", async () => {
    // Two lines a millisecond, each with Docker's own nanosecond stamp, as `timestamps=1` gives them.
    const line = (i: number): LogLine => ({ time: new Date(Date.parse("2026-11-20T10:00:00.000Z") + Math.floor(i / 2)).toISOString(), subMs: (i % 2) * 500_000 + 1234, stream: "stdout", text: `bench f1 ${i}` });
    const lines = Array.from({ length: 40 }, (_, i) => line(i + 1));
    // What dockerd 20.10.24 did in one uninterrupted follow across a rotation (seen: blocks of 1 to 15
    // lines, the last one sent or a run just before it, again with their original stamps).
    const asDockerSends = [...lines.slice(0, 20), ...lines.slice(5, 20), ...lines.slice(20, 30), lines[29]!, ...lines.slice(30)];
    const got = await followed(dockerYielding(asDockerSends), 40);
    expect(got.map((l) => l.text)).toEqual(lines.map((l) => l.text));
  });

  it("sends every real line, however alike: the same text in one millisecond, the same stamp on both streams", async () => {
    const at = "2026-11-20T10:00:00.001Z";
    const lines: LogLine[] = [
      { time: at, subMs: 100, stream: "stdout", text: "same" },
      { time: at, subMs: 200, stream: "stdout", text: "same" },
      { time: at, subMs: 200, stream: "stderr", text: "same" },
      // A clock that stepped back: older than the lines before, but none of them.
      { time: "2026-11-20T09:59:59.000Z", subMs: 0, stream: "stdout", text: "same" },
      // No stamp from Docker (a line it could not date): never taken for a repeat.
      { time: at, stream: "stdout", text: "same" },
      { time: at, stream: "stdout", text: "same" },
    ];
    const got = await followed(dockerYielding(lines), lines.length);
    expect(got).toEqual(lines.map(({ time, stream, text }) => ({ time, stream, text })));
  });

  it("sends a backlog of 2,500 lines in messages the control plane accepts, in order, none lost", async () => {
    const sent: AppLogLine[][] = [];
    const quiet = createLogger("plain", "error", new Writable({ write: (_c, _e, cb) => cb() }));
    const follower = new LogFollower(dockerWithBacklog(2500), quiet, (_appId, lines) => sent.push(lines));
    follower.start("app_1", null);
    const end = Date.now() + 5_000;
    while (sent.flat().length < 2500 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    follower.stopAll();

    for (const lines of sent) {
      // As the agent puts it on the socket, and as the HostDO checks it.
      const parsed = AgentMessage.safeParse({ type: "app_log", app_id: "app_1", lines });
      expect(parsed.success, `a message of ${lines.length} lines is refused`).toBe(true);
    }
    expect(sent.flat().map((l) => l.text)).toEqual(Array.from({ length: 2500 }, (_, i) => `line ${i + 1}`));
  });
});
