/**
 * Fetching an app's source: a shallow clone of one branch with the host's `git` (Debian's
 * `git` package). The git CLI rather than a JavaScript git (isomorphic-git): it is what
 * every host has, speaks every server's smart HTTP, and its own error messages ("Remote
 * branch x not found", "Authentication failed") are the ones users know.
 *
 * Only http(s) is spoken (GIT_ALLOW_PROTOCOL), so a URL such as `ext::sh -c …` can never
 * run a command here; no prompt is ever waited on, the user's and the system's git config
 * are not read (no credential helpers), and the clone is killed at its time limit.
 */
import { spawn } from "node:child_process";
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

export class GitError extends Error {}

export interface CloneOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /**
   * A token for a private repository (GitHub's `x-access-token` basic auth). It reaches git as an
   * `http.extraHeader` through GIT_CONFIG_* environment variables: not in the URL (git prints
   * that, and stores it in .git/config), not on the command line (other users see argv).
   */
  token?: string;
}

/** What a host's network needs from the agent's environment: its proxy and its CA certificates. */
const PASSED_THROUGH = ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO"];
function passedThrough(): Record<string, string> {
  return Object.fromEntries(PASSED_THROUGH.flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])));
}

/** Runs git with a clean environment; answers its stdout, or throws GitError with what it printed on stderr. */
function git(args: string[], opts: { cwd?: string; timeoutMs: number; signal?: AbortSignal; what: string; token?: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", args, {
      cwd: opts.cwd,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...passedThrough(),
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: "/nonexistent",
        GIT_CONFIG_NOSYSTEM: "1",
        GIT_CONFIG_GLOBAL: "/dev/null",
        GIT_TERMINAL_PROMPT: "0",
        GIT_ASKPASS: "/bin/false",
        GIT_ALLOW_PROTOCOL: "http:https",
        LC_ALL: "C",
        ...(opts.token
          ? {
              GIT_CONFIG_COUNT: "1",
              GIT_CONFIG_KEY_0: "http.extraHeader",
              GIT_CONFIG_VALUE_0: `Authorization: Basic ${Buffer.from(`x-access-token:${opts.token}`).toString("base64")}`,
            }
          : {}),
      },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      if (stdout.length < 1_000_000) stdout += d.toString("utf8");
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString("utf8")).slice(-4000);
    });
    let why: string | null = null;
    const kill = (reason: string) => {
      why = reason;
      child.kill("SIGKILL");
    };
    const timer = setTimeout(() => kill(`${opts.what} took longer than ${Math.round(opts.timeoutMs / 1000)} s`), opts.timeoutMs);
    const onAbort = () => kill(`${opts.what} cancelled`);
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    child.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new GitError(err.code === "ENOENT" ? "git is not installed on this host (Debian: apt-get install git)" : `${opts.what}: ${err.message}`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      if (why) return reject(new GitError(why));
      if (code === 0) return resolve(stdout);
      // git's own words, without its progress lines.
      const said = stderr
        .split(/\r?\n|\r/)
        .filter((l) => l.trim() && !/^(Cloning into|remote: (Counting|Compressing|Enumerating|Total))/.test(l))
        .join("\n");
      // git does not print headers, but what it says never carries the token either way.
      const safe = opts.token ? said.split(opts.token).join("***") : said;
      reject(new GitError(`${opts.what} failed: ${safe || `git exited with status ${code}`}`));
    });
  });
}

/** Shallow-clones `branch` of `url` into `dir` (which must not exist or be empty); answers the commit's sha. */
export async function cloneBranch(url: string, branch: string, dir: string, opts: CloneOptions): Promise<string> {
  const parsed = new URL(url);
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw new GitError(`only http(s) repositories can be cloned, not ${parsed.protocol}`);
  if (parsed.username || parsed.password) throw new GitError("the repository URL must not carry credentials");
  const what = `git clone of ${url} (branch ${branch})`;
  await git(["clone", "--quiet", "--depth", "1", "--single-branch", "--no-tags", "--branch", branch, "--", url, dir], { timeoutMs: opts.timeoutMs, signal: opts.signal, what, token: opts.token });
  return (await git(["rev-parse", "HEAD"], { cwd: dir, timeoutMs: 10_000, what: "git rev-parse" })).trim();
}

/** The bytes and files under `dir`, leaving out `.git`; stops counting past the limits and says so. */
export async function treeSize(dir: string, limits: { maxBytes: number; maxFiles: number }): Promise<{ bytes: number; files: number; over: boolean }> {
  let bytes = 0;
  let files = 0;
  const walk = async (path: string): Promise<boolean> => {
    for (const entry of await readdir(path, { withFileTypes: true })) {
      if (path === dir && entry.name === ".git") continue;
      const full = join(path, entry.name);
      if (entry.isDirectory()) {
        if (!(await walk(full))) return false;
        continue;
      }
      files++;
      bytes += (await lstat(full)).size;
      if (bytes > limits.maxBytes || files > limits.maxFiles) return false;
    }
    return true;
  };
  const within = await walk(dir);
  return { bytes, files, over: !within };
}
