/**
 * DevPocket's SSH and commands through the whole path: a real `wrangler dev`, a real agent
 * running the SSH client (ssh2), and real OpenSSH servers on loopback (test/host/setup.sh:
 * 127.0.0.1:2222 with host key A, 127.0.0.1:2223 with host key B, user berthssh with the
 * password in /tmp/berth-host/ssh/password or the key in /tmp/berth-host/ssh/client_ed25519).
 *
 * The profiles point at a TCP relay made here, which forwards to one server or the other:
 * moving it from A to B is the server's key changing under an unchanged address.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentProcess, startAgent } from "./support/agent";
import { type Client, signedUp } from "./support/client";
import { type DevServer, freePort, startDevServer } from "./support/dev-server";

const SSH_DIR = "/tmp/berth-host/ssh";
const USER = "berthssh";
/** Made per machine by setup.sh, readable by root only. */
const PASSWORD = readFileSync(join(SSH_DIR, "password"), "utf8").trim();
const SERVER_A = 2222;
const SERVER_B = 2223;
const OUTPUT_MAX = 2048;

let server: DevServer;
let api: Client;
let agent: AgentProcess;
let privateKey: string;
let fingerprintA: string;
let fingerprintB: string;
const dirs: string[] = [];

/** A loopback TCP relay whose target can be switched; connections made before a switch keep theirs. */
class Relay {
  target = SERVER_A;
  port = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor() {
    this.server = createServer((inbound) => {
      const outbound = connect(this.target, "127.0.0.1");
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => s.destroy());
      }
      inbound.pipe(outbound).pipe(inbound);
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(0, "127.0.0.1", () => {
      this.port = (this.server.address() as { port: number }).port;
      resolve();
    }));
  }

  close() {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

const relay = new Relay();
const fingerprint = (pub: string) => execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", pub], { encoding: "utf8" }).split(" ")[1]!;
const text = (v: unknown) => JSON.stringify(v);

beforeAll(async () => {
  privateKey = readFileSync(join(SSH_DIR, "client_ed25519"), "utf8");
  fingerprintA = fingerprint(join(SSH_DIR, "host_key_0.pub"));
  fingerprintB = fingerprint(join(SSH_DIR, "host_key_1.pub"));
  expect(fingerprintA).not.toBe(fingerprintB);
  await relay.listen();
  server = await startDevServer({ env: { COMMAND_OUTPUT_MAX_BYTES: String(OUTPUT_MAX) } });
  let slug: string;
  ({ api, slug } = await signedUp(server.url));
  const host = await api.call("POST", `/org/${slug}/hosts`, { name: "ssh-client", kind: "docker" });
  expect(host.status).toBe(201);
  const stateDir = mkdtempSync(join(tmpdir(), "berth-ssh-"));
  dirs.push(stateDir);
  agent = startAgent(["--url", server.url, "--state-dir", stateDir, "--join-token", host.body.join_token, "--ingress-listen", `127.0.0.1:${await freePort()}`]);
  await agent.waitFor(/connected transport=websocket/);
}, 180_000);

afterAll(async () => {
  relay.close();
  await agent?.kill("SIGTERM");
  await server?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Nothing the caller sent as a secret comes back, in any answer. */
function expectNoSecrets(body: unknown) {
  const t = text(body);
  expect(t).not.toContain(PASSWORD);
  expect(t).not.toContain("PRIVATE KEY");
  expect(t).not.toContain(Buffer.from(privateKey).toString("base64").slice(0, 40));
}

describe("SSH profiles and connect", () => {
  it("saves a key profile without returning the key, connects and pins the server's key on first use", async () => {
    const saved = await api.call("POST", "/ssh/profiles", {
      name: "relay (key)",
      host: "127.0.0.1",
      port: relay.port,
      username: USER,
      private_key: Buffer.from(privateKey).toString("base64"),
    });
    expect(saved.status, text(saved.body)).toBe(201);
    expect(saved.body).toMatchObject({ host: "127.0.0.1", port: relay.port, username: USER, has_private_key: true, has_password: false, host_key_fingerprint: null });
    expectNoSecrets(saved.body);

    const started = Date.now();
    const connected = await api.call("POST", "/ssh/connect", { profile_id: saved.body.id });
    expect(connected.status, text(connected.body)).toBe(200);
    expect(connected.body).toMatchObject({ status: "connected", profile_id: saved.body.id, host_key_fingerprint: fingerprintA, host_key_pinned: true });
    expect(Date.now() - started).toBeLessThan(10_000);

    const listed = await api.call("GET", "/ssh/profiles");
    expect(listed.status).toBe(200);
    const mine = listed.body.find((p: { id: string }) => p.id === saved.body.id);
    expect(mine).toMatchObject({ host_key_fingerprint: fingerprintA });
    expect(mine.host_key_pinned_at).not.toBeNull();
    expectNoSecrets(listed.body);

    // The same key again: connects, pins nothing new.
    const again = await api.call("POST", "/ssh/connect", { profile_id: saved.body.id });
    expect(again.status, text(again.body)).toBe(200);
    expect(again.body.host_key_pinned).toBe(false);
  });

  it("connects with a password given inline, as DevPocket's client sends it, and refuses a wrong one", async () => {
    const ok = await api.call("POST", "/ssh/connect", { host: "127.0.0.1", port: SERVER_A, username: USER, password: PASSWORD });
    expect(ok.status, text(ok.body)).toBe(200);
    expect(ok.body).toMatchObject({ status: "connected", profile_id: null, host_key_fingerprint: fingerprintA });
    expectNoSecrets(ok.body);

    const wrong = await api.call("POST", "/ssh/connect", { host: "127.0.0.1", port: SERVER_A, username: USER, password: "not the password" });
    expect(wrong.status, text(wrong.body)).toBe(502);
    expect(wrong.body.error.code).toBe("ssh_auth_failed");
    expect(text(wrong.body)).not.toContain("not the password");

    // Inline credentials are not saved as profiles.
    const listed = await api.call("GET", "/ssh/profiles");
    expect(listed.body.every((p: { port: number }) => p.port !== SERVER_A)).toBe(true);
    // Neither the agent nor the control plane logged a password.
    expect(agent.output()).not.toContain(PASSWORD);
    expect(server.output()).not.toContain(PASSWORD);
  });

  it("refuses a server whose key changed, until the pin is reset", async () => {
    const saved = await api.call("POST", "/ssh/profiles", { name: "relay (password)", host: "127.0.0.1", port: relay.port, username: USER, password: PASSWORD });
    expect(saved.status, text(saved.body)).toBe(201);
    relay.target = SERVER_A;
    const first = await api.call("POST", "/ssh/connect", { profile_id: saved.body.id });
    expect(first.status, text(first.body)).toBe(200);

    relay.target = SERVER_B;
    try {
      const changed = await api.call("POST", "/ssh/connect", { profile_id: saved.body.id });
      expect(changed.status, text(changed.body)).toBe(409);
      expect(changed.body.error.code).toBe("host_key_mismatch");
      expect(changed.body.error.message).toContain(fingerprintB);
      // A command over it is refused too, and says why.
      const cmd = await api.call("POST", "/commands/execute", { profile_id: saved.body.id, command: "echo should-not-run" });
      expect(cmd.status, text(cmd.body)).toBe(200);
      expect(cmd.body).toMatchObject({ status: "error", stdout: "", exit_code: null });
      expect(cmd.body.error).toMatch(/^host_key_mismatch/);
      // The pin stays what it was.
      expect((await api.call("GET", `/ssh/profiles/${saved.body.id}`)).body.host_key_fingerprint).toBe(fingerprintA);

      const reset = await api.call("PATCH", `/ssh/profiles/${saved.body.id}`, { reset_host_key: true });
      expect(reset.status, text(reset.body)).toBe(200);
      expect(reset.body.host_key_fingerprint).toBeNull();
      const repinned = await api.call("POST", "/ssh/connect", { profile_id: saved.body.id });
      expect(repinned.status, text(repinned.body)).toBe(200);
      expect(repinned.body).toMatchObject({ host_key_fingerprint: fingerprintB, host_key_pinned: true });
    } finally {
      relay.target = SERVER_A;
    }
  });

  it("refuses an inline connection whose expected key is not the server's", async () => {
    const res = await api.call("POST", "/ssh/connect", { host: "127.0.0.1", port: SERVER_A, username: USER, password: PASSWORD, host_key_fingerprint: fingerprintB });
    expect(res.status, text(res.body)).toBe(409);
    expect(res.body.error.code).toBe("host_key_mismatch");
  });
});

describe("commands over SSH", () => {
  let profileId: string;
  const session = `s-${Date.now().toString(36)}`;

  beforeAll(async () => {
    const saved = await api.call("POST", "/ssh/profiles", { name: "server A", host: "127.0.0.1", port: SERVER_A, username: USER, private_key: privateKey });
    expect(saved.status, text(saved.body)).toBe(201);
    profileId = saved.body.id;
  });

  it("runs a command and keeps its stdout, stderr, exit status and duration", async () => {
    const res = await api.call("POST", "/commands/execute", { profile_id: profileId, session_id: session, command: "echo out-$((40+2)); echo err-$((1+1)) >&2; whoami; exit 3" });
    expect(res.status, text(res.body)).toBe(200);
    expect(res.body).toMatchObject({ status: "error", exit_code: 3, stdout: `out-42\n${USER}\n`, stderr: "err-2\n", output_truncated: false, session_id: session, profile_id: profileId });
    expect(res.body.output).toBe(`out-42\n${USER}\nerr-2\n`);
    expect(res.body.duration_ms).toBeGreaterThan(0);
    expect(res.body.executed_at).not.toBeNull();

    const ok = await api.call("POST", "/commands/execute", { profile_id: profileId, session_id: session, command: "printf hello" });
    expect(ok.body).toMatchObject({ status: "success", exit_code: 0, stdout: "hello", error: null });

    const got = await api.call("GET", `/commands/${res.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(res.body);
  });

  it("cuts output past the size cap and says so", async () => {
    const res = await api.call("POST", "/commands/execute", { profile_id: profileId, session_id: session, command: `head -c ${OUTPUT_MAX * 4} /dev/zero | tr '\\0' a` });
    expect(res.status, text(res.body)).toBe(200);
    expect(res.body.status).toBe("success");
    expect(res.body.stdout).toBe("a".repeat(OUTPUT_MAX));
    expect(res.body.output_truncated).toBe(true);
  });

  it("stops a command at its timeout", async () => {
    const started = Date.now();
    const res = await api.call("POST", "/commands/execute", { profile_id: profileId, command: "echo before; sleep 30", timeout: 2 });
    expect(res.status, text(res.body)).toBe(200);
    expect(res.body).toMatchObject({ status: "error", exit_code: null, stdout: "before\n" });
    expect(res.body.error).toMatch(/^ssh_timeout/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it("pages through the history with filters, and reruns a command", async () => {
    const page1 = await api.call("GET", `/commands/history?session_id=${session}&limit=2`);
    expect(page1.status, text(page1.body)).toBe(200);
    expect(page1.body).toMatchObject({ total: 3, has_more: true });
    expect(page1.body.commands).toHaveLength(2);
    // Newest first.
    expect(page1.body.commands[0].command).toContain("head -c");
    const page2 = await api.call("GET", `/commands/history?session_id=${session}&limit=2&offset=2`);
    expect(page2.body).toMatchObject({ total: 3, has_more: false });
    expect(page2.body.commands.map((c: { command: string }) => c.command)).toEqual([expect.stringContaining("exit 3")]);

    const failed = await api.call("GET", `/commands/history?session_id=${session}&status=error`);
    expect(failed.body.commands.map((c: { exit_code: number }) => c.exit_code)).toEqual([3]);
    const found = await api.call("GET", `/commands/history?search=${encodeURIComponent("printf hel")}`);
    expect(found.body.commands.map((c: { command: string }) => c.command)).toEqual(["printf hello"]);
    const none = await api.call("GET", `/commands/history?search=${encodeURIComponent("%")}`);
    expect(none.body).toMatchObject({ total: 0, commands: [] });

    const original = page2.body.commands[0];
    const rerun = await api.call("POST", `/commands/${original.id}/rerun`);
    expect(rerun.status, text(rerun.body)).toBe(200);
    expect(rerun.body.id).not.toBe(original.id);
    expect(rerun.body).toMatchObject({ rerun_of: original.id, command: original.command, session_id: session, status: "error", exit_code: 3, stdout: `out-42\n${USER}\n` });
    const after = await api.call("GET", `/commands/history?session_id=${session}`);
    expect(after.body.total).toBe(4);
    expect(after.body.commands[0].id).toBe(rerun.body.id);
  });
});
