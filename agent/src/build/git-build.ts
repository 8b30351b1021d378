/**
 * A deploy's build from git: clone the branch into a temporary directory, use its
 * Dockerfile or generate one (build/dockerfile.ts), send the tree (without `.git`) to
 * dockerd's builder as a tar stream, and hand every line the builder prints to the job's
 * log. The directory is removed whatever happens.
 */
import { mkdtemp, readFile, rm, stat, writeFile, appendFile } from "node:fs/promises";
import { readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { create as createTar } from "tar";
import type { DockerEngine } from "../drivers/docker.ts";
import { cloneBranch, treeSize } from "../drivers/git.ts";
import { detectLanguage, GENERATED_DOCKERIGNORE, generateDockerfile, markersHelp } from "./dockerfile.ts";

export interface BuildSettings {
  /** Registry the generated Dockerfiles' base images come from (`--build-base-registry`); null: Docker Hub. */
  baseRegistry: string | null;
  cloneTimeoutMs: number;
  /** The source tree (without `.git`) may hold at most this much. */
  maxContextBytes: number;
  maxContextFiles: number;
}

export const DEFAULT_BUILD_SETTINGS: BuildSettings = {
  baseRegistry: null,
  cloneTimeoutMs: 120_000,
  maxContextBytes: 512 * 1024 * 1024,
  maxContextFiles: 100_000,
};

export interface GitBuildRequest {
  repoUrl: string;
  branch: string;
  /** `repo:tag` for the image. */
  tag: string;
  /** The app's port: a generated Dockerfile listens on it. */
  port: number;
  /** A private repository's token (a linked GitHub account's), for the clone only; never logged. */
  token?: string | null;
}

const exists = (p: string) => stat(p).then(() => true, () => false);
const readText = (p: string) => readFile(p, "utf8").catch(() => null);

/** Builds `req` and answers the commit built; a failure throws with git's or the builder's own message. */
export async function buildFromGit(
  docker: DockerEngine,
  settings: BuildSettings,
  req: GitBuildRequest,
  log: (line: string) => void,
  signal?: AbortSignal,
  /** Told the commit as soon as the clone has it, so a build that fails later can still say what it built. */
  onCommit?: (sha: string) => void,
): Promise<{ commit: string; generated: string | null }> {
  const work = await mkdtemp(join(tmpdir(), "berth-build-"));
  try {
    const src = join(work, "src");
    log(`cloning ${req.repoUrl} (branch ${req.branch})${req.token ? " with the linked GitHub account" : ""}`);
    const commit = await cloneBranch(req.repoUrl, req.branch, src, { timeoutMs: settings.cloneTimeoutMs, signal, token: req.token ?? undefined });
    log(`commit ${commit}`);
    onCommit?.(commit);

    const size = await treeSize(src, { maxBytes: settings.maxContextBytes, maxFiles: settings.maxContextFiles });
    if (size.over) {
      throw new Error(`the source is too big to build: over ${Math.round(settings.maxContextBytes / (1024 * 1024))} MB or ${settings.maxContextFiles} files (without .git)`);
    }

    let generated: string | null = null;
    if (!(await exists(join(src, "Dockerfile")))) {
      const files = await readdir(src);
      const language = detectLanguage(files);
      if (!language) throw new Error(`the repository has no Dockerfile and no file that tells its language (${markersHelp()})`);
      const dockerfile = generateDockerfile(language, { files, packageJson: await readText(join(src, "package.json")), cargoToml: await readText(join(src, "Cargo.toml")) }, { port: req.port, baseRegistry: settings.baseRegistry });
      await writeFile(join(src, "Dockerfile"), dockerfile);
      // The generated Dockerfile is the builder's, not the app's: it stays out of the image.
      const ignore = join(src, ".dockerignore");
      await appendFile(ignore, `${(await exists(ignore)) ? "\n" : ""}${GENERATED_DOCKERIGNORE.join("\n")}\n`);
      generated = language;
      log(`no Dockerfile in the repository: detected a ${language} app, building with:`);
      for (const line of dockerfile.trimEnd().split("\n")) log(`  ${line}`);
    }

    log(`building ${req.tag} (${(size.bytes / (1024 * 1024)).toFixed(1)} MB in ${size.files} files)`);
    const started = Date.now();
    const tar = createTar({ cwd: src, portable: true, filter: (path) => !/^(\.\/)?\.git(\/|$)/.test(path) }, ["."]);
    const id = await docker.build(Readable.from(tar as AsyncIterable<Buffer>), { tag: req.tag, signal, onLine: log });
    log(`built ${req.tag} (${id.replace(/^sha256:/, "").slice(0, 12)}) from commit ${commit.slice(0, 12)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return { commit, generated };
  } finally {
    await rm(work, { recursive: true, force: true }).catch(() => undefined);
  }
}
