/**
 * Containers: create (limits, env, labels, restart policy, a port published on
 * 127.0.0.1), start, stop, restart, remove, inspect, live limit updates, list.
 * Env values are secrets: they go into the create request and nowhere else
 * (not into errors, not into logs).
 */
import { apiError, type DockerApi, DockerError, enc, labelList, short } from "./api.ts";

export interface ContainerSpec {
  name: string;
  image: string;
  env: Record<string, string>;
  /** A string runs under `/bin/sh -c`; an array is the exact argv; null keeps the image's CMD. */
  cmd: string | string[] | null;
  labels: Record<string, string>;
  /** The port the app listens on inside the container. */
  internalPort: number;
  /**
   * Also publish it on 127.0.0.1, on a host port Docker picks (default true). Apps are not
   * published: Caddy, on the host, reaches them at their bridge address, which spares each
   * start Docker's port proxy and its NAT rules.
   */
  publishPort?: boolean;
  /** Cores (0.5 = half a core); 0 or less means no limit. */
  cpuLimit: number;
  /** MiB of memory, swap included (Memory = MemorySwap); 0 or less means no limit. */
  memoryLimitMb: number;
  restartPolicy?: "unless-stopped" | "always" | "on-failure" | "no";
  /** Run Docker's init as PID 1 so that `stop` is prompt and zombies are reaped (default true). */
  init?: boolean;
  /** Rotate the json-file log at this size (default "10m", 3 files); null leaves the daemon's log driver. */
  logMaxSize?: string | null;
  /** Named volumes to mount (they must exist: `ensureVolume` first). */
  volumes?: { name: string; target: string }[];
  /**
   * In the host's PID namespace with these capabilities, unconfined by seccomp and AppArmor: only
   * for the host-shell helper (terminal.ts), which is root on the host by design. Capabilities
   * rather than `Privileged`, which asks for every one and fails where the agent's own bounding
   * set lacks some (as in sandboxes).
   */
  hostAccess?: { capAdd: string[]; autoRemove: boolean };
}

export interface ContainerInfo {
  id: string;
  name: string;
  image: string;
  state: {
    status: string;
    running: boolean;
    exitCode: number;
    oomKilled: boolean;
    error: string;
    startedAt: string | null;
    finishedAt: string | null;
    restartCount: number;
  };
  /** The host port published for the first exposed port (127.0.0.1); null when not running or not published. */
  hostPort: number | null;
  /** The container's IP address on its (first) network, reachable from the host; null when not running. */
  address: string | null;
  /** The first TCP port the container exposes (an app's internal port); null when none. */
  exposedPort: number | null;
  labels: Record<string, string>;
  /** Bytes; 0 = no limit. */
  memory: number;
  memorySwap: number;
  nanoCpus: number;
}

export interface ContainerSummary {
  id: string;
  names: string[];
  image: string;
  labels: Record<string, string>;
  /** created, running, paused, restarting, removing, exited, dead */
  state: string;
  /** Human text such as "Up 2 minutes". */
  status: string;
  created: string;
}

/** Creates the container and returns its id. The image must be there (`pull` first). */
export async function createContainer(api: DockerApi, spec: ContainerSpec): Promise<string> {
  for (const key of Object.keys(spec.env)) {
    if (!key || key.includes("=") || key.includes("\0")) throw new DockerError(400, `invalid env var name ${JSON.stringify(key.slice(0, 100))}`);
  }
  const port = `${spec.internalPort}/tcp`;
  const memory = spec.memoryLimitMb > 0 ? Math.round(spec.memoryLimitMb * 1024 * 1024) : 0;
  const logMaxSize = spec.logMaxSize === undefined ? "10m" : spec.logMaxSize;
  const body = {
    Image: spec.image,
    Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    ...(spec.cmd === null ? {} : { Cmd: typeof spec.cmd === "string" ? ["/bin/sh", "-c", spec.cmd] : spec.cmd }),
    Labels: spec.labels,
    ExposedPorts: { [port]: {} },
    HostConfig: {
      ...(spec.publishPort === false ? {} : { PortBindings: { [port]: [{ HostIp: "127.0.0.1", HostPort: "" }] } }),
      NanoCpus: spec.cpuLimit > 0 ? Math.round(spec.cpuLimit * 1e9) : 0,
      Memory: memory,
      MemorySwap: memory > 0 ? memory : 0,
      RestartPolicy: { Name: spec.restartPolicy ?? "unless-stopped" },
      Init: spec.init ?? true,
      ...(spec.hostAccess ? { PidMode: "host", CapAdd: spec.hostAccess.capAdd, SecurityOpt: ["seccomp=unconfined", "apparmor=unconfined"], AutoRemove: spec.hostAccess.autoRemove } : {}),
      ...(spec.volumes?.length ? { Mounts: spec.volumes.map((v) => ({ Type: "volume", Source: v.name, Target: v.target })) } : {}),
      ...(logMaxSize ? { LogConfig: { Type: "json-file", Config: { "max-size": logMaxSize, "max-file": "3" } } } : {}),
    },
  };
  const res = await api.call("POST", "/containers/create", { query: { name: spec.name }, body });
  if (res.status !== 201) throw apiError(`create container ${spec.name}`, res.status, redact(res.text, Object.values(spec.env)));
  return (res.json as { Id: string }).Id;
}

export async function startContainer(api: DockerApi, id: string): Promise<void> {
  const res = await api.call("POST", `/containers/${enc(id)}/start`);
  if (res.status !== 204 && res.status !== 304) throw apiError(`start ${short(id)}`, res.status, res.text);
}

/** SIGTERM, then SIGKILL after `timeoutSeconds`. A stopped container is fine. */
export async function stopContainer(api: DockerApi, id: string, timeoutSeconds = 10): Promise<void> {
  const res = await api.call("POST", `/containers/${enc(id)}/stop`, { query: { t: timeoutSeconds }, timeoutMs: (timeoutSeconds + 30) * 1000 });
  if (res.status !== 204 && res.status !== 304) throw apiError(`stop ${short(id)}`, res.status, res.text);
}

export async function restartContainer(api: DockerApi, id: string, timeoutSeconds = 10): Promise<void> {
  const res = await api.call("POST", `/containers/${enc(id)}/restart`, { query: { t: timeoutSeconds }, timeoutMs: (timeoutSeconds + 30) * 1000 });
  if (res.status !== 204) throw apiError(`restart ${short(id)}`, res.status, res.text);
}

/** Removes the container (and its anonymous volumes). False when it was already gone. */
export async function removeContainer(api: DockerApi, id: string, opts: { force?: boolean } = {}): Promise<boolean> {
  const res = await api.call("DELETE", `/containers/${enc(id)}`, { query: { force: opts.force ?? false, v: true }, timeoutMs: 60_000 });
  if (res.status === 404) return false;
  if (res.status === 409 && /already in progress/i.test(res.text)) return true;
  if (res.status !== 204) throw apiError(`remove ${short(id)}`, res.status, res.text);
  return true;
}

/** The container, or null when there is none by that id or name. */
export async function inspectContainer(api: DockerApi, id: string): Promise<ContainerInfo | null> {
  const res = await api.call("GET", `/containers/${enc(id)}/json`);
  if (res.status === 404) return null;
  if (res.status !== 200) throw apiError(`inspect ${short(id)}`, res.status, res.text);
  const c = res.json as any;
  const hc = c.HostConfig ?? {};
  const st = c.State ?? {};
  return {
    id: c.Id,
    name: String(c.Name ?? "").replace(/^\//, ""),
    image: c.Config?.Image ?? "",
    state: {
      status: st.Status ?? "unknown",
      running: Boolean(st.Running),
      exitCode: Number(st.ExitCode ?? 0),
      oomKilled: Boolean(st.OOMKilled),
      error: st.Error ?? "",
      startedAt: zeroTime(st.StartedAt),
      finishedAt: zeroTime(st.FinishedAt),
      restartCount: Number(c.RestartCount ?? 0),
    },
    hostPort: publishedPort(c.NetworkSettings?.Ports),
    address: networkAddress(c.NetworkSettings),
    exposedPort: Number(Object.keys(c.Config?.ExposedPorts ?? {}).find((k) => k.endsWith("/tcp"))?.split("/")[0]) || null,
    labels: c.Config?.Labels ?? {},
    memory: Number(hc.Memory ?? 0),
    memorySwap: Number(hc.MemorySwap ?? 0),
    nanoCpus: Number(hc.NanoCpus ?? 0),
  };
}

/** New CPU and memory limits on the live container (no restart). A limit of 0 or less leaves that one as it is (Docker cannot lift a limit live). */
export async function updateContainer(api: DockerApi, id: string, limits: { cpuLimit: number; memoryLimitMb: number }): Promise<void> {
  const body: Record<string, number> = {};
  if (limits.cpuLimit > 0) body.NanoCpus = Math.round(limits.cpuLimit * 1e9);
  if (limits.memoryLimitMb > 0) body.Memory = body.MemorySwap = Math.round(limits.memoryLimitMb * 1024 * 1024);
  const res = await api.call("POST", `/containers/${enc(id)}/update`, { body });
  if (res.status !== 200) throw apiError(`update ${short(id)}`, res.status, res.text);
}

/** Containers (running or not) carrying all these labels. */
export async function listContainers(api: DockerApi, labelFilter: Record<string, string> = {}): Promise<ContainerSummary[]> {
  const filters = JSON.stringify({ label: labelList(labelFilter) });
  const rows = (await api.json("GET", "/containers/json", { all: 1, filters })) as any[];
  return rows.map((c) => ({
    id: c.Id,
    names: (c.Names ?? []).map((n: string) => n.replace(/^\//, "")),
    image: c.Image ?? "",
    labels: c.Labels ?? {},
    state: c.State ?? "",
    status: c.Status ?? "",
    created: new Date(Number(c.Created ?? 0) * 1000).toISOString(),
  }));
}

function zeroTime(t: unknown): string | null {
  return typeof t === "string" && t && !t.startsWith("0001-") ? t : null;
}

function publishedPort(ports: Record<string, { HostIp: string; HostPort: string }[] | null> | null | undefined): number | null {
  if (!ports) return null;
  for (const bindings of Object.values(ports)) {
    if (!bindings?.length) continue;
    const b = bindings.find((x) => x.HostIp === "127.0.0.1") ?? bindings[0]!;
    const port = Number(b.HostPort);
    if (port > 0) return port;
  }
  return null;
}

function networkAddress(settings: { IPAddress?: string; Networks?: Record<string, { IPAddress?: string }> } | null | undefined): string | null {
  if (settings?.IPAddress) return settings.IPAddress;
  for (const net of Object.values(settings?.Networks ?? {})) if (net?.IPAddress) return net.IPAddress;
  return null;
}

/**
 * Creates a copy of container `id` (same image, command, env, labels, limits, mounts, restart
 * policy) under `name`, with `labels` added over its own: another replica of the same version.
 */
export async function cloneContainer(api: DockerApi, id: string, name: string, labels: Record<string, string>): Promise<string> {
  const res = await api.call("GET", `/containers/${enc(id)}/json`);
  if (res.status !== 200) throw apiError(`inspect ${short(id)}`, res.status, res.text);
  const c = res.json as { Config?: { Image?: string; Env?: string[]; Cmd?: unknown; Entrypoint?: unknown; WorkingDir?: string; User?: string; Labels?: Record<string, string>; ExposedPorts?: unknown }; HostConfig?: unknown };
  const cfg = c.Config ?? {};
  const env = cfg.Env ?? [];
  const body = {
    Image: cfg.Image,
    Env: env,
    Cmd: cfg.Cmd,
    Entrypoint: cfg.Entrypoint,
    WorkingDir: cfg.WorkingDir,
    User: cfg.User,
    Labels: { ...(cfg.Labels ?? {}), ...labels },
    ExposedPorts: cfg.ExposedPorts,
    HostConfig: c.HostConfig,
  };
  const made = await api.call("POST", "/containers/create", { query: { name }, body });
  if (made.status !== 201) throw apiError(`create container ${name}`, made.status, redact(made.text, env.map((e) => e.slice(e.indexOf("=") + 1))));
  return (made.json as { Id: string }).Id;
}

/** Replaces any env value (3 characters or more) found in a daemon message. */
function redact(text: string, values: string[]): string {
  let out = text;
  for (const v of values.filter((x) => x.length >= 3).sort((a, b) => b.length - a.length)) out = out.split(v).join("[redacted]");
  return out;
}
