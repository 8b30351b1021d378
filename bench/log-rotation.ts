/**
 * Does a follow of a container's log send a line twice when the json-file log rotates?
 * (Not a benchmark: the check behind the agent's RecentLines, agent/src/follow.ts.)
 *
 * One container (127.0.0.1:5000/berth/hello:v1, busybox) writes `lines` numbered lines,
 * 20 every 10 ms (about 2,000 a second, bench:logs' rate), with the json-file log rotating at
 * `max-size` (1m: a rotation every ~7,800 lines). The lines are followed from the start,
 * either straight from dockerd (`/containers/{id}/logs?follow=1&timestamps=1`, one stream,
 * never reopened) or through the agent's LogFollower (`--via agent`), and counted: lines
 * that came twice (in blocks, with where each was first seen) and lines that never came.
 * With dockerd 20.10.24 the straight follow repeats a block of 1 to 16 lines, with their first
 * timestamps, at most rotations (5 of 5 and 4 of 5 in two runs of 40,000 lines); through the
 * agent, none.
 *
 *   node bench/log-rotation.ts [--lines 40000] [--max-size 1m] [--via docker|agent]
 *
 * Needs test/host/setup.sh (dockerd and the registry).
 */
import { Writable } from "node:stream";
import { parseArgs } from "node:util";
import { DockerEngine } from "../agent/src/drivers/docker.ts";
import { LogFollower } from "../agent/src/follow.ts";
import { createLogger } from "../agent/src/log.ts";
import { LABEL_APP } from "../agent/src/tasks/apps.ts";

const { values } = parseArgs({ options: { lines: { type: "string", default: "40000" }, "max-size": { type: "string", default: "1m" }, via: { type: "string", default: "docker" } } });
const N = Number(values.lines);
const VIA = values.via === "agent" ? "agent" : "docker";
const IMAGE = "127.0.0.1:5000/berth/hello:v1";
const PAD = "padding-padding-padding-padding-padding-padding";

const engine = new DockerEngine();
if (!(await engine.imageExists(IMAGE))) await engine.pull(IMAGE);
const name = `berth-log-rotation-${Date.now().toString(36)}`;
const cmd = `sleep 1; i=0; while [ $i -lt ${N} ]; do j=0; while [ $j -lt 20 ]; do i=$((i+1)); j=$((j+1)); echo "line $i ${PAD}"; done; /bin/busybox usleep 10000; done; echo done; sleep 3600`;
const id = await engine.create({ name, image: IMAGE, env: {}, cmd, labels: { [LABEL_APP]: name }, internalPort: 8080, cpuLimit: 0, memoryLimitMb: 0, restartPolicy: "no", logMaxSize: values["max-size"] });
const abort = new AbortController();

/** The container's lines as a follow from the start gives them. */
async function* followed(): AsyncGenerator<{ time: string; text: string }> {
  if (VIA === "docker") {
    yield* engine.logs(id, { follow: true, signal: abort.signal });
    return;
  }
  const queue: Array<{ time: string; text: string }> = [];
  let wake: (() => void) | null = null;
  const quiet = createLogger("plain", "error", new Writable({ write: (_c, _e, cb) => cb() }));
  const follower = new LogFollower(engine, quiet, (_app, batch) => {
    queue.push(...batch);
    wake?.();
  });
  follower.start(name, null);
  try {
    for (;;) {
      while (queue.length) yield queue.shift()!;
      await new Promise<void>((r) => (wake = r));
    }
  } finally {
    follower.stopAll();
  }
}

const firstAt = new Map<number, number>();
const repeats: Array<{ seq: number; time: string; first: number; again: number }> = [];
let received = 0;
const t0 = performance.now();
try {
  await engine.start(id);
  for await (const line of followed()) {
    if (line.text === "done") break;
    received++;
    const seq = Number(line.text.split(" ")[1]);
    const first = firstAt.get(seq);
    if (first !== undefined) repeats.push({ seq, time: line.time, first, again: received });
    else firstAt.set(seq, received);
  }
} finally {
  abort.abort();
  await engine.remove(id, { force: true });
}

let missing = 0;
for (let s = 1; s <= N; s++) if (!firstAt.has(s)) missing++;
console.log(`${VIA === "docker" ? "dockerd's follow" : "the agent's LogFollower"}, ${N} lines, json-file max-size ${values["max-size"]}, ${((performance.now() - t0) / 1000).toFixed(1)} s: ${received} lines received, ${repeats.length} twice, ${missing} never`);
for (let i = 0; i < repeats.length; ) {
  let j = i;
  while (j + 1 < repeats.length && repeats[j + 1]!.again === repeats[j]!.again + 1) j++;
  console.log(`  ${j - i + 1} line(s) again: seq ${repeats[i]!.seq}..${repeats[j]!.seq} (${repeats[i]!.time}), first received as line ${repeats[i]!.first}, again as line ${repeats[i]!.again}`);
  i = j + 1;
}
