/**
 * Live updates from the project's events WebSocket (`/projects/{project}/events`) into
 * TanStack Query's cache, so every page of a project shows jobs as they move without
 * polling.
 *
 * Reconnection is partysocket's (Cloudflare's maintained ReconnectingWebSocket: backoff
 * with jitter, a reconnect when the tab comes back online), not a loop of our own. Each
 * reconnect asks for what it missed with `?since=<last seq>`, so a dropped socket loses no
 * event; what happened during the gap is also refetched.
 */
import { type QueryClient, type QueryKey, useQueryClient } from "@tanstack/react-query";
import ReconnectingWebSocket from "partysocket/ws";
import { useEffect, useState } from "react";
import type { Job, JobLogLine } from "./api/client";

/** One frame of the feed, as jobs.ts documents it. */
type JobEvent = { seq: number; job_id: string; type: string; data: Record<string, unknown>; at: number };

export type LiveState = "connecting" | "live" | "reconnecting";

const TERMINAL = new Set(["job.succeeded", "job.failed", "job.cancelled", "job.lost"]);

/** A socket URL on this page's own origin (the session cookie rides along; the API checks the Origin). */
export function socketUrl(path: string, query: Record<string, string> = {}): string {
  const url = new URL(`/api/v1${path}`, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  return url.toString();
}

/** Keys under the project that follow job state (lists, apps, instances, deployments), not logs or stats samples. */
const followsJobs = (projectId: string) => (query: { queryKey: QueryKey }) => {
  const [root, id, kind, , sub] = query.queryKey;
  return root === "projects" && id === projectId && kind !== "job-logs" && sub !== "stats";
};

/** What one event changes in the cache. */
export function applyJobEvent(queryClient: QueryClient, projectId: string, event: JobEvent) {
  if (event.type === "job.log") {
    // Appended to the job's log if someone is reading it; the whole log is read again when the job ends.
    const { stream, data } = event.data as { stream: JobLogLine["stream"]; data: string };
    queryClient.setQueryData<JobLogLine[]>(["projects", projectId, "job-logs", event.job_id], (logs) =>
      logs ? [...logs, { time: new Date(event.at).toISOString(), stream, offset: -1, text: data }] : logs,
    );
    return;
  }
  // The job in every list that holds it, at once; then the lists and the things the job acts on, from the API
  // (the project's object writes those rows before it sends the event, so one read is enough).
  const patch = event.data as Partial<Pick<Job, "status" | "progress" | "error" | "attempts">>;
  queryClient.setQueriesData<Job[]>({ queryKey: ["projects", projectId, "jobs"] }, (jobs) =>
    jobs?.map((j) => (j.id === event.job_id ? { ...j, ...pickJobFields(patch, event.type) } : j)),
  );
  void queryClient.invalidateQueries({ predicate: followsJobs(projectId) });
  if (TERMINAL.has(event.type)) {
    void queryClient.invalidateQueries({ queryKey: ["projects", projectId, "job-logs", event.job_id] });
  }
}

function pickJobFields(patch: Partial<Job>, type: string): Partial<Job> {
  const out: Partial<Job> = {};
  if (patch.progress) out.progress = patch.progress;
  if (type !== "job.progress" && type !== "job.queued" && patch.status) out.status = patch.status;
  if (patch.error !== undefined) out.error = patch.error;
  return out;
}

/**
 * Follows the project's events while the calling page is open. Returns the socket's state,
 * for a "live" / "reconnecting" badge.
 */
export function useProjectEvents(projectId: string): LiveState {
  const queryClient = useQueryClient();
  const [state, setState] = useState<LiveState>("connecting");
  useEffect(() => {
    let lastSeq: number | undefined;
    let opened = false;
    const socket = new ReconnectingWebSocket(() => socketUrl(`/projects/${projectId}/events`, lastSeq === undefined ? {} : { since: String(lastSeq) }), [], {
      maxReconnectionDelay: 10_000,
      minReconnectionDelay: 500 + Math.random() * 1_000,
    });
    socket.addEventListener("open", () => {
      setState("live");
      // Back after a gap: the replay covers the events, a refetch covers anything else.
      if (opened) void queryClient.invalidateQueries({ predicate: followsJobs(projectId) });
      opened = true;
    });
    socket.addEventListener("close", () => setState("reconnecting"));
    socket.addEventListener("message", (message) => {
      let event: JobEvent;
      try {
        event = JSON.parse(String(message.data)) as JobEvent;
      } catch {
        return;
      }
      if (typeof event.seq !== "number" || typeof event.job_id !== "string") return;
      if (lastSeq !== undefined && event.seq <= lastSeq) return;
      lastSeq = event.seq;
      applyJobEvent(queryClient, projectId, event);
    });
    return () => socket.close();
  }, [projectId, queryClient]);
  return state;
}
