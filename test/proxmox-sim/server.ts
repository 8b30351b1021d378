/**
 * startProxmoxSim(): the simulator's HTTPS front — token auth, the reference
 * spec check on every /api2/json request, routing to the node model, and the
 * fault-injection controls tests use.
 */
import { execFileSync } from "node:child_process";
import { randomBytes, randomUUID, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as guest from "./guest.ts";
import { ALL_PRIVILEGES, ApiError, type Caller, SimNode, type TemplateSpec, type Timings } from "./node.ts";
import { type Params, parseBool, Spec } from "./spec.ts";

export interface TokenSpec {
  /** user@realm!name */
  id: string;
  secret?: string;
  /** Privileges the token holds on every path, or "all" (a root token without privilege separation). */
  privileges: string[] | "all";
}

export interface SimOptions {
  port?: number;
  host?: string;
  node?: string;
  templates?: TemplateSpec[];
  /** Extra tokens beside the default all-privileged one. */
  tokens?: TokenSpec[];
  timings?: Partial<Timings>;
  /** Real pveproxy delays every refused login by 3 s; 0 here unless asked. */
  authFailureDelayMs?: number;
}

export interface Violation {
  method: string;
  path: string;
  status: number;
  message: string;
  errors?: Record<string, string>;
}

/** One API request as the simulator served it: arrival and the last byte of the answer, epoch ms. */
export interface RequestRecord {
  method: string;
  /** The path under /api2/json, without the query. */
  path: string;
  status?: number;
  startedMs: number;
  endedMs?: number;
}

/** The most requests `requests` keeps (the oldest are dropped past it). */
const REQUEST_LOG_LIMIT = 100_000;

export interface ProxmoxSim {
  url: string;
  node: string;
  port: number;
  tokenId: string;
  tokenSecret: string;
  /** Secrets of every token, by id (the extra ones from options included). */
  tokens: Record<string, string>;
  /** SHA-256 of the certificate, colon-separated upper-case hex as Proxmox shows it. */
  fingerprint: string;
  certPem: string;
  /** Requests the real API would refuse (unknown path/method, bad parameters). */
  violations: Violation[];
  /** Requests the real API has but this simulator does not model. */
  unsupported: Violation[];
  /** Every task's record, for measuring task times. */
  tasks: SimNode["tasks"];
  /** Every request served (the latest 100 000), with its times: the node's time on synchronous calls. */
  requests: RequestRecord[];
  /** Each (re)boot of a guest: when its agent starts answering. */
  guestBoots: SimNode["guestBoots"];
  /** The Docker label value of this simulator's containers (label berth.pvesim.sim). */
  simId: string;
  faults: {
    /** The next task of that type (and vmid) fails with `message`, as Proxmox words it. */
    failNextTask(f: { type?: string; vmid?: number; message: string }): void;
    /** Adds `ms` to every answer and every step of every task (a slow node); 0 to clear. */
    setSlowness(ms: number): void;
    /** The VM disappears outside the API: config and container gone. */
    vanishVm(vmid: number): Promise<void>;
    /** The API stops answering (listener closed, open connections cut). */
    goAway(): Promise<void>;
    /** ...and comes back on the same port. */
    comeBack(): Promise<void>;
  };
  stop(): Promise<void>;
}

export const DEFAULT_TEMPLATES: TemplateSpec[] = [
  { vmid: 9000, name: "berth-hello", image: "127.0.0.1:5000/berth/hello:v1", disk: "2G" },
];
export const DEFAULT_TOKEN_ID = "root@pam!berth";

/** A self-signed certificate made by the openssl CLI, for 127.0.0.1 and localhost. */
function makeCertificate(node: string): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), "pvesim-"));
  try {
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
      "-subj", `/OU=PVE Cluster Node/O=Proxmox Virtual Environment/CN=${node}.sim`,
      "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: ["ignore", "ignore", "pipe"], timeout: 30_000 });
    return { key: readFileSync(join(dir, "key.pem"), "utf8"), cert: readFileSync(join(dir, "cert.pem"), "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const BODY_LIMIT = 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > BODY_LIMIT) {
        reject(new ApiError(413, "request too large"));
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function addParam(out: Params, k: string, v: string) {
  const cur = out[k];
  out[k] = cur === undefined ? v : ([] as string[]).concat(cur, v);
}

/** Query string and (for POST/PUT) a form or JSON body, merged as pveproxy does. */
async function readParams(req: IncomingMessage, url: URL): Promise<Params> {
  const out: Params = {};
  for (const [k, v] of url.searchParams) addParam(out, k, v);
  if (req.method === "POST" || req.method === "PUT") {
    const body = await readBody(req);
    const type = req.headers["content-type"] ?? "";
    if (body && type.includes("application/json")) {
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        throw new ApiError(400, "malformed JSON request body");
      }
      for (const [k, v] of Object.entries((json ?? {}) as Record<string, unknown>)) {
        const list = Array.isArray(v) ? v : [v];
        for (const item of list) addParam(out, k, typeof item === "boolean" ? (item ? "1" : "0") : String(item));
        if (Array.isArray(v) && v.length === 1) out[k] = [String(v[0])];
      }
    } else if (body) {
      for (const [k, v] of new URLSearchParams(body)) addParam(out, k, v);
    }
  }
  return out;
}

/** HTTP reason phrases carry Proxmox's message; they must stay one printable line. */
const reason = (m: string) => m.replace(/[^\x20-\x7e]/g, " ").trim().slice(0, 500);

export async function startProxmoxSim(opts: SimOptions = {}): Promise<ProxmoxSim> {
  const host = opts.host ?? "127.0.0.1";
  const nodeName = opts.node ?? "pve";
  const spec = new Spec();
  const simId = randomBytes(4).toString("hex");
  const timings: Timings = { cloneMs: 1500, agentBootMs: 500, taskMs: 200, ...opts.timings };
  let slowness = 0;
  const node = new SimNode(nodeName, simId, timings, () => slowness, opts.templates ?? DEFAULT_TEMPLATES);
  const tokens = new Map<string, { secret: string; privileges: Set<string> | "all" }>();
  tokens.set(DEFAULT_TOKEN_ID, { secret: randomUUID(), privileges: "all" });
  for (const t of opts.tokens ?? []) tokens.set(t.id, { secret: t.secret ?? randomUUID(), privileges: t.privileges === "all" ? "all" : new Set(t.privileges) });
  const violations: Violation[] = [];
  const unsupported: Violation[] = [];
  const requests: RequestRecord[] = [];
  const { key, cert } = makeCertificate(nodeName);
  const fingerprint = new X509Certificate(cert).fingerprint256;

  const send = (res: ServerResponse, status: number, message: string, body: unknown) => {
    const text = body === undefined ? "" : JSON.stringify(body);
    res.writeHead(status, reason(message), { "content-type": "application/json;charset=UTF-8", "content-length": Buffer.byteLength(text), "cache-control": "max-age=0", pragma: "no-cache" });
    res.end(text);
  };

  function authenticate(req: IncomingMessage): Caller {
    const header = req.headers.authorization ?? "";
    // Exactly PVEAPIToken=USER@REALM!TOKENID=SECRET: a driver that sends another spelling fails here too.
    const m = /^PVEAPIToken=([^@!\s=]+@[^!\s=]+![^=\s]+)=(\S+)$/.exec(header);
    if (!header) throw new ApiError(401, "No ticket");
    const tok = m ? tokens.get(m[1] as string) : undefined;
    if (!m || !tok || tok.secret !== m[2]) throw new ApiError(401, "invalid token value!");
    const privs = tok.privileges;
    return { user: m[1] as string, can: (_path, priv) => privs === "all" || privs.has(priv), privileges: privs === "all" ? ALL_PRIVILEGES : [...privs].sort() };
  }

  async function route(method: string, template: string, p: Params, caller: Caller): Promise<unknown> {
    const vmid = Number(p.vmid);
    if (p.node !== undefined) node.checkNode(String(p.node));
    switch (`${method} ${template}`) {
      case "GET /version":
        return node.version();
      case "GET /nodes":
        return node.nodes();
      case "GET /nodes/{node}/status":
        SimNode.require(caller, `/nodes/${nodeName}`, "Sys.Audit");
        return node.nodeStatus();
      case "GET /access/permissions": {
        // The caller's own effective permissions, as "path" => {privilege => propagate}. Privileges
        // are flat here, so the tree is the root alone (or the one path asked for).
        if (p.userid !== undefined && String(p.userid) !== caller.user) SimNode.require(caller, "/access", "Sys.Audit");
        if (!caller.privileges.length) return {};
        return { [String(p.path ?? "/")]: Object.fromEntries(caller.privileges.map((priv) => [priv, 1])) };
      }
      case "GET /cluster/nextid":
        return node.nextid(p);
      case "GET /nodes/{node}/storage":
        return node.storageList(caller);
      case "GET /nodes/{node}/storage/{storage}/status":
        return node.storageStatus(String(p.storage), caller);
      case "GET /nodes/{node}/qemu":
        return node.list(caller);
      case "POST /nodes/{node}/qemu/{vmid}/clone":
        return node.clone(p, caller);
      case "GET /nodes/{node}/qemu/{vmid}/config":
        SimNode.require(caller, `/vms/${vmid}`, "VM.Audit");
        return node.getConfig(vmid);
      case "POST /nodes/{node}/qemu/{vmid}/config":
        return node.updateConfig(p, caller, true);
      case "PUT /nodes/{node}/qemu/{vmid}/config":
        return node.updateConfig(p, caller, false);
      case "PUT /nodes/{node}/qemu/{vmid}/resize":
        return node.resize(p, caller);
      case "GET /nodes/{node}/qemu/{vmid}/status/current":
        SimNode.require(caller, `/vms/${vmid}`, "VM.Audit");
        return node.current(vmid);
      case "POST /nodes/{node}/qemu/{vmid}/status/start":
      case "POST /nodes/{node}/qemu/{vmid}/status/stop":
      case "POST /nodes/{node}/qemu/{vmid}/status/shutdown":
      case "POST /nodes/{node}/qemu/{vmid}/status/reboot":
      case "POST /nodes/{node}/qemu/{vmid}/status/reset":
        return node.power(template.split("/").pop() as "start", p, caller);
      case "DELETE /nodes/{node}/qemu/{vmid}":
        return node.destroy(p, caller);
      case "POST /nodes/{node}/qemu/{vmid}/agent/ping":
      case "GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces":
      case "POST /nodes/{node}/qemu/{vmid}/agent/exec":
      case "GET /nodes/{node}/qemu/{vmid}/agent/exec-status":
      case "POST /nodes/{node}/qemu/{vmid}/agent/set-user-password":
      case "POST /nodes/{node}/qemu/{vmid}/agent/file-write":
        return node.agent(template.split("/").pop() as string, p, caller);
      case "GET /nodes/{node}/tasks": {
        // Newest first; finished tasks carry their end status in `status`, as the archive lists them.
        const source = String(p.source ?? "archive");
        const list = [...node.tasks.byUpid.values()].reverse().filter((t) =>
          (t.user === caller.user || caller.can(`/nodes/${nodeName}`, "Sys.Audit")) &&
          (source === "all" || (source === "active") === (t.exitstatus === undefined)) &&
          (p.vmid === undefined || t.id === String(p.vmid)) &&
          (p.typefilter === undefined || t.type === String(p.typefilter)) &&
          (!parseBool(p.errors) || (t.exitstatus !== undefined && t.exitstatus !== "OK")));
        const start = Number(p.start ?? 0);
        return list.slice(start, start + Number(p.limit ?? 50)).map((t) => {
          const { status: _running, exitstatus, ...rest } = node.tasks.status(t) as Record<string, unknown>;
          return { ...rest, ...(exitstatus !== undefined ? { status: exitstatus } : {}) };
        });
      }
      case "GET /nodes/{node}/tasks/{upid}/status":
      case "GET /nodes/{node}/tasks/{upid}/log": {
        const upid = String(p.upid);
        if (!/^UPID:[^:]+:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:[^:]+:[^:]*:[^:]+:$/.test(upid)) throw new ApiError(400, "unable to parse worker upid");
        const task = node.tasks.byUpid.get(upid);
        if (!task) throw new ApiError(500, `task '${upid}' does not exist`);
        if (task.user !== caller.user) SimNode.require(caller, `/nodes/${nodeName}`, "Sys.Audit");
        if (template.endsWith("/status")) return node.tasks.status(task);
        const start = Number(p.start ?? 0);
        const limit = Number(p.limit ?? 50);
        const lines = task.log.slice(start, start + limit).map((t, i) => ({ n: start + i + 1, t }));
        // As PVE::Tools::dump_logfile: an empty range answers one made-up line (the web UI's grid needs a row).
        if (!lines.length) return { lines: [{ n: task.log.length + 1, t: "no content" }], total: task.log.length + 1 };
        return { lines, total: task.log.length };
      }
    }
    return undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? "/", "https://sim");
    const method = req.method ?? "GET";
    if (slowness) await new Promise((r) => setTimeout(r, slowness));
    if (!url.pathname.startsWith("/api2/json/")) {
      send(res, 501, `Unsupported format or path '${url.pathname}' (the simulator serves /api2/json only)`, { data: null });
      return;
    }
    const rel = `/${url.pathname.slice("/api2/json/".length)}`.replace(/\/+$/, "") || "/";
    let caller: Caller;
    try {
      caller = authenticate(req);
    } catch (e) {
      const err = e as ApiError;
      if (opts.authFailureDelayMs) await new Promise((r) => setTimeout(r, opts.authFailureDelayMs));
      send(res, err.status, err.message, undefined);
      return;
    }
    const found = spec.find(method, rel);
    if (!found) {
      const message = `Method '${method} ${rel}' not implemented`;
      violations.push({ method, path: rel, status: 501, message });
      send(res, 501, message, { data: null });
      return;
    }
    let params: Params;
    try {
      params = { ...(await readParams(req, url)) };
    } catch (e) {
      const err = e as ApiError;
      violations.push({ method, path: rel, status: err.status, message: err.message });
      send(res, err.status, err.message, { data: null });
      return;
    }
    // Path parameters join the others; the query cannot smuggle a second value for them.
    for (const [k, v] of Object.entries(found.pathParams)) params[k] = v;
    const errors = spec.check(found.op, params);
    if (Object.keys(errors).length) {
      violations.push({ method, path: rel, status: 400, message: "Parameter verification failed.", errors });
      send(res, 400, "Parameter verification failed.", { data: null, errors });
      return;
    }
    try {
      const data = await route(method, found.op.template, params, caller);
      if (data === undefined) {
        const message = `Method '${method} ${found.op.template}' is in the API but not modelled by the Proxmox VE simulator`;
        unsupported.push({ method, path: rel, status: 501, message });
        send(res, 501, message, { data: null });
        return;
      }
      // The task log is the one call whose answer carries a total beside data.
      if (data && typeof data === "object" && "lines" in data && "total" in data) send(res, 200, "OK", { data: (data as { lines: unknown }).lines, total: (data as { total: number }).total });
      else send(res, 200, "OK", { data });
    } catch (e) {
      if (e instanceof ApiError) {
        if (e.status === 400) violations.push({ method, path: rel, status: 400, message: e.message, errors: e.errors });
        send(res, e.status, e.message, { data: null, ...(e.errors ? { errors: e.errors } : {}) });
      } else {
        send(res, 500, (e as Error).message, { data: null });
      }
    }
  }

  const sockets = new Set<Socket>();
  let server: Server = createServer({ key, cert });
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server = createServer({ key, cert }, (req, res) => {
        const rec: RequestRecord = { method: req.method ?? "GET", path: new URL(req.url ?? "/", "https://sim").pathname.replace(/^\/api2\/json/, ""), startedMs: Date.now() };
        if (requests.push(rec) > REQUEST_LOG_LIMIT) requests.splice(0, requests.length - REQUEST_LOG_LIMIT);
        res.once("finish", () => {
          rec.endedMs = Date.now();
          rec.status = res.statusCode;
        });
        handle(req, res).catch((e: Error) => {
          if (!res.headersSent) send(res, 500, e.message, { data: null });
        });
      });
      server.on("connection", (s: Socket) => {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
      });
      server.once("error", reject);
      server.listen(port, host, () => {
        const addr = server.address();
        resolve(typeof addr === "object" && addr ? addr.port : port);
      });
    });
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });

  const port = await listen(opts.port ?? 8006);
  const url = `https://${host}:${port}`;
  const secret = tokens.get(DEFAULT_TOKEN_ID)?.secret as string;
  let up = true;

  return {
    url, node: nodeName, port, tokenId: DEFAULT_TOKEN_ID, tokenSecret: secret, fingerprint, certPem: cert, simId,
    tokens: Object.fromEntries([...tokens].map(([id, t]) => [id, t.secret])),
    violations, unsupported, tasks: node.tasks, requests, guestBoots: node.guestBoots,
    faults: {
      failNextTask: (f) => node.tasks.pendingFailures.push({ type: f.type, id: f.vmid === undefined ? undefined : String(f.vmid), message: f.message }),
      setSlowness: (ms) => {
        slowness = ms;
      },
      vanishVm: (vmid) => node.vanish(vmid),
      goAway: async () => {
        if (up) await close();
        up = false;
      },
      comeBack: async () => {
        if (!up) await listen(port);
        up = true;
      },
    },
    async stop() {
      if (up) await close();
      up = false;
      await node.tasks.drain();
      const ids = (await guest.docker(["ps", "-aq", "--filter", `label=${guest.LABEL}.sim=${simId}`], { timeoutMs: 15_000 })).stdout.split("\n").filter(Boolean);
      if (ids.length) await guest.docker(["rm", "-f", "-v", ...ids], { timeoutMs: 60_000 });
    },
  };
}
