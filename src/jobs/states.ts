/** A job's states, defined once: queued → dispatched → running → succeeded | failed | cancelled | lost. */
export const OPEN_STATES = ["queued", "dispatched", "running"] as const;
export const TERMINAL_STATES = ["succeeded", "failed", "cancelled", "lost"] as const;

export type OpenJobStatus = (typeof OPEN_STATES)[number];
export type TerminalJobStatus = (typeof TERMINAL_STATES)[number];
export type JobStatus = OpenJobStatus | TerminalJobStatus;

export const isTerminal = (status: string): status is TerminalJobStatus => (TERMINAL_STATES as readonly string[]).includes(status);

/** `('queued', 'dispatched', 'running')`, for SQL that selects open jobs. */
export const OPEN_STATES_SQL = `(${OPEN_STATES.map((s) => `'${s}'`).join(", ")})`;
