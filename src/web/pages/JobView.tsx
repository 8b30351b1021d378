import { useMutation, useQuery } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { api, type Job, unwrap } from "../api/client";
import { jobLogsQuery } from "../queries";
import { ErrorMessage } from "../ui/ErrorMessage";
import { formatDate } from "../ui/format";

const OPEN = new Set(["queued", "dispatched", "running"]);
export const isOpen = (job: Pick<Job, "status">) => OPEN.has(job.status);

const STATUS_WORDS: Record<string, string> = {
  queued: "waiting for its host",
  dispatched: "handed to the host's agent",
  running: "running",
  succeeded: "succeeded",
  failed: "failed",
  cancelled: "cancelled",
  lost: "lost by its host",
};

/**
 * One job as it happens: its state, its progress (each step as it arrives), and its log.
 * The job comes from a list kept current by the project's event socket (live.ts), which
 * also appends log output as the agent sends it.
 */
export function JobView({ projectId, job, canCancel, title }: { projectId: string; job: Job; canCancel: boolean; title: string }) {
  const logs = useQuery(jobLogsQuery(projectId, job.id));
  const [steps, setSteps] = useState<string[]>([]);
  const message = job.progress?.message;
  useEffect(() => {
    if (message) setSteps((s) => (s.at(-1) === message ? s : [...s, message]));
  }, [message]);
  const cancel = useMutation({
    mutationFn: () => unwrap(api.POST("/projects/{project}/jobs/{job}/cancel", { params: { path: { project: projectId, job: job.id } } })),
  });
  const open = isOpen(job);
  return (
    <section className="job" aria-label={title}>
      <h3 className="card-title">
        {title} <span className={`status status-job-${job.status}`}>{STATUS_WORDS[job.status] ?? job.status}</span>
      </h3>
      <p className="muted small">
        {job.type} · {job.id} · asked {formatDate(job.created_at)}
        {job.finished_at ? ` · ended ${formatDate(job.finished_at)}` : ""}
        {job.attempts > 1 ? ` · attempt ${job.attempts}` : ""}
      </p>
      {job.progress ? (
        <div className="progress-row">
          <progress max={100} value={job.progress.percent} aria-label={`${title}: progress`} />
          <span className="small" aria-live="polite">
            Step {job.progress.step} of {job.progress.total}: {job.progress.message}
          </span>
        </div>
      ) : open ? (
        <p className="small" aria-live="polite">
          Waiting for the host's agent to start it…
        </p>
      ) : null}
      {steps.length > 1 ? (
        <ol className="steps small">
          {steps.map((s) => (
            <li key={s}>{s}</li>
          ))}
        </ol>
      ) : null}
      {job.error ? <p className="error small">{job.error}</p> : null}
      <ErrorMessage error={logs.error ?? cancel.error} />
      {logs.data?.length ? (
        // biome-ignore lint/a11y/noNoninteractiveTabindex: a log that scrolls must be reachable by keyboard to be read
        <pre className="log" role="log" aria-label={`${title}: output`} tabIndex={0}>
          {logs.data.map((l) => (l.text.endsWith("\n") ? l.text : `${l.text}\n`)).join("")}
        </pre>
      ) : logs.data ? (
        <p className="muted small">{open ? "No output yet; it shows here as the agent sends it." : "This job wrote no output."}</p>
      ) : null}
      {open && canCancel ? (
        <div className="actions start">
          <button type="button" onClick={() => cancel.mutate()} disabled={cancel.isPending}>
            {cancel.isPending ? "Cancelling…" : "Cancel job"}
          </button>
        </div>
      ) : null}
    </section>
  );
}
