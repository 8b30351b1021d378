/**
 * Caddy's side of sleep on idle: an access log for the ingress server sent to
 * the agent over loopback UDP (how the agent knows when an app last got a
 * request), and the "sleeping" form of an app's route, which sends its
 * requests to the agent's wake listener instead of to the stopped container.
 *
 * Why UDP: Caddy 2.6.2's `net` log writer dials when the config loads and a
 * TCP dial to an agent that is down fails the whole config load (2.7's
 * `soft_start` is not in 2.6). A UDP "dial" always succeeds, so Caddy never
 * depends on the agent; while the agent is down its lines are dropped (and
 * the first line after it comes back, which carries the ICMP error).
 *
 * A sleeping route keeps the route's id and host matcher, so a deploy or start
 * replaces it like any route. It remembers the upstream it had (a header the
 * wake listener reads), so a user stop can put the plain route back and traffic
 * then never wakes a stopped app.
 */
import type { CaddyAdmin } from "./caddy.ts";
import { routeId } from "./caddy.ts";

/** Set by Caddy on every request a sleeping route sends to the wake listener (any client value is replaced). */
export const SLEEPING_APP_HEADER = "X-Berth-Sleeping-App";
/** The upstream the route had before the app slept. */
export const SLEPT_UPSTREAM_HEADER = "X-Berth-Slept-Upstream";

export interface SleepingRoute {
  appId: string;
  hostname: string;
  /** Where the route pointed before the app slept. */
  upstream: string;
  /** The wake listener it points at now. */
  wakeAddress: string;
}

function sleepingRoute(appId: string, hostname: string, upstream: string, wakeAddress: string) {
  return {
    "@id": routeId(appId),
    match: [{ host: [hostname] }],
    handle: [
      {
        handler: "reverse_proxy",
        upstreams: [{ dial: wakeAddress }],
        headers: { request: { set: { [SLEEPING_APP_HEADER]: [appId], [SLEPT_UPSTREAM_HEADER]: [upstream] } } },
      },
    ],
    terminal: true,
  };
}

function plainRoute(appId: string, hostname: string, upstream: string) {
  return { "@id": routeId(appId), match: [{ host: [hostname] }], handle: [{ handler: "reverse_proxy", upstreams: [{ dial: upstream }] }], terminal: true };
}

/** The parts of Caddy's JSON config read here. */
interface RouteJson {
  "@id"?: unknown;
  match?: Array<{ host?: string[] }>;
  handle?: Array<{ handler?: string; upstreams?: Array<{ dial?: string }>; headers?: { request?: { set?: Record<string, string[]> } } }>;
}
interface LoggingJson {
  logs?: Record<string, { writer?: { address?: string }; exclude?: string[] }>;
}

/** Reads a route as a sleeping route, or null when it is a plain one (or none). */
export function asSleeping(value: unknown): SleepingRoute | null {
  const route = value as RouteJson | null;
  const id: unknown = route?.["@id"];
  if (typeof id !== "string") return null;
  for (const h of route?.handle ?? []) {
    const set = h?.handler === "reverse_proxy" ? h.headers?.request?.set : null;
    const appId = set?.[SLEEPING_APP_HEADER]?.[0];
    if (typeof appId !== "string") continue;
    return { appId, hostname: route?.match?.[0]?.host?.[0] ?? "", upstream: set?.[SLEPT_UPSTREAM_HEADER]?.[0] ?? "", wakeAddress: h.upstreams?.[0]?.dial ?? "" };
  }
  return null;
}

/** The app's route as a sleeping route, or null when it is plain or missing. */
export async function sleepingRouteOf(caddy: CaddyAdmin, appId: string): Promise<SleepingRoute | null> {
  return asSleeping(await caddy.readConfig(`/id/${encodeURIComponent(routeId(appId))}`));
}

/** Every sleeping route of the ingress server. */
export async function sleepingRoutes(caddy: CaddyAdmin): Promise<SleepingRoute[]> {
  const routes = (await caddy.readConfig(`/config/apps/http/servers/${encodeURIComponent(caddy.serverName)}/routes`)) as unknown[] | null;
  return (routes ?? []).map(asSleeping).filter((r): r is SleepingRoute => r !== null);
}

/** Points the app's existing route at the wake listener, remembering `upstream`. */
export async function putToSleep(caddy: CaddyAdmin, appId: string, hostname: string, upstream: string, wakeAddress: string): Promise<void> {
  await caddy.writeConfig("PATCH", `/id/${encodeURIComponent(routeId(appId))}`, sleepingRoute(appId, hostname, upstream, wakeAddress), "put an app's route to sleep in");
}

/** A sleeping route back to the upstream it remembers (a user stop of a sleeping app); false when the route was not sleeping. */
export async function unsleepRoute(caddy: CaddyAdmin, appId: string): Promise<boolean> {
  const s = await sleepingRouteOf(caddy, appId);
  if (!s) return false;
  await caddy.writeConfig("PATCH", `/id/${encodeURIComponent(routeId(appId))}`, plainRoute(appId, s.hostname, s.upstream), "restore an app's route in");
  return true;
}

/**
 * Sends the ingress server's access log to `udpAddress` ("127.0.0.1:PORT") as
 * JSON lines, and keeps those lines out of Caddy's default log (one line per
 * request in its journal is noise). Reads before it writes: run it at start and
 * now and then (a restarted Caddy without --resume has lost it).
 */
export async function ensureAccessLog(caddy: CaddyAdmin, udpAddress: string): Promise<void> {
  const loggerName = `${caddy.serverName}_access`;
  const logName = `${caddy.serverName}-access`;
  const include = `http.log.access.${loggerName}`;
  const wanted = { writer: { output: "net", address: `udp/${udpAddress}` }, encoder: { format: "json" }, include: [include] };
  const logging = (await caddy.readConfig("/config/logging")) as LoggingJson | null;
  if (!logging) {
    await caddy.writeConfig("POST", "/config/logging", { logs: { [logName]: wanted, default: { exclude: [include] } } }, "add the access log to");
  } else {
    if (!logging.logs) await caddy.writeConfig("POST", "/config/logging/logs", { [logName]: wanted }, "add the access log to");
    else if (logging.logs[logName]?.writer?.address !== wanted.writer.address) {
      await caddy.writeConfig(logging.logs[logName] ? "PATCH" : "POST", `/config/logging/logs/${logName}`, wanted, "add the access log to");
    }
    const def = logging.logs?.default;
    if (!def) await caddy.writeConfig("POST", "/config/logging/logs/default", { exclude: [include] }, "keep access lines out of the default log of");
    else if (!(def.exclude ?? []).includes(include)) {
      await caddy.writeConfig(def.exclude ? "PATCH" : "POST", "/config/logging/logs/default/exclude", [...(def.exclude ?? []), include], "keep access lines out of the default log of");
    }
  }
  const serverLogs = `/config/apps/http/servers/${encodeURIComponent(caddy.serverName)}/logs`;
  const current = (await caddy.readConfig(serverLogs)) as { default_logger_name?: string } | null;
  if (current?.default_logger_name !== loggerName) {
    await caddy.writeConfig(current ? "PATCH" : "POST", serverLogs, { ...(current ?? {}), default_logger_name: loggerName }, "turn on the access log of");
  }
}
