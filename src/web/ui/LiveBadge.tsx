import type { LiveState } from "../live";

const WORDS: Record<LiveState, string> = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…" };

/** Whether a page's live updates are flowing: a badge, read out when it changes. */
export function LiveBadge({ state, what }: { state: LiveState; what: string }) {
  return (
    <span className={`badge live live-${state}`} role="status" aria-label={`${what}: ${WORDS[state]}`}>
      {WORDS[state]}
    </span>
  );
}
