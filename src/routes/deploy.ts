/**
 * Dockup's deploys and lifecycle actions: `POST /apps/{appId}/deploy`, CI's
 * `POST /deploy/{slug}`, and start / stop / restart. Each answers 202 with
 * the job that carries it out on the app's host.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createRouter } from "../app";
import type { AppEnv } from "../env";
import { ApiError, errorResponsesFor } from "../lib/errors";
import { appEventOf, presentApp, presentDeployment } from "../services/apps";
import { audited, recordAudit } from "../services/audit";
import { startDeploy, submitAppAction } from "../services/deployments";
import { presentJob } from "../services/jobs";
import { AppParams, AppSchema, DeploymentSchema, loadApp } from "./apps/index";
import { Job, json, slugParam } from "./schemas";

const router = createRouter();
const tags = ["Deploy"];
const image = z.string().trim().min(1).max(512).regex(/^\S+$/, "an image reference has no spaces");

async function deploy(c: Context<AppEnv>, idOrSlug: string, newImage?: string) {
  const { app: found, project, principal } = await loadApp(c, idOrSlug, "deploy");
  // The deploy's event and audit rows are written with the deployment's job, in one batch.
  const { app: row, deployment, job } = await startDeploy(c.var.db, c.env, found, principal.userId, newImage, (started) => [
    ...appEventOf(c.var.db, "deploy", `Deploy of ${started.image} requested`, { deployment_id: started.deploymentId, job_id: started.jobId })(started.appId),
    ...audited(c, () => ({ orgId: project.orgId, action: "app.deploy", targetType: "app", targetId: started.appId, metadata: { image: started.image, deployment_id: started.deploymentId } }))(started.appId),
  ]);
  return { app: row, deployment, job };
}

router.openapi(
  createRoute({
    method: "post",
    path: "/apps/{appId}/deploy",
    tags,
    summary: "Deploy the app: pull its image, start a new container, switch the route when it answers",
    request: { params: AppParams },
    responses: {
      202: json(DeploymentSchema.extend({ deployment: DeploymentSchema, job: Job }), "Deployment started (status pending)"),
      ...errorResponsesFor("app_not_found", "no_host_available"),
    },
  }),
  async (c) => {
    const { deployment, job } = await deploy(c, c.req.valid("param").appId);
    const presented = presentDeployment(deployment);
    return c.json({ ...presented, deployment: presented, job: presentJob(job) }, 202);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/deploy/{slug}",
    tags,
    summary: "CI deploy by slug: empty body redeploys (pulling the tag again), {image} changes the image and deploys",
    description: "Works with a personal `dkp_` key and an org `pak_` key of scope full or deploy; a read-only key gets 403.",
    request: {
      params: z.object({ slug: slugParam("slug").openapi({ description: "App slug" }) }),
      body: { content: { "application/json": { schema: z.object({ image: image.optional() }) } }, required: false },
    },
    responses: {
      202: json(z.object({ app: AppSchema, deployment: DeploymentSchema, job: Job, slug: z.string(), message: z.string() }), "Deployment started"),
      ...errorResponsesFor("app_not_found", "no_host_available"),
    },
  }),
  async (c) => {
    const body = c.req.valid("json") ?? {};
    const { app: row, deployment, job } = await deploy(c, c.req.valid("param").slug, body.image);
    return c.json(
      { app: presentApp(c.env, row), deployment: presentDeployment(deployment), job: presentJob(job), slug: row.slug, message: `Deploying ${row.image}` },
      202,
    );
  },
);

for (const action of ["start", "stop", "restart"] as const) {
  router.openapi(
    createRoute({
      method: "post",
      path: `/apps/{appId}/${action}`,
      tags,
      summary: `${action[0]!.toUpperCase()}${action.slice(1)} the app's container`,
      request: { params: AppParams },
      responses: { 202: json(z.object({ app: AppSchema, job: Job }), "Accepted"), ...errorResponsesFor("app_not_found", "not_deployed") },
    }),
    async (c) => {
      const { app: row, project } = await loadApp(c, c.req.valid("param").appId, "deploy");
      const job = await submitAppAction(c.env, row, `app.${action}`);
      if (!job) throw new ApiError("not_deployed", "This app has not been deployed yet: POST /apps/{appId}/deploy");
      // A job on the app's host, not a D1 write: its audit row is written on its own.
      await recordAudit(c, { orgId: project.orgId, action: `app.${action}`, targetType: "app", targetId: row.id });
      return c.json({ app: presentApp(c.env, row), job: presentJob(job) }, 202);
    },
  );
}

export default router;
