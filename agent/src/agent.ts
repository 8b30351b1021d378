/**
 * The agent's supervision: keeps a socket to the host's mailbox (reconnecting
 * with exponential backoff and full jitter, 1 s to 60 s, honouring
 * Retry-After), claims work over HTTP while the socket is down, beats its
 * heart, and routes what the control plane says to the jobs, the log follower,
 * the terminals and the app queries. It stops for good, with the reason, only when the
 * control plane refuses its credential.
 */
import { existsSync } from "node:fs";
import { AGENT_PROTOCOL_VERSION, INSTANCE_JOB_TYPES, type ServerMessage } from "../../src/protocol/agent.ts";
import { Backoff, sleep } from "./backoff.ts";
import type { BuildSettings } from "./build/git-build.ts";
import { CaddyAdmin } from "./drivers/caddy.ts";
import { listenerHandoff } from "./drivers/listener-handoff.ts";
import { DockerEngine } from "./drivers/docker.ts";
import { collectFacts, NODE_FACTS_GRACE_MS, type NodeFactsMemory } from "./facts.ts";
import { LogFollower } from "./follow.ts";
import { Jobs } from "./jobs/jobs.ts";
import { KeyLock } from "./jobs/key-lock.ts";
import { TaskRegistry } from "./jobs/registry.ts";
import type { Logger } from "./log.ts";
import type { StateDir } from "./state.ts";
import { type AppDrivers, appQuery, registerAppTasks } from "./tasks/apps.ts";
import { execTask } from "./tasks/exec.ts";
import { registerInstanceTasks } from "./tasks/instances.ts";
import { sshTask } from "./tasks/ssh.ts";
import { Terminals } from "./terminal.ts";
import { InstanceWatcher } from "./watch-instances.ts";
import { ProxmoxNodeLink, type ProxmoxSettings } from "./drivers/proxmox.ts";
import { ApiFailure, type ControlPlane } from "./transport/http.ts";
import type { AgentSocket } from "./transport/socket.ts";
import { Transport } from "./transport/transport.ts";
import { AppWatcher } from "./watch.ts";
import { SleepKeeper } from "./sleep.ts";

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
  /** The Proxmox VE node this agent drives, if any. */
  proxmox?: ProxmoxSettings | null;
  /** How often the node's VMs are reported. */
  instanceSweepSeconds?: number;
  /** The image of the host shell's helper container (`/ws/terminal` create_pty); it needs `nsenter`. */
  hostShellImage?: string;
  /** How git builds are made (base image registry, limits). */
  build?: BuildSettings;
  /** Seconds in one minute of `sleep_after_minutes` (60; tests shorten it); how long a request waits for a sleeping app to wake. */
  sleep?: { unitSeconds: number; wakeTimeoutMs: number };
}

export class AgentRefused extends Error {}

/** Every kind of work this agent carries out, by payload type. */
function taskRegistry(drivers: AppDrivers, proxmox: ProxmoxNodeLink | null): TaskRegistry {
  const registry = new TaskRegistry().register("host.exec", execTask).register("ssh.exec", sshTask);
  registerAppTasks(registry, drivers);
  if (proxmox) registerInstanceTasks(registry, proxmox);
  else {
    // An instance job sent to an agent started without --proxmox-url fails saying so rather than time out.
    registry.register(INSTANCE_JOB_TYPES, { run: async () => ({ status: "failed", error: "This agent drives no Proxmox node: start it with --proxmox-url and --proxmox-token-id" }) });
  }
  return registry;
}

export class Agent {
  private readonly transport: Transport;
  private readonly state: StateDir;
  private readonly log: Logger;
  private readonly opts: AgentOptions;
  private readonly drivers: AppDrivers;
  private readonly locks = new KeyLock();
  private readonly jobs: Jobs;
  private readonly follower: LogFollower;
  private readonly terminals: Terminals;
  private readonly proxmox: ProxmoxNodeLink | null;
  private proxmoxDown = false;
  private readonly nodeFacts: NodeFactsMemory = { facts: null, at: 0 };
  private heartbeatSeconds: number;
  private lastBeatAt = Date.now();
  private readonly stopping = new AbortController();
  private fatal: ApiFailure | null = null;

  constructor(api: ControlPlane, state: StateDir, log: Logger, opts: AgentOptions) {
    this.transport = new Transport(api, log);
    this.state = state;
    this.log = log;
    this.opts = opts;
    this.heartbeatSeconds = opts.heartbeatSeconds;
    this.drivers = { docker: new DockerEngine(opts.dockerSocket), caddy: new CaddyAdmin(opts.caddyAdmin, opts.ingressListen), build: opts.build };
    const exclusive = <T>(key: string, fn: () => Promise<T>) => this.locks.run(key, fn);
    this.proxmox = opts.proxmox ? new ProxmoxNodeLink(opts.proxmox) : null;
    this.jobs = new Jobs({ state, api: this.transport, log, exclusive }, taskRegistry(this.drivers, this.proxmox), (err) => this.refuse(err));
    this.follower = new LogFollower(this.drivers.docker, log, (appId, lines) => {
      // Not sent when the socket went: the control plane asks again from the last line it got.
      this.transport.send({ type: "app_log", app_id: appId, lines });
    });
    this.terminals = new Terminals(this.drivers.docker, api, log, opts.hostShellImage);
  }

  /** Runs until stopped or refused. Resolves on stop; rejects with AgentRefused. */
  async run(): Promise<void> {
    this.jobs.resumeLeftovers();
    if (existsSync(this.opts.dockerSocket)) this.prepareIngress();
    this.transport.connecting = this.opts.websocket;
    const byApp = <T>(appId: string, fn: () => Promise<T>) => this.locks.run(appId, fn);
    const sleep = new SleepKeeper(this.drivers, this.log, byApp, this.opts.sleep ?? { unitSeconds: 60, wakeTimeoutMs: 30_000 });
    const watcher = new AppWatcher(this.drivers, this.transport, this.log, byApp, this.opts.appSweepSeconds * 1000, sleep);
    const loops = [this.heartbeatLoop(), this.claimLoop(), watcher.run(this.stopping.signal), sleep.run(this.stopping.signal)];
    if (this.proxmox) loops.push(new InstanceWatcher(this.proxmox, this.transport, this.log, (this.opts.instanceSweepSeconds ?? 30) * 1000).run(this.stopping.signal));
    if (this.opts.websocket) loops.push(this.socketLoop());
    await Promise.all(loops);
    this.proxmox?.close();
    if (this.fatal) throw new AgentRefused(`${this.fatal.message} (${this.fatal.code})`);
  }

  /** A Docker host routes its apps through Caddy, whose every reload must keep the connections queued on its old socket. */
  private prepareIngress() {
    const handoff = listenerHandoff({ turnOn: true });
    if (handoff.state === "turned-on") this.log.info(handoff.detail);
    else if (handoff.state !== "on") this.log.warn(handoff.detail);
  }

  stop() {
    this.stopping.abort();
    this.terminals.stopAll();
    this.transport.close(1000, "agent stopping");
    this.transport.changed.notify();
  }

  private get stopped() {
    return this.stopping.signal.aborted;
  }

  private refuse(err: ApiFailure) {
    if (this.fatal) return;
    this.fatal = err;
    this.log.error("the control plane refused this agent; stopping", { code: err.code, reason: err.message });
    this.jobs.stopAll();
    this.stop();
  }

  /** What to do about a failed call in a loop: true when the agent was refused and the loop should end. */
  private refused(err: unknown): boolean {
    if (!(err instanceof ApiFailure) || err.kind !== "fatal") return false;
    this.refuse(err);
    return true;
  }

  // ------------------------------------------------------------ the socket

  private async socketLoop() {
    const backoff = new Backoff();
    while (!this.stopped) {
      this.transport.connecting = true;
      const { opened, retryAfterMs } = await this.connectOnce().finally(() => {
        this.transport.connecting = false;
      });
      if (this.stopped) break;
      if (opened) backoff.reset();
      const delay = backoff.next(retryAfterMs);
      this.log.info("socket closed; reconnecting", { in_ms: delay });
      await sleep(delay, this.stopping.signal);
    }
  }

  /** One socket's life, after a heartbeat over HTTP has checked the credential. */
  private async connectOnce(): Promise<{ opened: boolean; retryAfterMs: number }> {
    try {
      await this.heartbeat(true);
    } catch (err) {
      if (!this.refused(err)) this.log.warn("control plane unreachable", { error: (err as Error).message });
      return { opened: false, retryAfterMs: err instanceof ApiFailure ? err.retryAfterMs : 0 };
    }
    const closed = await this.transport.connect({
      hello: () => ({ type: "hello", agent_version: AGENT_VERSION, held: this.jobs.held() }),
      message: (msg, socket) => this.dispatch(msg, socket),
      // Three missed heartbeats and a margin.
      maxSilenceMs: () => this.heartbeatSeconds * 3000 + 5000,
    });
    this.follower.stopAll();
    if (closed.code === 4403) {
      this.refuse(new ApiFailure("fatal", 401, "host_deleted", "The host was deleted in the control plane"));
    } else if (!this.stopped) {
      this.log.warn("socket closed", { code: closed.code, reason: closed.reason || undefined });
    }
    return { opened: closed.opened, retryAfterMs: 0 };
  }

  private dispatch(m: ServerMessage, socket: AgentSocket) {
    switch (m.type) {
      case "hello":
        this.heartbeatSeconds = m.heartbeat_interval;
        if (m.protocol !== AGENT_PROTOCOL_VERSION) this.log.warn("control plane speaks another protocol version", { theirs: m.protocol, ours: AGENT_PROTOCOL_VERSION });
        this.log.info("connected", { transport: "websocket", host_id: m.host_id });
        return;
      case "lease":
        return this.jobs.accept(m.lease);
      case "cancel":
        return this.jobs.cancel(m.job_id, m.lease_id);
      case "follow":
        return this.follower.start(m.app_id, m.since, m.skip);
      case "unfollow":
        return this.follower.stop(m.app_id);
      case "terminal_open":
        return this.terminals.start(m);
      case "rpc":
        return void this.answer(socket, m.id, m.method, m.params);
    }
  }

  /** Answers a question about an app's container (recent logs, stats) on the socket that asked. */
  private async answer(socket: AgentSocket, id: string, method: "app.logs" | "app.stats" | "host.containers", params: { app_id: string; tail?: number }) {
    try {
      const result = await appQuery(this.drivers, method, params);
      socket.send({ type: "rpc_reply", id, ok: true, result });
    } catch (err) {
      // If the socket went meanwhile, the control plane times the question out.
      socket.send({ type: "rpc_reply", id, ok: false, error: (err as Error).message.slice(0, 2000) });
    }
  }

  // ------------------------------------------------------------ HTTP claims and heartbeats

  /** Claims over HTTP whenever the socket is not up (and always, with --no-websocket). */
  private async claimLoop() {
    const backoff = new Backoff();
    while (!this.stopped) {
      if (this.transport.socketUp || this.transport.connecting) {
        await this.transport.changed.wait(undefined, this.stopping.signal);
        continue;
      }
      try {
        // Not aborted when the socket comes up: leases in its answer are real and must not be dropped.
        const res = await this.transport.claim({ held: this.jobs.held(), wait: 20 }, this.stopping.signal);
        backoff.reset();
        for (const lease of res.leases) this.jobs.accept(lease);
      } catch (err) {
        if (this.stopped || this.refused(err)) break;
        const delay = backoff.next(err instanceof ApiFailure ? err.retryAfterMs : 0);
        this.log.warn("claim failed; retrying", { error: (err as Error).message, in_ms: delay });
        await sleep(delay, this.stopping.signal);
      }
    }
  }

  private async heartbeat(overHttp: boolean) {
    this.lastBeatAt = Date.now();
    let proxmoxError: Error | null = null;
    const facts = await collectFacts({
      stateDir: this.state.root,
      dockerSocket: this.opts.dockerSocket,
      proxmox: this.proxmox,
      onProxmoxError: (err) => (proxmoxError = err),
      memory: this.nodeFacts,
    });
    // Said when the node stops answering and when it is back, not at every beat.
    if (proxmoxError && !this.proxmoxDown) {
      this.log.warn(`the Proxmox node does not answer; its last facts stand for ${NODE_FACTS_GRACE_MS / 1000} s, then the host is reported without them`, {
        error: (proxmoxError as Error).message,
      });
    }
    else if (!proxmoxError && this.proxmoxDown) this.log.info("the Proxmox node answers again");
    this.proxmoxDown = proxmoxError !== null;
    const res = await this.transport.heartbeat({ agent_version: AGENT_VERSION, facts }, overHttp);
    if (res) this.heartbeatSeconds = res.heartbeat_interval;
  }

  private async heartbeatLoop() {
    while (!this.stopped) {
      // Checked often, so a new interval from the control plane takes effect at once.
      await sleep(250, this.stopping.signal);
      if (this.stopped) break;
      if (Date.now() - this.lastBeatAt < this.heartbeatSeconds * 1000) continue;
      try {
        await this.heartbeat(false);
      } catch (err) {
        if (this.refused(err)) break;
        this.log.warn("heartbeat failed", { error: (err as Error).message });
      }
    }
  }
}
