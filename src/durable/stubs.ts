/**
 * Typed handles on the Durable Objects. A ProjectDO is named by its scope:
 * `project:<id>` for a project's jobs, `host:<id>` for a host's own jobs.
 */
import type { Env } from "../env";

export type JobScope = `project:${string}` | `host:${string}`;

export const projectScope = (projectId: string): JobScope => `project:${projectId}`;
export const hostScope = (hostId: string): JobScope => `host:${hostId}`;

export function projectStub(env: Env, scope: string) {
  return env.PROJECT_DO.get(env.PROJECT_DO.idFromName(scope));
}

export function hostStub(env: Env, hostId: string) {
  return env.HOST_DO.get(env.HOST_DO.idFromName(hostId));
}
