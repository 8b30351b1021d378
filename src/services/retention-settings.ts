/** How long a project's job history is kept, from wrangler.toml vars (README, Configuration). */
import type { Env } from "../env";

const num = (v: string | undefined, fallback: number, min: number, max: number) => {
  const n = Number(v);
  return Number.isFinite(n) && n >= min && n <= max ? n : fallback;
};

const DAY_MS = 86_400_000;

export function retentionSettings(env: Env) {
  return {
    /** Finished jobs' output stays in the Durable Object this long, then moves to R2. */
    logsInObjectMs: num(env.JOB_LOG_RETENTION_DAYS, 7, 0, 3650) * DAY_MS,
    /** Output held in one Durable Object beyond this many bytes moves to R2, oldest jobs first. */
    logsInObjectMaxBytes: num(env.JOB_LOG_MAX_MB, 64, 1, 1024) * 1024 * 1024,
    /** Finished jobs are forgotten after this long (their archived output stays in R2). */
    jobsMs: num(env.JOB_RETENTION_DAYS, 90, 1, 3650) * DAY_MS,
    /** At most this many finished jobs are kept per project; the oldest go first. */
    jobsMax: num(env.JOB_RETENTION_MAX, 10_000, 10, 1_000_000),
    /** The event feed keeps this long for subscribers that reconnect. */
    eventsMs: num(env.JOB_EVENT_RETENTION_DAYS, 7, 1, 365) * DAY_MS,
    /** How often a project's history is pruned. */
    everyMs: num(env.JOB_PRUNE_INTERVAL_MINUTES, 60, 1, 1440) * 60_000,
  };
}

export type RetentionSettings = ReturnType<typeof retentionSettings>;
