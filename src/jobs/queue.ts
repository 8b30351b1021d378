/**
 * The `jobs` Queue: the durable hand-off between the API and the hosts.
 * ProjectDO sends one message per attempt-0 job; this consumer puts it in the
 * target host's mailbox (HostDO) and marks the job dispatched. A hand-off that
 * throws is retried by the Queue itself and, after its last retry, lands in the
 * dead-letter queue, whose consumer fails the job with a reason a user can read.
 */
import { hostMailbox, projectJobs } from "../durable/clients";
import type { Env } from "../env";
import type { JobPayload } from "../protocol/agent";
import { createDb } from "../db/client";
import { handleWebhookBatch, type WebhookQueueMessage } from "../services/webhooks";

export interface JobsQueueMessage {
  job_id: string;
  /** The ProjectDO that owns the job (`project:<id>` or `host:<id>`). */
  scope: string;
  host_id: string;
  attempt: number;
  /** Safe to run again from scratch if an earlier attempt may have run. */
  idempotent: boolean;
  deadline_at: number;
  /** When the job was created: its place in its host's line (absent from messages sent before this field existed). */
  created_at?: number;
  payload: JobPayload;
}

export const JOBS_QUEUE = "berth-jobs";
export const JOBS_DLQ = "berth-jobs-dlq";
export const WEBHOOKS_QUEUE = "berth-webhooks";

function log(level: "info" | "warn" | "error", msg: string, fields: Record<string, unknown>) {
  console[level](JSON.stringify({ level, msg, ...fields }));
}

/** Routes each message into its host's mailbox; a host that is gone fails the job at once. */
export async function handleJobs(batch: MessageBatch<JobsQueueMessage>, env: Env): Promise<void> {
  await Promise.all(
    batch.messages.map(async (message) => {
      const job = message.body;
      try {
        const outcome = await hostMailbox(env, job.host_id).enqueue(job);
        if (outcome === "host_gone") {
          await projectJobs(env, job.scope).failJob(job.job_id, "The target host was deleted before it could take the job");
        } else {
          await projectJobs(env, job.scope).markDispatched(job.job_id, job.attempt);
        }
        message.ack();
      } catch (err) {
        log("warn", "job hand-off failed; the queue will retry", { job_id: job.job_id, attempt: message.attempts, error: String(err) });
        message.retry({ delaySeconds: Math.min(2 ** message.attempts, 30) });
      }
    }),
  );
}

/** The Queue gave up on these hand-offs: fail their jobs so nobody waits on them. */
export async function handleDeadLetters(batch: MessageBatch<JobsQueueMessage>, env: Env): Promise<void> {
  for (const message of batch.messages) {
    const job = message.body;
    try {
      await projectJobs(env, job.scope).failJob(
        job.job_id,
        `Could not hand the job to host ${job.host_id} after ${message.attempts} tries; the control plane's queue gave up`,
      );
      message.ack();
    } catch (err) {
      log("error", "dead-letter handling failed", { job_id: job.job_id, error: String(err) });
      message.retry();
    }
  }
}

export async function handleQueue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  if (batch.queue === WEBHOOKS_QUEUE) return handleWebhookBatch(batch as MessageBatch<WebhookQueueMessage>, env, createDb(env.DB));
  if (batch.queue === JOBS_DLQ || batch.queue.endsWith("-dlq")) return handleDeadLetters(batch as MessageBatch<JobsQueueMessage>, env);
  return handleJobs(batch as MessageBatch<JobsQueueMessage>, env);
}
