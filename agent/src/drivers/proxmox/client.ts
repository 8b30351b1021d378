/**
 * The Proxmox VE REST API (`/api2/json`) over HTTPS: API-token auth, form-encoded
 * bodies, Proxmox's errors (the message is the HTTP reason phrase), certificate
 * pinning, and retries of transient failures within a deadline.
 *
 * Pinning: a Proxmox node serves a certificate from its own cluster CA, which no
 * system trust store knows. With `fingerprint` set, every new connection's TLS
 * handshake completes first, the peer certificate's SHA-256 is compared with the
 * pin, and only on a match is the socket handed to the request: no byte of a
 * request (so never the token) is written to a server that fails the check.
 * Without `fingerprint`, the system CAs verify the node as for any HTTPS site
 * (a node with an ACME certificate).
 *
 * Connections are kept alive between calls (a job makes dozens in a row; a new TLS
 * handshake for each cost more than the calls). The pin is a property of a connection,
 * so it is checked when each one is made, as above. A connection idle for IDLE_MS is
 * closed by us, before pveproxy's own idle timeout, and one the server closed anyway
 * (a request racing its close) fails before any answer: an idempotent call is then sent
 * again at once on a new connection. A call that is not idempotent (a power action, a
 * guest exec) always gets a connection of its own and is never sent on a kept one, so a
 * close race can never leave in doubt whether the node acted on it.
 *
 * No maintained JavaScript client is used: the driver needs pinning before the
 * token is sent, UPID task following with log streaming, and Proxmox-specific
 * retry rules; on top of those a client would add only path building.
 */
import { Agent, request, type RequestOptions } from "node:https";
import type { ClientRequestArgs } from "node:http";
import type { Duplex } from "node:stream";
import { isIP } from "node:net";
import { connect, type TLSSocket } from "node:tls";
import { sleep } from "../../backoff.ts";

export interface ProxmoxConnection {
  /** e.g. https://pve.example:8006 */
  url: string;
  /** user@realm!name */
  tokenId: string;
  tokenSecret: string;
  /** SHA-256 of the node's certificate (colon-separated hex, any case); null: verify with the system CAs. */
  fingerprint?: string | null;
}

export interface ClientOptions {
  /** One HTTP exchange, from connect to the last byte. */
  requestTimeoutMs?: number;
  /** How long one call keeps retrying transient failures when the caller names no deadline. */
  retryWindowMs?: number;
  /** First and longest wait between retries (exponential with jitter in between). */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

export type Params = Record<string, string | number | boolean | readonly string[] | undefined>;

export interface CallOptions {
  /** Epoch ms after which no retry starts; the last failure is thrown. */
  deadline?: number;
  signal?: AbortSignal;
  /**
   * The call may be sent twice without harm, so a connection cut after the request
   * went out may be retried. GET is always idempotent; POST/PUT/DELETE only when the caller says so.
   */
  idempotent?: boolean;
}

/** A failed API call: `status` 0 when the node did not answer (then `code` says why). */
export class ProxmoxError extends Error {
  readonly status: number;
  /** Connection-level error code (ECONNREFUSED, ETIMEDOUT, CERT_FINGERPRINT_MISMATCH, ...). */
  readonly code: string;
  /** Per-parameter errors of a 400 `Parameter verification failed.`. */
  readonly errors?: Record<string, string>;
  readonly transient: boolean;
  /** The call went out on a kept connection the server had closed, and nothing was answered. */
  readonly staleConnection: boolean;

  constructor(message: string, opts: { status?: number; code?: string; errors?: Record<string, string>; transient?: boolean; staleConnection?: boolean } = {}) {
    super(message);
    this.name = "ProxmoxError";
    this.status = opts.status ?? 0;
    this.code = opts.code ?? "";
    this.errors = opts.errors;
    this.transient = opts.transient ?? false;
    this.staleConnection = opts.staleConnection ?? false;
  }
}

/** Normalises `AA:bb:...` or `aabb...` to upper-case colon-separated hex, as Node and Proxmox print it. */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.replace(/^sha256[:=]?/i, "").replace(/[:\s]/g, "").toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) throw new Error("the Proxmox fingerprint must be a SHA-256: 64 hex digits, colons allowed");
  return hex.match(/../g)!.join(":");
}

/** Errors before the request could have reached pveproxy: any method may be sent again. */
const NOT_SENT = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "ENOTFOUND", "EHOSTDOWN", "ECONNABORTED"]);
/** Errors after the request may have been read: only idempotent calls are retried. */
const CUT = new Set(["ECONNRESET", "EPIPE", "ETIMEDOUT", "UND_ERR_SOCKET", "ESOCKETTIMEDOUT"]);
/** How a kept connection the server had closed fails a request sent on it (a timeout is not that). */
const STALE = new Set(["ECONNRESET", "EPIPE"]);
/**
 * 500s that go away by themselves: a config lock held by another task, or
 * pmxcfs/lock timeouts. Other 500s (no such VM, already exists, running) are answers.
 */
const TRANSIENT_500 = /VM is locked|can't lock file|got timeout|unable to (?:open|read) lock|cfs-lock|temporarily unavailable|try again later/i;
/** pveproxy's own statuses when it cannot reach the daemon or another node. */
const TRANSIENT_STATUS = new Set([502, 503, 504, 595, 596, 599]);

/** A kept connection idle this long is closed (pveproxy, like most servers, closes idle ones after a few seconds). */
const IDLE_MS = 2_000;
/** Connections kept to the node: a job's calls are mostly one at a time, a few run side by side. */
const MAX_SOCKETS = 8;

function agentOptions(keepAlive: boolean) {
  // No TLS session resumption: every connection does a full handshake, so the pin sees a certificate.
  return keepAlive ? { keepAlive, maxSockets: MAX_SOCKETS, maxFreeSockets: MAX_SOCKETS, timeout: IDLE_MS, scheduling: "lifo" as const, maxCachedSessions: 0 } : { keepAlive, maxCachedSessions: 0 };
}

/**
 * An https.Agent whose connections are checked against the pinned fingerprint
 * before the HTTP request gets the socket.
 */
class PinnedAgent extends Agent {
  private readonly pin: string;

  constructor(pin: string, keepAlive: boolean) {
    super(agentOptions(keepAlive));
    this.pin = pin;
  }

  override createConnection(options: ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const host = options.host ?? "localhost";
    const socket: TLSSocket = connect({
      host,
      port: Number(options.port),
      // SNI takes a name, not an address.
      servername: isIP(host) ? undefined : host,
      // The CA chain is not checked here; the pin below replaces it (see the file header).
      rejectUnauthorized: false,
    });
    const fail = (err: Error) => {
      socket.destroy();
      callback?.(err, socket);
    };
    socket.once("error", fail);
    socket.once("secureConnect", () => {
      socket.off("error", fail);
      const seen = socket.getPeerCertificate().fingerprint256 ?? "";
      if (seen.toUpperCase() !== this.pin) {
        const err = new ProxmoxError(`the Proxmox node's certificate has fingerprint ${seen || "(none)"}, not the pinned ${this.pin}: refusing to talk to it`, { code: "CERT_FINGERPRINT_MISMATCH" });
        socket.destroy();
        callback?.(err, socket);
        return;
      }
      callback?.(null, socket);
    });
    return undefined;
  }
}

/** Form encoding as pveproxy reads it: repeated keys for lists, booleans as 1/0. */
export function formEncode(params: Params): string {
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const item of v) form.append(k, String(item));
    else form.append(k, typeof v === "boolean" ? (v ? "1" : "0") : String(v));
  }
  // URLSearchParams writes spaces as '+', which pveproxy decodes too; %20 keeps values unambiguous.
  return form.toString().replace(/\+/g, "%20");
}

export class ProxmoxClient {
  readonly baseUrl: URL;
  readonly tokenId: string;
  private readonly authorization: string;
  /** Kept-alive connections, for idempotent calls. */
  private readonly agent: Agent;
  /** A new connection per call, for calls that must not be sent twice. */
  private readonly oneShot: Agent;
  private readonly requestTimeoutMs: number;
  private readonly retryWindowMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;

  constructor(conn: ProxmoxConnection, opts: ClientOptions = {}) {
    this.baseUrl = new URL(conn.url.replace(/\/+$/, ""));
    if (this.baseUrl.protocol !== "https:") throw new Error(`the Proxmox URL must be https://, got ${this.baseUrl.protocol}`);
    if (!/^[^@!\s=]+@[^!\s=]+![A-Za-z][A-Za-z0-9._-]*$/.test(conn.tokenId)) throw new Error("the Proxmox token id must look like user@realm!name");
    if (!conn.tokenSecret) throw new Error("the Proxmox token secret is empty (set BERTH_PROXMOX_TOKEN_SECRET)");
    this.tokenId = conn.tokenId;
    this.authorization = `PVEAPIToken=${conn.tokenId}=${conn.tokenSecret}`;
    const pin = conn.fingerprint ? normalizeFingerprint(conn.fingerprint) : null;
    const agent = (keepAlive: boolean) => (pin ? new PinnedAgent(pin, keepAlive) : new Agent(agentOptions(keepAlive)));
    this.agent = agent(true);
    this.oneShot = agent(false);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.retryWindowMs = opts.retryWindowMs ?? 120_000;
    this.retryBaseMs = opts.retryBaseMs ?? 250;
    this.retryMaxMs = opts.retryMaxMs ?? 5_000;
  }

  get<T>(path: string, params?: Params, opts?: CallOptions) {
    return this.call<T>("GET", path, params, opts);
  }
  post<T>(path: string, params?: Params, opts?: CallOptions) {
    return this.call<T>("POST", path, params, opts);
  }
  put<T>(path: string, params?: Params, opts?: CallOptions) {
    return this.call<T>("PUT", path, params, opts);
  }
  delete<T>(path: string, params?: Params, opts?: CallOptions) {
    return this.call<T>("DELETE", path, params, opts);
  }

  /** One API call with retries of transient failures until the deadline; answers `data`. */
  async call<T>(method: string, path: string, params: Params = {}, opts: CallOptions = {}): Promise<T> {
    const deadline = opts.deadline ?? Date.now() + this.retryWindowMs;
    const idempotent = method === "GET" || opts.idempotent === true;
    let attempt = 0;
    let staleRetried = false;
    for (;;) {
      try {
        return (await this.once(method, path, params, idempotent, opts.signal)) as T;
      } catch (err) {
        const e = err as ProxmoxError;
        // A kept connection the server had closed: nothing was answered, and the call may be sent twice. Once, at once.
        if (e instanceof ProxmoxError && e.staleConnection && idempotent && !staleRetried && !opts.signal?.aborted) {
          staleRetried = true;
          continue;
        }
        const retryable = e instanceof ProxmoxError && (e.transient || (idempotent && CUT.has(e.code)));
        const wait = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** attempt++) * (0.5 + Math.random() / 2);
        if (!retryable || opts.signal?.aborted || Date.now() + wait > deadline) {
          if (retryable && attempt > 1) {
            throw new ProxmoxError(`${e.message} (still failing after ${attempt} attempts; gave up at the deadline)`, { status: e.status, code: e.code, transient: true });
          }
          throw err;
        }
        await sleep(wait, opts.signal);
      }
    }
  }

  private once(method: string, path: string, params: Params, idempotent: boolean, signal?: AbortSignal): Promise<unknown> {
    const inQuery = method === "GET" || method === "DELETE";
    const encoded = formEncode(params);
    const url = new URL(`${this.baseUrl.pathname.replace(/\/+$/, "")}/api2/json${path}${inQuery && encoded ? `?${encoded}` : ""}`, this.baseUrl);
    const body = inQuery ? "" : encoded;
    const reqOpts: RequestOptions = {
      method,
      agent: idempotent ? this.agent : this.oneShot,
      timeout: this.requestTimeoutMs,
      signal,
      headers: {
        authorization: this.authorization,
        accept: "application/json",
        ...(body ? { "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(body) } : {}),
      },
    };
    return new Promise((resolve, reject) => {
      let answered = false;
      const req = request(url, reqOpts, (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (err: NodeJS.ErrnoException) => reject(this.connectionError(method, path, err)));
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString("utf8");
          let json: { data?: unknown; errors?: Record<string, string>; message?: string } | null = null;
          try {
            json = text ? JSON.parse(text) : null;
          } catch {
            json = null;
          }
          if (status === 200) return resolve(json?.data ?? null);
          // pveproxy puts the message in the reason phrase; some versions repeat it in the body.
          const reason = (res.statusMessage ?? "").trim() || json?.message?.trim() || `HTTP ${status}`;
          const detail = json?.errors ? `: ${Object.entries(json.errors).map(([k, v]) => `${k}: ${v}`).join("; ")}` : "";
          const transient = TRANSIENT_STATUS.has(status) || (status === 500 && TRANSIENT_500.test(reason));
          reject(new ProxmoxError(`Proxmox ${method} ${path}: ${status} ${reason}${detail}`, { status, errors: json?.errors, transient }));
        });
      });
      req.on("timeout", () => req.destroy(Object.assign(new Error(`no answer within ${this.requestTimeoutMs} ms`), { code: "ETIMEDOUT" })));
      req.on("error", (err: NodeJS.ErrnoException) => {
        if (err instanceof ProxmoxError) return reject(err);
        // Node tells whether the request went out on a kept connection; cut before any answer, that connection was stale.
        reject(this.connectionError(method, path, err, req.reusedSocket && !answered && STALE.has(err.code ?? "")));
      });
      req.end(body);
    });
  }

  private connectionError(method: string, path: string, err: NodeJS.ErrnoException, staleConnection = false): ProxmoxError {
    const code = err.code ?? (err.name === "AbortError" ? "ABORTED" : "");
    if (/CERT|SELF_SIGNED|UNABLE_TO_|ERR_TLS/.test(code)) {
      return new ProxmoxError(`Proxmox ${method} ${path}: ${this.baseUrl.host}'s certificate is not trusted (${code}); pin it with --proxmox-fingerprint`, { code });
    }
    const what = code === "ECONNREFUSED" ? "connection refused" : err.message;
    return new ProxmoxError(`Proxmox ${method} ${path}: ${this.baseUrl.host} unreachable: ${what}`, { code, transient: NOT_SENT.has(code), staleConnection });
  }

  close() {
    this.agent.destroy();
    this.oneShot.destroy();
  }
}
