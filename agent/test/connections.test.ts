/**
 * Counting the host's open connections to an upstream, and a deploy's wait
 * for the previous container's requests, against real sockets on loopback.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openConnectionsTo } from "../src/drivers/connections.ts";
import { drained } from "../src/tasks/apps.ts";

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) s.close();
});

async function listen(host = "127.0.0.1"): Promise<string> {
  const server = createServer((s) => s.on("error", () => undefined));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, host, r));
  const { port } = server.address() as { port: number };
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

async function open(address: string): Promise<Socket> {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address)!;
  const socket = connect({ host: m[1], port: Number(m[2]) });
  sockets.push(socket);
  await new Promise<void>((r, j) => socket.once("connect", r).once("error", j));
  return socket;
}

const noCaddyCount = { inFlight: async () => 0 };

describe("openConnectionsTo", () => {
  it("counts the connections open to an IPv4 address, and only those", async () => {
    const a = await listen();
    const b = await listen();
    expect(await openConnectionsTo(a)).toBe(0);
    const first = await open(a);
    await open(a);
    await open(b);
    expect(await openConnectionsTo(a)).toBe(2);
    expect(await openConnectionsTo(b)).toBe(1);
    first.destroy();
    await new Promise((r) => setTimeout(r, 20));
    expect(await openConnectionsTo(a)).toBe(1);
  });

  it("reads IPv6 addresses from tcp6", async () => {
    const a = await listen("::1").catch(() => null);
    if (!a) return; // no IPv6 loopback on this machine
    await open(a);
    expect(await openConnectionsTo(a)).toBe(1);
  });

  it("answers null when it cannot read the socket tables, and for an address that is not an IP and port", async () => {
    expect(await openConnectionsTo("127.0.0.1:80", ["/nonexistent/tcp"])).toBeNull();
    expect(await openConnectionsTo("app.internal:80")).toBeNull();
  });

  it("reads the kernel's format: little-endian words, hex port, state", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-conn-"));
    try {
      const table = join(dir, "tcp");
      writeFileSync(
        table,
        [
          "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
          "   0: 010011AC:9C40 020011AC:1F90 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 20 4 30 10 -1",
          "   1: 010011AC:9C41 020011AC:1F90 06 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 30 10 -1",
          "   2: 010011AC:9C42 020011AC:1F90 02 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1",
          "   3: 010011AC:9C43 030011AC:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1",
        ].join("\n"),
      );
      // 172.17.0.2:8080 — one ESTABLISHED, one SYN_SENT; the TIME_WAIT and the other container do not count.
      expect(await openConnectionsTo("172.17.0.2:8080", [table])).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("drained", () => {
  it("waits while a connection to the previous upstream is open, and answers once it closes", async () => {
    const previous = await listen();
    const socket = await open(previous);
    setTimeout(() => socket.destroy(), 300);
    const t0 = Date.now();
    expect(await drained(noCaddyCount, previous, 5_000, 50)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
  });

  it("also waits for Caddy's own count, and gives up at the timeout", async () => {
    const previous = await listen();
    const t0 = Date.now();
    expect(await drained({ inFlight: async () => 1 }, previous, 200, 50)).toBe(false);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(200);
    expect(await drained(noCaddyCount, previous, 1_000, 50)).toBe(true);
  });
});
