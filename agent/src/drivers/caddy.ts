/**
 * Ingress through Caddy's admin API: one HTTP server named `berth` listening
 * on the ingress address (automatic HTTPS off), holding one route per app
 * (`@id: berth-app-<app id>`, host matcher, reverse_proxy to the app's
 * loopback port) in front of a catch-all 404, so that a name with no app
 * answers 404 rather than Caddy's empty 200.
 *
 * Caddy keeps its config in memory (and in its autosave file); the agent
 * re-applies routes for the apps it runs when it starts.
 */

export const SERVER_NAME = "berth";
/** How long a reloaded config's old servers may finish requests in flight. */
const GRACE_PERIOD = "10s";
const ROUTE_PREFIX = "berth-app-";

export class CaddyError extends Error {
  /** HTTP status from the admin API; 0 when it did not answer. */
  readonly status: number;
  /** The connection error (ECONNREFUSED, ECONNRESET, ...) when it did not answer. */
  readonly code: string;

  constructor(status: number, message: string, code = "") {
    super(message);
    this.name = "CaddyError";
    this.status = status;
    this.code = code;
  }
}

export interface CaddyRoute {
  appId: string;
  hostname: string;
  upstream: string;
}

/** Connection errors seen while Caddy swaps its admin listener. */
const TRANSIENT = /^(UND_ERR_SOCKET|ECONNRESET|EPIPE|ECONNREFUSED)$/;

export function routeId(appId: string): string {
  return `${ROUTE_PREFIX}${appId}`;
}

export class CaddyAdmin {
  readonly adminUrl: string;
  /** Caddy listen address for the ingress server, e.g. ":80" or "127.0.0.1:8081". */
  readonly listen: string;
  /** Name of the server in apps.http.servers ("berth"; tests use their own). */
  readonly serverName: string;
  private readonly timeoutMs: number;

  constructor(adminUrl = "http://127.0.0.1:2019", listen = ":80", opts: { serverName?: string; timeoutMs?: number } = {}) {
    this.adminUrl = adminUrl.replace(/\/+$/, "");
    this.listen = listen;
    this.serverName = opts.serverName ?? SERVER_NAME;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  private get serverPath(): string {
    return `/config/apps/http/servers/${encodeURIComponent(this.serverName)}`;
  }

  /** Route ids are global in Caddy's config: one fallback per server. */
  private get fallbackId(): string {
    return `${this.serverName}-fallback`;
  }

  /** Creates the `berth` server if it is missing (also when Caddy's config is empty) and corrects its listen address. Routes already there are kept. */
  async ensureServer(): Promise<void> {
    await this.retrying(() => this.ensureServerOnce());
    await this.retrying(() => this.ensureGracePeriod());
  }

  /**
   * Every change through the admin API reloads Caddy's whole config; without a
   * grace period the old servers drop requests still in flight. Set once, if unset.
   */
  private async ensureGracePeriod(): Promise<void> {
    const current = await this.get("/config/apps/http/grace_period").catch(() => null);
    if (!current) await this.send("PUT", "/config/apps/http/grace_period", GRACE_PERIOD, "set the grace period of");
  }

  private async ensureServerOnce(): Promise<void> {
    const server = { listen: [this.listen], automatic_https: { disable: true }, routes: [fallbackRoute(this.fallbackId)] };
    const config = (await this.get("/config/")) as any;
    if (config?.apps?.http?.servers?.[this.serverName]) {
      const current = config.apps.http.servers[this.serverName];
      const listen: unknown = current.listen;
      // POST sets a missing key (but appends to an array); PATCH replaces an existing value.
      if (!Array.isArray(listen) || listen.length !== 1 || listen[0] !== this.listen) {
        await this.send(listen === undefined ? "POST" : "PATCH", `${this.serverPath}/listen`, [this.listen], "set the listen address of");
      }
      if (current.automatic_https?.disable !== true) {
        await this.send(current.automatic_https === undefined ? "POST" : "PATCH", `${this.serverPath}/automatic_https`, { disable: true }, "turn off automatic HTTPS on");
      }
      const routes: any[] = Array.isArray(current.routes) ? current.routes : [];
      if (current.routes === undefined || current.routes === null) await this.send("POST", `${this.serverPath}/routes`, [fallbackRoute(this.fallbackId)], "add routes to");
      else if (!routes.some((r) => r?.["@id"] === this.fallbackId)) await this.send("POST", `${this.serverPath}/routes`, fallbackRoute(this.fallbackId), "add the fallback route to");
      return;
    }
    // Create the first missing level of apps.http.servers.berth (POST on an object path sets it).
    if (config === null || typeof config !== "object") await this.send("POST", "/config/", { apps: { http: { servers: { [this.serverName]: server } } } }, "create");
    else if (!config.apps) await this.send("POST", "/config/apps", { http: { servers: { [this.serverName]: server } } }, "create");
    else if (!config.apps.http) await this.send("POST", "/config/apps/http", { servers: { [this.serverName]: server } }, "create");
    else if (!config.apps.http.servers) await this.send("POST", "/config/apps/http/servers", { [this.serverName]: server }, "create");
    else await this.send("POST", this.serverPath, server, "create");
  }

  /** Removes the whole server and its routes; false when there was none. */
  removeServer(): Promise<boolean> {
    return this.retrying(() => this.removeServerOnce());
  }

  private async removeServerOnce(): Promise<boolean> {
    if ((await this.getOrNull(this.serverPath)) === null) return false;
    await this.send("DELETE", this.serverPath, undefined, "remove");
    return true;
  }

  /**
   * Routes `hostname` to `upstream` ("127.0.0.1:PORT"), or to several (an app's replicas), replacing
   * the app's route if it has one: the whole set changes in one config change.
   */
  setRoute(appId: string, hostname: string, upstream: string | string[]): Promise<void> {
    return this.retrying(() => this.setRouteOnce(appId, hostname, upstream));
  }

  private async setRouteOnce(appId: string, hostname: string, upstream: string | string[]): Promise<void> {
    const route = appRoute(appId, hostname, upstream);
    const id = routeId(appId);
    const existing = await this.getOrNull(`/id/${encodeURIComponent(id)}`);
    if (existing) {
      await this.send("PATCH", `/id/${encodeURIComponent(id)}`, route, "replace the route in");
      return;
    }
    // In front of the catch-all 404 (PUT on an array index inserts there).
    try {
      await this.send("PUT", `${this.serverPath}/routes/0`, route, "add a route to");
    } catch (err) {
      if (!(err instanceof CaddyError) || err.status === 0) throw err;
      // No server or no routes yet: make them, then add.
      await this.ensureServerOnce();
      await this.send("PUT", `${this.serverPath}/routes/0`, route, "add a route to");
    }
  }

  /** Removes the app's route; false when there was none. */
  removeRoute(appId: string): Promise<boolean> {
    return this.retrying(async () => {
      const res = await this.request("DELETE", `/id/${encodeURIComponent(routeId(appId))}`);
      if (res.status === 404) return false;
      if (!res.ok) throw this.failure(res, "remove the route from");
      return true;
    });
  }

  /** The upstream the app's route points at, or null. */
  async routeFor(appId: string): Promise<string | null> {
    const route = (await this.getOrNull(`/id/${encodeURIComponent(routeId(appId))}`)) as any;
    return route ? upstreamOf(route) : null;
  }

  /** Every upstream the app's route balances over (its replicas), or [] when it has no route. */
  async upstreamsFor(appId: string): Promise<string[]> {
    const route = (await this.getOrNull(`/id/${encodeURIComponent(routeId(appId))}`)) as ProxyRoute | null;
    return route ? upstreamsOf(route) : [];
  }

  /** Requests Caddy is proxying to `upstream` right now ("127.0.0.1:PORT"); 0 when it has none. */
  async inFlight(upstream: string): Promise<number> {
    const upstreams = (await this.getOrNull("/reverse_proxy/upstreams")) as Array<{ address?: string; num_requests?: number }> | null;
    return upstreams?.find((u) => u.address === upstream)?.num_requests ?? 0;
  }

  /** Every app route in the `berth` server, in order. */
  async routes(): Promise<CaddyRoute[]> {
    const routes = (await this.getOrNull(`${this.serverPath}/routes`)) as any[] | null;
    const out: CaddyRoute[] = [];
    for (const r of routes ?? []) {
      const id: unknown = r?.["@id"];
      if (typeof id !== "string" || !id.startsWith(ROUTE_PREFIX)) continue;
      out.push({ appId: id.slice(ROUTE_PREFIX.length), hostname: r.match?.[0]?.host?.[0] ?? "", upstream: upstreamOf(r) ?? "" });
    }
    return out;
  }

  /** The config at `path` ("/config/…" or "/id/…"), or null when there is none (for drivers beside this one, such as caddy-sleep.ts). */
  readConfig(path: string): Promise<unknown> {
    return this.retrying(() => this.getOrNull(path));
  }

  /** Writes the config at `path` (PUT inserts or creates, PATCH replaces, POST sets a missing key). */
  writeConfig(method: "PUT" | "PATCH" | "POST", path: string, body: unknown, what: string): Promise<void> {
    return this.retrying(() => this.send(method, path, body, what));
  }

  // ------------------------------------------------------------ transport

  /**
   * Caddy replaces its admin listener on every config change, and a
   * connection accepted just then is reset before Caddy reads it. Each
   * public operation reads before it writes, so it is safe to run again.
   */
  private async retrying<T>(op: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await op();
      } catch (err) {
        if (attempt >= 4 || !(err instanceof CaddyError) || !TRANSIENT.test(err.code)) throw err;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  }

  /**
   * One admin API call on a fresh connection: Caddy restarts its admin
   * listener on every config change, which breaks pooled keep-alive
   * connections. Reads are tried again once when the connection drops.
   */
  private async request(method: string, path: string, body?: unknown): Promise<{ ok: boolean; status: number; text: string }> {
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(`${this.adminUrl}${path}`, {
          method,
          headers: { connection: "close", ...(body === undefined ? {} : { "content-type": "application/json" }) },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        return { ok: res.ok, status: res.status, text: await res.text() };
      } catch (err) {
        const cause = (err as Error).cause as NodeJS.ErrnoException | undefined;
        const code = cause?.code ?? "";
        if (attempt < 3 && method === "GET" && TRANSIENT.test(code)) {
          await new Promise((r) => setTimeout(r, 100 * attempt));
          continue;
        }
        throw new CaddyError(0, `caddy admin API at ${this.adminUrl} is unreachable: ${code || cause?.message || (err as Error).message} (is caddy running with --caddy-admin pointing at its admin listener?)`, code);
      }
    }
  }

  private failure(res: { status: number; text: string }, what: string): CaddyError {
    let message = res.text.trim();
    try {
      message = (JSON.parse(res.text) as { error?: string }).error ?? message;
    } catch {
      /* plain text */
    }
    return new CaddyError(res.status, `caddy refused to ${what} the ${this.serverName} server (listen ${this.listen}): ${message.slice(0, 500) || `HTTP ${res.status}`}`);
  }

  private async get(path: string): Promise<unknown> {
    const res = await this.request("GET", path);
    if (!res.ok) throw this.failure(res, "read the config of");
    return res.text ? JSON.parse(res.text) : null;
  }

  /** GET, with null for an unknown id or path (Caddy answers 404 for ids, 400/500 for paths). */
  private async getOrNull(path: string): Promise<unknown> {
    const res = await this.request("GET", path);
    if (res.status === 404 || (!res.ok && /unknown object ID|invalid traversal path/i.test(res.text))) return null;
    if (!res.ok) throw this.failure(res, "read the config of");
    return res.text ? JSON.parse(res.text) : null;
  }

  private async send(method: string, path: string, body: unknown, what: string): Promise<void> {
    const res = await this.request(method, path, body);
    if (!res.ok) throw this.failure(res, what);
  }
}

/**
 * One upstream: a plain proxy. Several (replicas): round robin, a failed dial given up after
 * a second and tried again on another replica (so a replica that dies costs no request, unless
 * a config change lands during that retry: Caddy does not retry on a config it unloads), active health checks
 * (a replica that stops answering gets no traffic until it answers again) and passive ones (a
 * failed request benches the replica at once, before the next active check).
 */
function appRoute(appId: string, hostname: string, upstream: string | string[]) {
  const dials = typeof upstream === "string" ? [upstream] : upstream;
  const proxy =
    dials.length === 1
      ? { handler: "reverse_proxy", upstreams: [{ dial: dials[0] }] }
      : {
          handler: "reverse_proxy",
          upstreams: dials.map((dial) => ({ dial })),
          // A replica that died leaves an address nothing answers at: give up on it within a second
          // (the default is 3 s) and try another, rather than hold the request (replicas are on this host).
          transport: { protocol: "http", dial_timeout: "1s" },
          load_balancing: { selection_policy: { policy: "round_robin" }, try_duration: "5s", try_interval: "100ms" },
          health_checks: {
            active: { uri: "/", interval: "2s", timeout: "2s" },
            passive: { fail_duration: "10s", max_fails: 1 },
          },
        };
  return { "@id": routeId(appId), match: [{ host: [hostname] }], handle: [proxy], terminal: true };
}

function fallbackRoute(id: string) {
  return {
    "@id": id,
    handle: [{ handler: "static_response", status_code: 404, headers: { "Content-Type": ["text/plain; charset=utf-8"] }, body: "No app is served at this address.\n" }],
    terminal: true,
  };
}

function upstreamOf(route: any): string | null {
  for (const h of route?.handle ?? []) {
    if (h?.handler === "reverse_proxy" && typeof h.upstreams?.[0]?.dial === "string") return h.upstreams[0].dial;
  }
  return null;
}

/** The part of a route's JSON that names its upstreams. */
interface ProxyRoute {
  handle?: Array<{ handler?: string; upstreams?: Array<{ dial?: unknown }> } | null>;
}

function upstreamsOf(route: ProxyRoute): string[] {
  for (const h of route.handle ?? []) {
    if (h?.handler === "reverse_proxy" && Array.isArray(h.upstreams)) return h.upstreams.map((u) => u?.dial).filter((d): d is string => typeof d === "string");
  }
  return [];
}
