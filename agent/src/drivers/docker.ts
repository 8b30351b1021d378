/**
 * The Docker Engine API over its unix socket, as one client for everything
 * the agent does with Docker. Each concern is a file in docker/: containers,
 * images, builds, logs, stats, events and exec (interactive, with a TTY, for
 * terminals), over one request layer (docker/api.ts) that negotiates the API
 * version once and says failures in dockerd's own words.
 *
 * Not dockerode: it would serve the hijacked exec stream, but it brings gRPC,
 * protobuf, tar and ssh2 (with an optional native build) for the dozen
 * endpoints used here, and every call would still need the wrapping this
 * client is made of (label filters, secrets kept out of errors, readable pull
 * failures, timestamped log lines, stats as `docker stats` computes them).
 * The hijack itself is one upgrade request on node:http (docker/api.ts).
 */
import type { Readable } from "node:stream";
import { DockerApi, type DockerInfoSummary } from "./docker/api.ts";
import {
  type ContainerInfo,
  type ContainerSpec,
  type ContainerSummary,
  cloneContainer,
  createContainer,
  inspectContainer,
  listContainers,
  removeContainer,
  restartContainer,
  startContainer,
  stopContainer,
  updateContainer,
} from "./docker/containers.ts";
import { type BuildOptions, buildImage } from "./docker/build.ts";
import { type ContainerEvent, containerEvents } from "./docker/events.ts";
import { type ExecOptions, type ExecSession, startExec } from "./docker/exec.ts";
import { imageExists, imageTags, loadImage, type PullProgress, pullImage, type RegistryAuth, removeImage, tagImage } from "./docker/images.ts";
import { containerLogs, type LogLine, type LogOptions } from "./docker/logs.ts";
import { type ContainerStats, containerStats } from "./docker/stats.ts";
import { ensureVolume, type VolumeUsage, volumeUsage } from "./docker/volumes.ts";

export { DockerError, isNotFound } from "./docker/api.ts";
export { splitImage } from "./docker/images.ts";
export type { BuildOptions, ContainerEvent, ContainerInfo, ContainerSpec, ContainerStats, ContainerSummary, DockerInfoSummary, ExecOptions, ExecSession, LogLine, LogOptions, PullProgress, RegistryAuth, VolumeUsage };

export class DockerEngine {
  readonly socketPath: string;
  private readonly api: DockerApi;

  constructor(socketPath = "/var/run/docker.sock", opts: { timeoutMs?: number } = {}) {
    this.socketPath = socketPath;
    this.api = new DockerApi(socketPath, opts.timeoutMs ?? 30_000);
  }

  ping() {
    return this.api.ping();
  }

  info() {
    return this.api.info();
  }

  /** The API version spoken: the daemon's, capped at the newest this client knows. */
  apiVersion() {
    return this.api.apiVersion();
  }

  serverVersion(timeoutMs?: number) {
    return this.api.serverVersion(timeoutMs);
  }

  /** Pulls `name`, `name:tag` or `name@digest` (no tag means `latest`); a registry's refusal is a readable DockerError. */
  pull(image: string, auth?: RegistryAuth | null, opts?: { signal?: AbortSignal; onProgress?: (p: PullProgress) => void }) {
    return pullImage(this.api, image, auth, opts);
  }

  /** Loads a `docker save` tarball (streamed); answers the references (or ids) it loaded. */
  load(tarball: Readable, opts?: { signal?: AbortSignal }) {
    return loadImage(this.api, tarball, opts);
  }

  /** Builds the image a tar stream of its context describes (POST /build), tagged `opts.tag`; answers its id. */
  build(context: Readable, opts: BuildOptions) {
    return buildImage(this.api, context, opts);
  }

  imageTags(reference: string) {
    return imageTags(this.api, reference);
  }

  tag(source: string, target: string) {
    return tagImage(this.api, source, target);
  }

  imageExists(image: string) {
    return imageExists(this.api, image);
  }

  removeImage(image: string, opts?: { force?: boolean }) {
    return removeImage(this.api, image, opts);
  }

  create(spec: ContainerSpec) {
    return createContainer(this.api, spec);
  }

  /** A copy of container `id` under `name`, with `labels` added: another replica of the same version. */
  clone(id: string, name: string, labels: Record<string, string>) {
    return cloneContainer(this.api, id, name, labels);
  }

  start(id: string) {
    return startContainer(this.api, id);
  }

  stop(id: string, timeoutSeconds?: number) {
    return stopContainer(this.api, id, timeoutSeconds);
  }

  restart(id: string, timeoutSeconds?: number) {
    return restartContainer(this.api, id, timeoutSeconds);
  }

  remove(id: string, opts?: { force?: boolean }) {
    return removeContainer(this.api, id, opts);
  }

  inspect(id: string) {
    return inspectContainer(this.api, id);
  }

  update(id: string, limits: { cpuLimit: number; memoryLimitMb: number }) {
    return updateContainer(this.api, id, limits);
  }

  list(labelFilter?: Record<string, string>) {
    return listContainers(this.api, labelFilter);
  }

  /** Makes a named volume unless it exists (then it is used as it is, data and all). */
  ensureVolume(name: string, labels: Record<string, string>) {
    return ensureVolume(this.api, name, labels);
  }

  /** Named volumes with these labels, and the bytes each holds. */
  volumes(labelFilter: Record<string, string>) {
    return volumeUsage(this.api, labelFilter);
  }

  /** Log lines with their time and stream. With `follow`, an async iterable that ends when the container stops or `signal` aborts. */
  logs(id: string, opts: LogOptions & { follow: true }): AsyncIterable<LogLine>;
  logs(id: string, opts?: LogOptions & { follow?: false }): Promise<LogLine[]>;
  logs(id: string, opts: LogOptions = {}): Promise<LogLine[]> | AsyncIterable<LogLine> {
    const lines = containerLogs(this.api, id, opts);
    if (opts.follow) return lines;
    return (async () => {
      const out: LogLine[] = [];
      for await (const line of lines) out.push(line);
      return out;
    })();
  }

  /** One sample (takes about a second: Docker samples twice). */
  stats(id: string) {
    return containerStats(this.api, id);
  }

  /** Container events for containers with these labels, until `signal` aborts. */
  events(opts?: { labels?: Record<string, string>; since?: Date; signal?: AbortSignal }) {
    return containerEvents(this.api, opts);
  }

  /** An interactive program in a running container, with a TTY. */
  exec(id: string, opts: ExecOptions) {
    return startExec(this.api, id, opts);
  }
}
