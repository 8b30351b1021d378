/**
 * The agent: holds a WebSocket to its host's mailbox, which pushes leases as
 * they arrive; while the socket is down it claims work over HTTP instead.
 * Reconnects with exponential backoff and full jitter (1 s to 60 s), honours
 * Retry-After, and stops for good, with the reason, only when the control
 * plane refuses its credential.
 */
import { AGENT_PROTOCOL_VERSION, INSTANCE_JOB_TYPES, type Lease, ServerMessage } from "../../src/protocol/agent.ts";
import { ApiFailure, type ControlPlane, type LeaseOp } from "./api.ts";
import { Backoff, sleep } from "./backoff.ts";
import { collectFacts } from "./facts.ts";
import type { Logger } from "./log.ts";
import { CaddyAdmin } from "./drivers/caddy.ts";
import { DockerEngine } from "./drivers/docker.ts";
import { Jobs } from "./jobs/jobs.ts";
import { KeyLock } from "./jobs/key-lock.ts";
import { TaskRegistry } from "./jobs/registry.ts";
import { AppWatcher } from "./watch.ts";
import { LogFollower } from "./follow.ts";
import { type AppDrivers, appQuery, registerAppTasks } from "./tasks/apps.ts";
import { execTask } from "./tasks/exec.ts";
import type { StateDir } from "./state.ts";

export const AGENT_VERSION = "0.1.0";

export interface AgentOptions {
  websocket: boolean;
  dockerSocket: string;
  /** Caddy's admin API, which the agent configures app routes through. */
  caddyAdmin: string;
  /** Where Caddy serves the apps, e.g. ":80". */
  ingressListen: string;
  heartbeatSeconds: number;
  /** How often every app's container is reported with a stats sample. */
  appSweepSeconds: number;
}

export class AgentRefused extends Error {}

/** Every kind of work this agent carries out, by payload type. */
function taskRegistry(drivers: AppDrivers): TaskRegistry {
  const registry = new TaskRegistry().register("host.exec", execTask);
  registerAppTasks(registry, drivers);
  // Until the Proxmox driver registers its tasks, an instance job fails saying so rather than time out.
  registry.register(INSTANCE_JOB_TYPES, { run: async () => ({ status: "failed", error: "This agent cannot run instance jobs yet (no Proxmox driver)" }) });
  return registry;
}

export class Agent {
  private readonly api: ControlPlane;
  private readonly state: StateDir;
  private readonly log: Logger;
  private readonly opts: AgentOptions;
  private readonly drivers: AppDrivers;
  private readonly locks = new KeyLock();
  private readonly jobs: Jobs;
  private readonly follower: LogFollower;
  private ws: WebSocket | null = null;
  private wsReady = false;
  /** True while a socket is being opened: HTTP claims wait, so the two do not race for the same work. */
  private wsConnecting = false;
  private heartbeatSeconds: number;
  private readonly stopping = new AbortController();
  private fatal: ApiFailure | null = null;
  private wake: () => void = () => {};

  constructor(api: ControlPlane, state: StateDir, log: Logger, opts: AgentOptions) {
    this.api = api;
    this.state = state;
    this.log = log;
    this.opts = opts;
    this.heartbeatSeconds = opts.heartbeatSeconds;
    api.socketReporter = (op, leaseId, body) => this.sendReport(op, leaseId, body);
    this.drivers = { docker: new DockerEngine(opts.dockerSocket), caddy: new CaddyAdmin(opts.caddyAdmin, opts.ingressListen) };
    this.follower = new LogFollower(this.drivers.docker, log);
    const exclusive = <T>(key: string, fn: () => Promise<T>) => this.locks.run(key, fn);
    this.jobs = new Jobs({ state, api, log, exclusive }, taskRegistry(this.drivers), (err) => this.refuse(err));
  }

  private nextReportId = 1;
  private readonly replies = new Map<number, { resolve: (r: { status: number; body: any }) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  /** A lease report over the socket, answered by a `reply` with the same id; null when the socket is not up. */
  private sendReport(op: LeaseOp, leaseId: string, body: unknown) {
    const ws = this.ws;
    if (!ws || !this.wsReady) return null;
    const id = this.nextReportId++;
    return new Promise<{ status: number; body: any }>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.replies.delete(id);
        reject(new ApiFailure("retry", 0, "timeout", "no reply over the socket"));
      }, 10_000);
      this.replies.set(id, { resolve, reject, timer });
      try {
        ws.send(JSON.stringify({ type: "report", id, lease_id: leaseId, op, body }));
      } catch (err) {
        clearTimeout(timer);
        this.replies.delete(id);
        reject(new ApiFailure("retry", 0, "socket", (err as Error).message));
      }
    });
  }

  /** Answers a question from the control plane about an app's container (recent logs, stats). */
  private async answer(ws: WebSocket, id: string, method: "app.logs" | "app.stats" | "host.containers", params: { app_id: string; tail?: number }) {
    let reply: { type: "rpc_reply"; id: string; ok: boolean; result?: unknown; error?: string };
    try {
      const result = await appQuery(this.drivers, method, params);
      reply = { type: "rpc_reply", id, ok: true, result };
    } catch (err) {
      reply = { type: "rpc_reply", id, ok: false, error: (err as Error).message.slice(0, 2000) };
    }
    try {
      ws.send(JSON.stringify(reply));
    } catch {
      /* the socket went; the control plane times the question out */
    }
  }

  private failReplies() {
    for (const [id, r] of this.replies) {
      clearTimeout(r.timer);
      r.reject(new ApiFailure("retry", 0, "socket_closed", "the socket closed before the reply"));
      this.replies.delete(id);
    }
  }

  /** Runs until stopped or refused. Resolves on stop; rejects with AgentRefused. */
  async run(): Promise<void> {
    this.jobs.resumeLeftovers();
    this.wsConnecting = this.opts.websocket;
    const loops = [this.heartbeatLoop(), this.httpLoop(), new AppWatcher(this.drivers, this.api, this.log, (appId, fn) => this.locks.run(appId, fn), this.opts.appSweepSeconds * 1000).run(this.stopping.signal)];
    if (this.opts.websocket) loops.push(this.socketLoop());
    await Promise.all(loops);
    if (this.fatal) throw new AgentRefused(`${this.fatal.message} (${this.fatal.code})`);
  }

  stop() {
    this.stopping.abort();
    this.ws?.close(1000, "agent stopping");
    this.wake();
  }

  private refuse(err: ApiFailure) {
    if (this.fatal) return;
    this.fatal = err;
    this.log.error("the control plane refused this agent; stopping", { code: err.code, reason: err.message });
    this.jobs.stopAll();
    this.stop();
  }

  private get stopped() {
    return this.stopping.signal.aborted;
  }

  // ------------------------------------------------------------ transport

  private async socketLoop() {
    const backoff = new Backoff();
    while (!this.stopped) {
      this.wsConnecting = true;
      const opened = await this.connectOnce().finally(() => {
        this.wsConnecting = false;
        this.wake();
      });
      if (this.stopped) break;
      if (opened) backoff.reset();
      const delay = backoff.next(this.retryAfter);
      this.retryAfter = 0;
      this.log.info("socket closed; reconnecting", { in_ms: delay });
      await sleep(delay, this.stopping.signal);
    }
  }

  private retryAfter = 0;

  /** One socket's life. True if it opened (the backoff starts over). */
  private async connectOnce(): Promise<boolean> {
    // Check the credential over HTTP first: a refused upgrade does not say why, a refused heartbeat does.
    try {
      await this.heartbeat(false);
    } catch (err) {
      if (err instanceof ApiFailure && err.kind === "fatal") {
        this.refuse(err);
        return false;
      }
      if (err instanceof ApiFailure) this.retryAfter = err.retryAfterMs;
      this.log.warn("control plane unreachable", { error: (err as Error).message });
      return false;
    }
    const url = this.api.url("/agent/connect").replace(/^http/, "ws");
    return new Promise<boolean>((resolve) => {
      let opened = false;
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${this.api.credential}` } } as unknown as string[]);
      this.ws = ws;
      let lastHeard = Date.now();
      const watchdog = setInterval(() => {
        // A socket that stopped carrying anything is dead even if TCP has not noticed.
        if (Date.now() - lastHeard > this.heartbeatSeconds * 3000 + 5000) ws.close(4008, "no traffic");
      }, 1000);
      ws.addEventListener("open", () => {
        opened = true;
        ws.send(JSON.stringify({ type: "hello", agent_version: AGENT_VERSION, held: this.jobs.held() }));
      });
      ws.addEventListener("message", (event) => {
        try {
          onMessage(event);
        } catch (err) {
          // One bad message must not take the agent down.
          this.log.error("could not handle a message from the control plane", { error: (err as Error).message });
        }
      });
      const onMessage = (event: MessageEvent) => {
        lastHeard = Date.now();
        if (event.data === "pong") return;
        let msg: ReturnType<typeof ServerMessage.safeParse> | null;
        try {
          msg = ServerMessage.safeParse(JSON.parse(String(event.data)));
        } catch {
          msg = null;
        }
        if (!msg?.success) return;
        const m = msg.data;
        if (m.type === "hello") {
          this.heartbeatSeconds = m.heartbeat_interval;
          if (m.protocol !== AGENT_PROTOCOL_VERSION) this.log.warn("control plane speaks another protocol version", { theirs: m.protocol, ours: AGENT_PROTOCOL_VERSION });
          this.wsReady = true;
          this.wake();
          this.log.info("connected", { transport: "websocket", host_id: m.host_id });
        } else if (m.type === "lease") {
          this.jobs.accept(m.lease);
        } else if (m.type === "reply") {
          const pending = this.replies.get(m.id);
          if (pending) {
            clearTimeout(pending.timer);
            this.replies.delete(m.id);
            pending.resolve({ status: m.status, body: m.body });
          }
        } else if (m.type === "follow") {
          this.follower.attach((appId, lines) => {
            try {
              ws.send(JSON.stringify({ type: "app_log", app_id: appId, lines }));
            } catch {
              /* the socket went; the control plane asks again from the last line it got */
            }
          });
          this.follower.start(m.app_id, m.since);
        } else if (m.type === "unfollow") {
          this.follower.stop(m.app_id);
        } else if (m.type === "rpc") {
          void this.answer(ws, m.id, m.method, m.params);
        } else if (m.type === "cancel") {
          this.jobs.cancel(m.job_id, m.lease_id);
        }
      };
      const closed = (code: number, reason: string) => {
        clearInterval(watchdog);
        if (this.ws === ws) {
          this.ws = null;
          this.wsReady = false;
          this.failReplies();
          this.follower.stopAll();
          this.wake();
        }
        if (code === 4403) {
          this.refuse(new ApiFailure("fatal", 401, "host_deleted", "The host was deleted in the control plane"));
        } else if (!this.stopped) {
          this.log.warn("socket closed", { code, reason: reason || undefined });
        }
        resolve(opened);
      };
      ws.addEventListener("close", (e) => closed(e.code, e.reason));
      ws.addEventListener("error", () => {
        /* followed by close */
      });
    });
  }

  /** Claims over HTTP whenever the socket is not up (and always, with --no-websocket). */
  private async httpLoop() {
    const backoff = new Backoff();
    while (!this.stopped) {
      if (this.wsReady || this.wsConnecting) {
        await new Promise<void>((r) => (this.wake = r));
        continue;
      }
      try {
        // Not aborted when the socket comes up: leases in its answer are real and must not be dropped.
        const res = await this.api.call<{ leases: Lease[] }>("POST", "/agent/claim", { held: this.jobs.held(), wait: 20 }, {
          signal: this.stopping.signal,
          timeoutMs: 30_000,
        });
        backoff.reset();
        for (const lease of res.leases) this.jobs.accept(lease);
      } catch (err) {
        if (this.stopped) break;
        if (err instanceof ApiFailure && err.kind === "fatal") {
          this.refuse(err);
          break;
        }
        const delay = backoff.next(err instanceof ApiFailure ? err.retryAfterMs : 0);
        this.log.warn("claim failed; retrying", { error: (err as Error).message, in_ms: delay });
        await sleep(delay, this.stopping.signal);
      }
    }
  }

  private async heartbeat(overSocket: boolean) {
    this.lastBeatAt = Date.now();
    const facts = await collectFacts({ stateDir: this.state.root, dockerSocket: this.opts.dockerSocket });
    if (overSocket && this.ws && this.wsReady) {
      this.ws.send(JSON.stringify({ type: "heartbeat", agent_version: AGENT_VERSION, facts }));
      return;
    }
    const res = await this.api.call<{ heartbeat_interval: number }>("POST", "/agent/heartbeat", { agent_version: AGENT_VERSION, facts });
    this.heartbeatSeconds = res.heartbeat_interval;
  }

  private lastBeatAt = Date.now();

  private async heartbeatLoop() {
    while (!this.stopped) {
      // Checked often, so a new interval from the control plane takes effect at once.
      await sleep(250, this.stopping.signal);
      if (this.stopped) break;
      if (Date.now() - this.lastBeatAt < this.heartbeatSeconds * 1000) continue;
      this.lastBeatAt = Date.now();
      try {
        await this.heartbeat(true);
      } catch (err) {
        if (err instanceof ApiFailure && err.kind === "fatal") {
          this.refuse(err);
          break;
        }
        this.log.warn("heartbeat failed", { error: (err as Error).message });
      }
    }
  }
}
