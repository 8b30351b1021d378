/**
 * bench:api — what a user's every click pays: Berth's authenticated project list
 * (`GET /api/v1/projects`) with a session token, an org `pak_` key and a personal `dkp_`
 * key, beside a bare Worker that does one D1 read for the same list (bench/bare), all on
 * workerd under `wrangler dev` on this machine, one at a time so each has the cores.
 *
 * Prints requests/s and latency (p50, p99) per credential and the ratio to the bare
 * route's throughput; the goal is at least 0.5 for each.
 *
 *   npm run bench:api [-- --seconds 10 --connections 20]
 */
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { signedUp } from "../test/node/support/client.ts";
import { type DevServer, startDevServer } from "../test/node/support/dev-server.ts";

const { values } = parseArgs({
  options: { seconds: { type: "string", default: "10" }, connections: { type: "string", default: "20" }, warmup: { type: "string", default: "3" } },
});
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
const WARMUP = Number(values.warmup);

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

async function load(url: string, headers: Record<string, string>, seconds: number): Promise<Figures> {
  const result = await autocannon({ url, connections: CONNECTIONS, duration: seconds, headers });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

async function measure(label: string, url: string, headers: Record<string, string> = {}): Promise<[string, Figures]> {
  await load(url, headers, WARMUP); // compile, fill caches, let the isolate settle
  const figures = await load(url, headers, SECONDS);
  if (figures.non2xx || figures.errors) throw new Error(`${label}: ${figures.non2xx} non-2xx answers, ${figures.errors} errors`);
  return [label, figures];
}

const servers: DevServer[] = [];
try {
  const rows: [string, Figures][] = [];

  const bare = await startDevServer({ config: "bench/bare/wrangler.toml", production: true });
  servers.push(bare);
  rows.push(await measure("bare Worker, one D1 read", `${bare.url}/api/v1/projects`));
  await bare.stop();

  const berth = await startDevServer();
  servers.push(berth);
  const { api, token, slug } = await signedUp(berth.url);
  const pak = await api.call("POST", `/org/${slug}/api-keys`, { name: "bench", scope: "read-only" });
  const dkp = await api.call("POST", "/api-keys", { name: "bench", scope: "read-only" });
  if (pak.status !== 201 || dkp.status !== 201) throw new Error(`key creation failed: ${pak.status} ${dkp.status}`);
  const list = `${berth.url}/api/v1/projects`;
  rows.push(await measure("Berth, session token", list, { authorization: `Bearer ${token}` }));
  rows.push(await measure("Berth, pak_ org key", list, { authorization: `Bearer ${pak.body.key.key}` }));
  rows.push(await measure("Berth, dkp_ personal key", list, { authorization: `Bearer ${dkp.body.key}` }));

  const base = rows[0]![1].rps;
  console.log(`\nGET /api/v1/projects, ${CONNECTIONS} connections, ${SECONDS} s each after ${WARMUP} s warm-up (autocannon)\n`);
  console.log(`${"".padEnd(28)}${"req/s".padStart(9)}${"p50 ms".padStart(9)}${"p99 ms".padStart(9)}${"÷ bare".padStart(9)}`);
  for (const [label, f] of rows) {
    console.log(`${label.padEnd(28)}${f.rps.toFixed(0).padStart(9)}${f.p50.toFixed(0).padStart(9)}${f.p99.toFixed(0).padStart(9)}${(f.rps / base).toFixed(2).padStart(9)}`);
  }
  const worst = Math.min(...rows.slice(1).map(([, f]) => f.rps / base));
  console.log(`\ngoal: every Berth row at least 0.50 of the bare route's throughput; worst ${worst.toFixed(2)} (${worst >= 0.5 ? "met" : "not met"})`);
} finally {
  await Promise.all(servers.map((s) => s.stop()));
}
