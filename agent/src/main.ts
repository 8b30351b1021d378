/**
 * berth-agent: `npm run agent -- --url <control plane> --join-token <token>`
 * the first time, `npm run agent -- --url <control plane>` after (the
 * credential is kept in the state directory), `npm run agent -- doctor` to
 * check the set-up. Exit status 2 means the control plane refused the agent
 * for good; the message says why.
 */
import { createHash } from "node:crypto";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ApiFailure, ControlPlane } from "./transport/http.ts";
import { Agent, AGENT_VERSION, AgentRefused } from "./agent.ts";
import { Backoff, sleep } from "./backoff.ts";
import { doctor } from "./doctor.ts";
import { ProxmoxNodeLink } from "./drivers/proxmox.ts";
import { PROXMOX_FLAGS, PROXMOX_USAGE, parseProxmoxOptions } from "./drivers/proxmox/settings.ts";
import { collectFacts } from "./facts.ts";
import { createLogger, type LogFormat } from "./log.ts";
import { type BuildSettings, DEFAULT_BUILD_SETTINGS } from "./build/git-build.ts";
import { StateDir } from "./state.ts";
import { DEFAULT_HOST_SHELL_IMAGE } from "./terminal.ts";

const USAGE = `usage: npm run agent -- [run|doctor] [options]

  --url <url>             control plane origin (env BERTH_URL)
  --join-token <token>    single-use token from POST /org/{slug}/hosts (env BERTH_JOIN_TOKEN)
  --state-dir <dir>       where the credential and job journal live (env BERTH_STATE_DIR, default ~/.berth-agent)
  --docker-socket <path>  Docker Engine socket (env BERTH_DOCKER_SOCKET, default /var/run/docker.sock)
  --caddy-admin <url>     Caddy's admin API (env BERTH_CADDY_ADMIN, default http://127.0.0.1:2019)
  --ingress-listen <addr> where Caddy serves the apps (env BERTH_INGRESS_LISTEN, default :80)
  --host-shell-image <image>  image of the host shell's helper container, with nsenter (env BERTH_HOST_SHELL_IMAGE, default ${DEFAULT_HOST_SHELL_IMAGE})
  --build-base-registry <registry>  where git builds' generated Dockerfiles take their base images, e.g.
                          127.0.0.1:5000/berth for 127.0.0.1:5000/berth/node:22-alpine (env BERTH_BUILD_BASE_REGISTRY,
                          default Docker Hub's names)
  --build-max-mb <n>      largest source tree a git build sends to the builder (env BERTH_BUILD_MAX_MB, default 512)
  --log-format plain|json (env BERTH_LOG_FORMAT, default plain)
  --log-level debug|info|warn|error
  --no-websocket          claim work over HTTP only
${PROXMOX_USAGE}`;

/** Git build settings from the flags; a base registry is `host[:port][/path]`, without a scheme. */
function buildSettings(baseRegistry: string | undefined, maxMb: string | undefined): BuildSettings {
  const registry = baseRegistry?.trim().replace(/\/+$/, "") || null;
  if (registry && !/^[a-z0-9.-]+(:\d+)?(\/[a-z0-9._/-]+)?$/i.test(registry)) fail("--build-base-registry is host[:port][/path], e.g. 127.0.0.1:5000/berth", 64);
  const mb = maxMb === undefined ? 512 : Number(maxMb);
  if (!Number.isInteger(mb) || mb < 1) fail("--build-max-mb is a whole number of MB", 64);
  return { ...DEFAULT_BUILD_SETTINGS, baseRegistry: registry, maxContextBytes: mb * 1024 * 1024 };
}

function fail(message: string, code = 2): never {
  process.stderr.write(`berth-agent: ${message}\n`);
  process.exit(code);
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      url: { type: "string" },
      "join-token": { type: "string" },
      "state-dir": { type: "string" },
      "docker-socket": { type: "string" },
      "caddy-admin": { type: "string" },
      "ingress-listen": { type: "string" },
      "host-shell-image": { type: "string" },
      "build-base-registry": { type: "string" },
      "build-max-mb": { type: "string" },
      "log-format": { type: "string" },
      "log-level": { type: "string" },
      "no-websocket": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
      ...PROXMOX_FLAGS,
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const command = positionals[0] ?? "run";
  if (command !== "run" && command !== "doctor") fail(`unknown command ${JSON.stringify(command)}\n${USAGE}`, 64);

  const env = process.env;
  const format = (values["log-format"] ?? env.BERTH_LOG_FORMAT ?? "plain") as LogFormat;
  if (format !== "plain" && format !== "json") fail("--log-format is plain or json", 64);
  const level = (values["log-level"] ?? env.BERTH_LOG_LEVEL ?? "info") as "debug" | "info" | "warn" | "error";
  const log = createLogger(format, level);
  const state = new StateDir(resolve(values["state-dir"] ?? env.BERTH_STATE_DIR ?? join(homedir(), ".berth-agent")));
  const dockerSocket = values["docker-socket"] ?? env.BERTH_DOCKER_SOCKET ?? "/var/run/docker.sock";
  let url = values.url ?? env.BERTH_URL ?? null;
  const joinToken = values["join-token"] ?? env.BERTH_JOIN_TOKEN ?? null;
  let proxmox: ReturnType<typeof parseProxmoxOptions> = null;
  try {
    proxmox = parseProxmoxOptions(values, env);
  } catch (err) {
    fail((err as Error).message, 64);
  }

  if (command === "doctor") {
    const checks = await doctor({ url, state, dockerSocket, proxmox });
    for (const c of checks) process.stdout.write(`${c.ok ? "ok  " : "FAIL"} ${c.name.padEnd(14)} ${c.detail}\n`);
    process.exit(checks.every((c) => c.ok) ? 0 : 1);
  }

  let identity = state.readIdentity();
  url ??= identity?.url ?? null;
  if (!url) fail("no control plane URL: pass --url or set BERTH_URL", 64);

  // A join token is exchanged once; a later start with the same token (a unit file that keeps it) reuses the credential.
  const tokenDigest = joinToken ? createHash("sha256").update(joinToken).digest("hex") : null;
  if (joinToken && (!identity || identity.url !== url || identity.join_token_sha256 !== tokenDigest)) {
    const api = new ControlPlane(url, null, AGENT_VERSION);
    const backoff = new Backoff();
    const node = proxmox ? new ProxmoxNodeLink(proxmox) : null;
    for (;;) {
      try {
        const res = await api.call<{ host_id: string; credential: string }>("POST", "/agent/join", {
          join_token: joinToken,
          agent_version: AGENT_VERSION,
          facts: await collectFacts({ stateDir: state.root, dockerSocket, proxmox: node }),
        });
        identity = { url, host_id: res.host_id, credential: res.credential, joined_at: new Date().toISOString(), join_token_sha256: tokenDigest };
        state.writeIdentity(identity);
        log.info("joined", { host_id: res.host_id, state_dir: state.root });
        node?.close();
        break;
      } catch (err) {
        if (err instanceof ApiFailure && err.kind !== "retry") fail(`could not join: ${err.message} (${err.code})`);
        const delay = backoff.next(err instanceof ApiFailure ? err.retryAfterMs : 0);
        log.warn("control plane unreachable; retrying the join", { error: (err as Error).message, in_ms: delay });
        await sleep(delay);
      }
    }
  }
  if (!identity) fail(`no credential in ${state.root}: start the agent once with --join-token <token>`, 64);

  const agent = new Agent(new ControlPlane(url, identity.credential, AGENT_VERSION), state, log, {
    websocket: !values["no-websocket"],
    dockerSocket,
    caddyAdmin: values["caddy-admin"] ?? env.BERTH_CADDY_ADMIN ?? "http://127.0.0.1:2019",
    ingressListen: values["ingress-listen"] ?? env.BERTH_INGRESS_LISTEN ?? ":80",
    heartbeatSeconds: 15,
    appSweepSeconds: Number(env.BERTH_APP_SWEEP_SECONDS ?? 30) || 30,
    proxmox,
    instanceSweepSeconds: Number(env.BERTH_INSTANCE_SWEEP_SECONDS ?? 30) || 30,
    hostShellImage: values["host-shell-image"] ?? env.BERTH_HOST_SHELL_IMAGE ?? DEFAULT_HOST_SHELL_IMAGE,
    // Test-only: seconds per "minute" of sleep_after_minutes, so a test sees an app sleep within seconds.
    sleep: { unitSeconds: Number(env.BERTH_SLEEP_UNIT_SECONDS ?? 60) || 60, wakeTimeoutMs: (Number(env.BERTH_WAKE_TIMEOUT_SECONDS ?? 30) || 30) * 1000 },
    build: buildSettings(values["build-base-registry"] ?? env.BERTH_BUILD_BASE_REGISTRY, values["build-max-mb"] ?? env.BERTH_BUILD_MAX_MB),
  });
  const stop = () => {
    log.info("stopping; running commands keep running and are picked up on the next start");
    agent.stop();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  log.info("berth-agent starting", { version: AGENT_VERSION, url, host_id: identity.host_id, transport: values["no-websocket"] ? "http" : "websocket", proxmox: proxmox ? proxmox.url : "off" });
  try {
    await agent.run();
  } catch (err) {
    if (err instanceof AgentRefused) fail(`refused by the control plane: ${err.message}`);
    throw err;
  }
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`berth-agent: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
