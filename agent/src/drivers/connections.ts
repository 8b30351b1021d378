/**
 * TCP connections this host has open to an address, read from the kernel's
 * socket tables (/proc/net/tcp and /proc/net/tcp6, Linux only).
 *
 * A deploy uses this to know when the previous container has finished the
 * requests Caddy sent it. Caddy's own count (`/reverse_proxy/upstreams`) is
 * not enough: every config change reloads Caddy, and the reload forgets the
 * previous upstream's counter while the old server still has requests on
 * their way to it. The kernel still sees those connections.
 */
import { readFile } from "node:fs/promises";
import { isIPv4, isIPv6 } from "node:net";

/** Socket states that mean a request may still be on its way: SYN_SENT and ESTABLISHED. */
const BUSY_STATES = new Set(["01", "02"]);

/**
 * Connections in SYN_SENT or ESTABLISHED to `address` ("IP:PORT", "[IPv6]:PORT"),
 * or null when the socket tables cannot be read (not Linux, or no /proc).
 */
export async function openConnectionsTo(address: string, tables = ["/proc/net/tcp", "/proc/net/tcp6"]): Promise<number | null> {
  const target = parseAddress(address);
  if (!target) return null;
  let readAny = false;
  let count = 0;
  for (const table of tables) {
    let text: string;
    try {
      text = await readFile(table, "utf8");
    } catch {
      continue;
    }
    readAny = true;
    const wanted = target.ip.length === 4 ? procIPv4(target.ip) : procIPv6(target.ip);
    const mapped = target.ip.length === 4 && table.endsWith("6") ? procIPv6(mappedIPv4(target.ip)) : null;
    const port = target.port.toString(16).toUpperCase().padStart(4, "0");
    for (const line of text.split("\n").slice(1)) {
      // "  sl  local_address rem_address   st ..."
      const fields = line.trim().split(/\s+/);
      if (fields.length < 4 || !BUSY_STATES.has(fields[3]!)) continue;
      const remote = fields[2]!;
      const colon = remote.lastIndexOf(":");
      if (remote.slice(colon + 1) !== port) continue;
      const ip = remote.slice(0, colon);
      if (ip === wanted || ip === mapped) count++;
    }
  }
  return readAny ? count : null;
}

function parseAddress(address: string): { ip: number[]; port: number } | null {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(address);
  if (!m) return null;
  const [, host, portText] = m;
  const port = Number(portText);
  if (!(port > 0 && port < 65536)) return null;
  if (isIPv4(host!)) return { ip: host!.split(".").map(Number), port };
  if (isIPv6(host!)) return { ip: ipv6Bytes(host!), port };
  return null;
}

function ipv6Bytes(text: string): number[] {
  const [head, tail] = text.includes("::") ? text.split("::") : [text, null];
  const words = (s: string) => (s ? s.split(":") : []);
  const expand = (parts: string[]) =>
    parts.flatMap((p) => (p.includes(".") ? [(Number(p.split(".")[0]) << 8) | Number(p.split(".")[1]), (Number(p.split(".")[2]) << 8) | Number(p.split(".")[3])] : [parseInt(p, 16)]));
  const left = expand(words(head!));
  const right = tail === null ? [] : expand(words(tail));
  const all = tail === null ? left : [...left, ...new Array(8 - left.length - right.length).fill(0), ...right];
  return all.flatMap((w) => [w >> 8, w & 0xff]);
}

function mappedIPv4(ip: number[]): number[] {
  return [...new Array(10).fill(0), 0xff, 0xff, ...ip];
}

const hex = (b: number) => b.toString(16).toUpperCase().padStart(2, "0");

/** /proc/net/tcp writes an IPv4 address as one 32-bit word in host (little-endian) order. */
function procIPv4(ip: number[]): string {
  return [...ip].reverse().map(hex).join("");
}

/** /proc/net/tcp6 writes four 32-bit words, each in host (little-endian) order. */
function procIPv6(ip: number[]): string {
  let out = "";
  for (let w = 0; w < 16; w += 4) out += ip.slice(w, w + 4).reverse().map(hex).join("");
  return out;
}
