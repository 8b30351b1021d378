/**
 * bench:reload — requests lost to Caddy's config reloads, with the kernel's listener hand-off
 * (`net.ipv4.tcp_migrate_req`, which the agent turns on) off and on, in the same run.
 *
 * Every route switch of a deploy is a Caddy config reload, and Debian's Caddy 2.6.2 opens the
 * new config's listening socket beside the old one (SO_REUSEPORT) and then closes the old one.
 * Without the hand-off, connections the kernel had queued on the old socket are reset.
 *
 * The bench gives Caddy a server of its own ("berth-bench" on a free loopback port) with one
 * app route, and two loopback upstreams answering "v1" and "v2". Several clients request the
 * app back to back, each request on a new connection (the case a reload can hurt: a kept-alive
 * connection is already accepted), while the route is switched between the upstreams as fast as
 * Caddy takes it, through the agent's own CaddyAdmin.setRoute. The two settings take turns for
 * several rounds. It prints requests, failures by kind, and failures per 1,000 reloads.
 *
 * Needs root (it sets the sysctl, and puts back the value it found) and Caddy's admin API
 * (test/host/setup.sh). It changes a machine-wide setting while it runs: not alongside tests.
 *
 *   npm run bench:reload [-- --rounds 2 --seconds 5 --clients 8]
 */
import { readFileSync, writeFileSync } from "node:fs";
import { type Server, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { CaddyAdmin } from "../agent/src/drivers/caddy.ts";
import { TCP_MIGRATE_REQ } from "../agent/src/drivers/listener-handoff.ts";
import { loadAverage } from "./proc.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "2" },
    seconds: { type: "string", default: "5" },
    clients: { type: "string", default: "8" },
  },
});
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const CLIENTS = Number(values.clients);
const HOST = "reload-bench.localhost";
const ADMIN = process.env.BERTH_CADDY_ADMIN ?? "http://127.0.0.1:2019";

interface Tally {
  reloads: number;
  ok: number;
  failed: Record<string, number>;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

function freePort(): Promise<number> {
  const s = createServer();
  return listen(s).then((port) => new Promise((resolve) => s.close(() => resolve(port))));
}

/** One request on a new connection; the failure's kind, or null when the app answered. */
function once(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/", headers: { host: HOST }, agent: false, timeout: 5_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve(res.statusCode === 200 && /^v[12]$/.test(body) ? null : `HTTP ${res.statusCode}`));
      res.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "timeout" })));
    req.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.end();
  });
}

async function round(caddy: CaddyAdmin, port: number, upstreams: string[]): Promise<Tally> {
  const tally: Tally = { reloads: 0, ok: 0, failed: {} };
  const until = Date.now() + SECONDS * 1000;
  const client = async () => {
    while (Date.now() < until) {
      const failure = await once(port);
      if (failure === null) tally.ok++;
      else tally.failed[failure] = (tally.failed[failure] ?? 0) + 1;
    }
  };
  const switcher = async () => {
    while (Date.now() < until) {
      await caddy.setRoute("bench", HOST, upstreams[tally.reloads % 2] as string);
      tally.reloads++;
    }
  };
  await Promise.all([switcher(), ...Array.from({ length: CLIENTS }, client)]);
  return tally;
}

const sum = (t: Tally) => Object.values(t.failed).reduce((a, b) => a + b, 0);

async function main() {
  const found = readFileSync(TCP_MIGRATE_REQ, "utf8").trim();
  const set = (v: string) => writeFileSync(TCP_MIGRATE_REQ, `${v}\n`);
  const apps = ["v1", "v2"].map((v) => createServer((_req, res) => res.end(v)));
  const upstreams = (await Promise.all(apps.map(listen))).map((p) => `127.0.0.1:${p}`);
  const port = await freePort();
  const caddy = new CaddyAdmin(ADMIN, `127.0.0.1:${port}`, { serverName: "berth-bench" });
  await caddy.ensureServer();
  await caddy.setRoute("bench", HOST, upstreams[0] as string);

  const totals: Record<"0" | "1", Tally> = { "0": { reloads: 0, ok: 0, failed: {} }, "1": { reloads: 0, ok: 0, failed: {} } };
  const load0 = loadAverage();
  console.log(`bench:reload — ${ROUNDS} rounds × ${SECONDS} s per setting, ${CLIENTS} clients, a new connection per request; tcp_migrate_req was ${found}`);
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const v of ["0", "1"] as const) {
        set(v);
        const t = await round(caddy, port, upstreams);
        console.log(`  round ${r + 1}, tcp_migrate_req=${v}: ${t.reloads} reloads, ${t.ok} answered, ${sum(t)} failed ${JSON.stringify(t.failed)}`);
        const total = totals[v];
        total.reloads += t.reloads;
        total.ok += t.ok;
        for (const [k, n] of Object.entries(t.failed)) total.failed[k] = (total.failed[k] ?? 0) + n;
      }
    }
  } finally {
    set(found);
    await caddy.removeServer().catch(() => undefined);
    for (const a of apps) a.close();
  }

  console.log(`\nload ${load0} → ${loadAverage()}`);
  console.log("                              reloads   requests    failed   failed per 1,000 reloads   failed per 100,000 requests");
  for (const v of ["0", "1"] as const) {
    const t = totals[v];
    const failed = sum(t);
    const label = v === "0" ? "off (the kernel's default)" : "on (what the agent sets)";
    console.log(
      `${label.padEnd(28)} ${String(t.reloads).padStart(9)} ${String(t.ok + failed).padStart(10)} ${String(failed).padStart(9)} ${((failed / t.reloads) * 1000).toFixed(1).padStart(26)} ${((failed / (t.ok + failed)) * 100_000).toFixed(1).padStart(29)}`,
    );
  }
  const off = sum(totals["0"]) / totals["0"].reloads;
  const on = sum(totals["1"]) / totals["1"].reloads;
  console.log(`\nfailures per reload, on ÷ off: ${off === 0 ? "n/a (none with it off)" : (on / off).toFixed(4)}`);
}

await main();
