/**
 * The app exec socket (`/apps/{appId}/exec`) as the terminal page uses it: text frames out
 * are keystrokes and `{type:"resize"}`, binary frames in are the TTY's output, text frames
 * in are `{type:"session"}` and `{type:"exit"}`; the close code says why it ended
 * (src/durable/terminal/protocol.ts).
 *
 * Reconnection is partysocket's (backoff, a URL asked anew on each try); this module only
 * decides which closes are worth a retry, and resumes with `?session=&since=<bytes had>`,
 * so the session's Durable Object replays exactly what was missed during its grace period.
 */
import ReconnectingWebSocket from "partysocket/ws";
import { socketUrl } from "./live";

export type TerminalState = "connecting" | "open" | "reconnecting" | "ended";

export interface TerminalEnd {
  code: number;
  /** What happened, in words for a person. */
  message: string;
  /** The server's own reason, for a bug report. */
  reason: string;
}

export interface TerminalHandlers {
  output(bytes: Uint8Array): void;
  /** A (re)connection was greeted: read-only or not, and how much output was lost on the way. */
  session(info: { id: string; readOnly: boolean; skipped: number; resumed: boolean }): void;
  state(state: TerminalState): void;
  ended(end: TerminalEnd): void;
}

/** Retries, 0.5 s to 5 s apart, only within the session's grace period (TERMINAL_GRACE_SECONDS, 60 s). */
const GRACE_MS = 55_000;
/** Closes after which a retry can help: a dropped network, a server restart, a viewer that fell behind. */
const RETRYABLE = new Set([1001, 1005, 1006, 1011, 1012, 1013, 4429]);

/** Words for the close codes of src/durable/terminal/protocol.ts. */
export function describeClose(code: number, reason: string, exitCode: number | null | undefined): string {
  switch (code) {
    case 1000:
      if (exitCode === undefined || exitCode === null) return "The program ended.";
      // A shell's status above 128 is a signal's number plus 128: a stopped container kills what runs in it.
      return exitCode > 128 && exitCode < 160
        ? `The program ended with exit status ${exitCode} (killed by signal ${exitCode - 128}: was the app stopped or restarted?).`
        : `The program ended with exit status ${exitCode}.`;
    case 4000:
      return "This terminal was opened again in another tab or window, which took it over.";
    case 4404:
      return "This terminal session has ended or never existed. Open a new one.";
    case 4408:
      return "The terminal was closed after a long time without input or output.";
    case 4409:
      return "The app is not running, so there is no container to open a terminal in. Start the app, then open the terminal again.";
    case 4410:
      return "Nobody came back to this terminal within its grace period, so it was ended.";
    case 4429:
      return "This view fell too far behind the output.";
    case 4500:
      return `The command could not be started in the container${reason.includes(": ") ? ` (${reason.slice(reason.indexOf(": ") + 2)})` : ""}.`;
    case 4502:
      return "The host's agent went away, which ended the terminal.";
    case 4503:
      return "The app's host is offline: its agent is not connected. Try again once the host is back online.";
    case 4504:
      return "The host's agent did not start the terminal in time. Try again.";
    default:
      return "The connection to the terminal was lost.";
  }
}

export function openTerminalSocket(appId: string, start: { cols: number; rows: number; session?: string; view?: boolean }, on: TerminalHandlers) {
  let sessionId = start.session;
  let received = 0;
  let opened = false;
  let exitCode: number | null | undefined;
  let readOnly = !!start.view;
  let finished = false;
  /** When the connection dropped, while it is down. */
  let droppedAt: number | undefined;

  const finish = (end: TerminalEnd) => {
    if (finished) return;
    finished = true;
    on.state("ended");
    on.ended(end);
  };

  const socket = new ReconnectingWebSocket(
    () => {
      if (!sessionId) return socketUrl(`/apps/${appId}/exec`, { cols: String(start.cols), rows: String(start.rows) });
      const query: Record<string, string> = { session: sessionId };
      // The first attach to a session given in the address gets everything its ring holds.
      if (opened || received) query.since = String(received);
      if (start.view) query.view = "1";
      return socketUrl(`/apps/${appId}/exec`, query);
    },
    [],
    {
      minReconnectionDelay: 500,
      maxReconnectionDelay: 5_000,
      // A socket that never opened was refused (no access, no such app): retrying would not help.
      shouldReconnectOnClose: (event) => opened && RETRYABLE.has(event.code),
    },
  );
  socket.binaryType = "arraybuffer";

  socket.addEventListener("open", () => {
    droppedAt = undefined;
    on.state("open");
  });
  socket.addEventListener("message", (message) => {
    if (message.data instanceof ArrayBuffer) {
      received += message.data.byteLength;
      on.output(new Uint8Array(message.data));
      return;
    }
    let frame: { type?: string; session_id?: string; mode?: string; offset?: number; skipped?: number; code?: number | null };
    try {
      frame = JSON.parse(String(message.data));
    } catch {
      return;
    }
    if (frame.type === "session" && typeof frame.session_id === "string") {
      const resumed = opened;
      opened = true;
      sessionId = frame.session_id;
      received = typeof frame.offset === "number" ? frame.offset : received;
      readOnly = frame.mode === "view";
      on.session({ id: frame.session_id, readOnly, skipped: frame.skipped ?? 0, resumed });
      // The window may have changed size while the socket was down.
      if (resumed && !readOnly) socket.send(JSON.stringify({ type: "resize", cols: start.cols, rows: start.rows }));
    } else if (frame.type === "exit") {
      exitCode = frame.code ?? null;
    }
  });
  socket.addEventListener("close", (event) => {
    if (finished) return;
    if (!RETRYABLE.has(event.code)) {
      finish({ code: event.code, reason: event.reason, message: describeClose(event.code, event.reason, exitCode) });
      return;
    }
    droppedAt ??= Date.now();
    if (opened && Date.now() - droppedAt < GRACE_MS) {
      on.state("reconnecting");
      return;
    }
    socket.close();
    finish({
      code: event.code,
      reason: event.reason,
      message: opened
        ? "The connection to the terminal was lost and could not be made again within the session's grace period."
        : "The terminal could not be opened: the app may be gone, or you may not be allowed to open a terminal in it.",
    });
  });

  return {
    /** Keystrokes (or pasted text) for the program; dropped for a read-only viewer. */
    input(data: string) {
      if (!readOnly && !finished) socket.send(data);
    },
    resize(cols: number, rows: number) {
      start.cols = cols;
      start.rows = rows;
      if (!readOnly && !finished && socket.readyState === socket.OPEN) socket.send(JSON.stringify({ type: "resize", cols, rows }));
    },
    /** Leaves the session: it runs on for its grace period, so the same user can come back to it. */
    close() {
      finished = true;
      socket.close(1000, "left");
    },
    get sessionId() {
      return sessionId;
    },
  };
}
