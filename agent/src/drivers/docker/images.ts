/** Images: pull (with a registry's credentials), load a tarball, tag, look up, remove. */
import type { IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import { apiError, daemonMessage, type DockerApi, DockerError, jsonLines } from "./api.ts";

export interface RegistryAuth {
  username: string;
  password: string;
  /** Registry host, e.g. `ghcr.io` or `127.0.0.1:5000`. */
  serveraddress: string;
}

export interface PullProgress {
  status: string;
  id?: string;
}

/**
 * Pulls an image (`name`, `name:tag` or `name@digest`; no tag means `latest`).
 * Docker reports failures inside its progress stream; they are thrown as
 * DockerError with a readable message.
 */
export async function pullImage(api: DockerApi, image: string, auth?: RegistryAuth | null, opts: { signal?: AbortSignal; onProgress?: (p: PullProgress) => void } = {}): Promise<void> {
  const { repo, ref } = splitImage(image);
  const headers: Record<string, string> = {};
  if (auth) headers["x-registry-auth"] = encodeAuth(auth);
  let res: IncomingMessage;
  try {
    res = await api.open("POST", "/images/create", { query: { fromImage: repo, tag: ref }, headers, signal: opts.signal, timeoutMs: 300_000 });
  } catch (err) {
    if (err instanceof DockerError && err.status !== 0) throw pullError(image, err.status, err.detail || err.message);
    throw err;
  }
  let failure: string | null = null;
  for await (const msg of jsonLines(res)) {
    const m = msg as { status?: string; id?: string; error?: string; errorDetail?: { message?: string } };
    if (m.error || m.errorDetail) {
      failure = m.errorDetail?.message ?? m.error ?? "unknown error";
    } else if (m.status && opts.onProgress) {
      opts.onProgress({ status: m.status, ...(m.id ? { id: m.id } : {}) });
    }
  }
  if (failure) throw pullError(image, 0, failure);
  if (opts.signal?.aborted) throw new DockerError(0, `pull of ${image} cancelled`);
}

/**
 * Loads a tarball `docker save` wrote (gzipped or not; dockerd tells them apart) from
 * `tarball`, streamed: answers what it loaded, `name:tag` references or, for an untagged
 * image, its `sha256:` id. A tarball dockerd refuses is a DockerError with its message.
 */
export async function loadImage(api: DockerApi, tarball: Readable, opts: { signal?: AbortSignal } = {}): Promise<string[]> {
  const res = await api.open("POST", "/images/load", { query: { quiet: true }, stream: tarball, headers: { "content-type": "application/x-tar" }, signal: opts.signal, timeoutMs: 0 });
  const loaded: string[] = [];
  let failure: string | null = null;
  for await (const msg of jsonLines(res)) {
    const m = msg as { stream?: string; error?: string; errorDetail?: { message?: string } };
    if (m.error || m.errorDetail) failure = m.errorDetail?.message ?? m.error ?? "unknown error";
    const said = /^Loaded image(?: ID)?: (\S+)/.exec(m.stream?.trim() ?? "");
    if (said?.[1]) loaded.push(said[1]);
  }
  if (failure) throw new DockerError(400, `docker load refused the tarball: ${daemonMessage(failure)}`);
  if (!loaded.length) throw new DockerError(400, "docker load found no image in the tarball (is it `docker save` output?)");
  return loaded;
}

/** Tags `source` (a reference or an id) as `target` (`repo:tag`). */
export async function tagImage(api: DockerApi, source: string, target: string): Promise<void> {
  const { repo, ref } = splitImage(target);
  const res = await api.call("POST", `/images/${encImage(source)}/tag`, { query: { repo, tag: ref } });
  if (res.status !== 201 && res.status !== 200) throw apiError(`tag ${source} as ${target}`, res.status, res.text);
}

/** The `repo:tag` references of local images matching `reference` (dockerd's filter: `repo` or `repo:tag`, globs allowed). */
export async function imageTags(api: DockerApi, reference: string): Promise<string[]> {
  const res = await api.call("GET", "/images/json", { query: { filters: JSON.stringify({ reference: [reference] }) } });
  if (res.status !== 200) throw apiError("list images", res.status, res.text);
  return ((res.json as Array<{ RepoTags?: string[] | null }>) ?? []).flatMap((i) => i.RepoTags ?? []).filter((t) => t !== "<none>:<none>");
}

export async function imageExists(api: DockerApi, image: string): Promise<boolean> {
  const res = await api.call("GET", `/images/${encImage(image)}/json`);
  if (res.status === 404) return false;
  if (res.status !== 200) throw apiError("inspect image", res.status, res.text);
  return true;
}

/** Removes a local image (tag); false when there was none. `force` also untags an image in use by a container. */
export async function removeImage(api: DockerApi, image: string, opts: { force?: boolean } = {}): Promise<boolean> {
  const res = await api.call("DELETE", `/images/${encImage(image)}`, { query: { force: opts.force ?? false }, timeoutMs: 60_000 });
  if (res.status === 404) return false;
  if (res.status !== 200) throw apiError(`remove image ${image}`, res.status, res.text);
  return true;
}

/** Image references keep their slashes in the path (dockerd matches `/images/{name:.*}`). */
function encImage(image: string): string {
  return image.split("/").map(encodeURIComponent).join("/");
}

/** `name[:tag]` or `name@digest` → repository and tag/digest (default `latest`, never "all tags"). */
export function splitImage(image: string): { repo: string; ref: string } {
  const at = image.indexOf("@");
  if (at >= 0) return { repo: image.slice(0, at), ref: image.slice(at + 1) };
  const slash = image.lastIndexOf("/");
  const colon = image.lastIndexOf(":");
  if (colon > slash) return { repo: image.slice(0, colon), ref: image.slice(colon + 1) };
  return { repo: image, ref: "latest" };
}

/** X-Registry-Auth: base64url of the JSON, padding kept (older daemons need it). */
function encodeAuth(auth: RegistryAuth): string {
  const json = JSON.stringify({ username: auth.username, password: auth.password, serveraddress: auth.serveraddress });
  return Buffer.from(json, "utf8").toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
}

function pullError(image: string, status: number, message: string): DockerError {
  const m = daemonMessage(message);
  if (/manifest unknown|not found|does not exist|no such host/i.test(m) && !/unauthorized|denied/i.test(m)) {
    return new DockerError(status || 404, /no such host/i.test(m) ? `registry of image ${image} not found: ${m}` : `image ${image} not found (${m})`);
  }
  if (/unauthorized|denied|authentication required|no basic auth credentials/i.test(m)) {
    return new DockerError(status || 401, `pull of ${image} refused by the registry: credentials missing or wrong (${m})`);
  }
  return new DockerError(status || 500, `pull of ${image} failed: ${m}`);
}
