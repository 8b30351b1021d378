/**
 * Interactive exec in a running container, for terminals: a program started
 * with a TTY, its input written and its output read over the connection
 * dockerd hands over (hijacked), its window resized as the user's changes.
 * With a TTY there is one raw stream each way (no stdout/stderr frames).
 */
import type { Duplex } from "node:stream";
import { apiError, type DockerApi, enc, short } from "./api.ts";

export interface ExecOptions {
  cmd: string[];
  env?: Record<string, string>;
  workingDir?: string;
  user?: string;
  /** The window at the start; `resize` changes it later. */
  cols?: number;
  rows?: number;
}

export class ExecSession {
  readonly id: string;
  /** The program's terminal: write to it for its input, read from it for its output. It ends when the program does. */
  readonly stream: Duplex;
  private readonly api: DockerApi;

  constructor(api: DockerApi, id: string, stream: Duplex) {
    this.api = api;
    this.id = id;
    this.stream = stream;
  }

  write(data: string | Buffer) {
    this.stream.write(data);
  }

  async resize(cols: number, rows: number): Promise<void> {
    const res = await this.api.call("POST", `/exec/${enc(this.id)}/resize`, { query: { h: rows, w: cols } });
    if (res.status !== 200 && res.status !== 201) throw apiError(`resize exec ${short(this.id)}`, res.status, res.text);
  }

  /** The program's exit status once it ended; null while it runs. */
  async exitCode(): Promise<number | null> {
    const info = (await this.api.json("GET", `/exec/${enc(this.id)}/json`)) as { Running?: boolean; ExitCode?: number | null };
    return info.Running ? null : (info.ExitCode ?? null);
  }

  /** Hangs up: the program sees its terminal close. */
  close() {
    this.stream.destroy();
  }
}

/** Starts `opts.cmd` in the container with a TTY and attaches to it. */
export async function startExec(api: DockerApi, containerId: string, opts: ExecOptions): Promise<ExecSession> {
  const size = opts.cols && opts.rows ? { ConsoleSize: [opts.rows, opts.cols] } : {};
  const res = await api.call("POST", `/containers/${enc(containerId)}/exec`, {
    body: {
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: true,
      Cmd: opts.cmd,
      ...(opts.env ? { Env: Object.entries(opts.env).map(([k, v]) => `${k}=${v}`) } : {}),
      ...(opts.workingDir ? { WorkingDir: opts.workingDir } : {}),
      ...(opts.user ? { User: opts.user } : {}),
      ...size,
    },
  });
  if (res.status !== 201) throw apiError(`exec in ${short(containerId)}`, res.status, res.text);
  const id = (res.json as { Id: string }).Id;
  const stream = await api.upgrade("POST", `/exec/${enc(id)}/start`, { Detach: false, Tty: true, ...size });
  return new ExecSession(api, id, stream);
}
