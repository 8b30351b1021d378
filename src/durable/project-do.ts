/**
 * ProjectDO: one per project (and one per host, named `host:<id>`, for host jobs). A thin
 * RPC facade over the modules that each own one table or concern:
 *
 * - project/job-store.ts: the jobs table and its state machine;
 * - project/event-feed.ts: the event feed and its subscribers;
 * - project/job-logs.ts: the jobs' output;
 * - project/app-log-fanout.ts: live container logs of the project's apps;
 * - project/retention.ts: old output to R2, old jobs and events dropped.
 *
 * The facade ties them together: every transition is an event, wakes whoever waits on the
 * job, and is followed into the records it is about (deployments, apps); jobs go to the
 * Queue, and deadlines and refused hand-offs are the alarm's.
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { announceJobEnded, onJobEnded, onJobStarted } from "../jobs/outcomes";
import { isTerminal } from "../jobs/states";
import type { AppLogLine, FinishRequest, JobPayload, JobProgress, LogChunk } from "../protocol/agent";
import { hostMailbox } from "./clients";
import { AppLogFanout } from "./project/app-log-fanout";
import { EVENTS_SCHEMA, EventFeed, type JobEvent } from "./project/event-feed";
import { JOB_LOGS_SCHEMA, JobLogs } from "./project/job-logs";
import { JOBS_SCHEMA, type JobRecord, JobStore, type NewJob } from "./project/job-store";
import { RETENTION_SCHEMA, Retention } from "./project/retention";
import { migrate } from "./sql-schema";

export type { JobEvent } from "./project/event-feed";
export type { JobRecord, JobResult, NewJob } from "./project/job-store";

const QUEUE_RETRY_MS = 2_000;
const MAX_WAIT_MS = 60_000;

export class ProjectDO extends DurableObject<Env> {
  private readonly jobs: JobStore;
  private readonly events: EventFeed;
  private readonly logs: JobLogs;
  private readonly fanout: AppLogFanout;
  private readonly retention: Retention;
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.jobs = new JobStore(ctx.storage.sql);
    this.events = new EventFeed(ctx);
    this.logs = new JobLogs(ctx.storage.sql);
    this.fanout = new AppLogFanout(ctx, env);
    this.retention = new Retention(ctx.storage.sql, env);
    ctx.blockConcurrencyWhile(async () => migrate(ctx.storage, [JOBS_SCHEMA, EVENTS_SCHEMA, JOB_LOGS_SCHEMA, RETENTION_SCHEMA]));
  }

  // ------------------------------------------------------------ reading

  async getJob(id: string): Promise<JobRecord | null> {
    return this.jobs.get(id);
  }

  /** Several jobs at once (the open job of each instance in a list); unknown ids are left out. */
  async getJobs(ids: string[]): Promise<JobRecord[]> {
    return this.jobs.many(ids);
  }

  async listJobs(filter: { subject?: string; limit?: number } = {}): Promise<JobRecord[]> {
    return this.jobs.list(filter);
  }

  /** The job's log of its latest attempt, in order: from this object, or from R2 once archived. */
  async getLogs(id: string): Promise<Array<{ stream: string; offset: number; data: string; at: number }>> {
    const job = this.jobs.get(id);
    if (!job) return [];
    const archived = await this.retention.readArchived(id, job.attempts);
    if (archived) return archived.map(({ stream, offset, data, at }) => ({ stream, offset, data, at }));
    return this.logs.read(id, job.attempts);
  }

  async eventsSince(seq: number, limit = 500): Promise<JobEvent[]> {
    return this.events.since(seq, limit);
  }

  /** Resolves when the job ends or `timeoutMs` passes, whichever is first. */
  async waitForJob(id: string, timeoutMs: number): Promise<JobRecord | null> {
    const current = this.jobs.get(id);
    if (!current || isTerminal(current.status)) return current;
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
    return this.jobs.get(id);
  }

  // ------------------------------------------------------------ transitions

  async createJob(scope: string, spec: NewJob): Promise<JobRecord> {
    const id = this.jobs.create(scope, spec);
    this.events.emit(id, "job.queued", { type: spec.type, host_id: spec.hostId });
    await this.send(id);
    await this.scheduleAlarm();
    return this.jobs.get(id)!;
  }

  /** Hands the job to the Queue; if the Queue refuses, the alarm tries again until the deadline. */
  private async send(id: string) {
    try {
      await this.env.JOBS.send(this.jobs.queueMessage(id), { contentType: "json" });
      this.jobs.markSent(id);
    } catch (err) {
      console.warn(JSON.stringify({ level: "warn", msg: "queue send failed; will retry", job_id: id, error: String(err) }));
    }
  }

  /** The queue consumer put the job in its host's mailbox. */
  async markDispatched(id: string, attempt: number): Promise<boolean> {
    if (this.jobs.dispatched(id, attempt)) {
      this.events.emit(id, "job.dispatched", this.jobs.snapshot(id));
      return true;
    }
    const job = this.jobs.get(id);
    // The job ended while its hand-off was on the way (a cancel raced the Queue): take it back out of the mailbox.
    if (job && isTerminal(job.status)) await hostMailbox(this.env, job.host_id).cancel(id).catch(() => undefined);
    return false;
  }

  /** The agent holding attempt `attempt` started work. False if that attempt no longer owns the job. */
  async startJob(id: string, attempt: number): Promise<boolean> {
    if (!this.jobs.started(id, attempt)) return false;
    // The rows first, then the event (see ended()). Held against other calls meanwhile, so
    // no progress or output of this job can be sent before its job.running.
    await this.ctx.blockConcurrencyWhile(() => this.follow(id, onJobStarted));
    this.events.emit(id, "job.running", this.jobs.snapshot(id));
    return true;
  }

  async reportProgress(id: string, attempt: number, progress: JobProgress): Promise<boolean> {
    if (!this.jobs.progressed(id, attempt, progress)) return false;
    this.events.emit(id, "job.progress", { progress });
    return true;
  }

  /** Appends output of the running attempt; see project/job-logs.ts for resends and gaps. */
  async appendLogs(id: string, attempt: number, chunks: LogChunk[]): Promise<{ ok: boolean; expected: { stdout: number; stderr: number }; gap: boolean }> {
    if (!this.jobs.runningAttempt(id, attempt)) return { ok: false, expected: this.logs.heads(id, attempt), gap: false };
    const { expected, gap } = this.logs.append(id, attempt, chunks, (stream, data) => this.events.emit(id, "job.log", { stream, data }));
    return { ok: true, expected, gap };
  }

  /** Ends the job once. A second finish, or one from a stale attempt, changes nothing. */
  async finishJob(id: string, attempt: number, outcome: FinishRequest): Promise<boolean> {
    if (!this.jobs.finished(id, attempt, outcome)) return false;
    await this.ended(id);
    return true;
  }

  /** Fails an open job with a reason the user can read (dead letter, deadline, host gone). */
  async failJob(id: string, reason: string, status: "failed" | "lost" = "failed"): Promise<boolean> {
    if (!this.jobs.ended(id, status, reason)) return false;
    await this.ended(id);
    await this.takeBackFromHost(id);
    return true;
  }

  async cancelJob(id: string): Promise<JobRecord | null> {
    if (this.jobs.ended(id, "cancelled", "Cancelled by a user")) {
      await this.ended(id);
      await this.takeBackFromHost(id);
    }
    return this.jobs.get(id);
  }

  /** A lease expired: the host hands the job out again as attempt `attempt + 1`, or gives up on it. */
  async leaseExpired(id: string, attempt: number, reason = "lease expired"): Promise<{ redeliver: boolean; attempt: number }> {
    const outcome = this.jobs.leaseExpired(id, attempt, reason);
    if (outcome === "lost") await this.ended(id);
    if (outcome !== "redeliver") return { redeliver: false, attempt };
    this.events.emit(id, "job.redelivered", { ...this.jobs.snapshot(id), reason });
    return { redeliver: true, attempt: attempt + 1 };
  }

  /**
   * The records the job acts on (app, deployment, instance rows in D1) are written before
   * anyone hears that it ended: a subscriber (the dashboard) or a waiter that reads them on
   * the event sees them as the job left them, with no second read later.
   */
  private async ended(id: string) {
    await this.follow(id, onJobEnded);
    this.events.emit(id, `job.${this.jobs.get(id)!.status}`, this.jobs.snapshot(id));
    for (const wake of this.waiters.get(id) ?? []) wake();
    // Webhooks and notifications: after everyone waiting has been told.
    this.ctx.waitUntil(this.follow(id, announceJobEnded));
  }

  private async takeBackFromHost(id: string) {
    const job = this.jobs.get(id);
    if (job) await hostMailbox(this.env, job.host_id).cancel(id).catch(() => undefined);
  }

  /** Brings the records a job is about (deployments, apps) in line with it; a failure there never undoes the transition. */
  private async follow(id: string, hook: (env: Env, job: JobRecord, payload: JobPayload) => Promise<void>) {
    try {
      await hook(this.env, this.jobs.get(id)!, this.jobs.payload(id)!);
    } catch (err) {
      console.error(JSON.stringify({ level: "error", msg: "could not record a job transition", job_id: id, error: String(err) }));
    }
  }

  // ------------------------------------------------------------ deadlines, refused hand-offs, retention

  private async scheduleAlarm() {
    const wakes = [this.jobs.nextWakeAt(Date.now() + QUEUE_RETRY_MS), this.retention.nextRunAt()].filter((t): t is number => t !== null);
    if (!wakes.length) return;
    const next = Math.min(...wakes);
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next) await this.ctx.storage.setAlarm(next);
  }

  async alarm() {
    for (const j of this.jobs.overdue(Date.now())) {
      const reason =
        j.status === "running"
          ? "Deadline passed while the job was running; the host stopped reporting or the work took too long"
          : "Deadline passed before any host started the job; is the host's agent online?";
      await this.failJob(j.id, reason);
    }
    for (const id of this.jobs.unsent()) await this.send(id);
    const pruned = await this.retention.runIfDue();
    if (pruned && (pruned.archived || pruned.forgotten || pruned.eventsDropped)) {
      console.log(JSON.stringify({ level: "info", msg: "pruned job history", ...pruned }));
    }
    await this.scheduleAlarm();
  }

  // ------------------------------------------------------------ sockets

  /** Lines from an app's host, fanned out to everyone watching the app. */
  async appLogs(appId: string, lines: AppLogLine[]): Promise<void> {
    await this.fanout.deliver(appId, lines);
  }

  /** WebSocket subscriptions: `…/logs/stream` for an app's container logs, anything else for this scope's job events. */
  async fetch(request: Request): Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") return new Response("expected a WebSocket", { status: 426 });
    const url = new URL(request.url);
    if (url.pathname.endsWith("/logs/stream")) return this.fanout.subscribe(url);
    // Without a resume point a subscriber gets what happens from now on, not the whole history.
    const asked = url.searchParams.get("since");
    return this.events.subscribe(asked === null ? null : Number(asked) || 0);
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
    await this.fanout.closed(ws);
  }
}
