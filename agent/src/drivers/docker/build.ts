/**
 * Image builds through the Engine API (`POST /build`, the classic builder every dockerd
 * speaks): the context goes up as a tar stream, the builder's output comes back as
 * newline-delimited JSON and is handed on line by line; a failure inside that stream is a
 * DockerError with the builder's own message.
 */
import type { Readable } from "node:stream";
import { type DockerApi, DockerError, jsonLines } from "./api.ts";

export interface BuildOptions {
  /** `repo:tag` the image is tagged as. */
  tag: string;
  /** The Dockerfile's path inside the context (default `Dockerfile`). */
  dockerfile?: string;
  signal?: AbortSignal;
  /** Each line the builder prints (steps, the commands' output, pull progress). */
  onLine?: (line: string) => void;
}

/** Builds the context `tar` streams; answers the image's id. */
export async function buildImage(api: DockerApi, context: Readable, opts: BuildOptions): Promise<string> {
  const res = await api.open("POST", "/build", {
    // rm/forcerm: intermediate containers go even when a step fails; the image is tagged only when the build succeeds.
    query: { t: opts.tag, dockerfile: opts.dockerfile ?? "Dockerfile", rm: true, forcerm: true },
    stream: context,
    headers: { "content-type": "application/x-tar" },
    signal: opts.signal,
    timeoutMs: 0,
  });
  let failure: string | null = null;
  let id: string | null = null;
  let partial = "";
  const emit = (text: string) => {
    partial += text;
    for (let nl = partial.indexOf("\n"); nl >= 0; nl = partial.indexOf("\n")) {
      const line = partial.slice(0, nl).replace(/\r$/, "");
      partial = partial.slice(nl + 1);
      if (line.trim()) opts.onLine?.(line);
    }
  };
  for await (const msg of jsonLines(res)) {
    const m = msg as { stream?: string; status?: string; id?: string; progress?: string; error?: string; errorDetail?: { message?: string }; aux?: { ID?: string } };
    if (m.error || m.errorDetail) failure = m.errorDetail?.message ?? m.error ?? "unknown error";
    else if (typeof m.stream === "string") emit(m.stream);
    // Base image pulls: one line per layer state, without the progress bars.
    else if (typeof m.status === "string" && !m.progress) emit(`${m.id ? `${m.id}: ` : ""}${m.status}\n`);
    if (m.aux?.ID) id = m.aux.ID;
  }
  if (partial.trim()) opts.onLine?.(partial.trim());
  if (opts.signal?.aborted) throw new DockerError(0, "build cancelled");
  if (failure) throw new DockerError(400, failure.trim());
  if (!id) throw new DockerError(500, "the builder ended without an image");
  return id;
}
