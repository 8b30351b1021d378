/**
 * Live container logs of a project's apps, fanned out to every WebSocket watching an app
 * (tag `logs:<appId>`), as Dockup sends them: `{stream, line, time}`, the last `tail`
 * lines first. The app's host's agent follows the container only while someone watches;
 * lines a reconnecting agent sends again are not shown twice.
 */
import type { Env } from "../../env";
import { AppLogLine } from "../../protocol/agent";
import { appHost } from "../../services/apps";
import { createDb } from "../../db/client";
import { hostMailbox } from "../clients";

interface Watcher {
  kind: "logs";
  appId: string;
  hostId: string | null;
  scope: string;
  /** Lines at or before this time were in the history the watcher got first. */
  after: string;
}

const MAX_TAIL = 5000;
const tagOf = (appId: string) => `logs:${appId}`;
const frame = (l: AppLogLine) => JSON.stringify({ stream: l.stream, line: l.text, time: l.time });

export class AppLogFanout {
  /** Per app: the time of the newest line fanned out, and the texts at that time. */
  private readonly heads = new Map<string, { time: string; texts: Set<string> }>();

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly env: Env,
  ) {}

  /** A new watcher of `?app=&host=&scope=&tail=`. */
  async subscribe(url: URL): Promise<Response> {
    const appId = url.searchParams.get("app") ?? "";
    const hostId = url.searchParams.get("host");
    const scope = url.searchParams.get("scope") ?? "";
    const tail = Math.min(Math.max(Number(url.searchParams.get("tail") ?? "100") || 0, 0), MAX_TAIL);
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, [tagOf(appId)]);
    let after = "";
    if (hostId && tail > 0) {
      const reply = await hostMailbox(this.env, hostId).rpc("app.logs", { app_id: appId, tail });
      const parsed = reply.ok ? AppLogLine.array().safeParse(JSON.parse(reply.json)) : null;
      if (parsed?.success) {
        for (const l of parsed.data) server.send(frame(l));
        after = parsed.data.at(-1)?.time ?? "";
      }
    }
    server.serializeAttachment({ kind: "logs", appId, hostId, scope, after } satisfies Watcher);
    if (hostId) await hostMailbox(this.env, hostId).follow(appId, scope, true, after || new Date().toISOString());
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Lines from the agent, in order, to everyone watching the app. */
  async deliver(appId: string, lines: AppLogLine[]): Promise<void> {
    const head = this.heads.get(appId) ?? { time: "", texts: new Set<string>() };
    const fresh: AppLogLine[] = [];
    for (const l of lines) {
      if (l.time < head.time || (l.time === head.time && head.texts.has(l.stream + l.text))) continue;
      if (l.time > head.time) {
        head.time = l.time;
        head.texts = new Set();
      }
      head.texts.add(l.stream + l.text);
      fresh.push(l);
    }
    this.heads.set(appId, head);
    const watchers = this.ctx.getWebSockets(tagOf(appId));
    if (!watchers.length) {
      // Nobody listens any more (their close was never delivered, say after a restart): stop the follow.
      const hostId = await appHost(createDb(this.env.DB), appId);
      if (hostId) await hostMailbox(this.env, hostId).follow(appId, "", false);
      return;
    }
    for (const ws of watchers) {
      const after = (ws.deserializeAttachment() as Watcher | null)?.after ?? "";
      for (const l of fresh) {
        if (l.time <= after) continue;
        try {
          ws.send(frame(l));
        } catch {
          /* closing */
        }
      }
    }
  }

  /** A watcher left; when it was the last of its app, the agent stops following the container. */
  async closed(ws: WebSocket): Promise<void> {
    const w = ws.deserializeAttachment() as Partial<Watcher> | null;
    if (w?.kind !== "logs" || !w.appId || !w.hostId) return;
    const others = this.ctx.getWebSockets(tagOf(w.appId)).filter((o) => o !== ws && o.readyState === WebSocket.OPEN);
    if (!others.length) await hostMailbox(this.env, w.hostId).follow(w.appId, w.scope ?? "", false);
  }
}
