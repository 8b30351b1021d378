/**
 * HostDO: one per host, that host's mailbox. The queue consumer drops jobs in; the agent
 * takes them out as leases, pushed over its WebSocket when it holds one, or claimed over
 * HTTP (long-poll) when it does not. A thin RPC facade over:
 *
 * - host/mailbox.ts: the mailbox table;
 * - host/leases.ts: the lease protocol (start, renew, logs, finish, expiry);
 * - host/agent-socket.ts: the agent's socket, pushes and rpc;
 * - host/follows.ts: the app logs someone is watching.
 *
 * Terminals only start here (`openTerminal`): their bytes travel on the session's own
 * socket between the agent and its TerminalDO.
 */
import { DurableObject } from "cloudflare:workers";
import { createDb } from "../db/client";
import type { Env } from "../env";
import type { JobsQueueMessage } from "../jobs/queue";
import {
  AGENT_PROTOCOL_VERSION, AgentMessage, FinishRequest, type FinishRequest as Outcome, type JobProgress, type Lease, LogAppendRequest, type LogChunk,
  RenewRequest, type RpcMethod, type ServerMessage,
} from "../protocol/agent";
import { answerLeaseReport, type LeaseOp } from "../protocol/lease-answers";
import { agentSettings } from "../services/host-settings";
import { recordHeartbeat } from "../services/hosts";
import { projectJobs } from "./clients";
import { AgentSocket, type RpcResult } from "./host/agent-socket";
import { FOLLOWS_SCHEMA, Follows } from "./host/follows";
import { type LeaseCheck, type LeaseRef, Leases } from "./host/leases";
import { MAILBOX_SCHEMA, Mailbox } from "./host/mailbox";
import { migrate } from "./sql-schema";

export type { LeaseCheck, LeaseRef } from "./host/leases";

const MAX_CLAIM_WAIT_MS = 30_000;
/** Sockets of people watching the host's agent come and go (`/org/{slug}/hosts/{id}/events`). */
const WATCH_TAG = "watch";
const RPC_TIMEOUT_MS = 10_000;

export class HostDO extends DurableObject<Env> {
  private readonly mailbox: Mailbox;
  private readonly leases: Leases;
  private readonly agent: AgentSocket;
  private readonly follows: Follows;
  private readonly claimWaiters = new Set<() => void>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.mailbox = new Mailbox(ctx.storage.sql);
    this.leases = new Leases(ctx, env, this.mailbox, () => this.offerWork());
    this.agent = new AgentSocket(ctx);
    this.follows = new Follows(ctx.storage.sql);
    ctx.blockConcurrencyWhile(async () => migrate(ctx.storage, [MAILBOX_SCHEMA, FOLLOWS_SCHEMA]));
    // Keep-alives are answered without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  private get settings() {
    return agentSettings(this.env);
  }

  private get deleted() {
    return this.mailbox.meta("deleted") === "1";
  }

  // ------------------------------------------------------------ intake

  /** The queue consumer hands over one attempt of a job. Delivering the same message twice changes nothing. */
  async enqueue(job: JobsQueueMessage): Promise<"queued" | "host_gone"> {
    // A hand-off can arrive after its job already ended (cancelled before the Queue delivered it, or
    // delivered again after it finished). It is not checked here, to keep the hot path one hop: the
    // consumer's markDispatched takes such a job back out, and its `start` would be refused anyway.
    // No await until the insert, so concurrent deliveries of one message make one entry.
    if (this.deleted) return "host_gone";
    this.mailbox.setMeta("host_id", job.host_id);
    if (this.mailbox.put(job)) this.offerWork();
    return "queued";
  }

  /** The job ended elsewhere (cancelled, deadline): forget it and tell the agent to stop. */
  async cancel(jobId: string): Promise<void> {
    const { found, leaseId } = this.mailbox.remove(jobId);
    if (leaseId) this.agent.broadcast({ type: "cancel", job_id: jobId, lease_id: leaseId });
    // The next job of the same app may go now.
    if (found) this.offerWork();
  }

  /** The host was deleted: its agent is cut off and every job it held fails. */
  async revoke(): Promise<void> {
    this.mailbox.setMeta("deleted", "1");
    this.agent.closeAll(4403, "host deleted");
    for (const ws of this.ctx.getWebSockets(WATCH_TAG)) ws.close(1000, "host deleted");
    for (const e of this.mailbox.takeAll()) {
      await projectJobs(this.env, e.scope).failJob(e.job_id, "The host was deleted while the job was waiting for it or running on it");
    }
    for (const wake of this.claimWaiters) wake();
  }

  async status(): Promise<{ connected: boolean; pending: number; leased: number }> {
    return { connected: this.agent.connected(), ...this.mailbox.counts() };
  }

  /** New work: push it to a connected agent, or wake a waiting HTTP claim. */
  private offerWork() {
    const sockets = this.agent.ready();
    if (sockets.length) {
      for (const lease of this.leases.take()) this.agent.send(sockets[0]!, { type: "lease", lease });
    }
    for (const wake of this.claimWaiters) wake();
  }

  // ------------------------------------------------------------ leases (HTTP and socket)

  /** HTTP claim: leases for the agent, waiting up to `waitMs` for work to arrive. */
  async claim(held: LeaseRef[], waitMs: number): Promise<Lease[] | null> {
    if (this.deleted) return null;
    await this.leases.reconcileHeld(held);
    let leases = this.leases.take();
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
      leases = this.leases.take();
    }
    return leases;
  }

  async start(leaseId: string): Promise<LeaseCheck> {
    return this.leases.start(leaseId);
  }

  async renew(leaseId: string, progress?: JobProgress): Promise<LeaseCheck & { lease_ttl?: number }> {
    return this.leases.renew(leaseId, progress);
  }

  async appendLogs(leaseId: string, chunks: LogChunk[]) {
    return this.leases.appendLogs(leaseId, chunks);
  }

  async leased(leaseId: string): Promise<{ job_id: string; payload: Lease["payload"] } | null> {
    return this.leases.leased(leaseId);
  }

  async finish(leaseId: string, outcome: Outcome): Promise<LeaseCheck> {
    return this.leases.finish(leaseId, outcome);
  }

  async alarm() {
    await this.leases.expireOverdue();
  }

  // ------------------------------------------------------------ app logs and questions

  /**
   * Someone started (or stopped) watching an app's logs: the agent follows its container
   * from `since` while anyone watches, and picks up from the last line it sent when it reconnects.
   */
  async follow(appId: string, scope: string, on: boolean, since: string | null = null, skip = 0): Promise<void> {
    if (on) {
      const from = since ?? new Date().toISOString();
      const at = since ? skip : 0;
      if (this.follows.add(appId, scope, from, at)) this.agent.broadcast({ type: "follow", app_id: appId, since: from, skip: at });
    } else {
      this.follows.remove(appId);
      this.agent.broadcast({ type: "unfollow", app_id: appId });
    }
  }

  /** Tells the connected agent to open a terminal session's own socket; false when no agent is connected. */
  async openTerminal(message: Extract<ServerMessage, { type: "terminal_open" }>): Promise<boolean> {
    const sockets = this.agent.ready();
    if (!sockets.length) return false;
    this.agent.send(sockets[0]!, message);
    return true;
  }

  /** Asks the connected agent something that needs an answer now. `not_connected` when the agent holds no socket. */
  async rpc(method: RpcMethod, params: { app_id: string; tail?: number }, timeoutMs = RPC_TIMEOUT_MS): Promise<RpcResult> {
    return this.agent.rpc(method, params, timeoutMs);
  }

  // ------------------------------------------------------------ the agent's socket

  /** Upgrade from the agent route (the credential is already checked). One connection per host: a new one replaces the old. */
  async fetch(request: Request): Promise<Response> {
    if (request.headers.get("x-berth-watch") === "1" && request.headers.get("upgrade")?.toLowerCase() === "websocket") return this.watch();
    const hostId = request.headers.get("x-berth-host-id");
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket" || !hostId) {
      return new Response("expected a WebSocket upgrade from the agent route", { status: 426 });
    }
    if (this.deleted) return new Response("host deleted", { status: 410 });
    this.mailbox.setMeta("host_id", hostId);
    return this.agent.accept(hostId);
  }

  /** A watcher: told at once whether the agent holds its socket, then each time it says hello, beats or leaves. */
  private watch(): Response {
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1], [WATCH_TAG]);
    pair[1].send(JSON.stringify({ type: "host.status", connected: this.agent.connected(), at: Date.now() }));
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  private tellWatchers(type: "host.connected" | "host.heartbeat" | "host.disconnected") {
    const frame = JSON.stringify({ type, connected: this.agent.connected(), at: Date.now() });
    for (const ws of this.ctx.getWebSockets(WATCH_TAG)) {
      try {
        ws.send(frame);
      } catch {
        /* closing; its close handler ends it */
      }
    }
  }

  async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer) {
    // Watchers only listen.
    if (this.ctx.getTags(ws).includes(WATCH_TAG)) return;
    if (typeof raw !== "string") return ws.close(1003, "text frames only");
    let parsed: ReturnType<typeof AgentMessage.safeParse> | null;
    try {
      parsed = AgentMessage.safeParse(JSON.parse(raw));
    } catch {
      parsed = null;
    }
    if (!parsed?.success) {
      this.agent.send(ws, { type: "error", message: "unrecognised message" });
      return;
    }
    const msg = parsed.data;
    const { hostId } = this.agent.stateOf(ws);
    if (msg.type === "hello") {
      await this.leases.reconcileHeld(msg.held);
      this.agent.markReady(ws);
      this.agent.send(ws, { type: "hello", host_id: hostId, heartbeat_interval: this.settings.heartbeatSeconds, lease_ttl: this.settings.leaseTtlSeconds, protocol: AGENT_PROTOCOL_VERSION });
      await recordHeartbeat(createDb(this.env.DB), hostId, msg.agent_version, msg.facts);
      // After the row: a watcher that reads the host on this sees it online.
      this.tellWatchers("host.connected");
      for (const lease of this.leases.take()) this.agent.send(ws, { type: "lease", lease });
      // Log streams someone still watches resume where they stopped.
      for (const f of this.follows.all()) this.agent.send(ws, { type: "follow", app_id: f.app_id, since: f.since, skip: f.since ? f.at_since : 0 });
    } else if (msg.type === "heartbeat") {
      await recordHeartbeat(createDb(this.env.DB), hostId, msg.agent_version, msg.facts);
      this.agent.send(ws, { type: "heartbeat_ack", at: Date.now() });
      this.tellWatchers("host.heartbeat");
    } else if (msg.type === "app_log") {
      const scope = this.follows.scopeOf(msg.app_id);
      if (!scope || !msg.lines.length) return;
      this.follows.advance(msg.app_id, msg.lines.map((l) => l.time));
      await projectJobs(this.env, scope).appLogs(msg.app_id, msg.lines);
    } else if (msg.type === "rpc_reply") {
      this.agent.answered(msg.id, { ok: msg.ok, result: msg.result, error: msg.error });
    } else if (msg.type === "report") {
      const { status, body } = await this.report(msg.op, msg.lease_id, msg.body);
      this.agent.send(ws, { type: "reply", id: msg.id, status, body });
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
    if (!this.ctx.getTags(ws).includes(WATCH_TAG)) this.tellWatchers("host.disconnected");
  }
}
