/**
 * What the exec route tells a TerminalDO about a user's connection, and the close codes a
 * terminal's user sees. The user's socket (Dockup's `/apps/{appId}/exec`): text frames in are
 * input (or `{type:"resize",cols,rows}`), binary frames out are the TTY's output; the server's
 * own text frames are `{type:"session", session_id, mode, offset, skipped}` first and
 * `{type:"exit", code}` last.
 */
import type { Actor } from "../../services/audit";
import type { WsGrant } from "./ws-protocol";

export type TerminalAttach =
  | {
      op: "open";
      session: { id: string; appId: string; hostId: string; orgId: string; projectId: string; opener: Actor; cmd: string[]; cols: number; rows: number };
    }
  | {
      /** DevPocket's `/ws/terminal`: the socket opens first, its messages start the session (ws-protocol.ts). */
      op: "ws";
      id: string;
      grant: WsGrant;
    }
  | {
      op: "attach";
      /** The app of an exec session; null for a `/ws/terminal` session, whose `grant` says who may join. */
      appId: string | null;
      grant?: WsGrant;
      /** Who connects: the opener resumes as the writer unless `view`; anyone else watches. */
      actorId: string;
      view: boolean;
      /** Output bytes the client already has; null replays all the ring holds. */
      since: number | null;
    };

/** Close codes (4000–4999 are the application's) and the reasons sent with them. */
export const CLOSE = {
  replaced: { code: 4000, reason: "replaced by a newer connection to this session" },
  sessionGone: { code: 4404, reason: "no such terminal session: it ended or never existed" },
  idle: { code: 4408, reason: "closed after no input or output for the idle time" },
  notRunning: { code: 4409, reason: "the app is not running" },
  abandoned: { code: 4410, reason: "nobody reconnected to the session within its grace period" },
  viewerBehind: { code: 4429, reason: "fell too far behind the output; reconnect to catch up" },
  execFailed: { code: 4500, reason: "could not start the command" },
  agentGone: { code: 4502, reason: "the host's agent went away" },
  hostOffline: { code: 4503, reason: "the app's host is offline" },
  agentSilent: { code: 4504, reason: "the host's agent did not start the terminal in time" },
} as const;
