/**
 * Following an app's container logs: what the agent sends must be what the control plane
 * accepts. Docker hands over a backlog all at once (the lines since the last one sent,
 * when the agent reconnects; whatever piled up while the agent was starved of CPU), and
 * the HostDO refuses an `app_log` message of more lines than the protocol allows, so an
 * oversized batch would be lost without a word.
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

describe("log follow", () => {
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
