/**
 * CaddyAdmin against the Caddy that test/host/setup.sh starts (admin API on
 * 127.0.0.1:2019), routing to hello containers from the local registry. The
 * tests use their own server ("berth-test" on 127.0.0.1:18080) so that they
 * neither need root for :80 nor disturb a `berth` server of other tests.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CaddyAdmin, CaddyError } from "../src/drivers/caddy.ts";
import { DockerEngine } from "../src/drivers/docker.ts";
import { listenerHandoff, TCP_MIGRATE_REQ } from "../src/drivers/listener-handoff.ts";

const ADMIN = process.env.BERTH_CADDY_ADMIN ?? "http://127.0.0.1:2019";
const SOCKET = process.env.BERTH_DOCKER_SOCKET ?? "/var/run/docker.sock";
const REGISTRY = process.env.BERTH_TEST_REGISTRY ?? "127.0.0.1:5000";
const INGRESS_PORT = 18080;
const TEST_LABELS = { "berth.test": "1", "berth.test.file": "caddy" };

const caddy = new CaddyAdmin(ADMIN, `127.0.0.1:${INGRESS_PORT}`, { serverName: "berth-test" });
const docker = new DockerEngine(SOCKET);
/** Host ports of running hello:v1 and hello:v2 containers. */
const upstream: { v1: string; v2: string } = { v1: "", v2: "" };
const routed: string[] = [];
let privateCaddy: ChildProcess | null = null;
let privateDir: string | null = null;

beforeAll(async () => {
  const admin = await fetch(`${ADMIN}/config/`).catch((err: Error) => err);
  if (!(admin instanceof Response) || admin.status !== 200) {
    throw new Error(`Caddy's admin API does not answer on ${ADMIN} (${admin instanceof Response ? `HTTP ${admin.status}` : String(admin.cause ?? admin.message)}): run test/host/setup.sh as root first`);
  }
  try {
    await docker.ping();
  } catch (err) {
    throw new Error(`dockerd does not answer on ${SOCKET} (${(err as Error).message}): run test/host/setup.sh as root first`);
  }
  await caddy.removeServer(); // left over from an interrupted run
  for (const tag of ["v1", "v2"] as const) {
    const image = `${REGISTRY}/berth/hello:${tag}`;
    if (!(await docker.imageExists(image))) await docker.pull(image);
    const id = await docker.create({
      name: `berth-test-caddy-${tag}-${randomUUID().slice(0, 8)}`,
      image,
      env: {},
      cmd: null,
      labels: TEST_LABELS,
      internalPort: 8080,
      cpuLimit: 0.25,
      memoryLimitMb: 32,
    });
    await docker.start(id);
    const port = (await docker.inspect(id))!.hostPort!;
    upstream[tag] = `127.0.0.1:${port}`;
    await eventually(async () => (await fetch(`http://${upstream[tag]}/`)).ok);
  }
});

afterEach(async () => {
  for (const appId of routed.splice(0)) await caddy.removeRoute(appId);
});

afterAll(async () => {
  await caddy.removeServer().catch(() => {});
  for (const c of await docker.list(TEST_LABELS).catch(() => [])) await docker.remove(c.id, { force: true });
  if (privateCaddy?.pid) {
    const exited = new Promise((r) => privateCaddy!.once("exit", r));
    privateCaddy.kill("SIGTERM");
    await exited;
  }
  if (privateDir) rmSync(privateDir, { recursive: true, force: true });
});

async function eventually(probe: () => Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 100));
  }
}

function app(): { appId: string; hostname: string } {
  const appId = `app_${randomUUID().slice(0, 8)}`;
  routed.push(appId);
  return { appId, hostname: `${appId.replace("_", "-")}-app.localhost` };
}

/** GET / through the ingress listener with a Host header (fetch cannot set Host). */
function viaCaddy(hostname: string, port = INGRESS_PORT): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/", headers: { host: hostname }, agent: false, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET http://127.0.0.1:${port}/ (Host ${hostname}) timed out`)));
    req.on("error", reject);
    req.end();
  });
}

async function serverConfig(admin = ADMIN, name = "berth-test"): Promise<any> {
  return (await fetch(`${admin}/config/apps/http/servers/${name}`)).json();
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

describe("CaddyAdmin", () => {
  it("creates its server once, with automatic HTTPS off and a 404 for unknown names", async () => {
    await caddy.ensureServer();
    await caddy.ensureServer();
    const server = await serverConfig();
    expect(server.listen).toEqual([`127.0.0.1:${INGRESS_PORT}`]);
    expect(server.automatic_https).toEqual({ disable: true });
    expect(server.routes).toHaveLength(1);
    expect(server.routes[0]["@id"]).toBe("berth-test-fallback");
    const res = await viaCaddy("nobody-app.localhost");
    expect(res.status).toBe(404);
  });

  it("routes a name to a container, replaces the route in place and removes it", async () => {
    await caddy.ensureServer();
    const { appId, hostname } = app();
    expect(await caddy.routeFor(appId)).toBeNull();

    await caddy.setRoute(appId, hostname, upstream.v1);
    expect(await caddy.routeFor(appId)).toBe(upstream.v1);
    expect(await viaCaddy(hostname)).toEqual({ status: 200, text: "hello v1\n" });

    const started = Date.now();
    await caddy.setRoute(appId, hostname, upstream.v2);
    console.log(`route switch: ${Date.now() - started} ms`);
    expect(await caddy.routeFor(appId)).toBe(upstream.v2);
    expect(await viaCaddy(hostname)).toEqual({ status: 200, text: "hello v2\n" });
    // Replaced, not duplicated; still in front of the fallback.
    const ids = (await serverConfig()).routes.map((r: any) => r["@id"]);
    expect(ids).toEqual([`berth-app-${appId}`, "berth-test-fallback"]);
    expect(await caddy.routes()).toEqual([{ appId, hostname, upstream: upstream.v2 }]);

    expect(await caddy.removeRoute(appId)).toBe(true);
    expect(await caddy.removeRoute(appId)).toBe(false);
    expect(await caddy.routeFor(appId)).toBeNull();
    expect((await viaCaddy(hostname)).status).toBe(404);
  });

  it("balances a route over several upstreams (replicas) round robin, and a dead one costs no request", async () => {
    await caddy.ensureServer();
    const { appId, hostname } = app();
    // A third address nothing listens on: a replica that died.
    const dead = `127.0.0.1:${await freePort()}`;
    await caddy.setRoute(appId, hostname, [upstream.v1, upstream.v2, dead]);
    expect(await caddy.upstreamsFor(appId)).toEqual([upstream.v1, upstream.v2, dead]);
    expect(await caddy.routeFor(appId)).toBe(upstream.v1);
    const texts = new Set<string>();
    for (let i = 0; i < 9; i++) {
      const res = await viaCaddy(hostname);
      expect(res.status).toBe(200);
      texts.add(res.text);
    }
    expect([...texts].sort()).toEqual(["hello v1\n", "hello v2\n"]);
    // Back to one upstream: the plain route of before.
    await caddy.setRoute(appId, hostname, upstream.v2);
    expect(await caddy.upstreamsFor(appId)).toEqual([upstream.v2]);
    expect((await viaCaddy(hostname)).text).toBe("hello v2\n");
    await caddy.removeRoute(appId);
    expect(await caddy.upstreamsFor(appId)).toEqual([]);
  });

  it("keeps apps apart by host name", async () => {
    await caddy.ensureServer();
    const a = app();
    const b = app();
    await caddy.setRoute(a.appId, a.hostname, upstream.v1);
    await caddy.setRoute(b.appId, b.hostname, upstream.v2);
    expect((await viaCaddy(a.hostname)).text).toBe("hello v1\n");
    expect((await viaCaddy(b.hostname)).text).toBe("hello v2\n");
    expect((await viaCaddy(a.hostname.toUpperCase())).text).toBe("hello v1\n");
    await caddy.removeRoute(a.appId);
    expect((await viaCaddy(a.hostname)).status).toBe(404);
    expect((await viaCaddy(b.hostname)).text).toBe("hello v2\n");
    // Re-ensuring the server keeps the routes.
    await caddy.ensureServer();
    expect((await viaCaddy(b.hostname)).text).toBe("hello v2\n");
  });

  it("adds a route when the server does not exist yet", async () => {
    await caddy.removeServer();
    const { appId, hostname } = app();
    await caddy.setRoute(appId, hostname, upstream.v1);
    expect(await viaCaddy(hostname)).toEqual({ status: 200, text: "hello v1\n" });
    expect((await viaCaddy("nobody-app.localhost")).status).toBe(404);
  });

  it("starts from a Caddy with nothing but its admin API, and moves the listener", async () => {
    const adminPort = await freePort();
    privateDir = mkdtempSync(join(tmpdir(), "berth-caddy-"));
    writeFileSync(join(privateDir, "caddy.json"), JSON.stringify({ admin: { listen: `127.0.0.1:${adminPort}` } }));
    privateCaddy = spawn("caddy", ["run", "--config", join(privateDir, "caddy.json")], {
      stdio: "ignore",
      env: { ...process.env, HOME: privateDir, XDG_DATA_HOME: privateDir, XDG_CONFIG_HOME: privateDir },
    });
    const admin = `http://127.0.0.1:${adminPort}`;
    await eventually(async () => (await fetch(`${admin}/config/`)).ok);

    const [first, second] = [await freePort(), await freePort()];
    const own = new CaddyAdmin(admin, `127.0.0.1:${first}`);
    await own.ensureServer();
    const { appId, hostname } = app();
    await own.setRoute(appId, hostname, upstream.v1);
    expect(await viaCaddy(hostname, first)).toEqual({ status: 200, text: "hello v1\n" });
    expect((await serverConfig(admin, "berth")).listen).toEqual([`127.0.0.1:${first}`]);

    const moved = new CaddyAdmin(admin, `127.0.0.1:${second}`);
    await moved.ensureServer();
    expect(await viaCaddy(hostname, second)).toEqual({ status: 200, text: "hello v1\n" });
    await expect(viaCaddy(hostname, first)).rejects.toThrow();
    await moved.removeRoute(appId);
  });

  it("says readably when the admin API is not there", async () => {
    const port = await freePort();
    const gone = new CaddyAdmin(`http://127.0.0.1:${port}`, ":80");
    const err = await gone.ensureServer().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CaddyError);
    expect((err as Error).message).toMatch(new RegExp(`caddy admin API at http://127.0.0.1:${port} is unreachable: ECONNREFUSED`));
  });

  // Root only (it changes the machine's setting, and puts back what it found); CI runs as root.
  it.runIf(process.getuid?.() === 0)("switches routes under new connections without a reset once the agent has turned on the listener hand-off", async () => {
    await caddy.ensureServer();
    const { appId, hostname } = app();
    await caddy.setRoute(appId, hostname, upstream.v1);
    /** Switches the route back and forth for `ms` while 4 clients request, each on a new connection; the failures. */
    const storm = async (ms: number) => {
      const until = Date.now() + ms;
      const failures: string[] = [];
      let switches = 0;
      const client = async () => {
        while (Date.now() < until) {
          const res = await viaCaddy(hostname).catch((e: NodeJS.ErrnoException) => ({ status: 0, text: e.code ?? e.message }));
          if (res.status !== 200) failures.push(res.status ? `HTTP ${res.status}` : res.text);
        }
      };
      const switcher = async () => {
        for (; Date.now() < until; switches++) await caddy.setRoute(appId, hostname, switches % 2 ? upstream.v1 : upstream.v2);
      };
      await Promise.all([switcher(), client(), client(), client(), client()]);
      return { failures, switches };
    };
    const found = readFileSync(TCP_MIGRATE_REQ, "utf8").trim();
    try {
      // The kernel's default: the storm sees the resets (so it can see them at all).
      writeFileSync(TCP_MIGRATE_REQ, "0\n");
      const off = await storm(1_500);
      expect(off.switches).toBeGreaterThan(20);
      expect(off.failures.length).toBeGreaterThan(0);
      expect(new Set(off.failures)).toEqual(new Set(["ECONNRESET"]));
      // What the agent does when it starts on a Docker host.
      expect(listenerHandoff({ turnOn: true }).state).toBe("turned-on");
      const on = await storm(1_500);
      expect(on.switches).toBeGreaterThan(20);
      expect(on.failures).toEqual([]);
    } finally {
      writeFileSync(TCP_MIGRATE_REQ, `${found}\n`);
    }
  });
});
