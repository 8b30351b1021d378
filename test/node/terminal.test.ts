/**
 * A real shell in a real app container through the whole path: Dockup's exec socket on a
 * real `wrangler dev`, the session's TerminalDO, a real agent and dockerd (test/host/setup.sh
 * starts dockerd, the registry and Caddy). Type and read the echo, resize, Ctrl-C a running
 * `sleep`, drop the socket and come back to what was missed, exit with a status.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentProcess, startAgent } from "./support/agent";
import { type Client, signedUp, waitForJob } from "./support/client";
import { type DevServer, freePort, startDevServer } from "./support/dev-server";

const IMAGE = "127.0.0.1:5000/berth/hello:v1";

let server: DevServer;
let api: Client;
let token: string;
let projectId: string;
let agent: AgentProcess;
let appId: string;
const dirs: string[] = [];

/** One exec socket as a client sees it: the output as text, the server's control messages, how it closed. */
class Terminal {
  readonly ws: WebSocket;
  readonly control: any[] = [];
  private out = Buffer.alloc(0);
  closed: { code: number; reason: string } | null = null;
  readonly opened: Promise<void>;

  constructor(query: string) {
    this.ws = new WebSocket(`${server.url.replace(/^http/, "ws")}/api/v1/apps/${appId}/exec?token=${encodeURIComponent(token)}${query}`);
    this.ws.binaryType = "arraybuffer";
    this.opened = new Promise((resolve, reject) => {
      this.ws.addEventListener("open", () => resolve());
      this.ws.addEventListener("error", () => reject(new Error("exec socket failed to open")));
    });
    this.ws.addEventListener("message", (e) => {
      if (typeof e.data === "string") this.control.push(JSON.parse(e.data));
      else this.out = Buffer.concat([this.out, Buffer.from(e.data as ArrayBuffer)]);
    });
    this.ws.addEventListener("close", (e) => {
      this.closed = { code: e.code, reason: e.reason };
    });
  }

  get output() {
    return this.out.toString("utf8");
  }

  get bytes() {
    return this.out.length;
  }

  type(text: string) {
    this.ws.send(text);
  }

  async waitFor(pattern: RegExp, timeoutMs = 15_000) {
    const end = Date.now() + timeoutMs;
    while (!pattern.test(this.output)) {
      if (Date.now() > end) throw new Error(`terminal output never matched ${pattern}:\n${JSON.stringify(this.output.slice(-2000))}\n${agent.output().slice(-2000)}`);
      if (this.closed) throw new Error(`terminal closed (${this.closed.code} ${this.closed.reason}) before ${pattern}:\n${JSON.stringify(this.output.slice(-2000))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async waitClosed(timeoutMs = 15_000) {
    const end = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > end) throw new Error("terminal did not close");
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.closed;
  }
}

beforeAll(async () => {
  server = await startDevServer({ env: { TERMINAL_GRACE_SECONDS: "20" } });
  let slug: string;
  ({ api, slug, token } = await signedUp(server.url));
  projectId = (await api.call("GET", "/projects")).body[0].id;
  const host = await api.call("POST", `/org/${slug}/hosts`, { name: "docker-term", kind: "docker" });
  expect(host.status).toBe(201);
  const stateDir = mkdtempSync(join(tmpdir(), "berth-term-"));
  dirs.push(stateDir);
  agent = startAgent(["--url", server.url, "--state-dir", stateDir, "--join-token", host.body.join_token, "--ingress-listen", `127.0.0.1:${await freePort()}`]);
  await agent.waitFor(/connected transport=websocket/);
  const created = await api.call("POST", `/projects/${projectId}/apps`, { name: `Term ${Date.now().toString(36)}`, image: IMAGE, internal_port: 8080, memory_limit: 64 });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  appId = created.body.id;
  const dep = await api.call("POST", `/apps/${appId}/deploy`);
  expect(dep.status, JSON.stringify(dep.body)).toBe(202);
  const job = await waitForJob(api, projectId, dep.body.job.id, { context: () => agent.output().slice(-3000) });
  expect(job.status, job.error).toBe("succeeded");
}, 240_000);

afterAll(async () => {
  if (appId) {
    const ids = execFileSync("docker", ["ps", "-aq", "--filter", `label=berth.app=${appId}`], { encoding: "utf8" }).split("\n").filter(Boolean);
    if (ids.length) execFileSync("docker", ["rm", "-f", ...ids]);
    await fetch(`http://127.0.0.1:2019/id/berth-app-${appId}`, { method: "DELETE" }).catch(() => undefined);
  }
  await agent?.kill("SIGTERM");
  await server?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("a terminal in a running app", () => {
  it("types, echoes, resizes, interrupts, resumes with what was missed, and exits with the program's status", async () => {
    const term = new Terminal("&cols=80&rows=24");
    await term.opened;
    term.type("echo sum=$((40+2))\n");
    // The TTY echoes what was typed; only the shell's answer has the sum.
    await term.waitFor(/sum=42/);
    const session = term.control[0];
    expect(session).toMatchObject({ type: "session", mode: "write", offset: 0 });

    term.ws.send(JSON.stringify({ type: "resize", cols: 100, rows: 40 }));
    term.type("busybox stty size\n");
    await term.waitFor(/\b40 100\b/);

    // Ctrl-C reaches the program: the sleep ends long before its 30 s.
    term.type("sleep 30; echo slept\n");
    await new Promise((r) => setTimeout(r, 500));
    const interrupted = Date.now();
    term.type("\x03");
    term.type("echo after=$((1+1))\n");
    await term.waitFor(/after=2/, 10_000);
    expect(Date.now() - interrupted).toBeLessThan(5_000);

    // The socket drops; output goes on meanwhile; the same user comes back for exactly what they missed.
    term.type("sleep 1; echo missed=$((3*3))\n");
    await term.waitFor(/missed=\$\(\(3\*3\)\)/);
    const had = term.bytes;
    term.ws.close(1000);
    await term.waitClosed();
    await new Promise((r) => setTimeout(r, 2_000));
    const back = new Terminal(`&session=${session.session_id}&since=${had}`);
    await back.opened;
    await back.waitFor(/missed=9/);
    expect(back.control[0]).toMatchObject({ type: "session", mode: "write", offset: had, skipped: 0 });
    expect(back.output).not.toContain("sum=42");

    back.type("exit 3\n");
    expect(await back.waitClosed()).toEqual({ code: 1000, reason: "exited with status 3" });
    expect(back.control.at(-1)).toEqual({ type: "exit", code: 3 });

    // The session's end is audited by its Durable Object as it closes.
    const slug = (await api.call("GET", "/orgs")).body.orgs[0].slug;
    let ended = "";
    for (let i = 0; i < 50 && !ended.includes(session.session_id); i++) {
      ended = JSON.stringify((await api.call("GET", `/org/${slug}/audit?action=app.exec.end`)).body);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(ended).toContain(session.session_id);
    expect(ended).toContain("duration_ms");
  });

  it("closes with a reason when the app is not running", async () => {
    const stop = await api.call("POST", `/apps/${appId}/stop`);
    expect(stop.status, JSON.stringify(stop.body)).toBe(202);
    const job = await waitForJob(api, projectId, stop.body.job.id);
    expect(job.status, job.error).toBe("succeeded");
    const term = new Terminal("");
    expect(await term.waitClosed()).toEqual({ code: 4409, reason: "the app is not running" });
  });
});
