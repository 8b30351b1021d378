/**
 * An app's live log stream (`GET /apps/{id}/logs/stream`) as its subscribers see it: through
 * the real Worker, HostDO and ProjectDO. The host's agent is simulated on its real socket
 * (`/agent/connect`): it answers the history question (`app.logs`) and sends `app_log` lines.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { api, env, fetchWorker, signUp, type TestUser, until } from "./helpers";

let owner: TestUser;

beforeAll(async () => {
  owner = await signUp({ name: "Log watcher" });
}, 60_000);

interface Line {
  time: string;
  stream: "stdout" | "stderr";
  text: string;
}

const at = (ms: number) => new Date(Date.UTC(2030, 0, 1, 0, 0, 0, ms)).toISOString();
const out = (ms: number, text: string): Line => ({ time: at(ms), stream: "stdout", text });

/** A joined host with its agent's socket open, an app placed on it, and what the agent was told. */
async function appWithAgent(history: (tail: number) => Promise<Line[]> | Line[] = () => []) {
  const created = await api(`/org/${owner.orgSlug}/hosts`, { token: owner.token, body: { name: `logs-${Math.random().toString(36).slice(2, 8)}`, kind: "docker" } });
  expect(created.status, created.text).toBe(201);
  const joined = await api("/agent/join", { body: { join_token: created.body.join_token, agent_version: "test", facts: { cpus: 2, memory_bytes: 2 ** 31 } } });
  expect(joined.status, joined.text).toBe(201);
  const hostId = created.body.host.id as string;
  const credential = joined.body.credential as string;
  const app = await api(`/projects/${owner.projectId}/apps`, { token: owner.token, body: { name: `Logs ${Math.random().toString(36).slice(2, 8)}`, image: "nginx:alpine" } });
  expect(app.status, app.text).toBe(201);
  const appId = app.body.id as string;
  // Where a deploy would have placed it.
  await env.DB.prepare("UPDATE app SET host_id = ? WHERE id = ?").bind(hostId, appId).run();

  const agent = { hostId, credential, appId, told: [] as any[], ws: null as WebSocket | null, history };
  agent.ws = await connectAgent(agent);
  return agent;
}

async function connectAgent(agent: { credential: string; told: any[]; history: (tail: number) => Promise<Line[]> | Line[] }) {
  const res = await fetchWorker("/api/v1/agent/connect", { headers: { upgrade: "websocket", authorization: `Bearer ${agent.credential}` } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  const hellos = agent.told.filter((m) => m.type === "hello").length;
  ws.addEventListener("message", async (e) => {
    const msg = JSON.parse(e.data as string);
    agent.told.push(msg);
    if (msg.type === "rpc" && msg.method === "app.logs") {
      const result = await agent.history(msg.params.tail);
      ws.send(JSON.stringify({ type: "rpc_reply", id: msg.id, ok: true, result }));
    }
  });
  ws.send(JSON.stringify({ type: "hello", agent_version: "test", held: [] }));
  await until("hello", async () => agent.told.filter((m) => m.type === "hello").length, (n) => n > hellos);
  return ws;
}

const sendLines = (agent: { ws: WebSocket | null; appId: string }, lines: Line[]) => agent.ws!.send(JSON.stringify({ type: "app_log", app_id: agent.appId, lines }));

/** A subscriber: every message it got, parsed. */
async function subscribe(appId: string, query = "tail=0") {
  const res = await fetchWorker(`/api/v1/apps/${appId}/logs/stream?${query}`, { headers: { upgrade: "websocket", authorization: `Bearer ${owner.token}` } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const messages: any[] = [];
  let closed: { code: number; reason: string } | null = null;
  ws.accept();
  ws.addEventListener("message", (e) => messages.push(JSON.parse(e.data as string)));
  ws.addEventListener("close", (e) => {
    closed = { code: e.code, reason: e.reason };
  });
  return { ws, messages, closed: () => closed };
}

const texts = (messages: any[]) => messages.map((m) => m.line);

describe("app log stream", () => {
  it("delivers identical lines of one millisecond, each once, in order", async () => {
    const agent = await appWithAgent();
    const sub = await subscribe(agent.appId);
    await until("the follow", async () => agent.told, (t) => t.some((m) => m.type === "follow" && m.app_id === agent.appId));
    sendLines(agent, [out(1, "tick"), out(1, "tick"), out(1, "tick"), out(1, "tock"), out(2, "tick")]);
    sendLines(agent, [out(2, "tick"), out(2, ""), out(2, "")]);
    await until("all lines", async () => sub.messages, (m) => m.length >= 8);
    await new Promise((r) => setTimeout(r, 200));
    expect(texts(sub.messages)).toEqual(["tick", "tick", "tick", "tock", "tick", "tick", "", ""]);
    expect(sub.messages[0]).toEqual({ stream: "stdout", line: "tick", time: at(1) });
    sub.ws.close(1000);
  });

  it("gives a subscriber joining with a tail its history, then only newer lines, none twice, while the stream runs", async () => {
    // The container's log: p, x, x at T, and lines go on being written while the new subscriber joins.
    let answerHistory: (lines: Line[]) => void = () => {};
    let asked = false;
    const agent = await appWithAgent(
      () =>
        new Promise<Line[]>((resolve) => {
          asked = true;
          answerHistory = resolve;
        }),
    );
    const first = await subscribe(agent.appId);
    await until("the follow", async () => agent.told, (t) => t.some((m) => m.type === "follow"));
    sendLines(agent, [out(10, "p")]);
    await until("p", async () => first.messages, (m) => m.length === 1);

    const joining = subscribe(agent.appId, "tail=3");
    await until("the history question", async () => asked, (a) => a);
    // While the history is on its way, the follow (already running for the first subscriber) sends
    // lines the history has too (the two x at 20), one it has not (a third x at 20), and a later one.
    sendLines(agent, [out(20, "x"), out(20, "x"), out(20, "x"), out(30, "q")]);
    await until("the first subscriber to have them", async () => first.messages, (m) => m.length === 5);
    answerHistory([out(10, "p"), out(20, "x"), out(20, "x")]);
    const second = await joining;
    sendLines(agent, [out(40, "r")]);
    await until("r", async () => second.messages, (m) => m.some((x) => x.line === "r"));
    await new Promise((r) => setTimeout(r, 200));

    expect(texts(second.messages)).toEqual(["p", "x", "x", "x", "q", "r"]);
    expect(second.messages.map((m) => m.time)).toEqual([at(10), at(20), at(20), at(20), at(30), at(40)]);
    expect(texts(first.messages)).toEqual(["p", "x", "x", "x", "q", "r"]);
    first.ws.close(1000);
    second.ws.close(1000);
  });

  it("asks a reconnecting agent to resume after the lines it sent, counting those of the last millisecond", async () => {
    const agent = await appWithAgent();
    const sub = await subscribe(agent.appId);
    await until("the follow", async () => agent.told, (t) => t.some((m) => m.type === "follow"));
    sendLines(agent, [out(50, "a"), out(60, "same"), out(60, "same")]);
    sendLines(agent, [out(60, "same")]);
    await until("the lines", async () => sub.messages, (m) => m.length === 4);

    agent.ws!.close(1000);
    agent.ws = await connectAgent(agent);
    const resume = await until("a follow after hello", async () => agent.told.filter((m) => m.type === "follow"), (f) => f.length >= 2);
    expect(resume.at(-1)).toEqual({ type: "follow", app_id: agent.appId, since: at(60), skip: 3 });
    sub.ws.close(1000);
  });

  it("keeps a subscriber that is far behind bounded: it skips the oldest lines and is told how many", async () => {
    const agent = await appWithAgent();
    const sub = await subscribe(agent.appId);
    await until("the follow", async () => agent.told, (t) => t.some((m) => m.type === "follow"));
    // 60 000 lines at once, more than a subscriber's backlog may hold (1 MiB) or be sent in a second.
    const total = 60_000;
    const pad = "y".repeat(40);
    for (let i = 0; i < total; i += 1000) sendLines(agent, Array.from({ length: 1000 }, (_, k) => out(100 + Math.floor((i + k) / 50), `${i + k + 1} ${pad}`)));
    const last = `${total} ${pad}`;
    await until("the last line", async () => sub.messages, (m) => m.at(-1)?.line === last, 20_000);

    const notices = sub.messages.filter((m) => typeof m.skipped === "number");
    expect(notices.length).toBeGreaterThan(0);
    expect(notices[0]).toMatchObject({ stream: "stderr" });
    expect(notices[0].line).toMatch(/skipped/);
    const lines = sub.messages.filter((m) => m.skipped === undefined).map((m) => Number(m.line.split(" ")[0]));
    // In order, none twice, and what it got plus what it was told it skipped is everything.
    expect(lines.every((n, i) => i === 0 || n > lines[i - 1]!)).toBe(true);
    expect(lines.length + notices.reduce((n, m) => n + m.skipped, 0)).toBe(total);
    expect(lines.length).toBeLessThan(total);
    sub.ws.close(1000);
  });

  it("hands a subscriber that stops reading no more than its queue holds: the rest is skipped and told, not kept in memory", async () => {
    const agent = await appWithAgent();
    const reader = await subscribe(agent.appId, "tail=0&batch=1");
    // This one's socket is never accepted until the end: whatever it is sent waits in the runtime, unread.
    const res = await fetchWorker(`/api/v1/apps/${agent.appId}/logs/stream?tail=0&batch=1`, { headers: { upgrade: "websocket", authorization: `Bearer ${owner.token}` } });
    expect(res.status).toBe(101);
    await until("the follow", async () => agent.told, (t) => t.some((m) => m.type === "follow"));
    // About 10 MB of messages, far more than one socket's queue (1 MiB) and one backlog (1 MiB).
    const total = 100_000;
    const pad = "z".repeat(40);
    for (let i = 0; i < total; i += 1000) sendLines(agent, Array.from({ length: 1000 }, (_, k) => out(5000 + i + k, `${i + k + 1} ${pad}`)));
    await until("the reader has every line", async () => reader.messages, (m) => m.at(-1)?.lines?.at(-1)?.line === `${total} ${pad}`, 20_000);

    const stalled = res.webSocket!;
    let bytes = 0;
    const messages: any[] = [];
    stalled.accept();
    stalled.addEventListener("message", (e) => {
      bytes += (e.data as string).length;
      messages.push(JSON.parse(e.data as string));
    });
    await until("the stalled one is told what it skipped", async () => messages, (m) => m.some((x) => typeof x.skipped === "number"), 10_000);
    await new Promise((r) => setTimeout(r, 200));
    // Its socket's queue and its backlog, at most: not the 10 MB it would otherwise have been handed.
    expect(bytes).toBeLessThanOrEqual(2 * (1 << 20) + 128 * 1024);
    const lines = messages.flatMap((m) => m.lines.map((l: any) => Number(l.line.split(" ")[0])));
    const skipped = messages.reduce((n, m) => n + (m.skipped ?? 0), 0);
    expect(lines.every((n, i) => i === 0 || n > lines[i - 1]!)).toBe(true);
    expect(lines.length + skipped).toBe(total);
    reader.ws.close(1000);
    stalled.close(1000);
  });

  it("sends many lines per message with batch=1, all of them, in order", async () => {
    const agent = await appWithAgent();
    const sub = await subscribe(agent.appId, "tail=0&batch=1");
    await until("the follow", async () => agent.told, (t) => t.some((m) => m.type === "follow"));
    const total = 20_000;
    for (let i = 0; i < total; i += 1000) sendLines(agent, Array.from({ length: 1000 }, (_, k) => out(1000 + i + k, String(i + k + 1))));
    await until("the last line", async () => sub.messages, (m) => m.at(-1)?.lines?.at(-1)?.line === String(total), 20_000);
    const lines = sub.messages.flatMap((m) => m.lines.map((l: any) => Number(l.line)));
    expect(lines).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(sub.messages.length).toBeLessThanOrEqual(total / 100);
    expect(sub.messages.every((m) => m.skipped === undefined)).toBe(true);
    sub.ws.close(1000);
  });
});
