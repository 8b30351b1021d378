/**
 * A ProjectDO's event feed: every job transition as `{seq, job_id, type, data, at}`,
 * kept in `events` and sent at once to every subscriber's WebSocket (tag `events`).
 * A subscriber resumes with `?since=<seq>` (or Last-Event-ID) and gets what it missed first.
 */
import type { SchemaComponent } from "../sql-schema";

export interface JobEvent {
  seq: number;
  job_id: string;
  type: string;
  data: Record<string, unknown>;
  at: number;
}

export const EVENTS_SCHEMA: SchemaComponent = {
  name: "events",
  steps: [
    `CREATE TABLE IF NOT EXISTS events (
       seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, type TEXT NOT NULL,
       data TEXT NOT NULL, at INTEGER NOT NULL
     );`,
  ],
};

const SOCKET_TAG = "events";
const REPLAY_PAGE = 200;

export class EventFeed {
  constructor(private readonly ctx: DurableObjectState) {}

  private get sql() {
    return this.ctx.storage.sql;
  }

  emit(jobId: string, type: string, data: Record<string, unknown>) {
    const at = Date.now();
    const seq = this.sql
      .exec("INSERT INTO events (job_id, type, data, at) VALUES (?, ?, ?, ?) RETURNING seq", jobId, type, JSON.stringify(data), at)
      .one().seq as number;
    const frame = JSON.stringify({ seq, job_id: jobId, type, data, at });
    for (const ws of this.ctx.getWebSockets(SOCKET_TAG)) {
      try {
        ws.send(frame);
      } catch {
        /* a closing socket; its close handler cleans up */
      }
    }
  }

  since(seq: number, limit = 500): JobEvent[] {
    return this.sql
      .exec("SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", seq, limit)
      .toArray()
      .map((e) => ({ seq: e.seq as number, job_id: e.job_id as string, type: e.type as string, data: JSON.parse(e.data as string), at: e.at as number }));
  }

  lastSeq(): number {
    return (this.sql.exec("SELECT COALESCE(MAX(seq), 0) AS seq FROM events").one().seq as number) ?? 0;
  }

  /** A new subscriber: what it missed since `since` (or nothing, without a resume point), then everything live. */
  subscribe(since: number | null): Response {
    const from = since ?? this.lastSeq();
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, [SOCKET_TAG]);
    // Replayed a page at a time, so a long history never sits in memory at once.
    for (let cursor = from, page = this.since(cursor, REPLAY_PAGE); page.length; page = this.since(cursor, REPLAY_PAGE)) {
      for (const e of page) server.send(JSON.stringify(e));
      cursor = page.at(-1)!.seq;
    }
    return new Response(null, { status: 101, webSocket: client });
  }
}
