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
 */
import { APP_LOG_BATCH_MAX, type AppLogLine } from "../../src/protocol/agent.ts";
import { sleep } from "./backoff.ts";
import type { DockerEngine } from "./drivers/docker.ts";
import type { Logger } from "./log.ts";
import { LABEL_APP } from "./tasks/apps.ts";

const BATCH_MS = 50;

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
        try {
          for await (const line of this.docker.logs(current.id, { follow: true, since: last ?? undefined, signal })) {
            if (toSkip > 0 && line.time === last) {
              toSkip--;
              continue;
            }
            toSkip = 0;
            batch.push(line);
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
