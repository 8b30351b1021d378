/**
 * What the benches read about processes from /proc: CPU time, resident memory, the machine's
 * load, and which workerd processes belong to one `wrangler dev`.
 */
import { readdirSync, readFileSync } from "node:fs";

const CLK_TCK = 100; // USER_HZ on Linux

export const loadAverage = () => readFileSync("/proc/loadavg", "utf8").split(" ")[0] ?? "?";

export function procStat(pid: number): { pgrp: number; comm: string; cpuTicks: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // f[0] = state (field 3); pgrp = field 5; utime, stime = fields 14, 15.
    return { pgrp: Number(f[2]), comm, cpuTicks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null;
  }
}

export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * Our wrangler's workerd processes (by its process group; anyone else's are not ours):
 * `wrangler dev` runs two, the one that runs the Worker and its Durable Objects (it has
 * the inspector) and a proxy in front of it on the port we talk to.
 */
export function workerdProcesses(pgid: number): { runtime: number; proxy: number } {
  const pids = readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => {
      const s = procStat(pid);
      return s?.pgrp === pgid && s.comm === "workerd";
    });
  const cmdline = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      return "";
    }
  };
  const runtime = pids.filter((p) => cmdline(p).includes("--inspector-addr"));
  const proxy = pids.filter((p) => !runtime.includes(p));
  if (runtime.length !== 1 || proxy.length !== 1) throw new Error(`expected two workerd processes in wrangler's group ${pgid} (runtime with the inspector, proxy), found ${pids.join(", ") || "none"}`);
  return { runtime: runtime[0]!, proxy: proxy[0]! };
}

/** CPU time used by a process so far, in seconds (NaN once it is gone). */
export const cpuSeconds = (pid: number) => (procStat(pid)?.cpuTicks ?? NaN) / CLK_TCK;
