/**
 * The Proxmox client's connections, against a small HTTPS server of the test's own that
 * shows which connection each request came on: calls share kept-alive connections; the
 * pin is checked on each new connection; a kept connection the server closed is retried
 * at once for an idempotent call; a call that is not idempotent never goes on a kept
 * connection and is never sent twice.
 */
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ProxmoxClient, ProxmoxError } from "../src/drivers/proxmox.ts";

const TOKEN = { tokenId: "root@pam!berth", tokenSecret: "s3cret-token-value" };

function certificate(cn: string) {
  const dir = mkdtempSync(join(tmpdir(), "berth-pvecl-"));
  try {
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", `/CN=${cn}`, "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem")], { stdio: "ignore" });
    const cert = readFileSync(join(dir, "c.pem"));
    return { key: readFileSync(join(dir, "k.pem")), cert, fingerprint: new X509Certificate(cert).fingerprint256 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Seen {
  conn: number;
  method: string;
  path: string;
  /** Which request this is on its connection (1 = the first). */
  nth: number;
}

const A = certificate("node-a");
const B = certificate("node-b");
let server: Server;
let url: string;
/** Every request that reached the server, and on which connection. */
const seen: Seen[] = [];
let connections = 0;
/** TCP connections accepted, a TLS handshake the client broke off included. */
let accepted = 0;
const open = new Set<Socket>();
/** What the server does with the next requests. */
let mode: "answer" | "close-kept" | "cut-post" = "answer";

function handle(req: IncomingMessage, res: ServerResponse) {
  const sock = req.socket as Socket & { conn?: number; served?: number };
  sock.served = (sock.served ?? 0) + 1;
  const entry = { conn: sock.conn ?? 0, method: req.method ?? "", path: req.url ?? "", nth: sock.served };
  req.resume();
  req.on("end", () => {
    seen.push(entry);
    // As if the server's idle close crossed the request: the connection dies, nothing answered.
    if (mode === "close-kept" && entry.nth > 1) return void sock.destroy();
    // The request was read and (maybe) acted on, then the connection broke before the answer.
    if (mode === "cut-post" && entry.method === "POST") return void sock.destroy();
    const body = JSON.stringify({ data: { conn: entry.conn } });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
}

beforeAll(async () => {
  server = createServer({ key: A.key, cert: A.cert, keepAliveTimeout: 10_000 }, handle);
  server.on("secureConnection", (s: Socket & { conn?: number }) => {
    s.conn = ++connections;
    open.add(s);
    s.on("close", () => open.delete(s));
  });
  server.on("connection", () => accepted++);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
afterEach(() => {
  mode = "answer";
  server.setSecureContext({ key: A.key, cert: A.cert });
});

const client = () => new ProxmoxClient({ url, ...TOKEN, fingerprint: A.fingerprint }, { retryWindowMs: 0 });
const from = () => ({ requests: seen.length, connections });

describe("the Proxmox client's connections", () => {
  it("keeps one connection for calls made one after another", async () => {
    const c = client();
    try {
      const before = from();
      const conns = [];
      for (let i = 0; i < 5; i++) conns.push((await c.get<{ conn: number }>("/version")).conn);
      expect(new Set(conns).size).toBe(1);
      expect(connections - before.connections).toBe(1);
      expect(seen.slice(before.requests).map((s) => s.nth)).toEqual([1, 2, 3, 4, 5]);
    } finally {
      c.close();
    }
  });

  it("closes a kept connection itself after it idled a while", async () => {
    const c = client();
    try {
      const { conn } = await c.get<{ conn: number }>("/version");
      const sock = [...open].find((s) => (s as Socket & { conn?: number }).conn === conn);
      expect(sock).toBeDefined();
      await new Promise((r) => setTimeout(r, 2_600));
      expect(open.has(sock as Socket)).toBe(false);
    } finally {
      c.close();
    }
  });

  it("checks the pin on every new connection: a certificate changed meanwhile is refused before the request is sent", async () => {
    const c = client();
    try {
      await c.get("/version");
      server.setSecureContext({ key: B.key, cert: B.cert });
      for (const s of open) s.destroy();
      await new Promise((r) => setTimeout(r, 50));
      const before = { ...from(), accepted };
      const err = await c.get("/version").catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "CERT_FINGERPRINT_MISMATCH" });
      expect((err as Error).message).toContain(B.fingerprint);
      expect(accepted - before.accepted).toBe(1);
      // Nothing of the request (so not the token) reached the server with the wrong certificate.
      await new Promise((r) => setTimeout(r, 100));
      expect(seen.length).toBe(before.requests);
    } finally {
      c.close();
    }
  });

  it("a kept connection the server closed: an idempotent call goes again at once on a new connection", async () => {
    const c = client();
    try {
      const first = await c.get<{ conn: number }>("/version");
      mode = "close-kept";
      const before = from();
      const t0 = Date.now();
      const second = await c.put<{ conn: number }>("/nodes/pve/qemu/100/config", { cores: 2 }, { idempotent: true });
      expect(Date.now() - t0).toBeLessThan(250); // no back-off wait
      expect(second.conn).not.toBe(first.conn);
      // Sent twice: on the dead connection, then on a new one.
      expect(seen.slice(before.requests).map((s) => [s.method, s.conn === first.conn ? "kept" : "new"])).toEqual([
        ["PUT", "kept"],
        ["PUT", "new"],
      ]);
    } finally {
      c.close();
    }
  });

  it("a call that is not idempotent gets a connection of its own, and is not sent again when that connection breaks", async () => {
    const c = client();
    try {
      const kept = await c.get<{ conn: number }>("/version");
      const before = from();
      const post = await c.post<{ conn: number }>("/nodes/pve/qemu/100/status/reboot");
      expect(post.conn).not.toBe(kept.conn);
      expect(seen.slice(before.requests)).toEqual([{ conn: post.conn, method: "POST", path: "/api2/json/nodes/pve/qemu/100/status/reboot", nth: 1 }]);
      // The kept connection is still there for the idempotent calls.
      expect((await c.get<{ conn: number }>("/version")).conn).toBe(kept.conn);

      mode = "cut-post";
      const mid = from();
      const err = await c.post("/nodes/pve/qemu/100/status/reboot", {}, { deadline: Date.now() + 5_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProxmoxError);
      expect((err as ProxmoxError).code).toBe("ECONNRESET");
      expect((err as ProxmoxError).staleConnection).toBe(false);
      // The node got it once: whether it rebooted is for the caller to find out, not to do again.
      expect(seen.slice(mid.requests).map((s) => s.method)).toEqual(["POST"]);
    } finally {
      c.close();
    }
  });
});
