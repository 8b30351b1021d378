/**
 * Dockup's exec socket (`GET /apps/{appId}/exec`) through the real Worker, TerminalDO and
 * HostDO. The host's agent is simulated on its real sockets: `/agent/connect` (where
 * `terminal_open` arrives) and the session's own `/agent/terminals/{session}`.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { SOCKET_QUEUE_BYTES } from "../../src/durable/terminal/output-allowance";
import { TERMINAL_WINDOW_BYTES } from "../../src/protocol/agent";
import { addMember, api, createOrgKey, env, expectApiError, fetchWorker, signUp, type TestUser, until, watchSocket, concatBytes } from "./helpers";

let owner: TestUser;
let developer: TestUser;
let viewer: TestUser;

beforeAll(async () => {
  owner = await signUp({ name: "Terminal owner" });
  developer = await addMember(owner, "developer");
  viewer = await addMember(owner, "viewer");
}, 60_000);

const tag = () => Math.random().toString(36).slice(2, 8);

/** A joined host, an app placed on it, and (unless `connect` is false) its agent's socket open. */
async function appOnHost({ connect = true } = {}) {
  const created = await api(`/org/${owner.orgSlug}/hosts`, { token: owner.token, body: { name: `term-${tag()}`, kind: "docker" } });
  expect(created.status, created.text).toBe(201);
  const joined = await api("/agent/join", { body: { join_token: created.body.join_token, agent_version: "test" } });
  expect(joined.status, joined.text).toBe(201);
  const app = await api(`/projects/${owner.projectId}/apps`, { token: owner.token, body: { name: `Term ${tag()}`, image: "nginx:alpine" } });
  expect(app.status, app.text).toBe(201);
  const appId = app.body.id as string;
  await env.DB.prepare("UPDATE app SET host_id = ?, status = 'running' WHERE id = ?").bind(created.body.host.id, appId).run();
  const agent = { hostId: created.body.host.id as string, credential: joined.body.credential as string, appId, told: [] as any[] };
  if (connect) {
    const res = await fetchWorker("/api/v1/agent/connect", { headers: { upgrade: "websocket", authorization: `Bearer ${agent.credential}` } });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    ws.accept();
    ws.addEventListener("message", (e) => agent.told.push(JSON.parse(e.data as string)));
    ws.send(JSON.stringify({ type: "hello", agent_version: "test", held: [] }));
    await until("hello", async () => agent.told, (t) => t.some((m) => m.type === "hello"));
  }
  return agent;
}

async function exec(appId: string, token: string, query = "") {
  const res = await fetchWorker(`/api/v1/apps/${appId}/exec${query}`, { headers: { upgrade: "websocket", authorization: `Bearer ${token}` } });
  expect(res.status).toBe(101);
  return watchSocket(res.webSocket!);
}

/** The agent's side of a session: opens the session's socket as the agent would. */
async function agentSide(agent: { credential: string }, sessionId: string) {
  const res = await fetchWorker(`/api/v1/agent/terminals/${sessionId}`, { headers: { upgrade: "websocket", authorization: `Bearer ${agent.credential}` } });
  expect(res.status).toBe(101);
  return watchSocket(res.webSocket!);
}

const bytesOf = (s: string) => new TextEncoder().encode(s);

async function openSession(agent: Awaited<ReturnType<typeof appOnHost>>, token = owner.token) {
  const user = await exec(agent.appId, token, "?cmd=/bin/bash%20-l&cols=100&rows=30");
  const open = await until("terminal_open", async () => agent.told.filter((m) => m.type === "terminal_open"), (t) => t.length > 0);
  const sessionId = open.at(-1).session_id as string;
  const side = await agentSide(agent, sessionId);
  side.ws.send(JSON.stringify({ type: "started", container_id: "c0ffee" }));
  return { user, side, sessionId, open: open.at(-1) };
}

describe("app exec socket: who may open it", () => {
  it("needs an upgrade, a credential, app:exec, and the app's tenant", async () => {
    const agent = await appOnHost({ connect: false });
    const path = `/apps/${agent.appId}/exec`;
    expectApiError(await api(path, { token: owner.token }), 426, "upgrade_required");
    const upgrade = { upgrade: "websocket" };
    expectApiError(await api(path, { headers: upgrade }), 401, "unauthorized");
    for (const scope of ["read-only", "deploy"] as const) {
      const key = await createOrgKey(owner, owner.orgSlug, scope);
      expectApiError(await api(path, { token: key.key, headers: upgrade }), 403, "forbidden");
    }
    expectApiError(await api(path, { token: viewer.token, headers: upgrade }), 403, "forbidden");
    const stranger = await signUp({ name: "Stranger" });
    expectApiError(await api(path, { token: stranger.token, headers: upgrade }), 404, "app_not_found");
    // The credential as ?token= (browsers cannot send a header on an upgrade), but only on an upgrade.
    const viaQuery = await fetchWorker(`/api/v1${path}?token=${encodeURIComponent(owner.token)}`, { headers: upgrade });
    expect(viaQuery.status).toBe(101);
    watchSocket(viaQuery.webSocket!);
    expectApiError(await api(`${path}?token=${encodeURIComponent(owner.token)}`), 401, "unauthorized");
    // A full key and a developer may.
    const full = await createOrgKey(owner, owner.orgSlug, "full");
    for (const token of [full.key, developer.token]) {
      const res = await fetchWorker(`/api/v1${path}`, { headers: { ...upgrade, authorization: `Bearer ${token}` } });
      expect(res.status).toBe(101);
      const s = watchSocket(res.webSocket!);
      await until("closed", async () => s.closed(), (c) => c !== null);
      expect(s.closed()).toMatchObject({ code: 4503, reason: "the app's host is offline" });
    }
  });

  it("closes with a reason when the app was never deployed", async () => {
    const app = await api(`/projects/${owner.projectId}/apps`, { token: owner.token, body: { name: `Term ${tag()}`, image: "nginx:alpine" } });
    const s = await exec(app.body.id, owner.token);
    await until("closed", async () => s.closed(), (c) => c !== null);
    expect(s.closed()?.code).toBe(4409);
  });
});

describe("app exec socket: a session", () => {
  it("carries input, output and resizes between the user and the agent, in order, and audits it", async () => {
    const agent = await appOnHost();
    const { user, side, sessionId, open } = await openSession(agent);
    expect(open).toMatchObject({ app_id: agent.appId, cmd: ["/bin/bash", "-l"], cols: 100, rows: 30 });
    await until("session message", async () => user.frames, (t) => t.length > 0);
    expect(user.frames[0]).toEqual({ type: "session", session_id: sessionId, mode: "write", offset: 0, skipped: 0 });

    user.ws.send("echo hi\r");
    user.ws.send(JSON.stringify({ type: "resize", cols: 132, rows: 43 }));
    user.ws.send("\x03");
    await until("input and resize", async () => side.bytes.length + side.frames.length, (n) => n >= 3);
    expect(side.output(), JSON.stringify(side.frames)).toBe("echo hi\r\x03");
    expect(side.frames).toContainEqual({ type: "resize", cols: 132, rows: 43 });

    // Binary-safe: every byte value, in order, across many frames.
    const all = new Uint8Array(256).map((_, i) => i);
    for (let i = 0; i < 20; i++) side.ws.send(all);
    await until("output", async () => user.bytes.reduce((n, c) => n + c.length, 0), (n) => n >= 256 * 20);
    const got = concatBytes(user.bytes);
    for (let i = 0; i < 20; i++) expect([...got.subarray(i * 256, (i + 1) * 256)]).toEqual([...all]);

    side.ws.send(JSON.stringify({ type: "exit", code: 0 }));
    await until("closed", async () => user.closed(), (c) => c !== null);
    expect(user.closed()).toEqual({ code: 1000, reason: "exited with status 0" });
    expect(user.frames.at(-1)).toEqual({ type: "exit", code: 0 });

    const audit = await api(`/org/${owner.orgSlug}/audit`, { token: owner.token });
    const rows = audit.body.events ?? audit.body.items ?? audit.body;
    const mine = (rows as any[]).filter((e) => JSON.stringify(e).includes(sessionId));
    expect(mine.map((e) => e.action).sort()).toEqual(["app.exec", "app.exec.end"]);
    expect(JSON.stringify(mine)).toContain(agent.hostId);
    expect(mine.find((e) => e.action === "app.exec.end").metadata).toMatchObject({ duration_ms: expect.any(Number), exit_code: 0, close_code: 1000 });
  });

  it("says why when the app has no running container, and when the agent is not there", async () => {
    const agent = await appOnHost();
    const { user, side } = await openSession(agent);
    side.ws.send(JSON.stringify({ type: "error", code: "not_running", message: "no container" }));
    await until("closed", async () => user.closed(), (c) => c !== null);
    expect(user.closed()).toEqual({ code: 4409, reason: "the app is not running" });

    const offline = await appOnHost({ connect: false });
    const s = await exec(offline.appId, owner.token);
    await until("closed", async () => s.closed(), (c) => c !== null);
    expect(s.closed()?.code).toBe(4503);
  });

  it("lets the opener resume within the grace period and replays what they missed; others only watch", async () => {
    const agent = await appOnHost();
    const { user, side, sessionId } = await openSession(agent);
    side.ws.send(bytesOf("one\r\n"));
    await until("first output", async () => user.output(), (o) => o === "one\r\n");
    user.ws.close(1000);
    side.ws.send(bytesOf("two\r\n"));

    const back = await exec(agent.appId, owner.token, `?session=${sessionId}&since=5`);
    await until("replay", async () => back.output(), (o) => o === "two\r\n");
    expect(back.frames[0]).toMatchObject({ type: "session", mode: "write", offset: 5, skipped: 0 });

    // A developer of the org watches: sees everything from the start, and cannot type.
    const watcher = await exec(agent.appId, developer.token, `?session=${sessionId}`);
    await until("viewer replay", async () => watcher.output(), (o) => o === "one\r\ntwo\r\n");
    expect(watcher.frames[0]).toMatchObject({ mode: "view", offset: 0 });
    watcher.ws.send("rm -rf /\r");
    back.ws.send("ls\r");
    await until("writer input", async () => side.output(), (i) => i.includes("ls\r"));
    expect(side.output()).toBe("ls\r");
    side.ws.send(bytesOf("three\r\n"));
    await until("both see it", async () => [back.output(), watcher.output()] as const, ([b, w]) => b.endsWith("three\r\n") && w.endsWith("three\r\n"));

    // Another tenant cannot even find the app, session id or not.
    const stranger = await signUp({ name: "Stranger" });
    const res = await api(`/apps/${agent.appId}/exec?session=${sessionId}`, { token: stranger.token, headers: { upgrade: "websocket" } });
    expect(res.status).toBe(404);
    back.ws.close(1000);
    watcher.ws.close(1000);
  });

  it("refuses a session's socket to another host's agent and an unknown session", async () => {
    const agent = await appOnHost();
    const other = await appOnHost({ connect: false });
    const { user, sessionId } = await openSession(agent);
    const intruder = await agentSide(other, sessionId);
    await until("closed", async () => intruder.closed(), (c) => c !== null);
    expect(intruder.closed()?.code).toBe(4404);
    const ghost = await exec(agent.appId, owner.token, `?session=trm_${"0".repeat(32)}`);
    await until("closed", async () => ghost.closed(), (c) => c !== null);
    expect(ghost.closed()?.code).toBe(4404);
    user.ws.close(1000);
  });

  it("stops acknowledging output the writer does not take, so the agent pauses", async () => {
    const agent = await appOnHost();
    const { user, side } = await openSession(agent);
    const chunk = new Uint8Array(32 * 1024).fill(121);
    for (let i = 0; i < 8; i++) side.ws.send(chunk);
    await until("acks", async () => side.frames.filter((m) => m.type === "ack"), (a) => a.length > 0 && a.at(-1).bytes === 8 * chunk.length);
    // With the writer gone, nothing more is acknowledged: the program waits for them.
    user.ws.close(1000);
    await until("writer gone", async () => user.closed(), (c) => c !== null);
    await new Promise((r) => setTimeout(r, 50));
    const acks = side.frames.filter((m) => m.type === "ack").length;
    side.ws.send(new Uint8Array(64 * 1024));
    await new Promise((r) => setTimeout(r, 200));
    expect(side.frames.filter((m) => m.type === "ack").length).toBe(acks);
  });

  /** The agent's flood, as the real one sends: while less than its window is unacknowledged, for `ms` (bounded in size too). */
  async function flood(side: Awaited<ReturnType<typeof agentSide>>, ms: number) {
    const chunk = new Uint8Array(32 * 1024).fill(121);
    const acked = () => side.frames.filter((m) => m.type === "ack").reduce((n, m) => Math.max(n, m.bytes), 0);
    const start = Date.now();
    let sent = 0;
    while (Date.now() - start < ms && sent < 256 * 1024 * 1024) {
      if (sent - acked() < TERMINAL_WINDOW_BYTES) {
        side.ws.send(chunk);
        sent += chunk.length;
      } else await new Promise((r) => setTimeout(r, 5));
    }
    return { sent, chunk: chunk.length };
  }

  const received = (s: { bytes: Uint8Array[] }) => s.bytes.reduce((n, c) => n + c.length, 0);

  it("holds a writer that stops reading to a bounded queue: the agent waits, and output resumes in order when it reads", async () => {
    const agent = await appOnHost();
    // The writer's socket is never accepted: whatever it is sent waits in the runtime, unread.
    const res = await fetchWorker(`/api/v1/apps/${agent.appId}/exec`, { headers: { upgrade: "websocket", authorization: `Bearer ${owner.token}` } });
    expect(res.status).toBe(101);
    const open = await until("terminal_open", async () => agent.told.filter((m) => m.type === "terminal_open"), (t) => t.length > 0);
    const side = await agentSide(agent, open.at(-1).session_id);
    side.ws.send(JSON.stringify({ type: "started", container_id: "c0ffee" }));

    const { sent, chunk } = await flood(side, 1_500);
    // The program was let write only what fits the writer's queue and the agent's window; at a
    // rate instead it would have been let write megabytes a second for as long as the flood ran.
    expect(sent).toBeLessThanOrEqual(SOCKET_QUEUE_BYTES + TERMINAL_WINDOW_BYTES + chunk);

    // The writer reads: everything the program wrote arrives, in order, and the agent is let go on.
    const writer = watchSocket(res.webSocket!);
    const more = await flood(side, 300);
    expect(more.sent).toBeGreaterThan(0);
    await until("the writer has it all", async () => received(writer), (n) => n === sent + more.sent, 5_000);
    expect(concatBytes(writer.bytes).every((b) => b === 121)).toBe(true);
    writer.ws.close(1000);
  });

  it("a viewer that stops reading is handed no more than its queue allows, another keeps up, and it is closed once it falls out of the ring", async () => {
    const agent = await appOnHost();
    const { user, side, sessionId } = await openSession(agent);
    const reader = await exec(agent.appId, developer.token, `?session=${sessionId}`);
    // A viewer that never reads: its socket is never accepted, so whatever it is sent waits in the runtime.
    const stalledRes = await fetchWorker(`/api/v1/apps/${agent.appId}/exec?session=${sessionId}`, { headers: { upgrade: "websocket", authorization: `Bearer ${developer.token}` } });
    expect(stalledRes.status).toBe(101);
    await until("viewer greeted", async () => reader.frames, (f) => f.length > 0);

    const { sent } = await flood(side, 1_500);
    // The writer reads, so the stalled viewer does not hold the program back.
    expect(sent).toBeGreaterThan(4 * SOCKET_QUEUE_BYTES);
    await until("the writer and the reading viewer keep up", async () => [received(user), received(reader)], ([w, r]) => w === sent && r === sent, 5_000);

    // The stalled viewer reads now: it was handed no more than its queue's bound, all of it in
    // order, and then closed, its place having fallen out of the ring.
    const stalled = watchSocket(stalledRes.webSocket!);
    await until("stalled viewer closed", async () => stalled.closed(), (c) => c !== null, 5_000);
    const handed = received(stalled);
    expect(handed).toBeGreaterThan(0);
    expect(handed).toBeLessThanOrEqual(SOCKET_QUEUE_BYTES);
    expect(concatBytes(stalled.bytes).every((b) => b === 121)).toBe(true);
    expect(stalled.closed()?.code).toBe(4429);
    user.ws.close(1000);
    reader.ws.close(1000);
  });

  it("ends a session nobody uses after the idle time, and one its writer left after the grace period, telling the agent", async () => {
    const agent = await appOnHost();
    const idle = await openSession(agent);
    await until("idle close", async () => idle.user.closed(), (c) => c !== null, 10_000);
    expect(idle.user.closed()).toEqual({ code: 4408, reason: "closed after no input or output for the idle time (3 s)" });
    expect(idle.side.frames).toContainEqual({ type: "close", reason: "closed after no input or output for the idle time (3 s)" });
    await until("agent side closed", async () => idle.side.closed(), (c) => c !== null);

    const left = await openSession(agent);
    const watcher = await exec(agent.appId, developer.token, `?session=${left.sessionId}`);
    await until("viewer greeted", async () => watcher.frames, (t) => t.length > 0);
    left.user.ws.close(1000);
    await until("abandoned", async () => watcher.closed(), (c) => c !== null, 10_000);
    expect(watcher.closed()?.code).toBe(4410);
    await until("agent side closed", async () => left.side.closed(), (c) => c !== null);
    expect(left.side.frames.at(-1)).toMatchObject({ type: "close" });
  });
});
