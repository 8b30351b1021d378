/**
 * The agent's way to its control plane: the socket while one is up, HTTP
 * otherwise. Lease reports go over the socket (no HTTP round trip, no
 * credential lookup) and, if it goes away mid-report, again over HTTP; both
 * answer the same way (src/protocol/lease-answers.ts). HTTP claims pause
 * while a socket is being opened or is up, so the two never race for work.
 */
import type { z } from "zod";
import type { AgentMessage, ClaimRequest, ClaimResponse, HeartbeatRequest } from "../../../src/protocol/agent.ts";
import { failureKind, type LeaseOp } from "../../../src/protocol/lease-answers.ts";
import type { LeaseReporter } from "../jobs/registry.ts";
import type { Logger } from "../log.ts";
import { Wakeup } from "../wakeup.ts";
import { ApiFailure, type ControlPlane } from "./http.ts";
import { AgentSocket, type SocketClosed, type SocketHandlers } from "./socket.ts";

export class Transport implements LeaseReporter {
  readonly http: ControlPlane;
  private readonly log: Logger;
  /** The socket being opened or open, if any. */
  private current: AgentSocket | null = null;
  /** The same socket, once the control plane said hello on it. */
  private live: AgentSocket | null = null;
  private opening = false;
  /** Notified whenever the socket comes up, goes, or starts or stops opening. */
  readonly changed = new Wakeup();

  constructor(http: ControlPlane, log: Logger) {
    this.http = http;
    this.log = log;
  }

  get socketUp(): boolean {
    return this.live !== null;
  }

  /** True from before a socket is tried until it closed: HTTP claims wait meanwhile. */
  get connecting(): boolean {
    return this.opening;
  }

  set connecting(value: boolean) {
    this.opening = value;
    this.changed.notify();
  }

  /** One socket's life: resolves when it closed. */
  connect(handlers: Omit<SocketHandlers, "ready">): Promise<SocketClosed> {
    if (!this.http.credential) throw new Error("no host credential to connect with");
    const url = this.http.url("/agent/connect").replace(/^http/, "ws");
    const socket = new AgentSocket(
      url,
      this.http.credential,
      {
        ...handlers,
        ready: (s) => {
          this.live = s;
          this.changed.notify();
        },
      },
      this.log,
    );
    this.current = socket;
    return socket.closed.finally(() => {
      if (this.current === socket) this.current = null;
      if (this.live === socket) this.live = null;
      this.changed.notify();
    });
  }

  /** Over the socket if it is up; false if not (the message is dropped; the caller knows whether that matters). */
  send(msg: AgentMessage): boolean {
    return this.live?.send(msg) ?? false;
  }

  close(code: number, reason: string) {
    this.current?.close(code, reason);
  }

  async report<T>(op: LeaseOp, leaseId: string, body: unknown = {}): Promise<T> {
    const socket = this.live;
    if (socket) {
      try {
        const res = await socket.report(op, leaseId, body);
        if (res.status === 200) return res.body as T;
        const error = (res.body as { error?: { code?: string; message?: string } } | null)?.error;
        const code = error?.code ?? `http_${res.status}`;
        throw new ApiFailure(failureKind(res.status, code), res.status, code, error?.message ?? "refused");
      } catch (err) {
        if (!(err instanceof ApiFailure) || err.kind !== "retry") throw err;
        // The socket went away mid-report: say it again over HTTP (reports are idempotent).
      }
    }
    return this.http.call<T>("POST", `/agent/leases/${leaseId}/${op}`, body);
  }

  call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.http.call<T>(method, path, body);
  }

  download(path: string, opts?: { signal?: AbortSignal }): Promise<Response> {
    return this.http.download(path, opts);
  }

  /**
   * A heartbeat, over the socket when it is up unless `overHttp`. Over HTTP it
   * also checks the credential (a refused socket upgrade does not say why, a
   * refused heartbeat does) and answers the interval the control plane wants.
   */
  async heartbeat(beat: z.input<typeof HeartbeatRequest>, overHttp = false): Promise<{ heartbeat_interval: number } | null> {
    if (!overHttp && this.send({ type: "heartbeat", ...beat })) return null;
    return this.http.call<{ heartbeat_interval: number }>("POST", "/agent/heartbeat", beat);
  }

  /** Long-polls for work over HTTP. */
  claim(req: z.input<typeof ClaimRequest>, signal: AbortSignal): Promise<z.infer<typeof ClaimResponse>> {
    return this.http.call("POST", "/agent/claim", req, { signal, timeoutMs: 30_000 });
  }
}
