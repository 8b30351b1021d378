/**
 * Connections queued on Caddy's old listening socket survive a config reload.
 *
 * Every route change the agent makes is a Caddy config reload, and Caddy 2.6
 * (Debian's) opens the new config's listening socket beside the old one with
 * SO_REUSEPORT, then closes the old one. The kernel spreads new connections
 * over both sockets until then, and closing a listening socket resets every
 * connection still in its accept queue: a visitor's request fails with
 * ECONNRESET in the instant of a deploy.
 *
 * Linux 5.14 added `net.ipv4.tcp_migrate_req`: with it on, the kernel moves a
 * closing listener's queued connections (and handshakes in progress) to
 * another socket of the same SO_REUSEPORT group instead of resetting them.
 * It is per network namespace and off by default, so the agent turns it on
 * where it runs Caddy's routes. `npm run bench:reload` measures the difference.
 */
import { accessSync, constants, readFileSync, writeFileSync } from "node:fs";

export const TCP_MIGRATE_REQ = "/proc/sys/net/ipv4/tcp_migrate_req";

export interface HandoffState {
  /**
   * on: it already was; turned-on: set now; off: off, and this user may set it (asked not to);
   * denied: off, and this user cannot set it; absent: the kernel is older than 5.14.
   */
  state: "on" | "turned-on" | "off" | "denied" | "absent";
  detail: string;
}

const FIX = "sysctl -w net.ipv4.tcp_migrate_req=1 (and a line in /etc/sysctl.d/ to keep it)";

function read(path: string): string | null {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return null;
  }
}

/** Reads the setting; with `turnOn`, sets it when it is off. Never throws. */
export function listenerHandoff(opts: { turnOn: boolean; path?: string } = { turnOn: true }): HandoffState {
  const path = opts.path ?? TCP_MIGRATE_REQ;
  const value = read(path);
  if (value === null) return { state: "absent", detail: `${path} is missing (Linux before 5.14): a Caddy reload can reset a connection that arrives in that instant` };
  if (value === "1") return { state: "on", detail: "net.ipv4.tcp_migrate_req=1: connections queued on Caddy's old socket move to the new one at a reload" };
  const off = `net.ipv4.tcp_migrate_req is ${value}: a Caddy reload (every deploy) can reset a connection that arrives in that instant`;
  if (!opts.turnOn) {
    try {
      accessSync(path, constants.W_OK);
      return { state: "off", detail: `${off}; the agent turns it on when it starts` };
    } catch {
      return { state: "denied", detail: `${off}, and this user cannot change it: run ${FIX}` };
    }
  }
  try {
    writeFileSync(path, "1\n");
    if (read(path) === "1") return { state: "turned-on", detail: "set net.ipv4.tcp_migrate_req=1 so Caddy's config reloads do not reset queued connections" };
  } catch {
    // Not root, or a read-only /proc (a container): said below.
  }
  return { state: "denied", detail: `${off}, and the agent could not set it: run ${FIX}` };
}
