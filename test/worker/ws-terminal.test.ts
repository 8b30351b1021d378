/**
 * DevPocket's `/ws/terminal` through the real Worker, TerminalDO and HostDO. The host's agent
 * is simulated on its real sockets (`/agent/connect`, where `terminal_open` arrives, and the
 * session's own `/agent/terminals/{session}`); the real agent and shells are in
 * test/node/ws-terminal.test.ts.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { addMember, api, createOrgKey, env, expectApiError, fetchWorker, signUp, type TestUser, until, type WatchedSocket, watchSocket } from "./helpers";

let owner: TestUser;
let developer: TestUser;
let viewer: TestUser;
let stranger: TestUser;
let host: Awaited<ReturnType<typeof dockerHost>>;

const tag = () => Math.random().toString(36).slice(2, 8);

/** A joined Docker host of the owner's org with its agent's socket open (what it is told lands in `told`). */
async function dockerHost(of: TestUser) {
  const created = await api(`/org/${of.orgSlug}/hosts`, { token: of.token, body: { name: `wsterm-${tag()}`, kind: "docker" } });
  expect(created.status, created.text).toBe(201);
  const joined = await api("/agent/join", { body: { join_token: created.body.join_token, agent_version: "test" } });
  expect(joined.status, joined.text).toBe(201);
  const agent = { hostId: created.body.host.id as string, credential: joined.body.credential as string, told: [] as any[] };
  const res = await fetchWorker("/api/v1/agent/connect", { headers: { upgrade: "websocket", authorization: `Bearer ${agent.credential}` } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  ws.addEventListener("message", (e) => agent.told.push(JSON.parse(e.data as string)));
  ws.send(JSON.stringify({ type: "hello", agent_version: "test", held: [] }));
  await until("hello", async () => agent.told, (t) => t.some((m) => m.type === "hello"));
  await api("/agent/heartbeat", { token: agent.credential, body: { agent_version: "test", facts: {}, held: [] } });
  return agent;
}

type Socket = WatchedSocket;
async function terminal(token: string, query = "", base = "/api/v1") {
  const res = await fetchWorker(`${base}/ws/terminal?token=${encodeURIComponent(token)}${query}`, { headers: { upgrade: "websocket" } });
  expect(res.status).toBe(101);
  return watchSocket(res.webSocket!);
}

async function agentSide(agent: { credential: string }, sessionId: string) {
  const res = await fetchWorker(`/api/v1/agent/terminals/${sessionId}`, { headers: { upgrade: "websocket", authorization: `Bearer ${agent.credential}` } });
  expect(res.status).toBe(101);
  return watchSocket(res.webSocket!);
}

const send = (s: Socket, m: unknown) => s.ws.send(JSON.stringify(m));
const opens = (agent: { told: any[] }) => agent.told.filter((m) => m.type === "terminal_open");

async function newOpen(agent: { told: any[] }, before: number) {
  return (await until("terminal_open", async () => opens(agent), (t) => t.length > before)).at(-1);
}

async function audit(orgSlug: string, token: string) {
  const res = await api(`/org/${orgSlug}/audit?limit=100`, { token });
  expect(res.status, res.text).toBe(200);
  return (res.body.events ?? res.body.data ?? res.body) as any[];
}

beforeAll(async () => {
  owner = await signUp({ name: "WS owner" });
  developer = await addMember(owner, "developer");
  viewer = await addMember(owner, "viewer");
  stranger = await signUp({ name: "WS stranger" });
  host = await dockerHost(owner);
}, 60_000);

describe("/ws/terminal: who may open it", () => {
  it("needs a credential, an upgrade, and command:exec or host:manage", async () => {
    const upgrade = { upgrade: "websocket" };
    expectApiError(await api("/ws/terminal", { headers: upgrade }), 401, "unauthorized");
    expectApiError(await api("/ws/terminal?token=not-a-token", { headers: upgrade }), 401, "unauthorized");
    expectApiError(await api("/ws/terminal", { token: owner.token }), 426, "upgrade_required");
    for (const scope of ["read-only", "deploy"] as const) {
      const key = await createOrgKey(owner, owner.orgSlug, scope);
      expectApiError(await api(`/ws/terminal?token=${encodeURIComponent(key.key)}`, { headers: upgrade }), 403, "forbidden");
    }
    // A viewer of the org may not use it there (their own personal org is another matter).
    expectApiError(await api(`/ws/terminal?org=${owner.orgSlug}`, { token: viewer.token, headers: upgrade }), 403, "forbidden");
    expectApiError(await api(`/ws/terminal?org=${owner.orgSlug}`, { token: stranger.token, headers: upgrade }), 404, "not_found");
    // Served at DevPocket's path under the base, and through the /api/v1/api alias.
    const viaAlias = await terminal(owner.token, "", "/api/v1/api");
    send(viaAlias, { type: "pty_input", data: "x" });
    expect((await viaAlias.next("error")).code).toBe("no_session");
  });
});

describe("/ws/terminal: bad messages are error frames, and the socket stays", () => {
  it("answers each with {type:error, code, message}", async () => {
    const s = await terminal(owner.token);
    s.ws.send("not json");
    send(s, { type: "teleport" });
    send(s, { type: "resize_pty", cols: 0, rows: 24 });
    s.ws.send(new Uint8Array([1, 2, 3]));
    send(s, { type: "pty_input", data: "ls\n" });
    send(s, { type: "command", data: "ls" });
    send(s, { type: "connect_ssh", config: { host: "127.0.0.1", port: 22, username: "me", key_path: "~/.ssh/id_rsa" } });
    send(s, { type: "connect_ssh", config: { host: "127.0.0.1", port: 22, username: "me" } });
    send(s, { type: "connect_ssh" });
    send(s, { type: "ai_convert", prompt: "list files", api_key: "sk bad key with spaces" });
    const errors = await until("ten error frames", async () => s.frames.filter((f) => f.type === "error"), (e) => e.length >= 10);
    for (const e of errors) expect(e).toEqual({ type: "error", code: expect.any(String), message: expect.any(String) });
    expect(errors.map((e) => e.code)).toEqual([
      "invalid_message",
      "invalid_message",
      "invalid_message",
      "invalid_message",
      "no_session",
      "no_session",
      "invalid_request",
      "invalid_request",
      "invalid_request",
      "invalid_message",
    ]);
    expect(errors[6].message).toContain("private_key");
    expect(JSON.stringify(s.frames)).not.toContain("sk bad key");
    expect(s.closed()).toBeNull();
  });
});

describe("/ws/terminal: create_pty (a shell on a Docker host)", () => {
  it("needs host:manage, and another tenant's host is not found", async () => {
    const dev = await terminal(developer.token, `&org=${owner.orgSlug}`);
    send(dev, { type: "create_pty" });
    expect(await dev.next("error")).toMatchObject({ code: "forbidden" });
    send(dev, { type: "create_pty", host_id: host.hostId });
    expect(await dev.next("error", 1)).toMatchObject({ code: "forbidden" });
    const other = await terminal(stranger.token);
    send(other, { type: "create_pty", host_id: host.hostId });
    expect(await other.next("error")).toMatchObject({ code: "host_not_found" });
    send(other, { type: "create_pty" });
    expect(await other.next("error", 1)).toMatchObject({ code: "no_host_available" });
  });

  it("opens a host shell on the org's Docker host and carries input, output, resize and the end", async () => {
    const before = opens(host).length;
    const s = await terminal(owner.token);
    send(s, { type: "create_pty", cols: 100, rows: 30 });
    const open = await newOpen(host, before);
    expect(open).toMatchObject({ kind: "host", cols: 100, rows: 30, cmd: ["/bin/sh"] });
    const side = await agentSide(host, open.session_id);
    side.ws.send(JSON.stringify({ type: "started", container_id: "helper" }));
    expect(await s.next("pty_created")).toEqual({ type: "pty_created", session_id: open.session_id, host_id: host.hostId });

    // One session at a time.
    send(s, { type: "create_pty" });
    expect(await s.next("error")).toMatchObject({ code: "session_running" });

    send(s, { type: "pty_input", data: "echo hi\n" });
    send(s, { type: "command", data: "uptime" });
    send(s, { type: "pty_input", data: "\u0003" });
    send(s, { type: "resize_pty", cols: 120, rows: 40 });
    await until("input at the agent", async () => new TextDecoder().decode(concat(side.bytes)), (t) => t === "echo hi\nuptime\n\u0003");
    expect(await side.next("resize")).toEqual({ type: "resize", cols: 120, rows: 40 });

    // Output is text; a UTF-8 character split over two chunks arrives whole, a byte that is not UTF-8 as U+FFFD.
    const euro = new TextEncoder().encode("€");
    side.ws.send(new Uint8Array([...new TextEncoder().encode("hi\r\n"), euro[0]!]));
    side.ws.send(new Uint8Array([euro[1]!, euro[2]!, 0xff, 0x41]));
    const text = await until("output", async () => s.frames.filter((f) => f.type === "pty_output").map((f) => f.data).join(""), (t) => t.length >= 7);
    expect(text).toBe("hi\r\n€\uFFFDA");

    side.ws.send(JSON.stringify({ type: "exit", code: 0 }));
    expect(await s.next("session_ended")).toMatchObject({ session_id: open.session_id, exit_code: 0 });
    await until("closed", async () => s.closed(), (c) => c !== null);
    const rows = await audit(owner.orgSlug, owner.token);
    const actions = rows.filter((r) => r.metadata?.session_id === open.session_id || r.target_id === host.hostId).map((r) => r.action);
    expect(actions).toEqual(expect.arrayContaining(["terminal.host", "terminal.host.end"]));
    const ended = rows.find((r) => r.action === "terminal.host.end" && r.metadata?.session_id === open.session_id);
    expect(ended.metadata).toMatchObject({ host_id: host.hostId, exit_code: 0, duration_ms: expect.any(Number) });
  });

  it("lets no other tenant join a session, and its opener rejoin it", async () => {
    const before = opens(host).length;
    const s = await terminal(owner.token);
    send(s, { type: "create_pty" });
    const open = await newOpen(host, before);
    const side = await agentSide(host, open.session_id);
    side.ws.send(JSON.stringify({ type: "started" }));
    await s.next("pty_created");
    side.ws.send(new TextEncoder().encode("before\r\n"));
    await s.next("pty_output");

    const intruder = await terminal(stranger.token, `&session=${open.session_id}`);
    await until("refused", async () => intruder.closed(), (c) => c !== null);
    expect(intruder.closed()?.code).toBe(4404);
    const dev = await terminal(developer.token, `&session=${open.session_id}`);
    await until("refused", async () => dev.closed(), (c) => c !== null);
    expect(dev.closed()?.code).toBe(4404);

    s.ws.close(1000, "bye");
    const back = await terminal(owner.token, `&session=${open.session_id}&since=0`);
    // As the opener was greeted: which session, that its shell runs, then what was missed.
    await until("greeting", async () => back.frames, (f) => f.length >= 3);
    expect(back.frames.slice(0, 3)).toEqual([
      { type: "session", session_id: open.session_id, mode: "write", offset: 0, skipped: 0 },
      { type: "pty_created", session_id: open.session_id, host_id: host.hostId },
      { type: "pty_output", data: "before\r\n" },
    ]);
    send(back, { type: "pty_input", data: "again\n" });
    await until("input", async () => new TextDecoder().decode(concat(side.bytes)), (t) => t === "again\n");
    side.ws.send(JSON.stringify({ type: "exit", code: 0 }));
    await back.next("session_ended");
  });
});

describe("/ws/terminal: connect_ssh", () => {
  it("keeps the password out of every message, gives it once to the session's host, then forgets it", async () => {
    const before = opens(host).length;
    const s = await terminal(owner.token);
    const password = `pw-${tag()}-secret`;
    send(s, { type: "connect_ssh", config: { host: "127.0.0.1", port: 2222, username: "berthssh", password } });
    const open = await newOpen(host, before);
    expect(open).toMatchObject({ kind: "ssh", ssh: { host: "127.0.0.1", port: 2222, username: "berthssh", host_key_fingerprint: null } });
    expect(JSON.stringify(host.told)).not.toContain(password);

    const other = await dockerHost(stranger);
    expectApiError(await api(`/agent/terminals/${open.session_id}/secrets`, { token: other.credential }), 404, "not_found");
    const secrets = await api(`/agent/terminals/${open.session_id}/secrets`, { token: host.credential });
    expect(secrets.status, secrets.text).toBe(200);
    expect(secrets.body).toEqual({ ssh: { password } });

    const side = await agentSide(host, open.session_id);
    side.ws.send(JSON.stringify({ type: "started", host_key_fingerprint: "SHA256:abc" }));
    expect(await s.next("ssh_connected")).toEqual({ type: "ssh_connected", session_id: open.session_id, host_id: host.hostId, host_key_fingerprint: "SHA256:abc" });
    // Used: asked again, there is nothing to give.
    expectApiError(await api(`/agent/terminals/${open.session_id}/secrets`, { token: host.credential }), 404, "not_found");
    await until("inline profile deleted", async () => (await env.DB.prepare("SELECT count(*) AS n FROM ssh_profile WHERE adhoc = 1 AND host = '127.0.0.1' AND port = 2222").first<{ n: number }>())?.n, (n) => n === 0);
    side.ws.send(JSON.stringify({ type: "exit", code: 0 }));
    await s.next("session_ended");
    const rows = await audit(owner.orgSlug, owner.token);
    expect(JSON.stringify(rows)).not.toContain(password);
    expect(rows.some((r) => r.action === "terminal.ssh.end" && r.metadata?.session_id === open.session_id)).toBe(true);
  });

  it("a socket that rejoins, or watches, is told ssh_connected as the opener was, then gets the replay", async () => {
    const before = opens(host).length;
    const s = await terminal(owner.token);
    send(s, { type: "connect_ssh", config: { host: "127.0.0.1", port: 2222, username: "berthssh", password: "pw" } });
    const open = await newOpen(host, before);
    // A developer of the org (command:exec) joins while it starts: told when it runs, like the opener.
    const early = await terminal(developer.token, `&session=${open.session_id}`);
    await early.next("session");
    const side = await agentSide(host, open.session_id);
    const connected = { type: "ssh_connected", session_id: open.session_id, host_id: host.hostId, host_key_fingerprint: "SHA256:rejoin" };
    side.ws.send(JSON.stringify({ type: "started", host_key_fingerprint: "SHA256:rejoin" }));
    expect(await s.next("ssh_connected")).toEqual(connected);
    expect(await early.next("ssh_connected")).toEqual(connected);
    side.ws.send(new TextEncoder().encode("$ "));
    await s.next("pty_output");

    s.ws.close(1000, "gone");
    await until("writer gone", async () => s.closed(), (c) => c !== null);
    const back = await terminal(owner.token, `&session=${open.session_id}&since=0`);
    const watcher = await terminal(developer.token, `&session=${open.session_id}`);
    for (const [socket, mode] of [[back, "write"], [watcher, "view"]] as const) {
      await until("greeting", async () => socket.frames, (f) => f.length >= 3);
      expect(socket.frames.slice(0, 3)).toEqual([{ type: "session", session_id: open.session_id, mode, offset: 0, skipped: 0 }, connected, { type: "pty_output", data: "$ " }]);
    }
    side.ws.send(JSON.stringify({ type: "exit", code: 0 }));
    await back.next("session_ended");
  });

  it("a saved profile: its pinned key goes with it, a changed key is an error frame and the socket may try again", async () => {
    const profile = await api("/ssh/profiles", { token: owner.token, body: { name: `p-${tag()}`, host: "127.0.0.1", port: 2223, username: "berthssh", password: "pw" } });
    expect(profile.status, profile.text).toBe(201);
    await env.DB.prepare("UPDATE ssh_profile SET host_key_fingerprint = 'SHA256:pinned' WHERE id = ?").bind(profile.body.id).run();
    const s = await terminal(owner.token);
    let before = opens(host).length;
    send(s, { type: "connect_ssh", profile_id: profile.body.id });
    let open = await newOpen(host, before);
    expect(open.ssh).toMatchObject({ port: 2223, host_key_fingerprint: "SHA256:pinned" });
    let side = await agentSide(host, open.session_id);
    const message = "The server's host key is SHA256:other, not the pinned SHA256:pinned: refused";
    side.ws.send(JSON.stringify({ type: "error", code: "host_key_mismatch", message }));
    expect(await s.next("error")).toEqual({ type: "error", code: "host_key_mismatch", message });
    expect(s.closed()).toBeNull();

    before = opens(host).length;
    send(s, { type: "connect_ssh", profile_id: profile.body.id });
    open = await newOpen(host, before);
    side = await agentSide(host, open.session_id);
    side.ws.send(JSON.stringify({ type: "started", host_key_fingerprint: "SHA256:pinned" }));
    await s.next("ssh_connected");

    // Another person's profile, even in the same org, is not found; a developer may use their own.
    const dev = await terminal(developer.token);
    send(dev, { type: "connect_ssh", profile_id: profile.body.id });
    expect(await dev.next("error")).toMatchObject({ code: "profile_not_found" });
    const foreign = await terminal(stranger.token);
    send(foreign, { type: "connect_ssh", profile_id: profile.body.id });
    expect(await foreign.next("error")).toMatchObject({ code: "profile_not_found" });
  });
});

describe("/ws/terminal: ai_convert", () => {
  it("answers ai_suggestion with the caller's key, or the stored one; a refused key is an error frame without it", async () => {
    const s = await terminal(developer.token);
    send(s, { type: "ai_convert", prompt: "delete logs older than a week", api_key: "sk-test-0123456789abcdef" });
    expect(await s.next("ai_suggestion")).toEqual({ type: "ai_suggestion", command: "find . -name '*.log' -mtime +7 -delete" });

    send(s, { type: "ai_convert", prompt: "list files", api_key: "sk-bad-0123456789abcdef" });
    const refused = await s.next("error");
    expect(refused).toMatchObject({ type: "error", code: "ai_key_invalid", message: expect.any(String) });
    expect(JSON.stringify(refused)).not.toContain("sk-bad-0123456789abcdef");

    send(s, { type: "ai_convert", prompt: "list files" });
    expect(await s.next("error", s.frames.indexOf(refused) + 1)).toMatchObject({ code: "ai_key_missing" });
    const stored = await api("/ai/key", { token: developer.token, method: "PUT", body: { api_key: "sk-test-stored-0123456789" } });
    expect(stored.status, stored.text).toBeLessThan(300);
    const before = s.frames.length;
    send(s, { type: "ai_convert", prompt: "delete old logs" });
    expect(await s.next("ai_suggestion", before)).toMatchObject({ command: expect.stringContaining("find") });

    // An org key does not act as a person: it may not spend anyone's AI credits.
    const key = await createOrgKey(owner, owner.orgSlug, "full");
    const org = await terminal(key.key);
    send(org, { type: "ai_convert", prompt: "list files", api_key: "sk-test-0123456789abcdef" });
    expect(await org.next("error")).toMatchObject({ code: "forbidden" });
  });
});

function concat(chunks: Uint8Array[]) {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
