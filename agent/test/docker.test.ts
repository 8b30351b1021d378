/**
 * DockerEngine against the real dockerd and the local registry that
 * test/host/setup.sh starts (run it as root first).
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { DockerEngine, DockerError, type ContainerEvent, type ContainerSpec } from "../src/drivers/docker.ts";

const SOCKET = process.env.BERTH_DOCKER_SOCKET ?? "/var/run/docker.sock";
const REGISTRY = process.env.BERTH_TEST_REGISTRY ?? "127.0.0.1:5000";
const HELLO_V1 = `${REGISTRY}/berth/hello:v1`;
const BROKEN = `${REGISTRY}/berth/broken:v1`;
/** hello:v1 under a name no other test uses: this file removes its local copy. */
const PULLTEST = `${REGISTRY}/berth/pulltest:v1`;
const SECRET = `s3cret-${randomUUID()}`;
/** Every container this file makes carries these; afterEach removes them. */
const TEST_LABELS = { "berth.test": "1", "berth.test.file": "docker" };
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

const docker = new DockerEngine(SOCKET);
const run = promisify(execFile);

beforeAll(async () => {
  try {
    await docker.ping();
  } catch (err) {
    throw new Error(`dockerd does not answer on ${SOCKET} (${(err as Error).message}): run test/host/setup.sh as root first`);
  }
  const registry = await fetch(`http://${REGISTRY}/v2/`).catch((err: Error) => err);
  if (!(registry instanceof Response) || registry.status !== 200) {
    throw new Error(`no registry on http://${REGISTRY}/v2/ (${registry instanceof Response ? `HTTP ${registry.status}` : String(registry.cause ?? registry.message)}): run test/host/setup.sh as root first`);
  }
  for (const [repo, tag] of [["hello", "v1"], ["broken", "v1"], ["pulltest", "v1"]]) {
    const images = await fetch(`http://${REGISTRY}/v2/berth/${repo}/tags/list`).then((r) => r.json() as Promise<{ tags?: string[] }>);
    if (!images.tags?.includes(tag!)) throw new Error(`${REGISTRY}/berth/${repo}:${tag} is not in the registry: run test/host/setup.sh as root first`);
  }
});

afterEach(async () => {
  for (const c of await docker.list(TEST_LABELS)) await docker.remove(c.id, { force: true });
});

function spec(over: Partial<ContainerSpec> = {}): ContainerSpec {
  const appId = `app_${randomUUID().slice(0, 8)}`;
  return {
    name: `berth-test-${appId}`,
    image: HELLO_V1,
    env: { GREETING: SECRET },
    cmd: null,
    labels: { ...TEST_LABELS, "berth.app": appId, "berth.deployment": `dep_${appId}`, "berth.job": `job_${appId}` },
    internalPort: 8080,
    cpuLimit: 0.5,
    memoryLimitMb: 64,
    restartPolicy: "unless-stopped",
    ...over,
  };
}

async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

async function get(port: number): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2_000) });
  return { status: res.status, text: await res.text() };
}

/** Pulls when needed, creates, starts and waits until httpd answers. */
async function startHello(over: Partial<ContainerSpec> = {}) {
  const s = spec(over);
  if (!(await docker.imageExists(s.image))) await docker.pull(s.image);
  const id = await docker.create(s);
  await docker.start(id);
  const info = await docker.inspect(id);
  const port = info!.hostPort!;
  const first = await waitFor("httpd to answer", async () => {
    const r = await get(port);
    return r.status === 200 ? r : null;
  });
  return { id, spec: s, port, first };
}

describe("images", () => {
  it("pulls a pushed image and says readably when a tag is missing", async () => {
    await docker.removeImage(PULLTEST);
    expect(await docker.imageExists(PULLTEST)).toBe(false);
    expect(await docker.removeImage(PULLTEST)).toBe(false);

    const progress: string[] = [];
    const started = Date.now();
    await docker.pull(PULLTEST, null, { onProgress: (p) => progress.push(p.status) });
    console.log(`pull of ${PULLTEST}: ${Date.now() - started} ms`);
    expect(await docker.imageExists(PULLTEST)).toBe(true);
    expect(progress.join("\n")).toMatch(/Downloaded newer image/);

    const missing = `${REGISTRY}/berth/hello:no-such-tag`;
    const err = await docker.pull(missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DockerError);
    expect((err as Error).message).toMatch(new RegExp(`^image ${missing.replace(/[.:/]/g, "\\$&")} not found`));

    const noRepo = await docker.pull(`${REGISTRY}/berth/nothing-here:v1`).catch((e: unknown) => e);
    expect((noRepo as Error).message).toMatch(/^image 127\.0\.0\.1:5000\/berth\/nothing-here:v1 not found/);

    // Credentials travel in X-Registry-Auth; a registry without auth ignores them.
    await docker.pull(PULLTEST, { username: "someone", password: SECRET, serveraddress: REGISTRY });
    expect(await docker.removeImage(PULLTEST)).toBe(true);
  });
});

describe("containers", () => {
  it("creates with labels, limits and a loopback port, and serves hello v1", async () => {
    const { id, spec: s, port, first } = await startHello();
    expect(first.text).toBe("hello v1\n");

    const info = (await docker.inspect(id))!;
    expect(info.id).toBe(id);
    expect(info.name).toBe(s.name);
    expect(info.state).toMatchObject({ status: "running", running: true, exitCode: 0 });
    expect(info.labels).toMatchObject(s.labels);
    expect(info.memory).toBe(64 * 1024 * 1024);
    expect(info.memorySwap).toBe(64 * 1024 * 1024);
    expect(info.nanoCpus).toBe(500_000_000);
    expect(info.hostPort).toBe(port);
    // Published on loopback only.
    const { stdout } = await run("docker", ["port", id]);
    expect(stdout.trim().split("\n")).toEqual([`8080/tcp -> 127.0.0.1:${port}`]);
    // The env reached the container.
    const env = await run("docker", ["exec", id, "sh", "-c", "echo $GREETING"]);
    expect(env.stdout.trim()).toBe(SECRET);

    expect(await docker.inspect("berth-test-no-such-container")).toBeNull();
  });

  it("runs a string command under sh -c and never echoes env values in errors", async () => {
    const { id, spec: s } = await startHello({ cmd: 'echo "from-cmd $GREETING"; exec /bin/httpd -f -v -p 8080 -h /www' });
    const lines = await docker.logs(id, { tail: 20 });
    expect(lines.some((l) => l.stream === "stdout" && l.text === `from-cmd ${SECRET}`)).toBe(true);

    const dup = await docker.create({ ...s }).catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(DockerError);
    expect((dup as DockerError).status).toBe(409);
    expect((dup as Error).message).not.toContain(SECRET);

    const badName = await docker.create(spec({ env: { "A=B": SECRET } })).catch((e: unknown) => e);
    expect((badName as Error).message).toMatch(/invalid env var name/);
    expect((badName as Error).message).not.toContain(SECRET);
  });

  it("updates memory and CPU live: same container, still running, not restarted", async () => {
    const { id, port } = await startHello();
    const before = (await docker.inspect(id))!;
    await docker.update(id, { cpuLimit: 1.5, memoryLimitMb: 128 });
    const after = (await docker.inspect(id))!;
    expect(after.id).toBe(id);
    expect(after.memory).toBe(128 * 1024 * 1024);
    expect(after.memorySwap).toBe(128 * 1024 * 1024);
    expect(after.nanoCpus).toBe(1_500_000_000);
    expect(after.state.running).toBe(true);
    expect(after.state.startedAt).toBe(before.state.startedAt);
    expect((await get(port)).text).toBe("hello v1\n");
    // And down again.
    await docker.update(id, { cpuLimit: 0.25, memoryLimitMb: 32 });
    expect((await docker.inspect(id))!).toMatchObject({ memory: 32 * 1024 * 1024, nanoCpus: 250_000_000 });
    expect((await docker.stats(id)).memory_max_mb).toBe(32);
  });

  it("returns logs with ISO times and stdout and stderr kept apart, by tail, since and follow", async () => {
    const { id, port } = await startHello();
    await get(port);
    const lines = await waitFor("the request line", async () => {
      const l = await docker.logs(id, { tail: 50 });
      return l.some((x) => x.stream === "stderr" && /response:200/.test(x.text)) ? l : null;
    });
    const hello = lines.find((l) => l.text === "hello v1 listening on :8080");
    expect(hello).toMatchObject({ stream: "stdout" });
    const request = lines.find((l) => /response:200/.test(l.text))!;
    expect(request.stream).toBe("stderr");
    for (const l of lines) {
      expect(l.time).toMatch(ISO);
      expect(Math.abs(Date.parse(l.time) - Date.now())).toBeLessThan(60_000);
      expect(l.text).not.toMatch(/^\d{4}-\d\d-\d\dT/);
    }
    expect(await docker.logs(id, { tail: 1 })).toHaveLength(1);
    expect(await docker.logs(id, { since: new Date(Date.now() + 60_000) })).toEqual([]);

    // Follow: a new request shows up on the open stream.
    const ac = new AbortController();
    const seen: string[] = [];
    const following = (async () => {
      for await (const l of docker.logs(id, { follow: true, tail: 0, signal: ac.signal })) {
        seen.push(`${l.stream} ${l.text}`);
        if (/response:200/.test(l.text)) ac.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    await get(port);
    await Promise.race([following, new Promise((_, reject) => setTimeout(() => reject(new Error(`follow saw ${JSON.stringify(seen)}`)), 5_000))]);
    expect(seen.some((s) => s.startsWith("stderr ") && /response:200/.test(s))).toBe(true);
  });

  it("reports stats as docker stats does", async () => {
    const { id, port } = await startHello();
    for (let i = 0; i < 5; i++) await get(port);
    const started = Date.now();
    const s = await docker.stats(id);
    console.log(`stats: ${JSON.stringify(s)} in ${Date.now() - started} ms`);
    expect(s.cpu_percent).toBeGreaterThanOrEqual(0);
    expect(s.cpu_percent).toBeLessThan(100 * 64);
    expect(s.memory_mb).toBeGreaterThan(0);
    expect(s.memory_mb).toBeLessThan(64);
    expect(s.memory_max_mb).toBe(64);
    expect(s.net_rx_bytes).toBeGreaterThan(0);
    expect(s.net_tx_bytes).toBeGreaterThan(0);
  });

  it("lists containers by label", async () => {
    const { id, spec: s } = await startHello();
    const found = await docker.list({ "berth.app": s.labels["berth.app"]! });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ id, names: [s.name], image: HELLO_V1, state: "running" });
    expect(found[0]!.labels).toMatchObject(s.labels);
    expect(await docker.list({ "berth.app": "app_nobody" })).toEqual([]);
  });

  it("streams stop and die events, then stops and removes", async () => {
    const { id, spec: s } = await startHello();
    const ac = new AbortController();
    const events: ContainerEvent[] = [];
    const watching = (async () => {
      for await (const e of docker.events({ labels: { "berth.app": s.labels["berth.app"]! }, signal: ac.signal })) {
        events.push(e);
        if (e.action === "stop") ac.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    await docker.stop(id, 10);
    const stopMs = Date.now() - started;
    await Promise.race([watching, new Promise((_, reject) => setTimeout(() => reject(new Error(`events: ${JSON.stringify(events)}`)), 5_000))]);
    expect(stopMs).toBeLessThan(5_000); // Docker's init passes SIGTERM on: no 10 s wait for SIGKILL.

    const die = events.find((e) => e.action === "die")!;
    expect(die).toMatchObject({ id, name: s.name, image: HELLO_V1, exitCode: 143 });
    expect(die.labels).toMatchObject(s.labels);
    expect(die.labels).not.toHaveProperty("name");
    expect(die.time).toMatch(ISO);
    expect(events.map((e) => e.action)).toContain("stop");

    const stopped = (await docker.inspect(id))!;
    expect(stopped.state).toMatchObject({ running: false, status: "exited", exitCode: 143 });
    expect(stopped.hostPort).toBeNull();
    await docker.stop(id, 1); // already stopped: fine

    expect(await docker.remove(id)).toBe(true);
    expect(await docker.inspect(id)).toBeNull();
    expect(await docker.remove(id)).toBe(false);
  });

  it("shows why a container that exits at once failed", async () => {
    if (!(await docker.imageExists(BROKEN))) await docker.pull(BROKEN);
    const id = await docker.create(spec({ image: BROKEN, restartPolicy: "no" }));
    await docker.start(id);
    const info = await waitFor("the container to exit", async () => {
      const i = await docker.inspect(id);
      return i && !i.state.running && i.state.status === "exited" ? i : null;
    });
    expect(info.state.exitCode).toBe(1);
    const lines = await docker.logs(id, { tail: 5 });
    expect(lines.map((l) => [l.stream, l.text])).toContainEqual(["stderr", "boom"]);
  });

  it("runs an interactive program with a TTY: input, output, resize and its exit status", async () => {
    const { id } = await startHello();
    const session = await docker.exec(id, { cmd: ["/bin/sh"], cols: 80, rows: 24 });
    let out = "";
    session.stream.on("data", (c: Buffer) => {
      out += c.toString("utf8");
    });
    const ended = new Promise((r) => session.stream.once("close", r));
    // The TTY echoes the input back; only the shell's answer has the sum in it.
    session.write("echo sum=$((40+2))\n");
    await waitFor("the shell's answer", async () => /sum=42/.test(out));
    await session.resize(100, 40);
    session.write("busybox stty size\n");
    await waitFor("the new window size", async () => /\b40 100\b/.test(out));
    expect(await session.exitCode()).toBeNull();
    session.write("exit 3\n");
    await ended;
    expect(await waitFor("the exit status", async () => (await session.exitCode()) ?? false)).toBe(3);
  });
});

/** A fake dockerd on a unix socket, for what the real one does not readily show. */
describe("protocol (fake dockerd)", () => {
  async function fake(handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>) {
    const dir = mkdtempSync(join(tmpdir(), "berth-fake-docker-"));
    const socketPath = join(dir, "docker.sock");
    const server = createServer((req, res) => {
      if (req.url === "/version") return void res.end(JSON.stringify({ ApiVersion: "1.47", MinAPIVersion: "1.24" }));
      void handler(req, res);
    });
    await new Promise<void>((r) => server.listen(socketPath, r));
    return {
      engine: new DockerEngine(socketPath),
      close: async () => {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }

  function frame(stream: 1 | 2, text: string): Buffer {
    const payload = Buffer.from(text, "utf8");
    const header = Buffer.alloc(8);
    header[0] = stream;
    header.writeUInt32BE(payload.length, 4);
    return Buffer.concat([header, payload]);
  }

  it("reads a pull error from inside the progress stream, and sends credentials as X-Registry-Auth", async () => {
    let seen: { url: string; auth: string } | null = null;
    const f = await fake((req, res) => {
      seen = { url: req.url!, auth: String(req.headers["x-registry-auth"] ?? "") };
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"status":"Pulling from berth/x","id":"v1"}\r\n');
      res.end('{"errorDetail":{"message":"unauthorized: authentication required"},"error":"unauthorized: authentication required"}\r\n');
    });
    try {
      const err = await f.engine.pull("reg.example:5000/berth/x:v1", { username: "u", password: SECRET, serveraddress: "reg.example:5000" }).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/^pull of reg\.example:5000\/berth\/x:v1 refused by the registry: credentials missing or wrong/);
      expect((err as Error).message).not.toContain(SECRET);
      // Negotiated down to the newest version the client knows; tag split off; never "all tags".
      expect(seen!.url).toBe("/v1.45/images/create?fromImage=reg.example%3A5000%2Fberth%2Fx&tag=v1");
      const decoded = JSON.parse(Buffer.from(seen!.auth.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("utf8"));
      expect(decoded).toEqual({ username: "u", password: SECRET, serveraddress: "reg.example:5000" });
      expect(seen!.auth.length % 4).toBe(0); // padded: Docker 20.10 wants it

      await f.engine.pull("plain").catch(() => {});
      expect(seen!.url).toBe("/v1.45/images/create?fromImage=plain&tag=latest");
    } finally {
      await f.close();
    }
  });

  it("demultiplexes log frames split anywhere, with lines spanning frames", async () => {
    const body = Buffer.concat([
      frame(1, "2026-01-02T03:04:05.123456789Z first line\n2026-01-02T03:04:05.2Z second "),
      frame(2, "2026-01-02T03:04:06.000000001Z an error é\n"),
      frame(1, "half\n"),
      frame(1, "2026-01-02T03:04:07Z no newline at the end"),
    ]);
    const f = await fake(async (req, res) => {
      res.writeHead(200, { "content-type": "application/vnd.docker.raw-stream" });
      for (let i = 0; i < body.length; i += 3) {
        res.write(body.subarray(i, i + 3));
        if (i % 30 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      res.end();
    });
    try {
      expect(await f.engine.logs("abc", { tail: 10 })).toEqual([
        // subMs: Docker's stamp below the millisecond, in nanoseconds (the follower tells repeats by it).
        { time: "2026-01-02T03:04:05.123Z", stream: "stdout", text: "first line", subMs: 456789 },
        { time: "2026-01-02T03:04:06.000Z", stream: "stderr", text: "an error é", subMs: 1 },
        { time: "2026-01-02T03:04:05.200Z", stream: "stdout", text: "second half", subMs: 0 },
        { time: "2026-01-02T03:04:07.000Z", stream: "stdout", text: "no newline at the end", subMs: 0 },
      ]);
    } finally {
      await f.close();
    }
  });

  it("reads a TTY container's raw log stream as stdout", async () => {
    const f = await fake((req, res) => {
      res.writeHead(200);
      res.end("2026-01-02T03:04:05Z tty line\r\n2026-01-02T03:04:06Z next\r\n");
    });
    try {
      expect(await f.engine.logs("abc")).toEqual([
        { time: "2026-01-02T03:04:05.000Z", stream: "stdout", text: "tty line", subMs: 0 },
        { time: "2026-01-02T03:04:06.000Z", stream: "stdout", text: "next", subMs: 0 },
      ]);
    } finally {
      await f.close();
    }
  });

  it("says readably when there is no socket", async () => {
    const err = await new DockerEngine("/nonexistent/docker.sock").ping().catch((e: unknown) => e);
    expect((err as Error).message).toBe("docker at /nonexistent/docker.sock: no socket there (is dockerd running?)");
  });
});
