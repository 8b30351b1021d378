/**
 * ProjectDO: one per project (and one per host, named `host:<id>`, for host
 * jobs). It owns every job of its scope: the state machine, progress, the log,
 * the event feed, deadlines, and the WebSocket fan-out of events to subscribers.
 *
 *   queued → dispatched → running → succeeded | failed | cancelled | lost
 *
 * Transitions are checked against the attempt that reports them, so a report
 * from an attempt whose lease has expired can never move the job.
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { randomString } from "../lib/ids";
import { AppLogLine, type FinishRequest, type JobPayload, type JobProgress, type LogChunk } from "../protocol/agent";
import type { JobsQueueMessage } from "../jobs/queue";
import { onJobEnded, onJobStarted } from "../jobs/outcomes";
import { hostStub } from "./stubs";

export const TERMINAL = ["succeeded", "failed", "cancelled", "lost"] as const;
export type JobStatus = "queued" | "dispatched" | "running" | (typeof TERMINAL)[number];

/** A job's result: flat, so that it types cleanly across the Durable Object RPC boundary. */
export type JobResult = { [key: string]: string | number | boolean | null };

export interface JobRecord {
  id: string;
  type: string;
  status: JobStatus;
  scope: string;
  host_id: string;
  subject: string | null;
  progress: JobProgress | null;
  error: string | null;
  result: JobResult | null;
  attempts: number;
  created_at: number;
  dispatched_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  deadline_at: number;
}

export interface JobEvent {
  seq: number;
  job_id: string;
  type: string;
  data: Record<string, unknown>;
  at: number;
}

export interface NewJob {
  type: JobPayload["type"];
  hostId: string;
  payload: JobPayload;
  subject?: string | null;
  /** Work that must not run twice (create, deploy, exec) is reconciled on redelivery rather than repeated. */
  idempotent: boolean;
  /** Total seconds the job may take from submission, queueing included. */
  deadlineSeconds: number;
  maxAttempts?: number;
}

const QUEUE_RETRY_MS = 2_000;
const MAX_WAIT_MS = 60_000;

type Row = Record<string, SqlStorageValue>;

export class ProjectDO extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    ctx.blockConcurrencyWhile(async () => this.migrate());
  }

  private migrate() {
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY, type TEXT NOT NULL, status TEXT NOT NULL, scope TEXT NOT NULL,
        host_id TEXT NOT NULL, subject TEXT, payload TEXT NOT NULL, idempotent INTEGER NOT NULL,
        progress TEXT, error TEXT, result TEXT, attempts INTEGER NOT NULL DEFAULT 1,
        max_attempts INTEGER NOT NULL, sent INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL, dispatched_at INTEGER, started_at INTEGER,
        finished_at INTEGER, deadline_at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at DESC);
      CREATE INDEX IF NOT EXISTS jobs_open ON jobs(status, deadline_at);
      CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, type TEXT NOT NULL,
        data TEXT NOT NULL, at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS logs (
        job_id TEXT NOT NULL, attempt INTEGER NOT NULL, seq INTEGER NOT NULL, stream TEXT NOT NULL,
        offset INTEGER NOT NULL, data TEXT NOT NULL, at INTEGER NOT NULL,
        PRIMARY KEY (job_id, attempt, seq)
      );
      CREATE TABLE IF NOT EXISTS log_heads (
        job_id TEXT NOT NULL, attempt INTEGER NOT NULL, stream TEXT NOT NULL, next_offset INTEGER NOT NULL,
        PRIMARY KEY (job_id, attempt, stream)
      );
    `);
  }

  // ------------------------------------------------------------ reading

  private row(id: string): Row | undefined {
    return this.sql.exec("SELECT * FROM jobs WHERE id = ?", id).toArray()[0];
  }

  private record(r: Row): JobRecord {
    return {
      id: r.id as string,
      type: r.type as string,
      status: r.status as JobStatus,
      scope: r.scope as string,
      host_id: r.host_id as string,
      subject: (r.subject as string | null) ?? null,
      progress: r.progress ? (JSON.parse(r.progress as string) as JobProgress) : null,
      error: (r.error as string | null) ?? null,
      result: r.result ? (JSON.parse(r.result as string) as JobResult) : null,
      attempts: r.attempts as number,
      created_at: r.created_at as number,
      dispatched_at: (r.dispatched_at as number | null) ?? null,
      started_at: (r.started_at as number | null) ?? null,
      finished_at: (r.finished_at as number | null) ?? null,
      deadline_at: r.deadline_at as number,
    };
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const r = this.row(id);
    return r ? this.record(r) : null;
  }

  async listJobs(filter: { subject?: string; limit?: number } = {}): Promise<JobRecord[]> {
    const limit = Math.min(filter.limit ?? 50, 200);
    const rows = filter.subject
      ? this.sql.exec("SELECT * FROM jobs WHERE subject = ? ORDER BY created_at DESC, id DESC LIMIT ?", filter.subject, limit)
      : this.sql.exec("SELECT * FROM jobs ORDER BY created_at DESC, id DESC LIMIT ?", limit);
    return rows.toArray().map((r) => this.record(r));
  }

  /** The job's log of its latest attempt, in order. */
  async getLogs(id: string): Promise<Array<{ stream: string; offset: number; data: string; at: number }>> {
    const r = this.row(id);
    if (!r) return [];
    return this.sql
      .exec("SELECT stream, offset, data, at FROM logs WHERE job_id = ? AND attempt = ? ORDER BY seq", id, r.attempts as number)
      .toArray()
      .map((l) => ({ stream: l.stream as string, offset: l.offset as number, data: l.data as string, at: l.at as number }));
  }

  async eventsSince(seq: number, limit = 500): Promise<JobEvent[]> {
    return this.sql
      .exec("SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", seq, limit)
      .toArray()
      .map((e) => ({ seq: e.seq as number, job_id: e.job_id as string, type: e.type as string, data: JSON.parse(e.data as string), at: e.at as number }));
  }

  private lastSeq(): number {
    return (this.sql.exec("SELECT COALESCE(MAX(seq), 0) AS seq FROM events").one().seq as number) ?? 0;
  }

  /** Resolves when the job ends or `timeoutMs` passes, whichever is first. */
  async waitForJob(id: string, timeoutMs: number): Promise<JobRecord | null> {
    const current = await this.getJob(id);
    if (!current || (TERMINAL as readonly string[]).includes(current.status)) return current;
    await new Promise<void>((resolve) => {
      const set = this.waiters.get(id) ?? new Set();
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (!set.size) this.waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(done, Math.min(Math.max(timeoutMs, 0), MAX_WAIT_MS));
      set.add(done);
      this.waiters.set(id, set);
    });
    return this.getJob(id);
  }

  // ------------------------------------------------------------ writing

  private emit(jobId: string, type: string, data: Record<string, unknown>) {
    const at = Date.now();
    const seq = this.sql
      .exec("INSERT INTO events (job_id, type, data, at) VALUES (?, ?, ?, ?) RETURNING seq", jobId, type, JSON.stringify(data), at)
      .one().seq as number;
    const frame = JSON.stringify({ seq, job_id: jobId, type, data, at });
    for (const ws of this.ctx.getWebSockets("events")) {
      try {
        ws.send(frame);
      } catch {
        /* a closing socket; its close handler cleans up */
      }
    }
  }

  private wake(jobId: string) {
    for (const w of this.waiters.get(jobId) ?? []) w();
  }

  private snapshot(id: string): Record<string, unknown> {
    const j = this.record(this.row(id)!);
    return { status: j.status, attempts: j.attempts, progress: j.progress, error: j.error };
  }

  async createJob(scope: string, spec: NewJob): Promise<JobRecord> {
    const id = `job_${randomString(16)}`;
    const now = Date.now();
    this.sql.exec(
      `INSERT INTO jobs (id, type, status, scope, host_id, subject, payload, idempotent, max_attempts, created_at, deadline_at)
       VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)`,
      id, spec.type, scope, spec.hostId, spec.subject ?? null, JSON.stringify(spec.payload), spec.idempotent ? 1 : 0,
      spec.maxAttempts ?? 5, now, now + spec.deadlineSeconds * 1000,
    );
    this.emit(id, "job.queued", { type: spec.type, host_id: spec.hostId });
    await this.send(id);
    await this.scheduleAlarm();
    return this.record(this.row(id)!);
  }

  /** Hands the job to the Queue; if the Queue refuses, the alarm tries again until the deadline. */
  private async send(id: string) {
    const r = this.row(id)!;
    const message: JobsQueueMessage = {
      job_id: id,
      scope: r.scope as string,
      host_id: r.host_id as string,
      attempt: r.attempts as number,
      idempotent: r.idempotent === 1,
      deadline_at: r.deadline_at as number,
      payload: JSON.parse(r.payload as string),
    };
    try {
      await this.env.JOBS.send(message, { contentType: "json" });
      this.sql.exec("UPDATE jobs SET sent = 1 WHERE id = ?", id);
    } catch (err) {
      console.warn(JSON.stringify({ level: "warn", msg: "queue send failed; will retry", job_id: id, error: String(err) }));
    }
  }

  /** The queue consumer put the job in its host's mailbox. */
  async markDispatched(id: string, attempt: number): Promise<boolean> {
    const changed = this.sql
      .exec("UPDATE jobs SET status = 'dispatched', dispatched_at = ? WHERE id = ? AND attempts = ? AND status = 'queued'", Date.now(), id, attempt)
      .rowsWritten;
    if (changed) {
      this.emit(id, "job.dispatched", this.snapshot(id));
    } else if ((TERMINAL as readonly string[]).includes(this.row(id)?.status as string)) {
      // The job ended while its hand-off was on the way (a cancel raced the Queue): take it back out of the mailbox.
      await hostStub(this.env, this.row(id)!.host_id as string).cancel(id).catch(() => undefined);
    }
    return changed > 0;
  }

  /** The agent holding attempt `attempt` started work. False if that attempt no longer owns the job. */
  async startJob(id: string, attempt: number): Promise<boolean> {
    const changed = this.sql
      .exec(
        "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?) WHERE id = ? AND attempts = ? AND status IN ('queued', 'dispatched', 'running')",
        Date.now(), id, attempt,
      ).rowsWritten;
    if (changed) {
      this.emit(id, "job.running", this.snapshot(id));
      await this.follow(id, onJobStarted);
    }
    return changed > 0;
  }

  async reportProgress(id: string, attempt: number, progress: JobProgress): Promise<boolean> {
    const changed = this.sql
      .exec("UPDATE jobs SET progress = ? WHERE id = ? AND attempts = ? AND status = 'running'", JSON.stringify(progress), id, attempt)
      .rowsWritten;
    if (changed) this.emit(id, "job.progress", { progress });
    return changed > 0;
  }

  /**
   * Appends log chunks of one attempt. A chunk already held (same seq) is
   * ignored; a chunk that starts past the held end of its stream is a gap, and
   * the answer says where to resend from. Nothing is lost or doubled.
   */
  async appendLogs(id: string, attempt: number, chunks: LogChunk[]): Promise<{ ok: boolean; expected: { stdout: number; stderr: number }; gap: boolean }> {
    const r = this.row(id);
    const live = r && (r.attempts as number) === attempt && r.status === "running";
    const heads = { stdout: 0, stderr: 0 };
    for (const h of this.sql.exec("SELECT stream, next_offset FROM log_heads WHERE job_id = ? AND attempt = ?", id, attempt)) {
      heads[h.stream as "stdout" | "stderr"] = h.next_offset as number;
    }
    if (!live) return { ok: false, expected: heads, gap: false };
    let gap = false;
    const now = Date.now();
    for (const chunk of [...chunks].sort((a, b) => a.seq - b.seq)) {
      const head = heads[chunk.stream];
      const bytes = new TextEncoder().encode(chunk.data).byteLength;
      if (chunk.offset + bytes <= head) continue; // already held: a resend
      if (chunk.offset > head) {
        gap = true; // something before this chunk is missing
        continue;
      }
      // The chunk overlaps the held end: keep only its new tail.
      const fresh = chunk.offset < head ? new TextDecoder().decode(new TextEncoder().encode(chunk.data).slice(head - chunk.offset)) : chunk.data;
      const seq = (this.sql.exec("SELECT COALESCE(MAX(seq), -1) + 1 AS next FROM logs WHERE job_id = ? AND attempt = ?", id, attempt).one().next as number);
      this.sql.exec(
        "INSERT INTO logs (job_id, attempt, seq, stream, offset, data, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        id, attempt, seq, chunk.stream, head, fresh, now,
      );
      heads[chunk.stream] = chunk.offset + bytes;
      this.sql.exec(
        "INSERT INTO log_heads (job_id, attempt, stream, next_offset) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET next_offset = excluded.next_offset",
        id, attempt, chunk.stream, heads[chunk.stream],
      );
      this.emit(id, "job.log", { stream: chunk.stream, data: fresh });
    }
    return { ok: true, expected: heads, gap };
  }

  /** Ends the job once. A second finish, or one from a stale attempt, changes nothing. */
  async finishJob(id: string, attempt: number, outcome: FinishRequest): Promise<boolean> {
    const changed = this.sql
      .exec(
        `UPDATE jobs SET status = ?, error = ?, result = ?, finished_at = ?,
           progress = CASE WHEN ? = 'succeeded' THEN json_object('step', COALESCE(json_extract(progress, '$.total'), 1), 'total', COALESCE(json_extract(progress, '$.total'), 1), 'percent', 100, 'message', 'Done') ELSE progress END
         WHERE id = ? AND attempts = ? AND status IN ('queued', 'dispatched', 'running')`,
        outcome.status, outcome.status === "failed" ? (outcome.error ?? "failed") : null, outcome.result ? JSON.stringify(outcome.result) : null,
        Date.now(), outcome.status, id, attempt,
      ).rowsWritten;
    if (changed) await this.ended(id);
    return changed > 0;
  }

  private async ended(id: string) {
    this.emit(id, `job.${this.row(id)!.status as string}`, this.snapshot(id));
    this.wake(id);
    await this.follow(id, onJobEnded);
  }

  /** Brings the records a job is about (deployments, apps) in line with it; a failure there never undoes the transition. */
  private async follow(id: string, hook: (env: Env, job: JobRecord, payload: JobPayload) => Promise<void>) {
    const r = this.row(id)!;
    try {
      await hook(this.env, this.record(r), JSON.parse(r.payload as string) as JobPayload);
    } catch (err) {
      console.error(JSON.stringify({ level: "error", msg: "could not record a job transition", job_id: id, error: String(err) }));
    }
  }

  /** Fails an open job with a reason the user can read (dead letter, deadline, host gone). */
  async failJob(id: string, reason: string, status: "failed" | "lost" = "failed"): Promise<boolean> {
    const changed = this.sql
      .exec("UPDATE jobs SET status = ?, error = ?, finished_at = ? WHERE id = ? AND status IN ('queued', 'dispatched', 'running')", status, reason, Date.now(), id)
      .rowsWritten;
    if (changed) {
      await this.ended(id);
      await hostStub(this.env, this.row(id)!.host_id as string).cancel(id).catch(() => undefined);
    }
    return changed > 0;
  }

  /** A lease expired: the host hands the job out again as attempt `attempt + 1`, or gives up on it. */
  async leaseExpired(id: string, attempt: number, reason = "lease expired"): Promise<{ redeliver: boolean; attempt: number }> {
    const r = this.row(id);
    if (!r || (r.attempts as number) !== attempt || (TERMINAL as readonly string[]).includes(r.status as string)) {
      return { redeliver: false, attempt };
    }
    if (attempt >= (r.max_attempts as number)) {
      this.sql.exec("UPDATE jobs SET status = 'lost', error = ?, finished_at = ? WHERE id = ?", `The host lost this job ${attempt} times (last: ${reason}); giving up`, Date.now(), id);
      await this.ended(id);
      return { redeliver: false, attempt };
    }
    this.sql.exec("UPDATE jobs SET attempts = attempts + 1, status = 'dispatched', dispatched_at = ? WHERE id = ?", Date.now(), id);
    this.emit(id, "job.redelivered", { ...this.snapshot(id), reason });
    return { redeliver: true, attempt: attempt + 1 };
  }

  async cancelJob(id: string): Promise<JobRecord | null> {
    const changed = this.sql
      .exec("UPDATE jobs SET status = 'cancelled', error = 'Cancelled by a user', finished_at = ? WHERE id = ? AND status IN ('queued', 'dispatched', 'running')", Date.now(), id)
      .rowsWritten;
    if (changed) {
      await this.ended(id);
      await hostStub(this.env, this.row(id)!.host_id as string).cancel(id).catch(() => undefined);
    }
    return this.getJob(id);
  }

  // ------------------------------------------------------------ deadlines

  private async scheduleAlarm() {
    const next = this.sql
      .exec("SELECT MIN(CASE WHEN sent = 0 THEN MIN(deadline_at, ?) ELSE deadline_at END) AS at FROM jobs WHERE status IN ('queued', 'dispatched', 'running')", Date.now() + QUEUE_RETRY_MS)
      .one().at as number | null;
    if (next === null) return;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next) await this.ctx.storage.setAlarm(next);
  }

  async alarm() {
    const now = Date.now();
    const overdue = this.sql.exec("SELECT id, status FROM jobs WHERE status IN ('queued', 'dispatched', 'running') AND deadline_at <= ?", now).toArray();
    for (const j of overdue) {
      const reason =
        j.status === "running"
          ? "Deadline passed while the job was running; the host stopped reporting or the work took too long"
          : "Deadline passed before any host started the job; is the host's agent online?";
      await this.failJob(j.id as string, reason);
    }
    for (const j of this.sql.exec("SELECT id FROM jobs WHERE status = 'queued' AND sent = 0").toArray()) await this.send(j.id as string);
    await this.scheduleAlarm();
  }

  // ------------------------------------------------------------ event stream

  // ------------------------------------------------------------ app log streams

  /** Per app: the time of the newest line fanned out, and the texts at that time, so a resend after a reconnect is not shown twice. */
  private readonly logHeads = new Map<string, { time: string; texts: Set<string> }>();

  /**
   * WebSocket subscription to an app's container logs (`{stream, line}` as
   * Dockup sends them), with the last `tail` lines first. The host's agent
   * follows the container only while someone here listens.
   */
  private async subscribeLogs(url: URL): Promise<Response> {
    const appId = url.searchParams.get("app") ?? "";
    const hostId = url.searchParams.get("host");
    const scope = url.searchParams.get("scope") ?? "";
    const tail = Math.min(Math.max(Number(url.searchParams.get("tail") ?? "100") || 0, 0), 5000);
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, [`logs:${appId}`]);
    let after = "";
    if (hostId && tail > 0) {
      const reply = await hostStub(this.env, hostId).rpc("app.logs", { app_id: appId, tail });
      const parsed = reply.ok ? AppLogLine.array().safeParse(JSON.parse(reply.json)) : null;
      if (parsed?.success) {
        const lines = parsed.data;
        for (const l of lines) server.send(JSON.stringify({ stream: l.stream, line: l.text, time: l.time }));
        after = lines.at(-1)?.time ?? "";
      }
    }
    // Live lines this socket already got in the history are not sent again.
    server.serializeAttachment({ kind: "logs", appId, hostId, scope, after });
    if (hostId) await hostStub(this.env, hostId).follow(appId, scope, true, after || new Date().toISOString());
    return new Response(null, { status: 101, webSocket: client });
  }

  private async hostOfApp(appId: string): Promise<string | null> {
    const row = await this.env.DB.prepare("SELECT host_id FROM app WHERE id = ?").bind(appId).first<{ host_id: string | null }>();
    return row?.host_id ?? null;
  }

  /** Lines from the agent, in order, fanned out to everyone watching the app. */
  async appLogs(appId: string, lines: AppLogLine[]): Promise<void> {
    const head = this.logHeads.get(appId) ?? { time: "", texts: new Set<string>() };
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
    this.logHeads.set(appId, head);
    const watchers = this.ctx.getWebSockets(`logs:${appId}`);
    if (!watchers.length) {
      // Nobody listens any more (their close was never delivered, say after a restart): stop the follow.
      const hostId = await this.hostOfApp(appId);
      if (hostId) await hostStub(this.env, hostId).follow(appId, "", false);
      return;
    }
    if (!fresh.length) return;
    for (const ws of watchers) {
      const after = (ws.deserializeAttachment() as { after?: string } | null)?.after ?? "";
      for (const l of fresh) {
        if (l.time <= after) continue;
        try {
          ws.send(JSON.stringify({ stream: l.stream, line: l.text, time: l.time }));
        } catch {
          /* closing */
        }
      }
    }
  }

  /** WebSocket subscriptions: `/logs` for an app's container logs, anything else for this scope's job events. */
  async fetch(request: Request): Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") return new Response("expected a WebSocket", { status: 426 });
    const url = new URL(request.url);
    if (url.pathname.endsWith("/logs/stream")) return this.subscribeLogs(url);
    // Without a resume point a subscriber gets what happens from now on, not the whole history.
    const asked = url.searchParams.get("since");
    const since = asked === null ? this.lastSeq() : Number(asked) || 0;
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, ["events"]);
    // Replayed a page at a time, so a long history never sits in memory at once.
    for (let cursor = since, page = await this.eventsSince(cursor, 200); page.length; page = await this.eventsSince(cursor, 200)) {
      for (const e of page) server.send(JSON.stringify(e));
      cursor = page.at(-1)!.seq;
    }
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer) {
    if (message === "ping") ws.send("pong");
  }

  async webSocketClose(ws: WebSocket, code: number) {
    try {
      ws.close(code === 1005 ? 1000 : code, "bye");
    } catch {
      /* already closed */
    }
    const sub = ws.deserializeAttachment() as { kind?: string; appId?: string; hostId?: string | null; scope?: string } | null;
    if (sub?.kind === "logs" && sub.appId && sub.hostId) {
      const others = this.ctx.getWebSockets(`logs:${sub.appId}`).filter((w) => w !== ws && w.readyState === WebSocket.OPEN);
      // The last one watching left: the agent stops following the container.
      if (!others.length) await hostStub(this.env, sub.hostId).follow(sub.appId, sub.scope ?? "", false);
    }
  }
}
