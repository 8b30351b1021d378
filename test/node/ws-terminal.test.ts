/**
 * DevPocket's `/ws/terminal` through the whole path: a real `wrangler dev`, the session's
 * TerminalDO, a real agent, the loopback OpenSSH server (test/host/setup.sh: 127.0.0.1:2222,
 * user berthssh, the password in /tmp/berth-host/ssh/password) and dockerd for the host shell
 * (its helper container from the local registry's busybox-based image). Both shells are typed
 * into, take Ctrl-C of a running `sleep`; the host shell is also dropped and rejoined.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentProcess, startAgent } from "./support/agent";
import { signedUp } from "./support/client";
import { type DevServer, freePort, startDevServer } from "./support/dev-server";

const PASSWORD = readFileSync("/tmp/berth-host/ssh/password", "utf8").trim();
const HELPER_IMAGE = "127.0.0.1:5000/berth/hello:v1";

let server: DevServer;
let token: string;
let agent: AgentProcess;
const dirs: string[] = [];

/** One `/ws/terminal` socket as DevPocket's client sees it: JSON frames, the output as text. */
class Terminal {
  readonly ws: WebSocket;
  readonly frames: any[] = [];
  closed: { code: number; reason: string } | null = null;
  readonly opened: Promise<void>;

  /** `query`: more parameters, e.g. `&session=…&since=…` to rejoin a session. */
  constructor(query = "") {
    this.ws = new WebSocket(`${server.url.replace(/^http/, "ws")}/api/v1/ws/terminal?token=${encodeURIComponent(token)}${query}`);
    this.opened = new Promise((resolve, reject) => {
      this.ws.addEventListener("open", () => resolve());
      this.ws.addEventListener("error", () => reject(new Error("terminal socket failed to open")));
    });
    this.ws.addEventListener("message", (e) => this.frames.push(JSON.parse(e.data as string)));
    this.ws.addEventListener("close", (e) => {
      this.closed = { code: e.code, reason: e.reason };
    });
  }

  send(message: unknown) {
    this.ws.send(JSON.stringify(message));
  }

  /** Output bytes received, as `since` counts them (the shells here write UTF-8). */
  get bytes() {
    return Buffer.byteLength(this.output, "utf8");
  }

  get output() {
    return this.frames
      .filter((f) => f.type === "pty_output")
      .map((f) => f.data)
      .join("");
  }

  async frame(type: string, timeoutMs = 20_000) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find((x) => x.type === type || x.type === "error");
      if (f && f.type !== type) throw new Error(`${type} expected, got ${JSON.stringify(f)}\n${agent.output().slice(-2000)}`);
      if (f) return f;
      if (Date.now() > end || this.closed) throw new Error(`no ${type} frame (${JSON.stringify(this.closed)}): ${JSON.stringify(this.frames)}\n${agent.output().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Ctrl-C reaches the running program: a `sleep 30` is interrupted, the shell takes the next
   * command at once, and the rest of the interrupted line (`echo slept`) never runs. Returns
   * where in the output this began.
   */
  async interruptSleep(): Promise<number> {
    const from = this.output.length;
    this.send({ type: "command", data: "sleep 30; echo slept" });
    // Time for the shell to start `sleep`, so the Ctrl-C lands on it rather than on the prompt.
    await new Promise((r) => setTimeout(r, 300));
    const interrupted = Date.now();
    this.send({ type: "pty_input", data: "\u0003" });
    this.send({ type: "command", data: "echo after=$((1+1))" });
    await this.waitFor(/after=2/, from);
    expect(Date.now() - interrupted).toBeLessThan(5_000);
    // The TTY echoed the command line; the shell never printed its "slept".
    expect(this.output.slice(from)).not.toMatch(/(^|\n)slept\r?\n/);
    return from;
  }

  /** Waits for the output after `from` to match. */
  async waitFor(pattern: RegExp, from = 0, timeoutMs = 15_000) {
    const end = Date.now() + timeoutMs;
    while (!pattern.test(this.output.slice(from))) {
      if (Date.now() > end) throw new Error(`output never matched ${pattern}:\n${JSON.stringify(this.output.slice(-2000))}\n${agent.output().slice(-2000)}`);
      if (this.closed) throw new Error(`closed (${this.closed.code} ${this.closed.reason}) before ${pattern}:\n${JSON.stringify(this.output.slice(-2000))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

beforeAll(async () => {
  server = await startDevServer();
  let api: Awaited<ReturnType<typeof signedUp>>["api"];
  let slug: string;
  ({ api, slug, token } = await signedUp(server.url));
  const host = await api.call("POST", `/org/${slug}/hosts`, { name: "docker-wsterm", kind: "docker" });
  expect(host.status).toBe(201);
  const stateDir = mkdtempSync(join(tmpdir(), "berth-wsterm-"));
  dirs.push(stateDir);
  agent = startAgent([
    "--url", server.url, "--state-dir", stateDir, "--join-token", host.body.join_token,
    "--ingress-listen", `127.0.0.1:${await freePort()}`, "--host-shell-image", HELPER_IMAGE,
  ]);
  await agent.waitFor(/connected transport=websocket/);
}, 180_000);

afterAll(async () => {
  await agent?.kill("SIGTERM");
  await server?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("/ws/terminal with the real agent", () => {
  it("connect_ssh: a password shell on the loopback sshd that echoes, resizes and takes Ctrl-C", async () => {
    const term = new Terminal();
    await term.opened;
    term.send({ type: "connect_ssh", config: { host: "127.0.0.1", port: 2222, username: "berthssh", password: PASSWORD } });
    const connected = await term.frame("ssh_connected");
    expect(connected).toMatchObject({ type: "ssh_connected", session_id: expect.stringMatching(/^trm_/), host_key_fingerprint: expect.stringMatching(/^SHA256:/) });

    term.send({ type: "pty_input", data: "echo h''i\n" });
    // The TTY echoes what was typed (h''i); only the shell's answer says hi.
    await term.waitFor(/\bhi\r?\n/);

    const from = term.output.length;
    term.send({ type: "resize_pty", cols: 120, rows: 40 });
    term.send({ type: "command", data: "stty size" });
    await term.waitFor(/40 120/, from);

    await term.interruptSleep();

    term.send({ type: "command", data: "exit" });
    const ended = await term.frame("session_ended");
    expect(ended).toMatchObject({ session_id: connected.session_id, exit_code: 0 });
    expect(JSON.stringify(term.frames)).not.toContain(PASSWORD);
    expect(agent.output()).not.toContain(PASSWORD);
  }, 60_000);

  it("connect_ssh: a key that is not the one expected is refused with a clear error frame, and the socket may try again", async () => {
    const term = new Terminal();
    await term.opened;
    term.send({ type: "connect_ssh", config: { host: "127.0.0.1", port: 2222, username: "berthssh", password: PASSWORD, host_key_fingerprint: "SHA256:not-this-one" } });
    const refused = await term.frame("error");
    expect(refused).toMatchObject({ type: "error", code: "host_key_mismatch", message: expect.stringMatching(/host key is SHA256:\S+, not the pinned SHA256:not-this-one/) });
    term.frames.length = 0;
    term.send({ type: "connect_ssh", config: { host: "127.0.0.1", port: 2222, username: "berthssh", password: `${PASSWORD}-wrong` } });
    expect(await term.frame("error")).toMatchObject({ code: "ssh_auth_failed" });
    expect(term.closed).toBeNull();
    expect(agent.output()).not.toContain(PASSWORD);
  }, 60_000);

  it("create_pty: a root shell on the Docker host that takes Ctrl-C, survives a dropped socket with what it missed, and removes its helper", async () => {
    const term = new Terminal();
    await term.opened;
    term.send({ type: "create_pty" });
    const created = await term.frame("pty_created", 60_000);
    expect(created).toMatchObject({ type: "pty_created", session_id: expect.stringMatching(/^trm_/) });
    const helpers = () => execFileSync("docker", ["ps", "-aq", "--filter", `label=berth.host-shell=${created.session_id}`], { encoding: "utf8" }).trim();
    expect(helpers()).not.toBe("");

    term.send({ type: "command", data: "echo $((6*7)); cat /proc/1/comm" });
    await term.waitFor(/\b42\r?\n/);

    let from = await term.interruptSleep();

    // The socket drops while the shell is about to write; its opener rejoins with what it had.
    term.send({ type: "command", data: "sleep 1; echo missed=$((3*4))" });
    await term.waitFor(/missed=\$\(\(3\*4\)\)/, from); // the TTY's echo of the line, not its output
    const since = term.bytes;
    term.ws.close(1000, "network gone");
    await new Promise((r) => setTimeout(r, 1_500));
    expect(term.output).not.toMatch(/missed=12/);
    const back = new Terminal(`&session=${created.session_id}&since=${since}`);
    await back.opened;
    expect(await back.frame("session")).toEqual({ type: "session", session_id: created.session_id, mode: "write", offset: since, skipped: 0 });
    expect(await back.frame("pty_created")).toEqual(created);
    await back.waitFor(/missed=12\r?\n/);
    expect(back.frames.findIndex((f) => f.type === "pty_output")).toBeGreaterThan(back.frames.findIndex((f) => f.type === "pty_created"));
    from = back.output.length;
    back.send({ type: "command", data: "echo back=$((2+3))" });
    await back.waitFor(/back=5/, from);

    back.send({ type: "command", data: "exit" });
    await back.frame("session_ended");
    const end = Date.now() + 10_000;
    while (helpers() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    expect(helpers()).toBe("");
  }, 90_000);
});
