/**
 * DevPocket's `/ws/terminal` messages (seed 003, `x-websocket-messages`), as zod: what the
 * client sends, what the server answers, and what the route tells the socket's TerminalDO
 * about who connected and what they may do. Every frame is a JSON text frame.
 */
import { z } from "zod";
import type { Actor } from "../../services/audit";

const size = z.number().int().min(1).max(1000);
const text = (max: number) => z.string().max(max);

export const WsClientMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("pty_input"), data: text(64 * 1024) }),
  z.object({ type: z.literal("resize_pty"), cols: size, rows: size }),
  /** Typed into the running session followed by a newline. */
  z.object({ type: z.literal("command"), data: text(16 * 1024) }),
  z.object({
    type: z.literal("connect_ssh"),
    /** Berth extension: a saved profile (its credentials and pinned host key). */
    profile_id: z.string().max(64).optional(),
    config: z
      .object({
        host: z.string().trim().min(1).max(253).regex(/^[A-Za-z0-9]([A-Za-z0-9.:_-]*[A-Za-z0-9])?$/, "a host name or an IP address"),
        port: z.number().int().min(1).max(65535).default(22),
        username: z.string().min(1).max(64).regex(/^[A-Za-z0-9._][A-Za-z0-9._@-]*$/, "a user name"),
        password: z.string().min(1).max(4096).optional(),
        /** Berth extension: the key itself (text or base64 of the file). */
        private_key: z.string().min(1).max(16_384).optional(),
        passphrase: z.string().min(1).max(4096).optional(),
        key_path: z.string().max(4096).optional(),
        host_key_fingerprint: z.string().max(128).optional(),
      })
      .optional(),
    /** Berth extensions: the host whose agent runs the SSH client, the org (slug or id). */
    host_id: z.string().max(64).optional(),
    cols: size.optional(),
    rows: size.optional(),
  }),
  z.object({ type: z.literal("create_pty"), host_id: z.string().max(64).optional(), cols: size.optional(), rows: size.optional() }),
  z.object({
    type: z.literal("ai_convert"),
    prompt: z.string().trim().min(1).max(4000),
    /** The user's OpenRouter (or other OpenAI-compatible) key; without it, the key they stored with `PUT /ai/key`. */
    api_key: z
      .string()
      .trim()
      .min(8)
      .max(512)
      .regex(/^[\x21-\x7e]+$/, "an API key is printable ASCII without spaces")
      .optional(),
    model: z.string().max(100).regex(/^[A-Za-z0-9._:/-]+$/, "a model name").optional(),
  }),
]);
export type WsClientMessage = z.infer<typeof WsClientMessage>;

export type WsServerMessage =
  | { type: "pty_output"; data: string }
  | { type: "ssh_connected"; session_id: string; host_id: string; host_key_fingerprint: string | null }
  | { type: "pty_created"; session_id: string; host_id: string }
  | { type: "ai_suggestion"; command: string }
  | { type: "session_ended"; session_id: string; exit_code: number | null; reason: string }
  | { type: "error"; code: string; message: string };

/** What the route resolved for the caller when the socket opened: the orgs they may act in and how. */
export interface WsGrant {
  actor: Actor;
  userId: string;
  /** The org used when a message names no profile or host (the key's org, or the personal org). */
  defaultOrgId: string | null;
  orgs: { id: string; commandExec: boolean; hostManage: boolean }[];
  /**
   * `ai_convert`, as `POST /ai/suggest` allows it: `stored` may use the key kept with `PUT /ai/key`
   * (a person, or a personal key that may change the account), `body` only a key sent along (a
   * personal key without that scope), `none` (org keys do not act as a person).
   */
  ai: "stored" | "body" | "none";
}

/** A message's error frame codes (documented in the README). */
export const WS_ERRORS = {
  invalid_message: "The frame is not one of this socket's messages",
  session_running: "A session already runs on this socket; one at a time",
  no_session: "No session runs on this socket yet: send create_pty or connect_ssh first",
  session_ended: "This socket's session ended; open a new socket for another",
  ai_busy: "An ai_convert is already being answered on this socket",
} as const;
