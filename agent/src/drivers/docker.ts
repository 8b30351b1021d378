/**
 * The Docker Engine API over its unix socket, for container apps: pull,
 * create (limits, env, labels, restart policy, a port published on
 * 127.0.0.1), start, stop, update, remove, logs, stats, list and events.
 *
 * Env values are secrets: they go into the create request and nowhere else
 * (not into errors, not into logs). The API version is negotiated once: the
 * daemon's own, capped at the newest one this client was written against.
 */
import { request, type IncomingMessage } from "node:http";

/** Newest Engine API version this client knows; older daemons are spoken to in their own version. */
const MAX_API_VERSION = "1.45";

export class DockerError extends Error {
  /** HTTP status from dockerd; 0 when the socket did not answer. */
  readonly status: number;
  /** dockerd's own message, when it gave one. */
  readonly detail: string;

  constructor(status: number, message: string, detail = "") {
    super(message);
    this.name = "DockerError";
    this.status = status;
    this.detail = detail;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof DockerError && err.status === 404;
}

export interface RegistryAuth {
  username: string;
  password: string;
  /** Registry host, e.g. `ghcr.io` or `127.0.0.1:5000`. */
  serveraddress: string;
}

export interface ContainerSpec {
  name: string;
  image: string;
  env: Record<string, string>;
  /** A string runs under `/bin/sh -c`; an array is the exact argv; null keeps the image's CMD. */
  cmd: string | string[] | null;
  labels: Record<string, string>;
  /** Published as `<port>/tcp` on 127.0.0.1, on a host port Docker picks. */
  internalPort: number;
  /** Cores (0.5 = half a core); 0 or less means no limit. */
  cpuLimit: number;
  /** MiB of memory, swap included (Memory = MemorySwap); 0 or less means no limit. */
  memoryLimitMb: number;
  restartPolicy?: "unless-stopped" | "always" | "on-failure" | "no";
  /** Run Docker's init as PID 1 so that `stop` is prompt and zombies are reaped (default true). */
  init?: boolean;
  /** Rotate the json-file log at this size (default "10m", 3 files); null leaves the daemon's log driver. */
  logMaxSize?: string | null;
}

export interface ContainerInfo {
  id: string;
  name: string;
  image: string;
  state: {
    status: string;
    running: boolean;
    exitCode: number;
    oomKilled: boolean;
    error: string;
    startedAt: string | null;
    finishedAt: string | null;
    restartCount: number;
  };
  /** The host port published for the first exposed port (127.0.0.1); null when not running. */
  hostPort: number | null;
  labels: Record<string, string>;
  /** Bytes; 0 = no limit. */
  memory: number;
  memorySwap: number;
  nanoCpus: number;
}

export interface ContainerSummary {
  id: string;
  names: string[];
  image: string;
  labels: Record<string, string>;
  /** created, running, paused, restarting, removing, exited, dead */
  state: string;
  /** Human text such as "Up 2 minutes". */
  status: string;
  created: string;
}

export interface LogLine {
  /** ISO 8601, millisecond precision (Docker's own has nanoseconds). */
  time: string;
  stream: "stdout" | "stderr";
  text: string;
}

export interface LogOptions {
  /** Last N lines (before `since` filtering by Docker); default all. */
  tail?: number;
  /** Only lines at or after this time (inclusive): a Date, an ISO string or Unix seconds. */
  since?: Date | string | number;
  follow?: boolean;
  signal?: AbortSignal;
}

export interface ContainerStats {
  cpu_percent: number;
  memory_mb: number;
  memory_max_mb: number;
  net_rx_bytes: number;
  net_tx_bytes: number;
}

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

export interface DockerInfoSummary {
  serverVersion: string;
  apiVersion: string;
  storageDriver: string;
  cgroupVersion: string;
  cpus: number;
  memoryBytes: number;
  containersRunning: number;
}

export interface PullProgress {
  status: string;
  id?: string;
}

type Query = Record<string, string | number | boolean | undefined>;

interface CallOptions {
  query?: Query;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Socket idle timeout; 0 = none (streams). */
  timeoutMs?: number;
}

/** Event attributes that are not container labels. */
const EVENT_ATTRIBUTES = new Set(["name", "image", "exitCode", "signal", "execID", "container", "driver"]);

export class DockerEngine {
  readonly socketPath: string;
  private readonly timeoutMs: number;
  private version: Promise<string> | null = null;

  constructor(socketPath = "/var/run/docker.sock", opts: { timeoutMs?: number } = {}) {
    this.socketPath = socketPath;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  // ------------------------------------------------------------ daemon

  async ping(): Promise<void> {
    const res = await this.raw("GET", "/_ping", { timeoutMs: 5_000 });
    const text = await readText(res);
    if (res.statusCode !== 200) throw new DockerError(res.statusCode ?? 0, `docker ping answered HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
  }

  async info(): Promise<DockerInfoSummary> {
    const info = (await this.json("GET", "/info")) as any;
    return {
      serverVersion: String(info.ServerVersion ?? ""),
      apiVersion: await this.apiVersion(),
      storageDriver: String(info.Driver ?? ""),
      cgroupVersion: String(info.CgroupVersion ?? ""),
      cpus: Number(info.NCPU ?? 0),
      memoryBytes: Number(info.MemTotal ?? 0),
      containersRunning: Number(info.ContainersRunning ?? 0),
    };
  }

  /** The API version spoken: the daemon's, capped at MAX_API_VERSION. */
  apiVersion(): Promise<string> {
    this.version ??= (async () => {
      const res = await this.raw("GET", "/version", { timeoutMs: 5_000 });
      const text = await readText(res);
      if (res.statusCode !== 200) throw new DockerError(res.statusCode ?? 0, `docker /version answered HTTP ${res.statusCode}`);
      const v = JSON.parse(text) as { ApiVersion?: string };
      const server = v.ApiVersion ?? "1.41";
      return compareVersions(server, MAX_API_VERSION) < 0 ? server : MAX_API_VERSION;
    })().catch((err) => {
      this.version = null;
      throw err;
    });
    return this.version;
  }

  // ------------------------------------------------------------ images

  /**
   * Pulls an image (`name`, `name:tag` or `name@digest`; no tag means `latest`).
   * Docker reports failures inside its progress stream; they are thrown as
   * DockerError with a readable message.
   */
  async pull(image: string, auth?: RegistryAuth | null, opts: { signal?: AbortSignal; onProgress?: (p: PullProgress) => void } = {}): Promise<void> {
    const { repo, ref } = splitImage(image);
    const headers: Record<string, string> = {};
    if (auth) headers["x-registry-auth"] = encodeAuth(auth);
    let res: IncomingMessage;
    try {
      res = await this.open("POST", "/images/create", { query: { fromImage: repo, tag: ref }, headers, signal: opts.signal, timeoutMs: 300_000 });
    } catch (err) {
      if (err instanceof DockerError && err.status !== 0) throw pullError(image, err.status, err.detail || err.message);
      throw err;
    }
    let failure: string | null = null;
    for await (const msg of jsonLines(res)) {
      const m = msg as { status?: string; id?: string; error?: string; errorDetail?: { message?: string } };
      if (m.error || m.errorDetail) {
        failure = m.errorDetail?.message ?? m.error ?? "unknown error";
      } else if (m.status && opts.onProgress) {
        opts.onProgress({ status: m.status, ...(m.id ? { id: m.id } : {}) });
      }
    }
    if (failure) throw pullError(image, 0, failure);
    if (opts.signal?.aborted) throw new DockerError(0, `pull of ${image} cancelled`);
  }

  async imageExists(image: string): Promise<boolean> {
    const res = await this.call("GET", `/images/${encImage(image)}/json`);
    if (res.status === 404) return false;
    if (res.status !== 200) throw apiError("inspect image", res.status, res.text);
    return true;
  }

  /** Removes a local image (tag); false when there was none. `force` also untags an image in use by a container. */
  async removeImage(image: string, opts: { force?: boolean } = {}): Promise<boolean> {
    const res = await this.call("DELETE", `/images/${encImage(image)}`, { query: { force: opts.force ?? false }, timeoutMs: 60_000 });
    if (res.status === 404) return false;
    if (res.status !== 200) throw apiError(`remove image ${image}`, res.status, res.text);
    return true;
  }

  // ------------------------------------------------------------ containers

  /** Creates the container and returns its id. The image must be there (`pull` first). */
  async create(spec: ContainerSpec): Promise<string> {
    for (const key of Object.keys(spec.env)) {
      if (!key || key.includes("=") || key.includes("\0")) throw new DockerError(400, `invalid env var name ${JSON.stringify(key.slice(0, 100))}`);
    }
    const port = `${spec.internalPort}/tcp`;
    const memory = spec.memoryLimitMb > 0 ? Math.round(spec.memoryLimitMb * 1024 * 1024) : 0;
    const logMaxSize = spec.logMaxSize === undefined ? "10m" : spec.logMaxSize;
    const body = {
      Image: spec.image,
      Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      ...(spec.cmd === null ? {} : { Cmd: typeof spec.cmd === "string" ? ["/bin/sh", "-c", spec.cmd] : spec.cmd }),
      Labels: spec.labels,
      ExposedPorts: { [port]: {} },
      HostConfig: {
        PortBindings: { [port]: [{ HostIp: "127.0.0.1", HostPort: "" }] },
        NanoCpus: spec.cpuLimit > 0 ? Math.round(spec.cpuLimit * 1e9) : 0,
        Memory: memory,
        MemorySwap: memory > 0 ? memory : 0,
        RestartPolicy: { Name: spec.restartPolicy ?? "unless-stopped" },
        Init: spec.init ?? true,
        ...(logMaxSize ? { LogConfig: { Type: "json-file", Config: { "max-size": logMaxSize, "max-file": "3" } } } : {}),
      },
    };
    const res = await this.call("POST", "/containers/create", { query: { name: spec.name }, body });
    if (res.status !== 201) throw apiError(`create container ${spec.name}`, res.status, redact(res.text, Object.values(spec.env)));
    return (res.json as { Id: string }).Id;
  }

  async start(id: string): Promise<void> {
    const res = await this.call("POST", `/containers/${enc(id)}/start`);
    if (res.status !== 204 && res.status !== 304) throw apiError(`start ${short(id)}`, res.status, res.text);
  }

  /** SIGTERM, then SIGKILL after `timeoutSeconds`. A stopped container is fine. */
  async stop(id: string, timeoutSeconds = 10): Promise<void> {
    const res = await this.call("POST", `/containers/${enc(id)}/stop`, { query: { t: timeoutSeconds }, timeoutMs: (timeoutSeconds + 30) * 1000 });
    if (res.status !== 204 && res.status !== 304) throw apiError(`stop ${short(id)}`, res.status, res.text);
  }

  async restart(id: string, timeoutSeconds = 10): Promise<void> {
    const res = await this.call("POST", `/containers/${enc(id)}/restart`, { query: { t: timeoutSeconds }, timeoutMs: (timeoutSeconds + 30) * 1000 });
    if (res.status !== 204) throw apiError(`restart ${short(id)}`, res.status, res.text);
  }

  /** Removes the container (and its anonymous volumes). False when it was already gone. */
  async remove(id: string, opts: { force?: boolean } = {}): Promise<boolean> {
    const res = await this.call("DELETE", `/containers/${enc(id)}`, { query: { force: opts.force ?? false, v: true }, timeoutMs: 60_000 });
    if (res.status === 404) return false;
    if (res.status === 409 && /already in progress/i.test(res.text)) return true;
    if (res.status !== 204) throw apiError(`remove ${short(id)}`, res.status, res.text);
    return true;
  }

  /** The container, or null when there is none by that id or name. */
  async inspect(id: string): Promise<ContainerInfo | null> {
    const res = await this.call("GET", `/containers/${enc(id)}/json`);
    if (res.status === 404) return null;
    if (res.status !== 200) throw apiError(`inspect ${short(id)}`, res.status, res.text);
    const c = res.json as any;
    const hc = c.HostConfig ?? {};
    const st = c.State ?? {};
    return {
      id: c.Id,
      name: String(c.Name ?? "").replace(/^\//, ""),
      image: c.Config?.Image ?? "",
      state: {
        status: st.Status ?? "unknown",
        running: Boolean(st.Running),
        exitCode: Number(st.ExitCode ?? 0),
        oomKilled: Boolean(st.OOMKilled),
        error: st.Error ?? "",
        startedAt: zeroTime(st.StartedAt),
        finishedAt: zeroTime(st.FinishedAt),
        restartCount: Number(c.RestartCount ?? 0),
      },
      hostPort: publishedPort(c.NetworkSettings?.Ports),
      labels: c.Config?.Labels ?? {},
      memory: Number(hc.Memory ?? 0),
      memorySwap: Number(hc.MemorySwap ?? 0),
      nanoCpus: Number(hc.NanoCpus ?? 0),
    };
  }

  /** New CPU and memory limits on the live container (no restart). A limit of 0 or less leaves that one as it is (Docker cannot lift a limit live). */
  async update(id: string, limits: { cpuLimit: number; memoryLimitMb: number }): Promise<void> {
    const body: Record<string, number> = {};
    if (limits.cpuLimit > 0) body.NanoCpus = Math.round(limits.cpuLimit * 1e9);
    if (limits.memoryLimitMb > 0) body.Memory = body.MemorySwap = Math.round(limits.memoryLimitMb * 1024 * 1024);
    const res = await this.call("POST", `/containers/${enc(id)}/update`, { body });
    if (res.status !== 200) throw apiError(`update ${short(id)}`, res.status, res.text);
  }

  /** Containers (running or not) carrying all these labels. */
  async list(labelFilter: Record<string, string> = {}): Promise<ContainerSummary[]> {
    const filters = JSON.stringify({ label: labelList(labelFilter) });
    const rows = (await this.json("GET", "/containers/json", { all: 1, filters })) as any[];
    return rows.map((c) => ({
      id: c.Id,
      names: (c.Names ?? []).map((n: string) => n.replace(/^\//, "")),
      image: c.Image ?? "",
      labels: c.Labels ?? {},
      state: c.State ?? "",
      status: c.Status ?? "",
      created: new Date(Number(c.Created ?? 0) * 1000).toISOString(),
    }));
  }

  // ------------------------------------------------------------ logs, stats, events

  /** Log lines with their time and stream. With `follow`, an async iterable that ends when the container stops or `signal` aborts. */
  logs(id: string, opts: LogOptions & { follow: true }): AsyncIterable<LogLine>;
  logs(id: string, opts?: LogOptions & { follow?: false }): Promise<LogLine[]>;
  logs(id: string, opts: LogOptions = {}): Promise<LogLine[]> | AsyncIterable<LogLine> {
    const query: Query = { stdout: 1, stderr: 1, timestamps: 1, follow: opts.follow ? 1 : undefined, tail: opts.tail ?? "all", since: sinceParam(opts.since) };
    const lines = async function* (engine: DockerEngine): AsyncGenerator<LogLine> {
      const res = await engine.open("GET", `/containers/${enc(id)}/logs`, { query, signal: opts.signal, timeoutMs: opts.follow ? 0 : engine.timeoutMs });
      yield* demuxLines(res);
    };
    if (opts.follow) return lines(this);
    return (async () => {
      const out: LogLine[] = [];
      for await (const line of lines(this)) out.push(line);
      return out;
    })();
  }

  /** One sample, computed as `docker stats` does (takes about a second: Docker samples twice). */
  async stats(id: string): Promise<ContainerStats> {
    const s = (await this.json("GET", `/containers/${enc(id)}/stats`, { stream: "false" })) as any;
    return computeStats(s);
  }

  /** Container events for containers with these labels, until `signal` aborts. */
  async *events(opts: { labels?: Record<string, string>; since?: Date; signal?: AbortSignal } = {}): AsyncGenerator<ContainerEvent> {
    const filters = JSON.stringify({ type: ["container"], ...(opts.labels && Object.keys(opts.labels).length ? { label: labelList(opts.labels) } : {}) });
    const since = opts.since ? (opts.since.getTime() / 1000).toFixed(3) : undefined;
    const res = await this.open("GET", "/events", { query: { filters, since }, signal: opts.signal, timeoutMs: 0 });
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

  // ------------------------------------------------------------ transport

  private async path(path: string, query?: Query): Promise<string> {
    const version = await this.apiVersion();
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) qs.set(k, String(v));
    const q = qs.toString();
    return `/v${version}${path}${q ? `?${q}` : ""}`;
  }

  /** A request whose whole answer is read; any status comes back. */
  private async call(method: string, path: string, opts: CallOptions = {}): Promise<{ status: number; text: string; json: unknown }> {
    const res = await this.raw(method, await this.path(path, opts.query), opts);
    const text = await readText(res);
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      /* plain text */
    }
    return { status: res.statusCode ?? 0, text, json };
  }

  private async json(method: string, path: string, query?: Query): Promise<unknown> {
    const res = await this.call(method, path, { query });
    if (res.status !== 200) throw apiError(`${method} ${path}`, res.status, res.text);
    return res.json;
  }

  /** A streaming request: resolves with the response once its status is 2xx, throws DockerError otherwise. */
  private async open(method: string, path: string, opts: CallOptions = {}): Promise<IncomingMessage> {
    const res = await this.raw(method, await this.path(path, opts.query), opts);
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    const text = await readText(res);
    throw apiError(`${method} ${path}`, status, text);
  }

  private raw(method: string, path: string, opts: CallOptions = {}): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      if (opts.signal?.aborted) return reject(new DockerError(0, `docker ${method} ${stripQuery(path)} cancelled`));
      const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
      const headers: Record<string, string | number> = { ...opts.headers };
      if (payload !== undefined) {
        headers["content-type"] = "application/json";
        headers["content-length"] = Buffer.byteLength(payload);
      }
      const timeout = opts.timeoutMs ?? this.timeoutMs;
      const req = request({ socketPath: this.socketPath, method, path, headers, ...(timeout > 0 ? { timeout } : {}) }, (res) => {
        // A stream cut by the signal ends quietly: readers see the end of it.
        opts.signal?.addEventListener("abort", () => res.destroy(), { once: true });
        resolve(res);
      });
      const onAbort = () => req.destroy(new DockerError(0, `docker ${method} ${stripQuery(path)} cancelled`));
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      req.on("close", () => opts.signal?.removeEventListener("abort", onAbort));
      req.on("timeout", () => req.destroy(new DockerError(0, `docker ${method} ${stripQuery(path)} timed out`)));
      req.on("error", (err: NodeJS.ErrnoException) => {
        if (err instanceof DockerError) return reject(err);
        const why = err.code === "ENOENT" ? "no socket there (is dockerd running?)" : err.code === "EACCES" ? "permission denied (root or the docker group needed)" : err.code === "ECONNREFUSED" ? "connection refused (is dockerd running?)" : err.message;
        reject(new DockerError(0, `docker at ${this.socketPath}: ${why}`));
      });
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }
}

// ------------------------------------------------------------------ helpers

function enc(id: string): string {
  return encodeURIComponent(id);
}

/** Image references keep their slashes in the path (dockerd matches `/images/{name:.*}`). */
function encImage(image: string): string {
  return image.split("/").map(encodeURIComponent).join("/");
}

function short(id: string): string {
  return /^[0-9a-f]{64}$/.test(id) ? id.slice(0, 12) : id;
}

function stripQuery(path: string): string {
  return path.split("?")[0]!;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

function zeroTime(t: unknown): string | null {
  return typeof t === "string" && t && !t.startsWith("0001-") ? t : null;
}

/** Docker label filters; an empty value matches any container that has the label. */
function labelList(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => (v === "" ? k : `${k}=${v}`));
}

function publishedPort(ports: Record<string, { HostIp: string; HostPort: string }[] | null> | null | undefined): number | null {
  if (!ports) return null;
  for (const bindings of Object.values(ports)) {
    if (!bindings?.length) continue;
    const b = bindings.find((x) => x.HostIp === "127.0.0.1") ?? bindings[0]!;
    const port = Number(b.HostPort);
    if (port > 0) return port;
  }
  return null;
}

function sinceParam(since: LogOptions["since"]): string | undefined {
  if (since === undefined) return undefined;
  const ms = since instanceof Date ? since.getTime() : typeof since === "number" ? since * 1000 : Date.parse(since);
  if (!Number.isFinite(ms)) throw new DockerError(400, `invalid since: ${String(since)}`);
  return (ms / 1000).toFixed(3);
}

/** `name[:tag]` or `name@digest` → repository and tag/digest (default `latest`, never "all tags"). */
export function splitImage(image: string): { repo: string; ref: string } {
  const at = image.indexOf("@");
  if (at >= 0) return { repo: image.slice(0, at), ref: image.slice(at + 1) };
  const slash = image.lastIndexOf("/");
  const colon = image.lastIndexOf(":");
  if (colon > slash) return { repo: image.slice(0, colon), ref: image.slice(colon + 1) };
  return { repo: image, ref: "latest" };
}

/** X-Registry-Auth: base64url of the JSON, padding kept (older daemons need it). */
function encodeAuth(auth: RegistryAuth): string {
  const json = JSON.stringify({ username: auth.username, password: auth.password, serveraddress: auth.serveraddress });
  return Buffer.from(json, "utf8").toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
}

function daemonMessage(text: string): string {
  try {
    const m = (JSON.parse(text) as { message?: string }).message;
    if (m) return m;
  } catch {
    /* plain text */
  }
  return text.trim().slice(0, 500) || "no message";
}

function apiError(what: string, status: number, text: string): DockerError {
  const detail = daemonMessage(text);
  return new DockerError(status, `docker ${what}: ${detail} (HTTP ${status})`, detail);
}

function pullError(image: string, status: number, message: string): DockerError {
  const m = daemonMessage(message);
  if (/manifest unknown|not found|does not exist|no such host/i.test(m) && !/unauthorized|denied/i.test(m)) {
    return new DockerError(status || 404, /no such host/i.test(m) ? `registry of image ${image} not found: ${m}` : `image ${image} not found (${m})`);
  }
  if (/unauthorized|denied|authentication required|no basic auth credentials/i.test(m)) {
    return new DockerError(status || 401, `pull of ${image} refused by the registry: credentials missing or wrong (${m})`);
  }
  return new DockerError(status || 500, `pull of ${image} failed: ${m}`);
}

/** Replaces any env value (3 characters or more) found in a daemon message. */
function redact(text: string, values: string[]): string {
  let out = text;
  for (const v of values.filter((x) => x.length >= 3).sort((a, b) => b.length - a.length)) out = out.split(v).join("[redacted]");
  return out;
}

async function readText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** A stream cut by its signal (or a closed socket) just ends. */
async function* chunks(res: IncomingMessage): AsyncGenerator<Buffer> {
  try {
    for await (const c of res) yield c as Buffer;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ERR_STREAM_PREMATURE_CLOSE" || (err as Error).name === "AbortError" || res.destroyed) return;
    throw err;
  } finally {
    res.destroy();
  }
}

/** Newline-delimited JSON objects (pull progress, events). */
async function* jsonLines(res: IncomingMessage): AsyncGenerator<unknown> {
  let buf = "";
  const decoder = new TextDecoder();
  const parse = function* (line: string) {
    const t = line.trim();
    if (!t) return;
    try {
      yield JSON.parse(t) as unknown;
    } catch {
      /* not JSON: skip */
    }
  };
  for await (const c of chunks(res)) {
    buf += decoder.decode(c, { stream: true });
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      yield* parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  }
  yield* parse(buf + decoder.decode());
}

/**
 * Docker's log stream: frames of an 8-byte header (stream byte, 3 zero bytes,
 * big-endian length) and a payload; lines may span frames and chunks. A
 * container with a TTY sends raw bytes instead (all stdout).
 */
async function* demuxLines(res: IncomingMessage): AsyncGenerator<LogLine> {
  let buf: Buffer = Buffer.alloc(0);
  let raw: boolean | null = null;
  const pending: Record<"stdout" | "stderr", Buffer> = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };

  function* take(stream: "stdout" | "stderr", data: Buffer, final: boolean): Generator<LogLine> {
    let b: Buffer = pending[stream].length ? Buffer.concat([pending[stream], data]) : data;
    for (let nl = b.indexOf(0x0a); nl >= 0; nl = b.indexOf(0x0a)) {
      yield parseLogLine(stream, b.subarray(0, nl).toString("utf8"));
      b = b.subarray(nl + 1);
    }
    if (final && b.length) {
      yield parseLogLine(stream, b.toString("utf8"));
      b = Buffer.alloc(0);
    }
    pending[stream] = Buffer.from(b);
  }

  for await (const c of chunks(res)) {
    buf = buf.length ? Buffer.concat([buf, c]) : c;
    if (raw === null && buf.length >= 4) raw = !(buf[0]! <= 2 && buf[1] === 0 && buf[2] === 0 && buf[3] === 0);
    if (raw === null) continue;
    if (raw) {
      yield* take("stdout", buf, false);
      buf = Buffer.alloc(0);
      continue;
    }
    while (buf.length >= 8) {
      const size = buf.readUInt32BE(4);
      if (buf.length < 8 + size) break;
      const stream = buf[0] === 2 ? "stderr" : "stdout";
      yield* take(stream, buf.subarray(8, 8 + size), false);
      buf = buf.subarray(8 + size);
    }
  }
  if (raw) yield* take("stdout", buf, true);
  yield* take("stdout", Buffer.alloc(0), true);
  yield* take("stderr", Buffer.alloc(0), true);
}

function parseLogLine(stream: "stdout" | "stderr", line: string): LogLine {
  const text = line.endsWith("\r") ? line.slice(0, -1) : line;
  const sp = text.indexOf(" ");
  const stamp = sp > 0 ? text.slice(0, sp) : text;
  const ms = Date.parse(stamp);
  if (sp > 0 && /^\d{4}-\d\d-\d\dT/.test(stamp) && Number.isFinite(ms)) return { time: new Date(ms).toISOString(), stream, text: text.slice(sp + 1) };
  if (/^\d{4}-\d\d-\d\dT/.test(stamp) && Number.isFinite(ms)) return { time: new Date(ms).toISOString(), stream, text: "" };
  return { time: new Date().toISOString(), stream, text };
}

function computeStats(s: any): ContainerStats {
  const cpu = s.cpu_stats ?? {};
  const pre = s.precpu_stats ?? {};
  const cpuDelta = Number(cpu.cpu_usage?.total_usage ?? 0) - Number(pre.cpu_usage?.total_usage ?? 0);
  const systemDelta = Number(cpu.system_cpu_usage ?? 0) - Number(pre.system_cpu_usage ?? 0);
  const online = Number(cpu.online_cpus ?? 0) || (cpu.cpu_usage?.percpu_usage?.length ?? 0) || 1;
  const cpuPercent = systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * online * 100 : 0;

  const mem = s.memory_stats ?? {};
  const usage = Number(mem.usage ?? 0);
  const st = mem.stats ?? {};
  // As the docker CLI: page cache does not count (cgroup v1: total_inactive_file, v2: inactive_file).
  const inactive = st.total_inactive_file !== undefined ? Number(st.total_inactive_file) : Number(st.inactive_file ?? 0);
  const used = inactive < usage ? usage - inactive : usage;

  let rx = 0;
  let tx = 0;
  for (const n of Object.values((s.networks ?? {}) as Record<string, { rx_bytes?: number; tx_bytes?: number }>)) {
    rx += Number(n.rx_bytes ?? 0);
    tx += Number(n.tx_bytes ?? 0);
  }
  const mb = (b: number) => Math.round((b / 1024 / 1024) * 100) / 100;
  return { cpu_percent: Math.round(cpuPercent * 100) / 100, memory_mb: mb(used), memory_max_mb: mb(Number(mem.limit ?? 0)), net_rx_bytes: rx, net_tx_bytes: tx };
}
