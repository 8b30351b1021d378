import { useQuery } from "@tanstack/react-query";
import { Link } from "@tanstack/react-router";
import { useState } from "react";
import { useProjectEvents } from "../live";
import { can } from "../permissions";
import { jobsQuery, projectsQuery, useOrg } from "../queries";
import { formatDate } from "../ui/format";
import { CardList, Empty } from "../ui/ListState";
import { LiveBadge } from "../ui/LiveBadge";
import { Page } from "../ui/Page";
import { usePageTitle } from "../ui/title";
import { isOpen, JobView } from "./JobView";

/** Every job of a project, newest first, moving live; open ones show their progress and output, others on request. */
export function Jobs({ orgSlug, projectId }: { orgSlug: string; projectId: string }) {
  const { role } = useOrg(orgSlug);
  const project = useQuery(projectsQuery(orgSlug)).data?.find((p) => p.id === projectId);
  usePageTitle(project ? `Jobs of ${project.name}` : "Jobs");
  const live = useProjectEvents(projectId);
  const jobs = useQuery(jobsQuery(projectId));
  const [shown, setShown] = useState<Set<string>>(new Set());
  const toggle = (id: string) =>
    setShown((s) => {
      const next = new Set(s);
      if (!next.delete(id)) next.add(id);
      return next;
    });
  return (
    <Page
      id="jobs-heading"
      title="Jobs"
      subtitle={
        <>
          of {project?.name ?? "this project"} · <Link to="/orgs/$orgSlug/projects/$projectId/apps" params={{ orgSlug, projectId }}>apps</Link> ·{" "}
          <Link to="/orgs/$orgSlug/projects/$projectId/instances" params={{ orgSlug, projectId }}>
            instances
          </Link>{" "}
          <LiveBadge state={live} what="Live updates" />
        </>
      }
    >
      <CardList
        query={jobs}
        loading="Loading jobs…"
        label="Jobs"
        empty={<Empty title="No jobs yet">Deploying an app or ordering an instance starts a job; it shows here as it runs.</Empty>}
      >
        {(j) => (
          <li key={j.id} className="card job-card">
            {isOpen(j) || shown.has(j.id) ? (
              <JobView projectId={projectId} job={j} canCancel={can(role, "deploy")} title={`${j.type} ${j.id}`} />
            ) : (
              <div>
                <h3 className="card-title">
                  {j.type} <span className={`status status-job-${j.status}`}>{j.status}</span>
                </h3>
                <p className="muted small">
                  {j.id} · {formatDate(j.created_at)}
                  {j.error ? ` · ${j.error}` : ""}
                </p>
              </div>
            )}
            {isOpen(j) ? null : (
              <button type="button" onClick={() => toggle(j.id)} aria-expanded={shown.has(j.id)} aria-label={`${shown.has(j.id) ? "Hide" : "Show"} output of ${j.type} ${j.id}`}>
                {shown.has(j.id) ? "Hide output" : "Show output"}
              </button>
            )}
          </li>
        )}
      </CardList>
    </Page>
  );
}
