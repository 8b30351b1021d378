/**
 * Starts the real agent the way a user does (`npm run agent -- …`, here
 * `node agent/src/main.ts …` with the same Node), for node tests and benchmarks.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export interface AgentProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or the signal's name) once the process ends. */
  exited: Promise<number | string>;
  /** Waits until the output matches `pattern`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function startAgent(args: string[], env: Record<string, string> = {}): AgentProcess {
  const child = spawn(process.execPath, ["agent/src/main.ts", ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let buffer = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (buffer += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (buffer += s));
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  // Killed with this process if still running; forgotten once it ends, so a bench that restarts it many times adds no listeners.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  child.once("exit", () => process.off("exit", killOnExit));
  return {
    child,
    output: () => buffer,
    exited,
    async waitFor(pattern, timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      while (!pattern.test(buffer)) {
        if (Date.now() > end) throw new Error(`agent output never matched ${pattern}:\n${buffer}`);
        if (child.exitCode !== null) throw new Error(`agent exited (${child.exitCode}) before matching ${pattern}:\n${buffer}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async kill(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}
