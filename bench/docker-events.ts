/** dockerd's event stream, for benchmarks that time or count what happened on the host. */
import { request } from "node:http";

export interface DockerEvent {
  type: string;
  action: string;
  id: string;
  /** For containers: their name, image and every label. */
  attributes: Record<string, string>;
  /** Unix ms (from timeNano). */
  at: number;
}

export interface DockerEventWatch {
  /** Every event seen so far, in dockerd's order. */
  events: DockerEvent[];
  /** Resolves once dockerd answered: events from then on are seen. */
  ready: Promise<void>;
  /** Why the stream ended before `stop()`, if it did (then `events` may miss some). */
  broken(): string | null;
  stop(): void;
}

/** Every container and image event from now until `stop()`, with dockerd's nanosecond timestamps. */
export function watchDockerEvents(socketPath = "/var/run/docker.sock"): DockerEventWatch {
  const events: DockerEvent[] = [];
  const filters = encodeURIComponent(JSON.stringify({ type: ["container", "image"] }));
  let buf = "";
  let stopped = false;
  let broken: string | null = null;
  const fail = (why: string) => {
    if (!stopped) broken ??= why;
  };
  let answered: () => void = () => {};
  const ready = new Promise<void>((resolve) => (answered = resolve));
  const req = request({ socketPath, path: `/events?filters=${filters}`, method: "GET" }, (res) => {
    answered();
    if (res.statusCode !== 200) fail(`dockerd answered ${res.statusCode} to GET /events`);
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        try {
          const e = JSON.parse(line);
          events.push({
            type: String(e.Type ?? ""),
            action: String(e.Action ?? e.status ?? "").split(":")[0]!.trim(),
            id: String(e.Actor?.ID ?? e.id ?? ""),
            attributes: e.Actor?.Attributes ?? {},
            at: e.timeNano ? Number(BigInt(e.timeNano) / 1000n) / 1000 : Number(e.time ?? 0) * 1000,
          });
        } catch {
          /* not JSON */
        }
      }
    });
    res.on("error", (err) => fail(err.message));
    res.on("end", () => fail("dockerd ended the event stream"));
  });
  req.on("error", (err) => {
    answered();
    fail(err.message);
  });
  req.end();
  return {
    events,
    ready,
    broken: () => broken,
    stop: () => {
      stopped = true;
      req.destroy();
    },
  };
}
