/**
 * The Docker Engine API over its unix socket: requests, the negotiated API
 * version (the daemon's own, capped at the newest one this client was written
 * against), errors in dockerd's own words, and reading its answers (whole,
 * streamed, newline-delimited JSON). The concerns (containers, images, logs,
 * stats, events, exec) are the files beside this one; drivers/docker.ts puts
 * them together as one client.
 */
import { type IncomingMessage, request } from "node:http";
import type { Duplex, Readable } from "node:stream";

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

export interface DockerInfoSummary {
  serverVersion: string;
  apiVersion: string;
  storageDriver: string;
  cgroupVersion: string;
  cpus: number;
  memoryBytes: number;
  containersRunning: number;
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface CallOptions {
  query?: Query;
  body?: unknown;
  /** A body streamed as-is (an image tarball to load), in place of a JSON `body`. */
  stream?: Readable;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Socket idle timeout; 0 = none (streams). */
  timeoutMs?: number;
}

export class DockerApi {
  readonly socketPath: string;
  /** Default socket idle timeout of a request. */
  readonly timeoutMs: number;
  private version: Promise<string> | null = null;

  constructor(socketPath: string, timeoutMs: number) {
    this.socketPath = socketPath;
    this.timeoutMs = timeoutMs;
  }

  /** The API version spoken: the daemon's, capped at MAX_API_VERSION. */
  apiVersion(): Promise<string> {
    this.version ??= (async () => {
      const server = (await this.serverVersion()).apiVersion ?? "1.41";
      return compareVersions(server, MAX_API_VERSION) < 0 ? server : MAX_API_VERSION;
    })().catch((err) => {
      this.version = null;
      throw err;
    });
    return this.version;
  }

  /** dockerd's release and newest API version, from a path every version answers. */
  async serverVersion(timeoutMs = 5_000): Promise<{ version: string | null; apiVersion: string | null }> {
    const res = await this.raw("GET", "/version", { timeoutMs });
    const text = await readText(res);
    if (res.statusCode !== 200) throw new DockerError(res.statusCode ?? 0, `docker /version answered HTTP ${res.statusCode}`);
    const v = JSON.parse(text) as { Version?: string; ApiVersion?: string };
    return { version: v.Version ?? null, apiVersion: v.ApiVersion ?? null };
  }

  /** A versioned path with its query string. */
  private async path(path: string, query?: Query): Promise<string> {
    const version = await this.apiVersion();
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) qs.set(k, String(v));
    const q = qs.toString();
    return `/v${version}${path}${q ? `?${q}` : ""}`;
  }

  /** A request whose whole answer is read; any status comes back. */
  async call(method: string, path: string, opts: CallOptions = {}): Promise<{ status: number; text: string; json: unknown }> {
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

  async json(method: string, path: string, query?: Query): Promise<unknown> {
    const res = await this.call(method, path, { query });
    if (res.status !== 200) throw apiError(`${method} ${path}`, res.status, res.text);
    return res.json;
  }

  /** A streaming request: resolves with the response once its status is 2xx, throws DockerError otherwise. */
  async open(method: string, path: string, opts: CallOptions = {}): Promise<IncomingMessage> {
    const res = await this.raw(method, await this.path(path, opts.query), opts);
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    const text = await readText(res);
    throw apiError(`${method} ${path}`, status, text);
  }

  raw(method: string, path: string, opts: CallOptions = {}): Promise<IncomingMessage> {
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
      req.on("error", (err: NodeJS.ErrnoException) => reject(this.unreachable(err)));
      if (opts.stream) {
        opts.stream.on("error", (err) => req.destroy(err));
        opts.stream.pipe(req);
        return;
      }
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /**
   * A request dockerd answers by handing over the connection (an exec's
   * stdin, stdout and stderr): resolves with the raw connection once it
   * answered 101, throws DockerError with its message otherwise.
   */
  async upgrade(method: string, path: string, body: unknown): Promise<Duplex> {
    const full = await this.path(path);
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const headers = { "content-type": "application/json", "content-length": Buffer.byteLength(payload), connection: "Upgrade", upgrade: "tcp" };
      const req = request({ socketPath: this.socketPath, method, path: full, headers });
      req.on("upgrade", (_res, socket, head) => {
        if (head.length) socket.unshift(head);
        resolve(socket);
      });
      req.on("response", (res) => {
        void readText(res).then((text) => reject(apiError(`${method} ${path}`, res.statusCode ?? 0, text)), reject);
      });
      req.on("error", (err: NodeJS.ErrnoException) => reject(this.unreachable(err)));
      req.end(payload);
    });
  }

  /** A request that did not reach dockerd, said in terms of what to do about it. */
  private unreachable(err: NodeJS.ErrnoException): DockerError {
    if (err instanceof DockerError) return err;
    const why = err.code === "ENOENT" ? "no socket there (is dockerd running?)" : err.code === "EACCES" ? "permission denied (root or the docker group needed)" : err.code === "ECONNREFUSED" ? "connection refused (is dockerd running?)" : err.message;
    return new DockerError(0, `docker at ${this.socketPath}: ${why}`);
  }

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
}

export function enc(id: string): string {
  return encodeURIComponent(id);
}

export function short(id: string): string {
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

/** Docker label filters; an empty value matches any container that has the label. */
export function labelList(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => (v === "" ? k : `${k}=${v}`));
}

export function daemonMessage(text: string): string {
  try {
    const m = (JSON.parse(text) as { message?: string }).message;
    if (m) return m;
  } catch {
    /* plain text */
  }
  return text.trim().slice(0, 500) || "no message";
}

export function apiError(what: string, status: number, text: string): DockerError {
  const detail = daemonMessage(text);
  return new DockerError(status, `docker ${what}: ${detail} (HTTP ${status})`, detail);
}

export async function readText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** A stream cut by its signal (or a closed socket) just ends. */
export async function* chunks(res: IncomingMessage): AsyncGenerator<Buffer> {
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
export async function* jsonLines(res: IncomingMessage): AsyncGenerator<unknown> {
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
