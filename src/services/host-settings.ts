/** Agent timing, from wrangler.toml vars so tests and slow links can change it. */
import type { Env } from "../env";

const num = (v: string | undefined, fallback: number, min: number, max: number) => {
  const n = Number(v);
  return Number.isFinite(n) && n >= min && n <= max ? n : fallback;
};

export function agentSettings(env: Env) {
  const heartbeatSeconds = num(env.AGENT_HEARTBEAT_SECONDS, 15, 1, 300);
  return {
    /** How often the agent says it is alive. */
    heartbeatSeconds,
    /** A host is offline when nothing was heard for two heartbeats plus this grace. */
    offlineAfterMs: (2 * heartbeatSeconds + Math.max(5, heartbeatSeconds / 2)) * 1000,
    /** Seconds a lease lives without a renewal; the agent renews at a third of it. */
    leaseTtlSeconds: num(env.AGENT_LEASE_TTL_SECONDS, 30, 3, 600),
    /** Time a job may spend waiting for its host on top of its own run time. */
    queueGraceSeconds: num(env.JOB_QUEUE_GRACE_SECONDS, 120, 1, 86_400),
  };
}
