/**
 * The host agent's WebSocket to its HostDO (tag `agent`): one connection per host, a new
 * one replacing the old; ready once the agent said hello. Carries pushes (leases, cancels,
 * follows) and questions that need an answer now (rpc: an app's recent logs, its stats).
 */
import { randomString } from "../../lib/ids";
import type { RpcMethod } from "../../protocol/agent";

interface SocketState {
  hostId: string;
  /** Set once the agent said hello; only then is work pushed to it. */
  ready: boolean;
}

const TAG = "agent";
type RpcReply = { ok: boolean; result?: unknown; error?: string };
export type RpcResult = { ok: true; json: string } | { ok: false; error: string; code: "not_connected" | "timeout" | "failed" };

export class AgentSocket {
  private readonly rpcs = new Map<string, (reply: RpcReply) => void>();

  constructor(private readonly ctx: DurableObjectState) {}

  /** Accepts the agent's upgrade; any earlier connection is closed. */
  accept(hostId: string): Response {
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    for (const old of this.ctx.getWebSockets(TAG)) {
      old.serializeAttachment({ ...(old.deserializeAttachment() as SocketState), ready: false } satisfies SocketState);
      old.close(4000, "replaced by a newer connection");
    }
    this.ctx.acceptWebSocket(server, [TAG]);
    server.serializeAttachment({ hostId, ready: false } satisfies SocketState);
    return new Response(null, { status: 101, webSocket: client });
  }

  stateOf(ws: WebSocket): SocketState {
    return ws.deserializeAttachment() as SocketState;
  }

  markReady(ws: WebSocket) {
    ws.serializeAttachment({ ...this.stateOf(ws), ready: true } satisfies SocketState);
  }

  ready(): WebSocket[] {
    return this.ctx.getWebSockets(TAG).filter((ws) => ws.readyState === WebSocket.OPEN && (ws.deserializeAttachment() as SocketState | null)?.ready);
  }

  connected(): boolean {
    return this.ctx.getWebSockets(TAG).some((ws) => (ws.deserializeAttachment() as SocketState | null)?.ready);
  }

  send(ws: WebSocket, message: unknown) {
    try {
      ws.send(JSON.stringify(message));
    } catch {
      /* closing; the agent re-claims what it missed when it says hello again */
    }
  }

  broadcast(message: unknown) {
    for (const ws of this.ready()) this.send(ws, message);
  }

  closeAll(code: number, reason: string) {
    for (const ws of this.ctx.getWebSockets(TAG)) ws.close(code, reason);
  }

  /** Asks the connected agent something and waits for its answer, as JSON text. */
  async rpc(method: RpcMethod, params: { app_id: string; tail?: number }, timeoutMs: number): Promise<RpcResult> {
    const ws = this.ready()[0];
    if (!ws) return { ok: false, code: "not_connected", error: "The host's agent is not connected" };
    const id = randomString(16);
    const reply = await new Promise<RpcReply | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), timeoutMs);
      this.rpcs.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.send(ws, { type: "rpc", id, method, params });
    });
    this.rpcs.delete(id);
    if (!reply) return { ok: false, code: "timeout", error: "The host's agent did not answer in time" };
    if (!reply.ok) return { ok: false, code: "failed", error: reply.error ?? "the agent could not answer" };
    // As JSON text: the answer's shape is the caller's business, and text crosses RPC without typing games.
    return { ok: true, json: JSON.stringify(reply.result ?? null) };
  }

  answered(id: string, reply: RpcReply) {
    this.rpcs.get(id)?.(reply);
  }
}
