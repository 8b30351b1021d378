/**
 * `host.exec`: a shell command run detached from the agent, so that it
 * survives the agent being killed or upgraded. Its job folder holds the
 * script, its stdout and stderr, its pid and, once it ends, its exit status;
 * an agent that restarts picks the command up from there instead of running
 * it again.
 *
 * The command is claimed by the shell that runs it, not by the agent after it
 * spawned that shell: an agent killed between the spawn and its next write
 * leaves a command running that nothing in the folder names yet, and the next
 * agent would start it again. So the wrapper takes the claim itself (`mkdir`,
 * which only one process can win) before it writes its pid and runs the
 * command; a second wrapper, from an agent that found no pid, sees the claim
 * and exits without running anything, and that agent waits for the pid of the
 * one that won.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../state.ts";

export interface ExecOutcome {
  exitCode: number | null;
  /** Why it ended without an exit status of its own. */
  killed?: "timeout" | "cancelled" | "lost";
}

/** Claims the run (one wrapper wins), names its pid, runs the command and writes its exit status. */
const WRAPPER = "mkdir claimed 2>/dev/null || exit 0; echo $$ >pid.tmp; mv pid.tmp pid; sh ./command.sh >stdout 2>stderr; echo $? >exit.tmp; mv exit.tmp exit";

export class ExecProcess {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Whether a wrapper claimed the command (its pid may follow a moment later). */
  get started(): boolean {
    return existsSync(join(this.dir, "claimed")) || existsSync(join(this.dir, "pid"));
  }

  /**
   * Starts the command unless an earlier attempt already did. Safe to call again after
   * an agent died anywhere in here: the wrapper runs the command only if it wins the claim.
   */
  start(command: string) {
    if (this.started) return;
    writeFileAtomic(join(this.dir, "command.sh"), `${command}\n`);
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("BERTH_")));
    const child = spawn("/bin/sh", ["-c", WRAPPER], { cwd: this.dir, detached: true, stdio: "ignore", env });
    if (!child.pid) throw new Error("could not start /bin/sh");
    child.unref();
  }

  private get pid(): number | null {
    try {
      return Number(readFileSync(join(this.dir, "pid"), "utf8")) || null;
    } catch {
      return null;
    }
  }

  /** The outcome once the command ended, else null. */
  outcome(): ExecOutcome | null {
    const exitPath = join(this.dir, "exit");
    if (existsSync(exitPath)) {
      const text = readFileSync(exitPath, "utf8").trim();
      if (text === "timeout" || text === "cancelled" || text === "lost") return { exitCode: null, killed: text };
      return { exitCode: Number(text) };
    }
    const pid = this.pid;
    if (pid && !alive(pid)) {
      // The wrapper is gone without writing a status: it was killed from outside.
      if (existsSync(exitPath)) return this.outcome();
      writeFileAtomic(exitPath, "lost");
      return { exitCode: null, killed: "lost" };
    }
    return null;
  }

  /** Stops the command and everything it started. */
  kill(reason: "timeout" | "cancelled") {
    const pid = this.pid;
    if (pid && alive(pid)) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
    if (!existsSync(join(this.dir, "exit"))) writeFileAtomic(join(this.dir, "exit"), reason);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
