/** Container events (start, die, oom, …) as they happen, for the containers with some labels. */
import { type DockerApi, jsonLines, labelList } from "./api.ts";

export interface ContainerEvent {
  /** start, die, stop, kill, oom, restart, create, destroy, health_status, ... (text after ":" dropped). */
  action: string;
  id: string;
  name: string | null;
  image: string | null;
  /** The container's labels (Docker mixes them into the event's attributes). */
  labels: Record<string, string>;
  /** For `die`. */
  exitCode: number | null;
  time: string;
}

/** Event attributes that are not container labels. */
const EVENT_ATTRIBUTES = new Set(["name", "image", "exitCode", "signal", "execID", "container", "driver"]);

/** Container events for containers with these labels, until `signal` aborts. */
export async function* containerEvents(api: DockerApi, opts: { labels?: Record<string, string>; since?: Date; signal?: AbortSignal } = {}): AsyncGenerator<ContainerEvent> {
  const filters = JSON.stringify({ type: ["container"], ...(opts.labels && Object.keys(opts.labels).length ? { label: labelList(opts.labels) } : {}) });
  const since = opts.since ? (opts.since.getTime() / 1000).toFixed(3) : undefined;
  const res = await api.open("GET", "/events", { query: { filters, since }, signal: opts.signal, timeoutMs: 0 });
  for await (const msg of jsonLines(res)) {
    const e = msg as any;
    if (e.Type && e.Type !== "container") continue;
    const attrs: Record<string, string> = e.Actor?.Attributes ?? {};
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(attrs)) if (!EVENT_ATTRIBUTES.has(k)) labels[k] = v;
    const nanos = e.timeNano ? Number(BigInt(e.timeNano) / 1_000_000n) : Number(e.time ?? 0) * 1000;
    yield {
      action: String(e.Action ?? e.status ?? "").split(":")[0]!.trim(),
      id: e.Actor?.ID ?? e.id ?? "",
      name: attrs.name ?? null,
      image: attrs.image ?? e.from ?? null,
      labels,
      exitCode: attrs.exitCode !== undefined ? Number(attrs.exitCode) : null,
      time: new Date(nanos).toISOString(),
    };
  }
}
