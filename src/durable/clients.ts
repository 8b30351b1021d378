/**
 * How the rest of the Worker reaches the Durable Objects: small typed clients instead
 * of raw stubs. A ProjectDO is named by its scope (`project:<id>` for a project's jobs,
 * `host:<id>` for a host's own jobs); a HostDO by its host's id.
 */
import type { Env } from "../env";

export type JobScope = `project:${string}` | `host:${string}`;

export const projectScope = (projectId: string): JobScope => `project:${projectId}`;
export const hostScope = (hostId: string): JobScope => `host:${hostId}`;

/** The jobs, events and log streams of one scope (ProjectDO's RPC surface). */
export function projectJobs(env: Env, scope: string) {
  return env.PROJECT_DO.get(env.PROJECT_DO.idFromName(scope));
}

/** One host's mailbox: its leases, its agent's socket, its log follows (HostDO's RPC surface). */
export function hostMailbox(env: Env, hostId: string) {
  return env.HOST_DO.get(env.HOST_DO.idFromName(hostId));
}

/** One terminal session (TerminalDO), by its id (`trm_…`). */
export function terminalSession(env: Env, sessionId: string) {
  return env.TERMINAL_DO.get(env.TERMINAL_DO.idFromName(sessionId));
}

export type ProjectJobsClient = ReturnType<typeof projectJobs>;
export type HostMailboxClient = ReturnType<typeof hostMailbox>;
