/**
 * Jobs as users see them: the seed's job shape (Suble's `uid`, `type`,
 * `status`, `progress`, times as ISO 8601), and submission of host jobs.
 */
import type { JobRecord } from "../durable/project-do";
import { hostScope, projectJobs } from "../durable/clients";
import type { Env } from "../env";
import { agentSettings } from "./host-settings";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function presentJob(j: JobRecord) {
  return {
    uid: j.id,
    id: j.id,
    type: j.type,
    status: j.status,
    /** The instance or app the job is about (Suble's `instance`), null for host jobs. */
    instance: j.subject,
    host_id: j.host_id,
    progress: j.progress,
    error: j.error,
    result: j.result,
    attempts: j.attempts,
    created_at: iso(j.created_at)!,
    dispatched_at: iso(j.dispatched_at),
    started_at: iso(j.started_at),
    finished_at: iso(j.finished_at),
    deadline_at: iso(j.deadline_at)!,
  };
}

export type PresentedJob = ReturnType<typeof presentJob>;

/** Runs a shell command on a host as a job of the host's own. */
export async function submitHostExec(env: Env, hostId: string, command: string, timeoutSeconds: number) {
  const { queueGraceSeconds } = agentSettings(env);
  return projectJobs(env, hostScope(hostId)).createJob(hostScope(hostId), {
    type: "host.exec",
    hostId,
    payload: { type: "host.exec", command, timeout_seconds: timeoutSeconds },
    // A command may have side effects: a redelivered exec is reconciled, never simply run again.
    idempotent: false,
    deadlineSeconds: timeoutSeconds + queueGraceSeconds,
  });
}

export function presentLogs(lines: Array<{ stream: string; offset: number; data: string; at: number }>) {
  return lines.map((l) => ({ time: new Date(l.at).toISOString(), stream: l.stream, offset: l.offset, text: l.data }));
}
