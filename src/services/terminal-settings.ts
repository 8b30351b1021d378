/** Terminal session timing, configurable through `[vars]` (tests use short ones). */
import type { Env } from "../env";

const seconds = (value: string | undefined, fallback: number) => {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
};

export function terminalSettings(env: Pick<Env, "TERMINAL_IDLE_SECONDS" | "TERMINAL_GRACE_SECONDS">) {
  return {
    /** No input and no output for this long ends a session. */
    idleMs: seconds(env.TERMINAL_IDLE_SECONDS, 15 * 60) * 1000,
    /** How long a session waits for its writer to reconnect. */
    graceMs: seconds(env.TERMINAL_GRACE_SECONDS, 60) * 1000,
    /** How long the host's agent has to start the program. */
    startMs: 15_000,
  };
}
