/**
 * The lease protocol of a host's mailbox. A lease is the right to report on one attempt
 * of one job. Every report (start, renew, logs, finish) names its lease; a lease that has
 * expired, was cancelled or was replaced is refused, and the agent drops that work. An
 * expired lease hands the job out again as a new attempt; work that must not run twice
 * goes out marked `reconcile`, so the agent first looks for what the earlier attempt left.
 */
import type { Env } from "../../env";
import type { FinishRequest, JobProgress, Lease, LogChunk } from "../../protocol/agent";
import { agentSettings } from "../../services/host-settings";
import { projectJobs } from "../clients";
import type { Mailbox, MailboxEntry } from "./mailbox";

export type LeaseRef = { job_id: string; lease_id: string };
export type LeaseCheck = { ok: true } | { ok: false; reason: string };

/** Most leases handed out in one push or claim. */
const MAX_LEASES_PER_CLAIM = 16;
const RETRY_EXPIRY_MS = 5_000;
const STALE: LeaseCheck = { ok: false, reason: "This lease is no longer valid; drop the work" };

export class Leases {
  constructor(
    private readonly ctx: DurableObjectState,
    private readonly env: Env,
    private readonly mailbox: Mailbox,
    /** Called when a job went back to pending, or left the mailbox (the next job of its app may go now): offer work to the agent. */
    private readonly onWorkAvailable: () => void,
  ) {}

  private get ttlSeconds() {
    return agentSettings(this.env).leaseTtlSeconds;
  }

  private owner(e: MailboxEntry) {
    return projectJobs(this.env, e.scope);
  }

  /** Leases pending work, and makes sure the alarm will catch the leases that expire. */
  take(limit = MAX_LEASES_PER_CLAIM): Lease[] {
    const leases = this.mailbox.lease(limit, this.ttlSeconds);
    if (leases.length) void this.scheduleAlarm();
    return leases;
  }

  /**
   * An agent (re)connected and says which leases it still holds. Any lease it does not
   * name was lost with its previous connection: expire it now rather than make the job
   * wait out its TTL.
   */
  async reconcileHeld(held: LeaseRef[]) {
    const keep = new Set(held.map((h) => `${h.job_id}/${h.lease_id}`));
    const until = Date.now() + this.ttlSeconds * 1000;
    for (const e of this.mailbox.leased()) {
      if (keep.has(`${e.job_id}/${e.lease_id}`) && (e.lease_expires_at ?? 0) > Date.now()) this.mailbox.extend(e.job_id, until);
      else await this.expire(e, "the agent reconnected without it");
    }
  }

  /** The lease's entry if it is still valid; a lease past its expiry is expired on the spot. */
  private async valid(leaseId: string): Promise<MailboxEntry | null> {
    const e = this.mailbox.byLease(leaseId);
    if (!e) return null;
    if ((e.lease_expires_at ?? 0) <= Date.now()) {
      await this.expire(e, "lease expired");
      return null;
    }
    return e;
  }

  async start(leaseId: string): Promise<LeaseCheck> {
    const e = await this.valid(leaseId);
    if (!e) return STALE;
    if (!(await this.owner(e).startJob(e.job_id, e.attempt))) return this.drop(e);
    return { ok: true };
  }

  async renew(leaseId: string, progress?: JobProgress): Promise<LeaseCheck & { lease_ttl?: number }> {
    const e = await this.valid(leaseId);
    if (!e) return STALE;
    const ttl = this.ttlSeconds;
    this.mailbox.extend(e.job_id, Date.now() + ttl * 1000);
    // Each renewal checks the job is still this lease's: a cancel whose notice to this mailbox was lost still stops the agent.
    const ok = progress ? await this.owner(e).reportProgress(e.job_id, e.attempt, progress) : false;
    if (!ok && (await this.ownerMovedOn(e))) return this.drop(e);
    return { ok: true, lease_ttl: ttl };
  }

  async appendLogs(leaseId: string, chunks: LogChunk[]) {
    const e = await this.valid(leaseId);
    if (!e) return { ...STALE, expected: { stdout: 0, stderr: 0 }, gap: false };
    const res = await this.owner(e).appendLogs(e.job_id, e.attempt, chunks);
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
    return e ? { job_id: e.job_id, payload: JSON.parse(e.payload) } : null;
  }

  async finish(leaseId: string, outcome: FinishRequest): Promise<LeaseCheck> {
    const e = await this.valid(leaseId);
    if (!e) return STALE;
    // Recorded first: if the owner cannot be reached, the lease stays and the agent's retry can finish it.
    const ok = await this.owner(e).finishJob(e.job_id, e.attempt, outcome);
    this.mailbox.drop(e);
    this.onWorkAvailable();
    return ok ? { ok: true } : STALE;
  }

  /** Forgets a lease whose job ended elsewhere. */
  private drop(e: MailboxEntry): LeaseCheck {
    this.mailbox.drop(e);
    this.onWorkAvailable();
    return STALE;
  }

  /** Whether the lease's job has ended or moved on to another attempt (then the lease is dead). */
  private async ownerMovedOn(e: MailboxEntry): Promise<boolean> {
    const job = await this.owner(e).getJob(e.job_id);
    return !job || job.attempts !== e.attempt || !["dispatched", "running"].includes(job.status);
  }

  /**
   * Ends a lease: the job goes out again as a new attempt, or its owner gives up on it.
   * The entry is claimed (state `expiring`) before the call to the job's owner, so two
   * triggers (alarm, a late report, a reconnect) cannot expire the same lease twice; every
   * write after the await names the lease.
   */
  private async expire(e: MailboxEntry, reason: string) {
    if (!this.mailbox.claimExpiry(e)) return;
    let outcome: { redeliver: boolean; attempt: number };
    try {
      outcome = await this.owner(e).leaseExpired(e.job_id, e.attempt, reason);
    } catch (err) {
      // The owner could not be asked: put the lease back, expired, for the next alarm to try again.
      this.mailbox.unclaimExpiry(e);
      void this.ctx.storage.setAlarm(Date.now() + RETRY_EXPIRY_MS);
      throw err;
    }
    if (!outcome.redeliver) {
      this.mailbox.drop(e);
      this.onWorkAvailable();
      return;
    }
    this.mailbox.requeue(e, outcome.attempt);
    this.onWorkAvailable();
  }

  private async scheduleAlarm() {
    const next = this.mailbox.nextExpiry();
    if (next === null) return;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next) await this.ctx.storage.setAlarm(next);
  }

  /** The alarm: expire what the agent stopped renewing. */
  async expireOverdue() {
    for (const e of this.mailbox.expiredBy(Date.now())) await this.expire(e, "lease expired: the agent stopped renewing it").catch(() => undefined);
    await this.scheduleAlarm();
  }
}
