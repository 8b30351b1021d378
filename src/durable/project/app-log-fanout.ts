/**
 * Live container logs of a project's apps, fanned out to every WebSocket watching an app
 * (tag `logs:<appId>`), as Dockup sends them: one `{stream, line, time}` message per line,
 * the last `tail` lines first; with `batch=1`, frames of many lines, `{lines: [{stream, line,
 * time}, …]}`. The app's host's agent follows the container only while someone watches.
 *
 * Each batch from the agent is serialised once and queued, shared, for every subscriber
 * (project/log-outbox.ts); the queues are sent from on each batch and on a short timer while
 * any holds lines, each within its share of a frame budget, and bounded: a subscriber too far
 * behind is told how many lines it skipped. A subscriber joining with `tail` gets that history
 * first and then only lines after it, none twice; lines are never dropped for looking like
 * another (identical lines in one millisecond are all shown).
 */
import type { Env } from "../../env";
import { AppLogLine } from "../../protocol/agent";
import { appHost } from "../../services/apps";
import { createDb } from "../../db/client";
import { hostMailbox } from "../clients";
import { appFramesPerSecond, type Cursor, chunkOf, LogOutbox } from "./log-outbox";

interface Watcher {
  kind: "logs";
  appId: string;
  hostId: string | null;
  scope: string;
  batch: boolean;
}

const MAX_TAIL = 5000;
/** How often the queues of subscribers that are behind are sent from, between batches. */
const TICK_MS = 50;
const tagOf = (appId: string) => `logs:${appId}`;

export class AppLogFanout {
  /** Per app, its subscribers' outboxes; rebuilt from the sockets' attachments after the object slept. */
  private readonly apps = new Map<string, Map<WebSocket, LogOutbox>>();
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly env: Env,
  ) {}

  /** A new watcher of `?app=&host=&scope=&tail=&batch=`. */
  async subscribe(url: URL): Promise<Response> {
    const appId = url.searchParams.get("app") ?? "";
    const hostId = url.searchParams.get("host") || null;
    const scope = url.searchParams.get("scope") ?? "";
    const tail = Math.min(Math.max(Number(url.searchParams.get("tail") ?? "100") || 0, 0), MAX_TAIL);
    const batch = ["1", "true"].includes(url.searchParams.get("batch") ?? "");
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, [tagOf(appId)]);
    server.serializeAttachment({ kind: "logs", appId, hostId, scope, batch } satisfies Watcher);
    // Registered before the history is asked for: lines that arrive meanwhile wait in its outbox
    // (held), and the history's end decides which of them it already has.
    const outbox = new LogOutbox(server, batch, Date.now());
    this.subscribersOf(appId).set(server, outbox);
    let cursor: Cursor | null = null;
    try {
      const history = hostId && tail > 0 ? await this.history(hostId, appId, tail) : [];
      const last = history.at(-1);
      if (last) {
        cursor = { time: last.time, count: history.filter((l) => l.time === last.time).length };
        this.sendHistory(server, history, batch);
      }
    } finally {
      // Without its history (the agent away or failing) it gets the live lines from now on.
      outbox.release(cursor, Date.now());
    }
    if (hostId) await hostMailbox(this.env, hostId).follow(appId, scope, true, cursor?.time ?? new Date().toISOString(), cursor?.count ?? 0);
    this.flush();
    return new Response(null, { status: 101, webSocket: client });
  }

  /** The container's last `tail` lines, asked of the host's agent; none when it cannot answer. */
  private async history(hostId: string, appId: string, tail: number): Promise<AppLogLine[]> {
    const reply = await hostMailbox(this.env, hostId).rpc("app.logs", { app_id: appId, tail });
    if (!reply.ok) return [];
    let json: unknown;
    try {
      json = JSON.parse(reply.json);
    } catch {
      return [];
    }
    const parsed = AppLogLine.array().safeParse(json);
    return parsed.success ? parsed.data : [];
  }

  private sendHistory(ws: WebSocket, history: AppLogLine[], batch: boolean) {
    const messages = chunkOf(history, 0).messages;
    try {
      if (batch) ws.send(`{"lines":[${messages.join(",")}]}`);
      else for (const m of messages) ws.send(m);
    } catch {
      /* closing */
    }
  }

  /** Lines from the agent, in order, to everyone watching the app. */
  async deliver(appId: string, lines: AppLogLine[]): Promise<void> {
    const subscribers = this.subscribersOf(appId);
    if (!subscribers.size) {
      this.apps.delete(appId);
      // Nobody listens any more (their close was never delivered, say after a restart): stop the follow.
      const hostId = await appHost(createDb(this.env.DB), appId);
      if (hostId) await hostMailbox(this.env, hostId).follow(appId, "", false);
      return;
    }
    if (!lines.length) return;
    const chunk = chunkOf(lines, Date.now());
    for (const outbox of subscribers.values()) outbox.push(chunk);
    this.flush();
  }

  /** Sends from every queue what its budget allows; while any still holds lines, again in `TICK_MS`. */
  private flush() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const now = Date.now();
    let waiting = false;
    for (const subscribers of this.apps.values()) {
      const share = appFramesPerSecond(this.env.APP_LOG_FRAMES_PER_SECOND) / Math.max(subscribers.size, 1);
      for (const outbox of subscribers.values()) if (outbox.flush(now, share)) waiting = true;
    }
    if (waiting) this.timer = setTimeout(() => this.flush(), TICK_MS);
  }

  /** The outboxes of an app's subscribers; after the object slept, made again from the open sockets. */
  private subscribersOf(appId: string): Map<WebSocket, LogOutbox> {
    let subscribers = this.apps.get(appId);
    if (!subscribers) {
      subscribers = new Map();
      const now = Date.now();
      for (const ws of this.ctx.getWebSockets(tagOf(appId))) {
        const w = ws.deserializeAttachment() as Watcher | null;
        if (w?.kind !== "logs" || ws.readyState !== WebSocket.OPEN) continue;
        const outbox = new LogOutbox(ws, w.batch === true, now);
        outbox.release(null, now);
        subscribers.set(ws, outbox);
      }
      this.apps.set(appId, subscribers);
    }
    return subscribers;
  }

  /** A watcher left; when it was the last of its app, the agent stops following the container. */
  async closed(ws: WebSocket): Promise<void> {
    const w = ws.deserializeAttachment() as Partial<Watcher> | null;
    if (w?.kind !== "logs" || !w.appId) return;
    const subscribers = this.apps.get(w.appId);
    subscribers?.delete(ws);
    if (subscribers && !subscribers.size) this.apps.delete(w.appId);
    if (!w.hostId) return;
    const others = this.ctx.getWebSockets(tagOf(w.appId)).filter((o) => o !== ws && o.readyState === WebSocket.OPEN);
    if (!others.length) await hostMailbox(this.env, w.hostId).follow(w.appId, w.scope ?? "", false);
  }
}
