/**
 * HostDO: one per host, that host's mailbox. The queue consumer drops jobs in;
 * the agent takes them out as leases, pushed over its WebSocket when it holds
 * one, or claimed over HTTP (long-poll) when it does not.
 *
 * A lease is the right to report on one attempt of one job. Every report
 * (start, renew, logs, finish) names its lease; a lease that has expired, was
 * cancelled or was replaced is refused, and the agent drops that work. An
 * expired lease hands the job out again as a new attempt; work that must not
 * run twice goes out marked `reconcile`, so the agent first looks for what the
 * earlier attempt left behind.
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import type { JobsQueueMessage } from "../jobs/queue";
import { randomString } from "../lib/ids";
import {
  AGENT_PROTOCOL_VERSION, AgentMessage, FinishRequest, type HostFacts, type JobProgress, type Lease, LogAppendRequest, type LogChunk, RenewRequest,
  type RpcMethod,
} from "../protocol/agent";
import { answerLeaseReport, type LeaseOp } from "../protocol/lease-answers";
import { agentSettings } from "../services/host-settings";
import { projectStub } from "./stubs";

type Row = Record<string, SqlStorageValue>;

export type LeaseRef = { job_id: string; lease_id: string };
export type LeaseCheck = { ok: true } | { ok: false; reason: string };

interface SocketState {
  hostId: string;
  /** Set once the agent said hello; only then are leases pushed to it. */
  ready: boolean;
}

/** Most leases handed out in one push or claim. */
const MAX_LEASES_PER_CLAIM = 16;
const MAX_CLAIM_WAIT_MS = 30_000;

export class HostDO extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly claimWaiters = new Set<() => void>();
  private readonly rpcs = new Map<string, (reply: { ok: boolean; result?: unknown; error?: string }) => void>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    ctx.blockConcurrencyWhile(async () => {
      this.sql.exec(`
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS mailbox (
          job_id TEXT PRIMARY KEY, scope TEXT NOT NULL, attempt INTEGER NOT NULL,
          payload TEXT NOT NULL, idempotent INTEGER NOT NULL, reconcile INTEGER NOT NULL DEFAULT 0,
          deadline_at INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
          lease_id TEXT UNIQUE, lease_expires_at INTEGER, enqueued_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS mailbox_state ON mailbox(state, enqueued_at);
        CREATE TABLE IF NOT EXISTS follows (app_id TEXT PRIMARY KEY, scope TEXT NOT NULL, since TEXT);
      `);
    });
    // Keep-alives are answered without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  private get settings() {
    return agentSettings(this.env);
  }

  private meta(key: string): string | null {
    return (this.sql.exec("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value as string | undefined) ?? null;
  }

  private setMeta(key: string, value: string) {
    this.sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO UPDATE SET value = excluded.value", key, value);
  }

  private get deleted() {
    return this.meta("deleted") === "1";
  }

  // ------------------------------------------------------------ intake

  /** The queue consumer hands over one attempt of a job. Delivering the same message twice changes nothing. */
  async enqueue(job: JobsQueueMessage): Promise<"queued" | "host_gone"> {
    // A hand-off can arrive after its job already ended (cancelled before the Queue delivered it, or
    // delivered again after it finished). It is not checked here, to keep the hot path one hop: the
    // consumer's markDispatched takes such a job back out, and its `start` would be refused anyway.
    // No await until the insert, so concurrent deliveries of one message make one entry.
    if (this.deleted) return "host_gone";
    this.setMeta("host_id", job.host_id);
    const existing = this.sql.exec("SELECT attempt FROM mailbox WHERE job_id = ?", job.job_id).toArray()[0];
    if (existing && (existing.attempt as number) >= job.attempt) return "queued";
    this.sql.exec(
      `INSERT INTO mailbox (job_id, scope, attempt, payload, idempotent, reconcile, deadline_at, state, enqueued_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)
       ON CONFLICT (job_id) DO UPDATE SET attempt = excluded.attempt, state = 'pending', lease_id = NULL, lease_expires_at = NULL,
         reconcile = excluded.reconcile, enqueued_at = excluded.enqueued_at`,
      job.job_id, job.scope, job.attempt, JSON.stringify(job.payload), job.idempotent ? 1 : 0,
      job.attempt > 1 && !job.idempotent ? 1 : 0, job.deadline_at, Date.now(),
    );
    this.offerWork();
    return "queued";
  }

  /** The job ended elsewhere (cancelled, deadline): forget it and tell the agent to stop. */
  async cancel(jobId: string): Promise<void> {
    const entry = this.sql.exec("SELECT lease_id FROM mailbox WHERE job_id = ?", jobId).toArray()[0];
    if (!entry) return;
    this.sql.exec("DELETE FROM mailbox WHERE job_id = ?", jobId);
    if (entry.lease_id) this.broadcast({ type: "cancel", job_id: jobId, lease_id: entry.lease_id as string });
  }

  /** The host was deleted: its agent is cut off and every job it held fails. */
  async revoke(): Promise<void> {
    this.setMeta("deleted", "1");
    for (const ws of this.ctx.getWebSockets("agent")) ws.close(4403, "host deleted");
    const entries = this.sql.exec("SELECT job_id, scope FROM mailbox").toArray();
    this.sql.exec("DELETE FROM mailbox");
    for (const e of entries) {
      await projectStub(this.env, e.scope as string).failJob(e.job_id as string, "The host was deleted while the job was waiting for it or running on it");
    }
    for (const wake of this.claimWaiters) wake();
  }

  async status(): Promise<{ connected: boolean; pending: number; leased: number }> {
    const counts = this.sql.exec("SELECT state, COUNT(*) AS n FROM mailbox GROUP BY state").toArray();
    const count = (s: string) => (counts.find((c) => c.state === s)?.n as number | undefined) ?? 0;
    const connected = this.ctx.getWebSockets("agent").some((ws) => (ws.deserializeAttachment() as SocketState | null)?.ready);
    return { connected, pending: count("pending"), leased: count("leased") };
  }

  // ------------------------------------------------------------ leasing

  private lease(limit = MAX_LEASES_PER_CLAIM): Lease[] {
    const ttl = this.settings.leaseTtlSeconds;
    const now = Date.now();
    const pending = this.sql.exec("SELECT * FROM mailbox WHERE state = 'pending' ORDER BY enqueued_at LIMIT ?", limit).toArray();
    const leases: Lease[] = [];
    for (const e of pending) {
      const leaseId = `lse_${randomString(20)}`;
      this.sql.exec("UPDATE mailbox SET state = 'leased', lease_id = ?, lease_expires_at = ? WHERE job_id = ?", leaseId, now + ttl * 1000, e.job_id);
      leases.push({
        job_id: e.job_id as string,
        attempt: e.attempt as number,
        lease_id: leaseId,
        lease_ttl: ttl,
        reconcile: e.reconcile === 1,
        payload: JSON.parse(e.payload as string),
      });
    }
    if (leases.length) void this.scheduleAlarm();
    return leases;
  }

  /** New work: push it to a connected agent, or wake a waiting HTTP claim. */
  private offerWork() {
    const sockets = this.readySockets();
    if (sockets.length) {
      for (const lease of this.lease()) this.send(sockets[0]!, { type: "lease", lease });
    }
    for (const wake of this.claimWaiters) wake();
  }

  /**
   * An agent (re)connected and says which leases it still holds. Any lease it
   * does not name was lost with its previous connection: expire it now rather
   * than make the job wait out its TTL.
   */
  private async reconcileHeld(held: LeaseRef[]) {
    const keep = new Set(held.map((h) => `${h.job_id}/${h.lease_id}`));
    const expiresAt = Date.now() + this.settings.leaseTtlSeconds * 1000;
    for (const e of this.sql.exec("SELECT * FROM mailbox WHERE state = 'leased'").toArray()) {
      if (keep.has(`${e.job_id}/${e.lease_id}`) && (e.lease_expires_at as number) > Date.now()) {
        this.sql.exec("UPDATE mailbox SET lease_expires_at = ? WHERE job_id = ?", expiresAt, e.job_id);
      } else {
        await this.expire(e, "the agent reconnected without it");
      }
    }
  }

  /** HTTP claim: leases for the agent, waiting up to `waitMs` for work to arrive. */
  async claim(held: LeaseRef[], waitMs: number): Promise<Lease[] | null> {
    if (this.deleted) return null;
    await this.reconcileHeld(held);
    let leases = this.lease();
    if (!leases.length && waitMs > 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.claimWaiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(waitMs, MAX_CLAIM_WAIT_MS));
        this.claimWaiters.add(done);
      });
      if (this.deleted) return null;
      leases = this.lease();
    }
    return leases;
  }

  private entryFor(leaseId: string): Row | null {
    const e = this.sql.exec("SELECT * FROM mailbox WHERE lease_id = ? AND state = 'leased'", leaseId).toArray()[0];
    return e ?? null;
  }

  /** The lease's entry if it is still valid; a lease past its expiry is expired on the spot. */
  private async valid(leaseId: string): Promise<Row | null> {
    const e = this.entryFor(leaseId);
    if (!e) return null;
    if ((e.lease_expires_at as number) <= Date.now()) {
      await this.expire(e, "lease expired");
      return null;
    }
    return e;
  }

  private stale(): LeaseCheck {
    return { ok: false, reason: "This lease is no longer valid; drop the work" };
  }

  async start(leaseId: string): Promise<LeaseCheck> {
    const e = await this.valid(leaseId);
    if (!e) return this.stale();
    const ok = await projectStub(this.env, e.scope as string).startJob(e.job_id as string, e.attempt as number);
    if (!ok) return this.drop(e);
    return { ok: true };
  }

  async renew(leaseId: string, progress?: JobProgress): Promise<LeaseCheck & { lease_ttl?: number }> {
    const e = await this.valid(leaseId);
    if (!e) return this.stale();
    const ttl = this.settings.leaseTtlSeconds;
    this.sql.exec("UPDATE mailbox SET lease_expires_at = ? WHERE job_id = ?", Date.now() + ttl * 1000, e.job_id);
    // Each renewal checks the job is still this lease's: a cancel whose notice to this mailbox was lost still stops the agent.
    const ok = progress ? await projectStub(this.env, e.scope as string).reportProgress(e.job_id as string, e.attempt as number, progress) : false;
    if (!ok && (await this.ownerMovedOn(e))) return this.drop(e);
    return { ok: true, lease_ttl: ttl };
  }

  async appendLogs(leaseId: string, chunks: LogChunk[]) {
    const e = await this.valid(leaseId);
    if (!e) return { ...this.stale(), expected: { stdout: 0, stderr: 0 }, gap: false };
    const res = await projectStub(this.env, e.scope as string).appendLogs(e.job_id as string, e.attempt as number, chunks);
    if (!res.ok) {
      // Output that arrives before `start` is refused without killing the lease.
      if (await this.ownerMovedOn(e)) return { ...this.drop(e), expected: res.expected, gap: false };
      return { ok: false as const, reason: "The job has not started under this lease yet; report start first", expected: res.expected, gap: false, retry: true };
    }
    return { ok: true as const, expected: res.expected, gap: res.gap };
  }

  /** What a valid lease is for (the job and its payload), so the agent can fetch what belongs to it. */
  async leased(leaseId: string): Promise<{ job_id: string; payload: Lease["payload"] } | null> {
    const e = await this.valid(leaseId);
    return e ? { job_id: e.job_id as string, payload: JSON.parse(e.payload as string) } : null;
  }

  async finish(leaseId: string, outcome: FinishRequest): Promise<LeaseCheck> {
    const e = await this.valid(leaseId);
    if (!e) return this.stale();
    // Recorded first: if the owner cannot be reached, the lease stays and the agent's retry can finish it.
    const ok = await projectStub(this.env, e.scope as string).finishJob(e.job_id as string, e.attempt as number, outcome);
    this.sql.exec("DELETE FROM mailbox WHERE job_id = ? AND lease_id = ?", e.job_id, e.lease_id);
    return ok ? { ok: true } : this.stale();
  }

  /** Forgets a lease whose job ended elsewhere; a newer attempt's entry is left alone. */
  private drop(e: Row): LeaseCheck {
    this.sql.exec("DELETE FROM mailbox WHERE job_id = ? AND lease_id = ?", e.job_id, e.lease_id);
    return this.stale();
  }

  /** Whether the lease's job has ended or moved on to another attempt (then the lease is dead). */
  private async ownerMovedOn(e: Row): Promise<boolean> {
    const job = await projectStub(this.env, e.scope as string).getJob(e.job_id as string);
    return !job || job.attempts !== e.attempt || !["dispatched", "running"].includes(job.status);
  }

  /**
   * Ends a lease: the job goes out again as a new attempt, or its owner gives
   * up on it. The entry is claimed (state `expiring`) before the call to the
   * job's owner, so two triggers (alarm, a late report, a reconnect) cannot
   * expire the same lease twice; every write after the await names the lease.
   */
  private async expire(e: Row, reason: string) {
    const claimed = this.sql
      .exec("UPDATE mailbox SET state = 'expiring' WHERE job_id = ? AND lease_id = ? AND state = 'leased'", e.job_id, e.lease_id)
      .rowsWritten;
    if (!claimed) return;
    let outcome: { redeliver: boolean; attempt: number };
    try {
      outcome = await projectStub(this.env, e.scope as string).leaseExpired(e.job_id as string, e.attempt as number, reason);
    } catch (err) {
      // The owner could not be asked: put the lease back, expired, for the next alarm to try again.
      this.sql.exec("UPDATE mailbox SET state = 'leased' WHERE job_id = ? AND lease_id = ? AND state = 'expiring'", e.job_id, e.lease_id);
      void this.ctx.storage.setAlarm(Date.now() + 5_000);
      throw err;
    }
    if (!outcome.redeliver) {
      this.sql.exec("DELETE FROM mailbox WHERE job_id = ? AND lease_id = ?", e.job_id, e.lease_id);
      return;
    }
    this.sql.exec(
      "UPDATE mailbox SET attempt = ?, state = 'pending', lease_id = NULL, lease_expires_at = NULL, reconcile = ?, enqueued_at = ? WHERE job_id = ? AND lease_id = ?",
      outcome.attempt, e.idempotent === 1 ? 0 : 1, Date.now(), e.job_id, e.lease_id,
    );
    this.offerWork();
  }

  private async scheduleAlarm() {
    const next = this.sql.exec("SELECT MIN(lease_expires_at) AS at FROM mailbox WHERE state = 'leased'").one().at as number | null;
    if (next === null) return;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next) await this.ctx.storage.setAlarm(next);
  }

  async alarm() {
    const expired = this.sql.exec("SELECT * FROM mailbox WHERE state = 'leased' AND lease_expires_at <= ?", Date.now()).toArray();
    for (const e of expired) await this.expire(e, "lease expired: the agent stopped renewing it").catch(() => undefined);
    await this.scheduleAlarm();
  }

  // ------------------------------------------------------------ the agent's socket

  private readySockets(): WebSocket[] {
    return this.ctx
      .getWebSockets("agent")
      .filter((ws) => ws.readyState === WebSocket.OPEN && (ws.deserializeAttachment() as SocketState | null)?.ready);
  }

  private send(ws: WebSocket, message: unknown) {
    try {
      ws.send(JSON.stringify(message));
    } catch {
      /* closing; the agent re-claims what it missed when it says hello again */
    }
  }

  private broadcast(message: unknown) {
    for (const ws of this.readySockets()) this.send(ws, message);
  }

  /**
   * Someone started (or stopped) watching an app's logs: the agent follows its
   * container from `since` while anyone watches, and picks up from the last
   * line it sent when it reconnects.
   */
  async follow(appId: string, scope: string, on: boolean, since: string | null = null): Promise<void> {
    if (on) {
      const existing = this.sql.exec("SELECT app_id FROM follows WHERE app_id = ?", appId).toArray()[0];
      if (existing) return;
      this.sql.exec("INSERT INTO follows (app_id, scope, since) VALUES (?, ?, ?)", appId, scope, since ?? new Date().toISOString());
      this.broadcast({ type: "follow", app_id: appId, since: since ?? new Date().toISOString() });
    } else {
      this.sql.exec("DELETE FROM follows WHERE app_id = ?", appId);
      this.broadcast({ type: "unfollow", app_id: appId });
    }
  }

  /**
   * Asks the connected agent something that needs an answer now (an app's
   * recent logs, its stats). `not_connected` when the agent holds no socket.
   */
  async rpc(method: RpcMethod, params: { app_id: string; tail?: number }, timeoutMs = 10_000): Promise<{ ok: true; json: string } | { ok: false; error: string; code: "not_connected" | "timeout" | "failed" }> {
    const ws = this.readySockets()[0];
    if (!ws) return { ok: false, code: "not_connected", error: "The host's agent is not connected" };
    const id = randomString(16);
    const reply = await new Promise<{ ok: boolean; result?: unknown; error?: string } | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), timeoutMs);
      this.rpcs.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.send(ws, { type: "rpc", id, method, params });
    });
    this.rpcs.delete(id);
    if (!reply) return { ok: false, code: "timeout", error: "The host's agent did not answer in time" };
    if (!reply.ok) return { ok: false, code: "failed", error: reply.error ?? "the agent could not answer" };
    // As JSON text: the answer's shape is the caller's business, and text crosses RPC without typing games.
    return { ok: true, json: JSON.stringify(reply.result ?? null) };
  }

  /** Upgrade from the agent route (the credential is already checked). One connection per host: a new one replaces the old. */
  async fetch(request: Request): Promise<Response> {
    const hostId = request.headers.get("x-berth-host-id");
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket" || !hostId) {
      return new Response("expected a WebSocket upgrade from the agent route", { status: 426 });
    }
    if (this.deleted) return new Response("host deleted", { status: 410 });
    this.setMeta("host_id", hostId);
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    for (const old of this.ctx.getWebSockets("agent")) {
      old.serializeAttachment({ ...(old.deserializeAttachment() as SocketState), ready: false } satisfies SocketState);
      old.close(4000, "replaced by a newer connection");
    }
    this.ctx.acceptWebSocket(server, ["agent"]);
    server.serializeAttachment({ hostId, ready: false } satisfies SocketState);
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer) {
    if (typeof raw !== "string") return ws.close(1003, "text frames only");
    let parsed;
    try {
      parsed = AgentMessage.safeParse(JSON.parse(raw));
    } catch {
      parsed = null;
    }
    if (!parsed?.success) {
      this.send(ws, { type: "error", message: "unrecognised message" });
      return;
    }
    const msg = parsed.data;
    const state = ws.deserializeAttachment() as SocketState;
    if (msg.type === "hello") {
      await this.reconcileHeld(msg.held);
      ws.serializeAttachment({ ...state, ready: true } satisfies SocketState);
      this.send(ws, { type: "hello", host_id: state.hostId, heartbeat_interval: this.settings.heartbeatSeconds, lease_ttl: this.settings.leaseTtlSeconds, protocol: AGENT_PROTOCOL_VERSION });
      await this.recordSeen(state.hostId, msg.agent_version, msg.facts);
      for (const lease of this.lease()) this.send(ws, { type: "lease", lease });
      // Log streams someone still watches resume where they stopped.
      for (const f of this.sql.exec("SELECT app_id, since FROM follows").toArray()) {
        this.send(ws, { type: "follow", app_id: f.app_id as string, since: (f.since as string | null) ?? null });
      }
    } else if (msg.type === "heartbeat") {
      await this.recordSeen(state.hostId, msg.agent_version, msg.facts);
      this.send(ws, { type: "heartbeat_ack", at: Date.now() });
    } else if (msg.type === "app_log") {
      const follow = this.sql.exec("SELECT scope FROM follows WHERE app_id = ?", msg.app_id).toArray()[0];
      const last = msg.lines.at(-1);
      if (!follow || !last) return;
      this.sql.exec("UPDATE follows SET since = ? WHERE app_id = ?", last.time, msg.app_id);
      await projectStub(this.env, follow.scope as string).appLogs(msg.app_id, msg.lines);
    } else if (msg.type === "rpc_reply") {
      this.rpcs.get(msg.id)?.({ ok: msg.ok, result: msg.result, error: msg.error });
    } else if (msg.type === "report") {
      const { status, body } = await this.report(msg.op, msg.lease_id, msg.body);
      this.send(ws, { type: "reply", id: msg.id, status, body });
    }
  }

  /** A lease report that came over the socket: the same checks and answers as the HTTP routes. */
  private async report(op: LeaseOp, leaseId: string, raw: unknown): Promise<{ status: number; body: unknown }> {
    const invalid = (error: { issues: unknown }) => ({ status: 400, body: { error: { code: "invalid_request", message: `Invalid ${op} report`, details: error } } });
    if (op === "start") return answerLeaseReport(await this.start(leaseId), () => ({ ok: true }));
    if (op === "renew") {
      const input = RenewRequest.safeParse(raw ?? {});
      if (!input.success) return invalid(input.error);
      const res = await this.renew(leaseId, input.data.progress);
      return answerLeaseReport(res, () => ({ ok: true, lease_ttl: res.lease_ttl }));
    }
    if (op === "logs") {
      const input = LogAppendRequest.safeParse(raw);
      if (!input.success) return invalid(input.error);
      const res = await this.appendLogs(leaseId, input.data.chunks);
      return answerLeaseReport(res, () => (res.ok ? { expected: res.expected, gap: res.gap } : {}));
    }
    const input = FinishRequest.safeParse(raw);
    if (!input.success) return invalid(input.error);
    return answerLeaseReport(await this.finish(leaseId, input.data), () => ({ ok: true }));
  }

  async webSocketClose(ws: WebSocket, code: number) {
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, "bye");
    } catch {
      /* already closed */
    }
  }

  /** Heartbeats and hellos say the host is alive. */
  async recordSeen(hostId: string, agentVersion: string, facts?: HostFacts) {
    const now = Date.now();
    if (facts) {
      await this.env.DB.prepare("UPDATE host SET last_seen_at = ?, agent_version = ?, facts = ? WHERE id = ? AND deleted_at IS NULL")
        .bind(now, agentVersion, JSON.stringify(facts), hostId)
        .run();
    } else {
      await this.env.DB.prepare("UPDATE host SET last_seen_at = ?, agent_version = ? WHERE id = ? AND deleted_at IS NULL").bind(now, agentVersion, hostId).run();
    }
  }
}
