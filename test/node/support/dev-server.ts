/**
 * Starts the real control plane the way a user does (`npm run dev`: apply the D1
 * migrations, then `wrangler dev`), for node tests and benchmarks. The migrations are
 * applied once per set of them (see migratedState) and the result copied for each server.
 *
 * Every server gets its own temporary persist directory (D1, Durable Objects, caches),
 * a free loopback port unless one is given, and a random inspector port, so several can
 * run side by side and next to a developer's own `npm run dev`.
 *
 *   const server = await startDevServer();
 *   await fetch(`${server.url}/api/v1/system/status`);
 *   await server.stop();
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export interface DevServerOptions {
  /** Port to listen on (127.0.0.1). Default: a free one. */
  port?: number;
  /**
   * Run wrangler.toml as it deploys (production), without the development settings that
   * `npm run dev` passes; `env` is then all that is added.
   */
  production?: boolean;
  /** Another Worker's config, relative to the repository (benchmarks' baselines); default wrangler.toml. */
  config?: string;
  /** Worker secrets, as `wrangler secret put` would set them: from an env file, so wrangler shows them as hidden. */
  secrets?: Record<string, string>;
  /** Extra Worker variables, passed as `wrangler dev --var KEY:VALUE` (they override wrangler.toml's [vars]). */
  env?: Record<string, string>;
  /** How long to wait for GET /api/v1/system/status to answer 200. Default 90 s. */
  readyTimeoutMs?: number;
  /** Keep local state here (and keep it on stop), e.g. to restart the control plane over the same data. Default: a fresh temporary directory, removed on stop. */
  persistDir?: string;
}

export interface DevServer {
  /** e.g. http://127.0.0.1:41234 (no trailing slash). */
  url: string;
  port: number;
  /** wrangler's process group (wrangler, workerd, esbuild): benchmarks find their own workerd by it. */
  pgid: number;
  /** Everything wrangler wrote to stdout and stderr so far (migrations included). */
  output(): string;
  /** Kills wrangler, workerd and esbuild (the whole process group) and removes the persist directory. Idempotent. */
  stop(): Promise<void>;
}

const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const STATUS_PATH = "/api/v1/system/status";
const KILL_GRACE_MS = 5_000;

/** The wrangler CLI script (node_modules/.bin/wrangler is a symlink to it). */
function wranglerScript(): string {
  const bin = join(REPO_ROOT, "node_modules", ".bin", "wrangler");
  if (!existsSync(bin)) throw new Error(`wrangler not found at ${bin}; run npm install first`);
  return realpathSync(bin);
}

/**
 * Builds the dashboard (src/web) into src/web/dist, the Worker's static assets
 * (wrangler.toml [assets]; wrangler dev refuses to start without that directory). Without
 * `force`, only when no build is there yet.
 */
export function buildDashboard({ force = false } = {}) {
  if (!force && existsSync(join(REPO_ROOT, "src", "web", "dist", "index.html"))) return;
  const vite = realpathSync(join(REPO_ROOT, "node_modules", ".bin", "vite"));
  const res = spawnSync(process.execPath, [vite, "build", "--config", "src/web/vite.config.ts", "--logLevel", "warn"], {
    cwd: REPO_ROOT,
    // Vitest sets NODE_ENV=test, which would make Vite bundle React's development build.
    env: { ...childEnv(), NODE_ENV: "production" },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (res.status !== 0) throw new Error(`vite build of the dashboard failed (exit ${res.status}):\n${tail(`${res.stdout}${res.stderr}`)}`);
}

/**
 * What `npm run dev` passes on top of wrangler.toml (a production config) to run locally:
 * keep in step with package.json's `dev` script (test/node/dev.test.ts checks they match).
 */
export const DEVELOPMENT_VARS: Record<string, string> = { ENVIRONMENT: "development", MAIL_TRANSPORT: "outbox", BASE_DOMAIN: "localhost" };

/** A loopback port nobody is listening on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error("could not pick a free port"))));
    });
  });
}

/** The environment wrangler runs with: ours, minus colours and telemetry, never interactive. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CI: "1",
    NO_COLOR: "1",
    FORCE_COLOR: "0",
    WRANGLER_SEND_METRICS: "false",
    // Don't fetch https://workers.cloudflare.com/cf.json for `Request.cf` (up to 3 s, and a
    // warning, on a machine without internet); miniflare's placeholder is fine for tests.
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
  };
  // Vitest's own markers would only confuse tools that look for them.
  for (const key of Object.keys(env)) if (key.startsWith("VITEST")) delete env[key];
  return env;
}

// Process groups and persist directories not yet cleaned up, cleaned up if this
// process exits without calling stop().
const liveGroups = new Set<number>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const group of liveGroups) {
      try {
        process.kill(-group, "SIGKILL");
      } catch {}
    }
    for (const dir of liveDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {}
    }
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals) {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Group already gone.
  }
}

/** Whether any process of the group is still running (zombies don't count: PID 1 here may never reap them). Linux only; elsewhere false. */
function groupRunning(pgid: number): boolean {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return false;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid pgrp …; comm may contain spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === pgid && fields[0] !== "Z") return true;
    } catch {
      // Gone meanwhile.
    }
  }
  return false;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

/** The end of the output, without colour codes, for error messages. */
function tail(text: string, max = 8_000) {
  const plain = text.replace(ANSI, "");
  return plain.length > max ? `…${plain.slice(-max)}` : plain;
}

/** Runs `wrangler d1 migrations apply DB --local --persist-to <dir>` non-interactively. */
async function applyMigrations(script: string, persistDir: string, log: (s: string) => void, config: string[]): Promise<void> {
  const child = spawn(process.execPath, [script, "d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir, ...config], {
    cwd: REPO_ROOT,
    env: childEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.setEncoding("utf8").on("data", log);
  child.stderr.setEncoding("utf8").on("data", log);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (c) => resolve(c));
  });
  if (code !== 0) throw new Error(`wrangler d1 migrations apply exited with ${code}`);
}

/**
 * What the migrated state depends on: the migrations and the Worker's config (its D1
 * database id names the file). A hash of both names the shared copy.
 */
function migrationsKey(config: string | undefined): string {
  const h = createHash("sha256");
  const dir = join(REPO_ROOT, "migrations");
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) h.update(f).update(readFileSync(join(dir, f)));
  h.update(readFileSync(join(REPO_ROOT, config ?? "wrangler.toml")));
  return h.digest("hex").slice(0, 16);
}

const MIGRATED_MARK = ".berth-migrated";

/**
 * Local state with every migration applied, made once per set of migrations and config
 * and copied for each server after it: `wrangler d1 migrations apply` takes 5 to 30 s on
 * a busy 2-core machine, and the node tests start a dozen servers. Made in a directory of
 * its own and renamed into place, so a reader never sees half of one.
 */
async function migratedState(script: string, log: (s: string) => void, config: string | undefined): Promise<{ dir: string; key: string }> {
  const key = migrationsKey(config);
  const dir = join(tmpdir(), `berth-migrated-${key}`);
  if (existsSync(join(dir, MIGRATED_MARK))) return { dir, key };
  const making = mkdtempSync(join(tmpdir(), "berth-migrating-"));
  try {
    await applyMigrations(script, making, log, config ? ["--config", config] : []);
    writeFileSync(join(making, MIGRATED_MARK), key);
    renameSync(making, dir);
  } catch (err) {
    rmSync(making, { recursive: true, force: true });
    // Another process made it meanwhile: use theirs.
    if (!existsSync(join(dir, MIGRATED_MARK))) throw err;
  }
  return { dir, key };
}

/** Puts migrated state into `persistDir`: a copy of the shared one when it is empty, the migrations applied to what is there otherwise. */
async function prepareState(script: string, persistDir: string, log: (s: string) => void, config: string | undefined) {
  const { dir, key } = await migratedState(script, log, config);
  const mark = join(persistDir, MIGRATED_MARK);
  if (existsSync(mark) && readFileSync(mark, "utf8") === key) return;
  if (!existsSync(persistDir) || readdirSync(persistDir).length === 0) {
    cpSync(dir, persistDir, { recursive: true });
    log(`(migrated local state copied from ${dir})\n`);
    return;
  }
  await applyMigrations(script, persistDir, log, config ? ["--config", config] : []);
  writeFileSync(mark, key);
}

export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const script = wranglerScript();
  if (!opts.config) buildDashboard();
  const readyTimeoutMs = opts.readyTimeoutMs ?? 90_000;
  const persistDir = opts.persistDir ?? mkdtempSync(join(tmpdir(), "berth-dev-"));
  installExitHook();
  const ownDir = !opts.persistDir;
  if (ownDir) liveDirs.add(persistDir);
  let buffer = "";
  const log = (s: string) => {
    buffer += s;
  };
  const output = () => buffer;
  const cleanupDir = () => {
    if (!ownDir) return;
    try {
      rmSync(persistDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
      liveDirs.delete(persistDir);
    } catch {
      // Left for the exit hook.
    }
  };

  const configArgs = opts.config ? ["--config", opts.config] : [];
  try {
    await prepareState(script, persistDir, log, opts.config);
  } catch (err) {
    cleanupDir();
    throw new Error(`${(err as Error).message}\n--- output ---\n${tail(buffer)}`);
  }

  const env = opts.production ? (opts.env ?? {}) : { ...DEVELOPMENT_VARS, ...opts.env };
  const vars = Object.entries(env).flatMap(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`invalid variable name ${JSON.stringify(k)}`);
    return ["--var", `${k}:${v}`]; // wrangler splits on the first ':' only
  });
  if (opts.secrets) {
    const file = join(persistDir, "secrets.env");
    writeFileSync(file, Object.entries(opts.secrets).map(([k, v]) => `${k}=${JSON.stringify(v)}\n`).join(""), { mode: 0o600 });
    vars.push("--env-file", file);
  }

  // A port picked by freePort() can be taken by someone else before wrangler binds it;
  // when we chose it, try a couple of times.
  const attempts = opts.port === undefined ? 3 : 1;
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const port = opts.port ?? (await freePort());
    const attemptStart = buffer.length;
    const url = `http://127.0.0.1:${port}`;
    const args = [
      script,
      "dev",
      "--ip", "127.0.0.1",
      "--port", String(port),
      // 0 = any free port: several dev servers (and a developer's own on 9229) can coexist.
      "--inspector-port", "0",
      "--persist-to", persistDir,
      "--show-interactive-dev-session=false",
      "--log-level", "log",
      ...configArgs,
      ...vars,
    ];
    log(`\n$ wrangler ${args.slice(1).join(" ")}\n`);
    const child = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      env: childEnv(),
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // own process group: stop() takes workerd and esbuild down with it
    });
    if (child.pid !== undefined) liveGroups.add(child.pid);
    child.stdout!.setEncoding("utf8").on("data", log);
    child.stderr!.setEncoding("utf8").on("data", log);
    let spawnError: Error | undefined;
    child.once("error", (e) => (spawnError = e));

    let stopping: Promise<void> | undefined;
    const stopChild = () =>
      (stopping ??= (async () => {
        let done = child.exitCode !== null || child.signalCode !== null;
        if (!done) {
          killGroup(child, "SIGTERM");
          done = await Promise.race([exited(child).then(() => true), sleep(KILL_GRACE_MS).then(() => false)]);
        }
        // Whatever is left of the group (workerd can outlive wrangler), forcefully, and
        // wait for it to go before the persist directory is removed.
        killGroup(child, "SIGKILL");
        if (!done) await Promise.race([exited(child), sleep(2_000)]);
        for (let i = 0; i < 40 && child.pid !== undefined && groupRunning(child.pid); i++) await sleep(50);
        if (child.pid !== undefined) liveGroups.delete(child.pid);
      })());

    const deadline = Date.now() + readyTimeoutMs;
    let ready = false;
    while (Date.now() < deadline) {
      if (spawnError || child.exitCode !== null || child.signalCode !== null) break;
      try {
        // The first request compiles and boots the Worker; on a busy machine that takes seconds.
        const res = await fetch(url + STATUS_PATH, { signal: AbortSignal.timeout(Math.max(1_000, Math.min(30_000, deadline - Date.now()))) });
        const text = await res.text();
        // Make sure the answer is ours, not from another server that grabbed the port: a 200, or
        // the 503 a production config answers until it is configured.
        const ours = res.status === 200 || (res.status === 503 && text.includes('"misconfigured"'));
        if (ours && child.exitCode === null) {
          ready = true;
          break;
        }
      } catch {
        // Not listening yet.
      }
      await sleep(250);
    }

    if (ready) {
      let stopped: Promise<void> | undefined;
      return {
        url,
        port,
        pgid: child.pid!,
        output,
        stop: () =>
          (stopped ??= (async () => {
            await stopChild();
            cleanupDir();
          })()),
      };
    }

    const why = spawnError
      ? `could not spawn wrangler: ${spawnError.message}`
      : child.exitCode !== null || child.signalCode !== null
        ? `wrangler dev exited early (code ${child.exitCode}, signal ${child.signalCode})`
        : `GET ${url}${STATUS_PATH} did not answer 200 within ${Math.round(readyTimeoutMs / 1000)} s`;
    await stopChild();
    lastError = new Error(`Dev server did not come up: ${why}\n--- wrangler output ---\n${tail(buffer)}`);
    const portClash = /EADDRINUSE|address already in use/i.test(buffer.slice(attemptStart));
    if (!portClash) break;
  }
  cleanupDir();
  throw lastError ?? new Error("Dev server did not come up");
}
