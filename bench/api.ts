/**
 * bench:api — what a user's every click pays: Berth's authenticated project list
 * (`GET /api/v1/projects`) with a session token, an org `pak_` key and a personal `dkp_`
 * key, beside a bare Worker that does one D1 read for the same list (bench/bare), both on
 * workerd under `wrangler dev` on this machine.
 *
 * Both servers run for the whole bench and the four targets take turns, round after round,
 * one at a time so each has the cores: a change in the machine's load during the run then
 * falls on every row alike instead of on whichever row ran last. Each round's ratio is taken
 * to the bare route's throughput in that same round; the table gives the medians.
 *
 *   npm run bench:api [-- --rounds 3 --seconds 4 --connections 20]
 */
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { signedUp } from "../test/node/support/client.ts";
import { type DevServer, startDevServer } from "../test/node/support/dev-server.ts";
import { cpuSeconds, loadAverage, workerdProcesses } from "./proc.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "4" },
    connections: { type: "string", default: "20" },
    warmup: { type: "string", default: "1" },
  },
});
const ROUNDS = Number(values.rounds);
const ROUNDS_WIDTH = Math.max(16, ROUNDS * 5) + 2;
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
const WARMUP = Number(values.warmup);

interface Figures {
  rps: number;
  /** CPU the Worker's workerd spent per answered request (its runtime process, not wrangler's proxy). */
  cpuMs: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

async function load(url: string, headers: Record<string, string>, seconds: number, workerd: number): Promise<Figures> {
  const cpuBefore = cpuSeconds(workerd);
  const result = await autocannon({ url, connections: CONNECTIONS, duration: seconds, headers });
  return {
    rps: result.requests.average,
    cpuMs: ((cpuSeconds(workerd) - cpuBefore) * 1000) / Math.max(1, result.requests.total),
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

async function measure(label: string, url: string, headers: Record<string, string>, workerd: number): Promise<Figures> {
  await load(url, headers, WARMUP, workerd); // compile, fill caches, let the isolate settle
  const figures = await load(url, headers, SECONDS, workerd);
  if (figures.non2xx || figures.errors) throw new Error(`${label}: ${figures.non2xx} non-2xx answers, ${figures.errors} errors`);
  return figures;
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const servers: DevServer[] = [];
try {
  const bare = await startDevServer({ config: "bench/bare/wrangler.toml", production: true });
  servers.push(bare);
  const berth = await startDevServer();
  servers.push(berth);
  const { api, token, slug } = await signedUp(berth.url);
  const pak = await api.call("POST", `/org/${slug}/api-keys`, { name: "bench", scope: "read-only" });
  const dkp = await api.call("POST", "/api-keys", { name: "bench", scope: "read-only" });
  if (pak.status !== 201 || dkp.status !== 201) throw new Error(`key creation failed: ${pak.status} ${dkp.status}`);
  const list = `${berth.url}/api/v1/projects`;
  const bareWorkerd = workerdProcesses(bare.pgid).runtime;
  const berthWorkerd = workerdProcesses(berth.pgid).runtime;
  const targets: [string, string, Record<string, string>, number][] = [
    ["bare Worker, one D1 read", `${bare.url}/api/v1/projects`, {}, bareWorkerd],
    ["Berth, session token", list, { authorization: `Bearer ${token}` }, berthWorkerd],
    ["Berth, pak_ org key", list, { authorization: `Bearer ${pak.body.key.key}` }, berthWorkerd],
    ["Berth, dkp_ personal key", list, { authorization: `Bearer ${dkp.body.key}` }, berthWorkerd],
  ];
  const loadBefore = loadAverage();

  const runs = targets.map(() => [] as Figures[]);
  const ratios = targets.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) {
    const got: Figures[] = [];
    for (const [label, url, headers, workerd] of targets) got.push(await measure(label, url, headers, workerd));
    got.forEach((f, i) => {
      runs[i]!.push(f);
      ratios[i]!.push(f.rps / got[0]!.rps);
    });
    console.log(`round ${round + 1}/${ROUNDS}: ${got.map((f) => f.rps.toFixed(0)).join(" / ")} req/s`);
  }

  console.log(`\nGET /api/v1/projects, ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s per target after ${WARMUP} s warm-up (autocannon); medians of the rounds; load average ${loadBefore} before, ${loadAverage()} after\n`);
  console.log(`${"".padEnd(28)}${"req/s".padStart(9)}${"p50 ms".padStart(9)}${"p99 ms".padStart(9)}${"÷ bare".padStart(9)}${"rounds' ÷ bare".padStart(ROUNDS_WIDTH)}${"workerd CPU ms/req".padStart(21)}${"bare ÷ this".padStart(13)}`);
  const bareCpu = median(runs[0]!.map((f) => f.cpuMs));
  targets.forEach(([label], i) => {
    const rs = runs[i]!;
    const cells = [median(rs.map((f) => f.rps)), median(rs.map((f) => f.p50)), median(rs.map((f) => f.p99))].map((v) => v.toFixed(0).padStart(9)).join("");
    const cpu = median(rs.map((f) => f.cpuMs));
    console.log(
      `${label.padEnd(28)}${cells}${median(ratios[i]!).toFixed(2).padStart(9)}${ratios[i]!.map((r) => r.toFixed(2)).join(" ").padStart(ROUNDS_WIDTH)}${cpu.toFixed(2).padStart(21)}${(bareCpu / cpu).toFixed(2).padStart(13)}`,
    );
  });
  console.log("\n(workerd CPU per request does not depend on what else the machine runs; \"bare ÷ this\" is the throughput ratio a machine with the cores to itself would show.)");
  const worst = Math.min(...ratios.slice(1).map(median));
  console.log(`\ngoal: every Berth row at least 0.50 of the bare route's throughput; worst ${worst.toFixed(2)} (${worst >= 0.5 ? "met" : "not met"})`);
} finally {
  await Promise.all(servers.map((s) => s.stop()));
}
