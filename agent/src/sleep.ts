/**
 * Sleep on idle, decided and carried out on the host: an app with
 * `sleep_after_minutes` > 0 that has had no request through Caddy for that
 * long has its route pointed at the wake listener (loopback, in this process)
 * and its containers stopped, not removed. The first request wakes it: the
 * listener holds it (and every request arriving meanwhile), starts the
 * containers, waits until the app answers on its port, routes Caddy back to
 * it and proxies the held requests there, so clients get the app's answer.
 *
 * The control plane is on neither path: it hands out the setting with its
 * answer to app reports, and learns of sleep and wake from the reports the
 * container events cause (`sleeping` on each entry). Requests are counted from
 * Caddy's access log, which Caddy sends here over loopback UDP
 * (drivers/caddy-sleep.ts says why UDP).
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type IncomingMessage, request as httpRequest, type Server, type ServerResponse } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { sleep } from "./backoff.ts";
import { ensureAccessLog, putToSleep, SLEEPING_APP_HEADER, SLEPT_UPSTREAM_HEADER, sleepingRouteOf, sleepingRoutes } from "./drivers/caddy-sleep.ts";
import type { Logger } from "./log.ts";
import { type AppDrivers, appContainers, drained, waitForPort } from "./tasks/apps.ts";

export interface SleepOptions {
  /** Seconds in one "minute" of `sleep_after_minutes`: 60, or less in tests only (BERTH_SLEEP_UNIT_SECONDS). */
  unitSeconds: number;
  /** Longest a held request waits for its app to wake before it is answered 503. */
  wakeTimeoutMs: number;
}

/** A sleeping app that could not be woken in time, or should not be woken at all. */
class NotWoken extends Error {
  readonly retryAfter: number | null;
  constructor(message: string, retryAfter: number | null) {
    super(message);
    this.retryAfter = retryAfter;
  }
}

/** Most distinct host names remembered from the access log; more means names that no app serves. */
const MAX_HOSTS = 10_000;
/** How often the access log set-up in Caddy is checked again (a restarted Caddy may have lost it). */
const RECHECK_LOGGING_MS = 60_000;
/** Longest wait for requests in flight to the app before its containers stop. */
const SLEEP_DRAIN_MS = 5_000;

const HOP_HEADERS = new Set([SLEEPING_APP_HEADER.toLowerCase(), SLEPT_UPSTREAM_HEADER.toLowerCase()]);

export class SleepKeeper {
  private readonly drivers: AppDrivers;
  private readonly log: Logger;
  private readonly opts: SleepOptions;
  private readonly exclusive: <T>(appId: string, fn: () => Promise<T>) => Promise<T>;

  /** sleep_after_minutes by app, as the control plane last said (absent: 0, never). */
  private readonly minutes = new Map<string, number>();
  /** Last request Caddy logged, by lower-case host name (epoch ms). */
  private readonly lastRequest = new Map<string, number>();
  /** Since when each awake app has served from its current upstream (the idle clock starts there). */
  private readonly awake = new Map<string, { upstream: string; since: number }>();
  /** Apps whose route points at the wake listener. */
  private readonly asleep = new Set<string>();
  private readonly hostOf = new Map<string, string>();
  private readonly waking = new Map<string, Promise<string>>();
  private udp: UdpSocket | null = null;
  private http: Server | null = null;
  private wakeAddress = "";
  private logAddress = "";
  private readonly stopping = new AbortController();

  constructor(drivers: AppDrivers, log: Logger, exclusive: <T>(appId: string, fn: () => Promise<T>) => Promise<T>, opts: SleepOptions) {
    this.drivers = drivers;
    this.log = log;
    this.exclusive = exclusive;
    this.opts = opts;
  }

  // ------------------------------------------------------------ what reports carry

  isSleeping(appId: string): boolean {
    return this.asleep.has(appId);
  }

  /** When the app last got a request through Caddy, as far as this process has seen. */
  lastRequestAt(appId: string): string | null {
    const host = this.hostOf.get(appId);
    const at = host ? this.lastRequest.get(host) : undefined;
    return at ? new Date(at).toISOString() : null;
  }

  /** The control plane's answer to a report: each reported app's sleep_after_minutes (missing means 0). */
  learn(appIds: string[], minutes: Record<string, number> | undefined) {
    if (!minutes) return;
    for (const id of appIds) {
      const m = minutes[id] ?? 0;
      if (m > 0) this.minutes.set(id, m);
      else this.minutes.delete(id);
    }
  }

  // ------------------------------------------------------------ life

  /** Runs the access log receiver, the wake listener and the idle check until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    signal.addEventListener("abort", () => this.stopping.abort(), { once: true });
    try {
      await this.drivers.docker.ping();
    } catch {
      return;
    }
    await this.listen();
    let configured = 0;
    const tickMs = Math.min(15_000, Math.max(250, (this.opts.unitSeconds * 1000) / 4));
    while (!signal.aborted) {
      try {
        if (Date.now() - configured > RECHECK_LOGGING_MS) {
          await this.configureCaddy();
          configured = Date.now();
        }
        // Without the access log every app would look idle: nothing sleeps until it is in place.
        if (configured) await this.tick();
      } catch (err) {
        configured = 0;
        this.log.debug("sleep check failed", { error: (err as Error).message });
      }
      await sleep(tickMs, signal);
    }
    this.udp?.close();
    this.http?.closeAllConnections();
    await new Promise((r) => this.http?.close(r) ?? r(undefined));
  }

  private async listen() {
    this.udp = createSocket("udp4");
    this.udp.on("message", (msg) => this.onAccessLine(msg));
    this.udp.on("error", (err) => this.log.warn("access log socket failed", { error: err.message }));
    await new Promise<void>((resolve) => this.udp!.bind(0, "127.0.0.1", resolve));
    this.logAddress = `127.0.0.1:${(this.udp.address() as AddressInfo).port}`;

    this.http = createServer((req, res) => void this.onRequest(req, res));
    this.http.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => void this.onUpgrade(req, socket, head));
    // Held requests may wait as long as a wake takes.
    this.http.requestTimeout = 0;
    await new Promise<void>((resolve) => this.http!.listen(0, "127.0.0.1", resolve));
    this.wakeAddress = `127.0.0.1:${(this.http.address() as AddressInfo).port}`;
    this.log.info("sleep on idle ready", { wake_listener: this.wakeAddress, access_log: `udp/${this.logAddress}` });
  }

  /** Access log to this process; sleeping routes left by an earlier run of the agent moved to this run's wake listener. */
  private async configureCaddy() {
    const { caddy } = this.drivers;
    await caddy.ensureServer();
    await ensureAccessLog(caddy, this.logAddress);
    for (const s of await sleepingRoutes(caddy)) {
      this.asleep.add(s.appId);
      this.hostOf.set(s.appId, s.hostname.toLowerCase());
      if (s.wakeAddress !== this.wakeAddress) await putToSleep(caddy, s.appId, s.hostname, s.upstream, this.wakeAddress);
    }
  }

  private onAccessLine(msg: Buffer) {
    let line: { ts?: number; request?: { host?: string } };
    try {
      line = JSON.parse(msg.toString("utf8"));
    } catch {
      return;
    }
    const host = line.request?.host?.replace(/:\d+$/, "").toLowerCase();
    if (!host) return;
    if (this.lastRequest.size >= MAX_HOSTS && !this.lastRequest.has(host)) this.lastRequest.clear();
    const at = typeof line.ts === "number" ? Math.round(line.ts * 1000) : Date.now();
    this.lastRequest.set(host, Math.max(at, this.lastRequest.get(host) ?? 0));
  }

  // ------------------------------------------------------------ sleep

  private async tick() {
    const now = Date.now();
    for (const r of await this.drivers.caddy.routes()) {
      this.hostOf.set(r.appId, r.hostname.toLowerCase());
      if (r.upstream === this.wakeAddress) {
        this.asleep.add(r.appId);
        continue;
      }
      this.asleep.delete(r.appId);
      const seen = this.awake.get(r.appId);
      if (!seen || seen.upstream !== r.upstream) {
        // A deploy, start or wake moved the route: the idle clock starts now.
        this.awake.set(r.appId, { upstream: r.upstream, since: now });
        continue;
      }
      const minutes = this.minutes.get(r.appId) ?? 0;
      if (minutes <= 0) continue;
      const last = Math.max(seen.since, this.lastRequest.get(r.hostname.toLowerCase()) ?? 0);
      if (now - last >= minutes * this.opts.unitSeconds * 1000) await this.putAppToSleep(r.appId, r.hostname, r.upstream);
    }
  }

  private putAppToSleep(appId: string, hostname: string, upstream: string) {
    const { docker, caddy } = this.drivers;
    return this.exclusive(appId, async () => {
      // Checked again under the app's lock: a job may have moved the route, a request may have come.
      if ((await caddy.routeFor(appId)) !== upstream) return;
      const minutes = this.minutes.get(appId) ?? 0;
      const last = Math.max(this.awake.get(appId)?.since ?? 0, this.lastRequest.get(hostname.toLowerCase()) ?? 0);
      if (minutes <= 0 || Date.now() - last < minutes * this.opts.unitSeconds * 1000) return;
      // A request still open (a long poll, a WebSocket) is activity even though it has not been logged yet.
      if ((await caddy.inFlight(upstream).catch(() => 0)) > 0) return;
      const running = (await appContainers(docker, appId)).filter((c) => c.state === "running" || c.state === "restarting");
      if (!running.length) return;
      // Route first, so a request arriving now is held by the wake listener rather than failed.
      await putToSleep(caddy, appId, hostname, upstream, this.wakeAddress);
      this.asleep.add(appId);
      this.awake.delete(appId);
      await drained(caddy, upstream, SLEEP_DRAIN_MS);
      for (const c of running) await docker.stop(c.id, 10);
      this.log.info("app asleep", { app_id: appId, idle_seconds: Math.round((Date.now() - last) / 1000), containers: running.length });
    });
  }

  // ------------------------------------------------------------ wake

  /** The app's upstream once it answers; one wake per app at a time, shared by every request that waits for it. */
  private wake(appId: string): Promise<string> {
    let p = this.waking.get(appId);
    if (!p) {
      p = this.wakeOnce(appId).finally(() => this.waking.delete(appId));
      this.waking.set(appId, p);
    }
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new NotWoken(`The app is waking up and did not answer within ${Math.round(this.opts.wakeTimeoutMs / 1000)} s. Try again shortly.`, 5)),
        this.opts.wakeTimeoutMs,
      );
    });
    return Promise.race([p, bound]).finally(() => clearTimeout(timer));
  }

  private wakeOnce(appId: string): Promise<string> {
    const { docker, caddy } = this.drivers;
    return this.exclusive(appId, async () => {
      const s = await sleepingRouteOf(caddy, appId);
      if (!s) {
        // Not asleep any more: a deploy, start or an earlier wake routed it; a user stop put the plain route back.
        const current = await caddy.routeFor(appId);
        const running = (await appContainers(docker, appId)).some((c) => c.state === "running");
        if (current && current !== this.wakeAddress && running) return current;
        throw new NotWoken("This app is stopped.", null);
      }
      const t0 = Date.now();
      const all = await appContainers(docker, appId);
      if (!all.length) throw new NotWoken("This app has no container on this host; deploy it.", null);
      for (const c of all) if (c.state !== "running") await docker.start(c.id);
      const tStarted = Date.now();
      const newest = all[0]!;
      const info = await docker.inspect(newest.id);
      const port = info?.exposedPort ?? Number(s.upstream.slice(s.upstream.lastIndexOf(":") + 1));
      try {
        if (!info?.address || !port) throw new Error("the container exited");
        const healthy = async () => Boolean((await docker.inspect(newest.id))?.state.running);
        await waitForPort(info.address, port, this.opts.wakeTimeoutMs, healthy, this.stopping.signal);
      } catch (err) {
        // It stays asleep (the route still points here), its containers stopped again: the next request tries again.
        for (const c of all) await docker.stop(c.id, 10).catch(() => undefined);
        this.log.warn("app did not wake", { app_id: appId, error: (err as Error).message });
        throw new NotWoken(`The app did not start: ${(err as Error).message}. Try again shortly.`, 5);
      }
      const upstream = `${info.address}:${port}`;
      // Every replica that started goes back into the route (the held requests go to the newest, which answered).
      const others = await Promise.all(all.filter((c) => c.id !== newest.id).map((c) => docker.inspect(c.id).catch(() => null)));
      const replicas = [upstream, ...others.flatMap((o) => (o?.state.running && o.address ? [`${o.address}:${port}`] : []))];
      await caddy.setRoute(appId, s.hostname, replicas.length > 1 ? replicas : upstream);
      this.asleep.delete(appId);
      this.awake.set(appId, { upstream, since: Date.now() });
      this.log.info("app woke", { app_id: appId, start_ms: tStarted - t0, answered_ms: Date.now() - t0 });
      return upstream;
    });
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse) {
    const appId = req.headers[SLEEPING_APP_HEADER.toLowerCase()];
    if (typeof appId !== "string" || !appId) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("No sleeping app is served at this address.\n");
      return;
    }
    let upstream: string;
    try {
      upstream = await this.wake(appId);
    } catch (err) {
      const e = err instanceof NotWoken ? err : new NotWoken("The app could not be woken. Try again shortly.", 5);
      if (!(err instanceof NotWoken)) this.log.warn("wake failed", { app_id: appId, error: (err as Error).message });
      res.writeHead(503, { "content-type": "text/plain; charset=utf-8", ...(e.retryAfter ? { "retry-after": String(e.retryAfter) } : {}) }).end(`${e.message}\n`);
      return;
    }
    const [host, port] = splitAddress(upstream);
    const headers = { ...req.headers };
    for (const h of HOP_HEADERS) delete headers[h];
    const out = httpRequest({ host, port, method: req.method, path: req.url, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    out.on("error", (err) => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain; charset=utf-8" }).end(`The app woke but the request to it failed: ${err.message}\n`);
      else res.destroy();
    });
    req.pipe(out);
  }

  /** A WebSocket (or other upgrade) to a sleeping app: woken, then the raw connection piped through. */
  private async onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer) {
    const appId = req.headers[SLEEPING_APP_HEADER.toLowerCase()];
    let upstream: string;
    try {
      if (typeof appId !== "string" || !appId) throw new NotWoken("No sleeping app is served at this address.", null);
      upstream = await this.wake(appId);
    } catch (err) {
      const message = err instanceof NotWoken ? err.message : "The app could not be woken.";
      socket.end(`HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 5\r\nconnection: close\r\n\r\n${message}\n`);
      return;
    }
    const [host, port] = splitAddress(upstream);
    const up = connect({ host, port }, () => {
      const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        if (!HOP_HEADERS.has(req.rawHeaders[i]!.toLowerCase())) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      }
      up.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head.length) up.write(head);
      socket.pipe(up).pipe(socket);
    });
    up.on("error", () => socket.destroy());
    socket.on("error", () => up.destroy());
  }
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(":");
  return [address.slice(0, i).replace(/^\[|\]$/g, ""), Number(address.slice(i + 1))];
}
