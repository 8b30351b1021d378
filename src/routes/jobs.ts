/**
 * Suble's async jobs (`/projects/{project}/jobs`), plus logs, cancel, a
 * long-poll wait and a WebSocket of the project's job events.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createRouter } from "../app";
import { authorizeProject } from "../auth/access";
import { projectScope, projectJobs } from "../durable/clients";
import type { AppEnv } from "../env";
import { ApiError, errorResponses, notFound, errorResponsesFor } from "../lib/errors";
import { recordAudit } from "../services/audit";
import { presentJob, presentLogs } from "../services/jobs";
import { ProjectParams } from "./projects";
import { Job, JobLogLine, json, slugParam, WaitQuery } from "./schemas";
import { isTerminal } from "../jobs/states";

const router = createRouter();
const tags = ["Jobs"];
const JobParams = ProjectParams.extend({ job: slugParam("job").openapi({ description: "Job id (job_…)" }) });

async function loadJob(c: Context<AppEnv>, projectId: string, jobId: string) {
  const job = await projectJobs(c.env, projectScope(projectId)).getJob(jobId);
  if (!job) throw notFound("Job", "job_not_found");
  return job;
}

router.openapi(
  createRoute({
    method: "get",
    path: "/projects/{project}/jobs",
    tags,
    summary: "The 50 newest jobs of the project, newest first",
    request: {
      params: ProjectParams,
      query: z.object({ instance: z.string().max(100).optional().openapi({ param: { name: "instance", in: "query" }, description: "Only jobs about this instance or app" }) }),
    },
    responses: { 200: json(z.object({ jobs: z.array(Job) }), "Jobs"), ...errorResponses },
  }),
  async (c) => {
    const { project } = c.req.valid("param");
    await authorizeProject(c, project, "project:read");
    const { instance } = c.req.valid("query");
    const jobs = await projectJobs(c.env, projectScope(project)).listJobs({ subject: instance || undefined, limit: 50 });
    return c.json({ jobs: jobs.map(presentJob) }, 200);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/projects/{project}/jobs/{job}",
    tags,
    summary: "One job, with live progress and error",
    request: { params: JobParams },
    responses: { 200: json(z.object({ job: Job }), "The job"), ...errorResponses },
  }),
  async (c) => {
    const { project, job } = c.req.valid("param");
    await authorizeProject(c, project, "project:read");
    return c.json({ job: presentJob(await loadJob(c, project, job)) }, 200);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/projects/{project}/jobs/{job}/logs",
    tags,
    summary: "The job's output of its latest attempt, in order",
    request: { params: JobParams },
    responses: { 200: json(z.object({ logs: z.array(JobLogLine) }), "Log lines"), ...errorResponses },
  }),
  async (c) => {
    const { project, job } = c.req.valid("param");
    await authorizeProject(c, project, "project:read");
    await loadJob(c, project, job);
    const logs = await projectJobs(c.env, projectScope(project)).getLogs(job);
    return c.json({ logs: presentLogs(logs) as z.infer<typeof JobLogLine>[] }, 200);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/projects/{project}/jobs/{job}/wait",
    tags,
    summary: "Long-poll until the job ends or `timeout` seconds pass (at most 60)",
    request: { params: JobParams, query: WaitQuery },
    responses: { 200: json(z.object({ job: Job, done: z.boolean() }), "The job as it is when the wait ends"), ...errorResponses },
  }),
  async (c) => {
    const { project, job } = c.req.valid("param");
    await authorizeProject(c, project, "project:read");
    await loadJob(c, project, job);
    const record = await projectJobs(c.env, projectScope(project)).waitForJob(job, c.req.valid("query").timeout * 1000);
    if (!record) throw notFound("Job", "job_not_found");
    const done = isTerminal(record.status);
    return c.json({ job: presentJob(record), done }, 200);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/projects/{project}/jobs/{job}/cancel",
    tags,
    summary: "Cancel a job that has not ended; the host stops its work",
    request: { params: JobParams },
    responses: {
      200: json(z.object({ job: Job }), "The job, cancelled"),
      ...errorResponsesFor("job_not_found", "job_finished"),
    },
  }),
  async (c) => {
    const { project, job } = c.req.valid("param");
    const { project: row } = await authorizeProject(c, project, "deploy");
    const before = await loadJob(c, project, job);
    if (isTerminal(before.status)) {
      throw new ApiError("job_finished", `The job already ended (${before.status})`);
    }
    const after = await projectJobs(c.env, projectScope(project)).cancelJob(job);
    // The job's state lives in its project's Durable Object: the audit row is written on its own.
    await recordAudit(c, { orgId: row.orgId, action: "job.cancel", targetType: "job", targetId: job, metadata: { project_id: project } });
    return c.json({ job: presentJob(after!) }, 200);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/projects/{project}/events",
    tags,
    summary: "WebSocket: the project's job events as they happen",
    description:
      "Upgrade to a WebSocket (credential as cookie, bearer or `?token=`). Each frame is one event " +
      "`{seq, job_id, type, data, at}` (`job.queued`, `job.dispatched`, `job.running`, `job.progress`, `job.log`, " +
      "`job.succeeded`, `job.failed`, `job.cancelled`, `job.lost`, `job.redelivered`). To resume, send the last `seq` " +
      "you saw as the `Last-Event-ID` header or `?since=`; events after it are replayed first (`since=0`: the whole feed). " +
      "Without either, the stream starts with what happens next.",
    request: {
      params: ProjectParams,
      query: z.object({ since: z.coerce.number().int().min(0).optional().openapi({ param: { name: "since", in: "query" } }) }),
    },
    responses: { 101: { description: "Switching to the WebSocket" }, ...errorResponsesFor("upgrade_required") },
  }),
  async (c) => {
    const { project } = c.req.valid("param");
    await authorizeProject(c, project, "project:read");
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new ApiError("upgrade_required", "This endpoint is a WebSocket; connect with an Upgrade: websocket request");
    }
    // Resume after the last event seen (`?since=` or `Last-Event-ID`); without one, from now on.
    const lastSeen = c.req.valid("query").since ?? c.req.header("last-event-id");
    const url = new URL(c.req.url);
    url.search = lastSeen === undefined ? "" : `?since=${Number(lastSeen) || 0}`;
    return projectJobs(c.env, projectScope(project)).fetch(new Request(url, c.req.raw));
  },
);

export default router;
