/**
 * One WebSocket to the host's mailbox, from open to close: every message out
 * is typed against the wire protocol, every message in is validated before
 * anything acts on it. Lease reports over it are answered by a `reply` with
 * the same id; a socket that carries nothing for too long is closed as dead
 * even if TCP has not noticed.
 */
import { type AgentMessage, ServerMessage } from "../../../src/protocol/agent.ts";
import type { LeaseOp } from "../../../src/protocol/lease-answers.ts";
import type { Logger } from "../log.ts";
import { ApiFailure } from "./http.ts";

/** How long a report waits for its reply before it is said again over HTTP. */
const REPLY_TIMEOUT_MS = 10_000;

export interface SocketHandlers {
  /** The first message after the socket opens. */
  hello(): AgentMessage;
  /** Every valid message from the control plane but replies, which answer reports. */
  message(msg: ServerMessage, socket: AgentSocket): void;
  /** After the control plane's hello: reports and messages may go over this socket now. */
  ready(socket: AgentSocket): void;
  /** How long the socket may carry nothing before it is taken for dead. */
  maxSilenceMs(): number;
}

export interface SocketClosed {
  /** Whether it opened at all (the backoff starts over when it did). */
  opened: boolean;
  code: number;
  reason: string;
}

/** Status and body as the HTTP route would answer: a success body, or the error envelope. */
export interface ReportAnswer {
  status: number;
  body: unknown;
}

interface Pending {
  resolve: (r: ReportAnswer) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class AgentSocket {
  private readonly ws: WebSocket;
  private readonly log: Logger;
  private readonly replies = new Map<number, Pending>();
  private nextReportId = 1;
  private lastHeard = Date.now();
  readonly closed: Promise<SocketClosed>;

  constructor(url: string, credential: string, handlers: SocketHandlers, log: Logger) {
    this.log = log;
    // Node's WebSocket takes headers in its second argument, which the DOM typing does not know.
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${credential}` } } as unknown as string[]);
    this.ws = ws;
    let opened = false;
    const watchdog = setInterval(() => {
      if (Date.now() - this.lastHeard > handlers.maxSilenceMs()) ws.close(4008, "no traffic");
    }, 1000);
    ws.addEventListener("open", () => {
      opened = true;
      this.send(handlers.hello());
    });
    ws.addEventListener("message", (event) => {
      this.lastHeard = Date.now();
      try {
        this.receive(String(event.data), handlers);
      } catch (err) {
        // One bad message must not take the agent down.
        this.log.error("could not handle a message from the control plane", { error: (err as Error).message });
      }
    });
    ws.addEventListener("error", () => {
      /* followed by close */
    });
    this.closed = new Promise((resolve) => {
      ws.addEventListener("close", (e) => {
        clearInterval(watchdog);
        this.failReplies();
        resolve({ opened, code: e.code, reason: e.reason });
      });
    });
  }

  private receive(data: string, handlers: SocketHandlers) {
    if (data === "pong") return;
    let parsed: ReturnType<typeof ServerMessage.safeParse>;
    try {
      parsed = ServerMessage.safeParse(JSON.parse(data));
    } catch {
      return;
    }
    if (!parsed.success) return;
    const msg = parsed.data;
    if (msg.type === "reply") {
      const pending = this.replies.get(msg.id);
      if (!pending) return;
      clearTimeout(pending.timer);
      this.replies.delete(msg.id);
      pending.resolve({ status: msg.status, body: msg.body });
      return;
    }
    if (msg.type === "hello") handlers.ready(this);
    handlers.message(msg, this);
  }

  /** Sends one message; false when the socket is not open (the caller says it again later or over HTTP). */
  send(msg: AgentMessage): boolean {
    try {
      this.ws.send(JSON.stringify(msg));
      return true;
    } catch {
      return false;
    }
  }

  /** A lease report, answered as the HTTP route would answer it. Rejects with a `retry` ApiFailure when no reply comes. */
  report(op: LeaseOp, leaseId: string, body: unknown): Promise<ReportAnswer> {
    const id = this.nextReportId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.replies.delete(id);
        reject(new ApiFailure("retry", 0, "timeout", "no reply over the socket"));
      }, REPLY_TIMEOUT_MS);
      this.replies.set(id, { resolve, reject, timer });
      if (!this.send({ type: "report", id, lease_id: leaseId, op, body })) {
        clearTimeout(timer);
        this.replies.delete(id);
        reject(new ApiFailure("retry", 0, "socket", "the socket is not open"));
      }
    });
  }

  close(code: number, reason: string) {
    this.ws.close(code, reason);
  }

  private failReplies() {
    for (const [id, r] of this.replies) {
      clearTimeout(r.timer);
      r.reject(new ApiFailure("retry", 0, "socket_closed", "the socket closed before the reply"));
      this.replies.delete(id);
    }
  }
}
