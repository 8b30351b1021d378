/**
 * An app's log lines as they come, from `/apps/{appId}/logs/stream` (batch frames), on
 * partysocket's reconnecting socket. The first connection asks for the last lines; a
 * reconnection asks for none, so nothing is shown twice (what was logged during the gap
 * is in GET /apps/{appId}/logs, and the page says the stream was interrupted).
 */
import ReconnectingWebSocket from "partysocket/ws";
import { useEffect, useState } from "react";
import type { LiveState } from "./live";
import { socketUrl } from "./live";

export type AppLogLine = { key: number; stream: "stdout" | "stderr"; line: string; time: string };
type Frame = { lines?: { stream: AppLogLine["stream"]; line: string; time: string }[]; skipped?: number };

/** Lines kept on the page; older ones scroll away. */
const KEEP = 500;

/**
 * `container` names the app's current container: a new one (a deploy) is a new stream,
 * opened with its own last lines, so the lines it wrote while starting are not missed.
 */
export function useAppLogs(appId: string, container: string | null, { tail = 100 } = {}) {
  const [lines, setLines] = useState<AppLogLine[]>([]);
  const [state, setState] = useState<LiveState>("connecting");
  const [gaps, setGaps] = useState(0);
  useEffect(() => {
    if (!container) return;
    let opened = false;
    let key = 0;
    setLines([]);
    const socket = new ReconnectingWebSocket(() => socketUrl(`/apps/${appId}/logs/stream`, { batch: "1", tail: String(opened ? 0 : tail) }), [], {
      maxReconnectionDelay: 10_000,
      minReconnectionDelay: 500 + Math.random() * 1_000,
    });
    socket.addEventListener("open", () => {
      if (opened) setGaps((n) => n + 1);
      opened = true;
      setState("live");
    });
    socket.addEventListener("close", () => setState("reconnecting"));
    socket.addEventListener("message", (message) => {
      let frame: Frame;
      try {
        frame = JSON.parse(String(message.data)) as Frame;
      } catch {
        return;
      }
      const fresh = (frame.lines ?? []).map((l) => ({ key: key++, stream: l.stream, line: l.line, time: l.time }));
      if (frame.skipped) fresh.unshift({ key: key++, stream: "stderr", line: `… ${frame.skipped} lines skipped: this page fell behind the app`, time: new Date().toISOString() });
      if (fresh.length) setLines((old) => [...old, ...fresh].slice(-KEEP));
    });
    return () => socket.close();
  }, [appId, container, tail]);
  return { lines, state, gaps };
}
