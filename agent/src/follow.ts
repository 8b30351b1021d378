/**
 * Follows app containers' logs while someone in the control plane listens,
 * sending the lines over the agent's socket in small batches. A follow
 * survives redeploys (it moves to the app's newest container) and stops when
 * the control plane says nobody listens or the socket goes; the control plane
 * asks again from the last line it got when the agent is back.
 *
 * Docker's `since` is inclusive and its times here are to the millisecond, so a
 * stream opened again from the last line's time starts with lines already sent:
 * the follower leaves out as many lines at that time as were sent (counted, not
 * compared, as identical lines in one millisecond are all real).
 *
 * dockerd itself (20.10's json-file reader, seen with 20.10.24) sends some lines again within
 * one follow when the container's log file rotates (at `max-size`, 10 MB here): lines it
 * already sent, with their original timestamps. Docker stamps each line with its own
 * nanosecond clock reading, so a line whose stream, stamp and text are those of one sent
 * lately is that line again and is left out. Only an exact match counts: a wall clock that
 * steps back loses nothing, and a repeat older than the window would be shown twice rather
 * than a line lost.
 */
import { APP_LOG_BATCH_MAX, type AppLogLine } from "../../src/protocol/agent.ts";
import { sleep } from "./backoff.ts";
import type { DockerEngine, LogLine } from "./drivers/docker.ts";
import type { Logger } from "./log.ts";
import { LABEL_APP } from "./tasks/apps.ts";

const BATCH_MS = 50;

/** How many lines sent lately a follow remembers, to recognise dockerd sending one again. */
const RECENT_LINES = 4096;

/** The lines a follow sent lately, by Docker's stamp (to the nanosecond), stream and text. */
export class RecentLines {
  private readonly keys = new Set<string>();
  private readonly order: string[] = [];
  private next = 0;
  private readonly size: number;

  constructor(size = RECENT_LINES) {
    this.size = size;
  }

  /** False (and remembered) for a line not sent lately; true for one sent again. Lines without Docker's stamp are never repeats. */
  seen(line: LogLine): boolean {
    if (line.subMs === undefined) return false;
    const key = `${line.stream} ${line.time} ${line.subMs} ${line.text.length} ${hash(line.text)}`;
    if (this.keys.has(key)) return true;
    const evicted = this.order[this.next];
    if (evicted !== undefined) this.keys.delete(evicted);
    this.order[this.next] = key;
    this.next = (this.next + 1) % this.size;
    this.keys.add(key);
    return false;
  }
}

/** FNV-1a over the UTF-16 units: the text in a key without keeping the text. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class LogFollower {
  private readonly docker: DockerEngine;
  private readonly log: Logger;
  private readonly follows = new Map<string, AbortController>();
  /** Where lines go: the current socket. */
  private readonly send: (appId: string, lines: AppLogLine[]) => void;

  constructor(docker: DockerEngine, log: Logger, send: (appId: string, lines: AppLogLine[]) => void) {
    this.docker = docker;
    this.log = log;
    this.send = send;
  }

  /** Follows from `since`, leaving out the first `skip` lines at exactly that time (the control plane has them). */
  start(appId: string, since: string | null, skip = 0) {
    this.stop(appId);
    const abort = new AbortController();
    this.follows.set(appId, abort);
    void this.follow(appId, since, since ? skip : 0, abort.signal);
  }

  stop(appId: string) {
    this.follows.get(appId)?.abort();
    this.follows.delete(appId);
  }

  stopAll() {
    for (const appId of [...this.follows.keys()]) this.stop(appId);
  }

  private async follow(appId: string, since: string | null, skip: number, signal: AbortSignal) {
    let last = since;
    /** Lines at exactly `last` already sent, and from which container (null: the one the control plane knew). */
    let atLast = skip;
    let lastFrom: string | null = null;
    /** Lines lately sent from the container `lastFrom`. */
    let recent = new RecentLines();
    let batch: AppLogLine[] = [];
    let timer: NodeJS.Timeout | null = null;
    const flush = () => {
      if (timer) clearTimeout(timer);
      timer = null;
      if (!batch.length || signal.aborted) return;
      this.send(appId, batch);
      batch = [];
    };
    while (!signal.aborted) {
      const current = (await this.docker.list({ [LABEL_APP]: appId }).catch(() => [])).sort((a, b) => Date.parse(b.created) - Date.parse(a.created))[0];
      if (current) {
        // The same container's log from `last` again starts with lines already sent; a new container's does not.
        let toSkip = lastFrom === null || lastFrom === current.id ? atLast : 0;
        if (lastFrom !== current.id) recent = new RecentLines();
        try {
          for await (const line of this.docker.logs(current.id, { follow: true, since: last ?? undefined, signal })) {
            if (toSkip > 0 && line.time === last) {
              toSkip--;
              continue;
            }
            toSkip = 0;
            if (recent.seen(line)) continue;
            batch.push({ time: line.time, stream: line.stream, text: line.text });
            if (line.time === last) atLast++;
            else [last, atLast] = [line.time, 1];
            lastFrom = current.id;
            // A backlog comes all at once (a reconnect's replay, or lines that piled up while the
            // agent was busy): a full batch goes at once, as the control plane refuses bigger ones.
            if (batch.length >= APP_LOG_BATCH_MAX) flush();
            else timer ??= setTimeout(flush, BATCH_MS);
          }
        } catch (err) {
          if (!signal.aborted) this.log.debug("log follow ended", { app_id: appId, error: (err as Error).message });
        }
      }
      // The container stopped or was replaced: look again shortly.
      await sleep(1_000, signal);
    }
    if (timer) clearTimeout(timer);
  }
}
