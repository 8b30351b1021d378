/**
 * Dockup's deploys and lifecycle actions: `POST /apps/{appId}/deploy`, CI's
 * `POST /deploy/{slug}` (also with an image tarball), `POST /apps/{appId}/upload-image`,
 * and start / stop / restart. Each starts the job that carries it out on the app's host.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createRouter } from "../app";
import type { AppEnv } from "../env";
import { ApiError, errorResponsesFor } from "../lib/errors";
import { appEventOf, presentApp, presentDeployment } from "../services/apps";
import { audited, recordAudit } from "../services/audit";
import { newId } from "../lib/ids";
import { multipartBoundary, multipartFile, rawBody } from "../lib/multipart-stream";
import { placeApp, startDeploy, submitAppAction } from "../services/deployments";
import { checkDeclaredLength, deleteUpload, storeUpload, uploadKey, uploadTag } from "../services/image-uploads";
import { attachedVolumes } from "../services/volumes";
import { presentJob } from "../services/jobs";
import { AppParams, AppSchema, DeploymentSchema, loadApp } from "./apps/index";
import { Job, json, slugParam } from "./schemas";

const router = createRouter();
const tags = ["Deploy"];
const image = z.string().trim().min(1).max(512).regex(/^\S+$/, "an image reference has no spaces");

type Loaded = Awaited<ReturnType<typeof loadApp>>;

async function deploy(c: Context<AppEnv>, loaded: Loaded, newImage?: string, upload?: { deploymentId: string; sizeBytes: number }) {
  const { app: found, project, principal } = loaded;
  // The deploy's event and audit rows are written with the deployment's job, in one batch.
  const { app: row, deployment, job } = await startDeploy(
    c.var.db,
    c.env,
    found,
    principal.userId,
    newImage,
    (started) => [
      ...appEventOf(c.var.db, "deploy", `Deploy of ${started.image} requested${upload ? " (uploaded image)" : ""}`, { deployment_id: started.deploymentId, job_id: started.jobId })(started.appId),
      ...audited(c, () => ({
        orgId: project.orgId,
        action: "app.deploy",
        targetType: "app",
        targetId: started.appId,
        metadata: { image: started.image, deployment_id: started.deploymentId, ...(upload ? { upload_bytes: upload.sizeBytes } : {}) },
      }))(started.appId),
    ],
    upload,
  );
  return { app: row, deployment, job };
}

/** The body is an image upload: multipart (field `image`) or a raw tarball. */
const isUpload = (contentType: string | undefined) => /^multipart\/form-data\b/i.test(contentType ?? "") || /^application\/octet-stream\b/i.test(contentType ?? "");

/**
 * Streams the uploaded tarball into R2 and starts the deploy that loads it. The caller is
 * authorized before a byte of the body is read; a body over the limit, cut short or not
 * multipart leaves nothing behind.
 */
async function uploadAndDeploy(c: Context<AppEnv>, loaded: Loaded) {
  const contentType = c.req.header("content-type");
  const body = c.req.raw.body;
  const boundary = multipartBoundary(contentType);
  if (!body) throw new ApiError("invalid_request", "No image: send the tarball as multipart field `image` (curl -F image=@app.tar) or as the raw body (application/octet-stream)");
  if (!boundary && /^multipart\//i.test(contentType ?? "")) throw new ApiError("invalid_request", "Malformed multipart body: the Content-Type has no boundary");
  checkDeclaredLength(c.env, c.req.header("content-length"));
  // Refuse before taking the upload when there is nowhere to run it.
  await placeApp(c.var.db, c.env, loaded.app, { hasVolumes: (await attachedVolumes(c.var.db, loaded.app.id)).length > 0 });
  const deploymentId = newId("dep");
  const key = uploadKey(loaded.app.id, deploymentId);
  const chunks = boundary ? multipartFile(body, boundary, "image") : rawBody(body);
  const sizeBytes = await storeUpload(c.env, key, chunks, { app_id: loaded.app.id, deployment_id: deploymentId });
  const tag = uploadTag(loaded.app.slug, deploymentId);
  try {
    return { ...(await deploy(c, loaded, tag, { deploymentId, sizeBytes })), tag, sizeBytes };
  } catch (err) {
    await deleteUpload(c.env, key);
    throw err;
  }
}

const uploadContent = {
  "multipart/form-data": {
    schema: { type: "object" as const, properties: { image: { type: "string" as const, format: "binary", description: "The tarball `docker save` writes (gzipped or not)" } }, required: ["image"] },
  },
  "application/octet-stream": { schema: { type: "string" as const, format: "binary", description: "The tarball itself" } },
};
const uploadErrors = errorResponsesFor("app_not_found", "no_host_available", "invalid_request", "payload_too_large");

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
    const { deployment, job } = await deploy(c, await loadApp(c, c.req.valid("param").appId, "deploy"));
    const presented = presentDeployment(deployment);
    return c.json({ ...presented, deployment: presented, job: presentJob(job) }, 202);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/deploy/{slug}",
    tags,
    summary: "CI deploy by slug: empty body redeploys (pulling the tag again), {image} changes the image, an image tarball is loaded and deployed",
    description:
      "Works with a personal `dkp_` key and an org `pak_` key of scope full or deploy; a read-only key gets 403. " +
      "With a multipart body (field `image`) or a raw `application/octet-stream` body, the body is an image tarball from `docker save` (gzipped or not): " +
      "it is stored, loaded on the app's host and deployed as `berth-upload/{slug}:{deployment id}` (`tagged_as`); `loaded_image` is said by the deploy's job log once the host loaded it. " +
      "The tarball may be at most IMAGE_UPLOAD_MAX_MB (default 2048) MB.",
    request: {
      params: z.object({ slug: slugParam("slug").openapi({ description: "App slug" }) }),
      body: { content: { "application/json": { schema: z.object({ image: image.optional() }) }, ...uploadContent }, required: false },
    },
    responses: {
      202: json(
        z.object({
          app: AppSchema,
          deployment: DeploymentSchema,
          job: Job,
          slug: z.string(),
          message: z.string(),
          tagged_as: z.string().optional().openapi({ description: "With an uploaded image: the reference it is deployed as" }),
          loaded_image: z.string().nullable().optional().openapi({ description: "With an uploaded image: null here, the host says it in the job log when it loads the tarball" }),
        }),
        "Deployment started",
      ),
      ...uploadErrors,
    },
  }),
  async (c) => {
    const loaded = await loadApp(c, c.req.valid("param").slug, "deploy");
    if (isUpload(c.req.header("content-type"))) {
      const { app: row, deployment, job, tag, sizeBytes } = await uploadAndDeploy(c, loaded);
      return c.json(
        {
          app: presentApp(c.env, row),
          deployment: presentDeployment(deployment),
          job: presentJob(job),
          slug: row.slug,
          message: `Deploying the uploaded image (${(sizeBytes / (1024 * 1024)).toFixed(1)} MB) as ${tag}`,
          tagged_as: tag,
          loaded_image: null,
        },
        202,
      );
    }
    // The upload media types' schemas are plain OpenAPI (a zod one would make hono buffer the form to validate it),
    // which hides the JSON body's type from `valid`; it is validated all the same.
    const body = (c.req.valid as (target: "json") => { image?: string } | undefined)("json") ?? {};
    const { app: row, deployment, job } = await deploy(c, loaded, body.image);
    return c.json(
      { app: presentApp(c.env, row), deployment: presentDeployment(deployment), job: presentJob(job), slug: row.slug, message: `Deploying ${row.image}` },
      202,
    );
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/apps/{appId}/upload-image",
    tags: ["Apps"],
    summary: "Upload a Docker image tarball and deploy it",
    description:
      "The body is the tarball `docker save` writes (gzipped or not), as multipart field `image` (`curl -F image=@app.tar`) or as the raw body (`application/octet-stream`). " +
      "It is streamed into storage, and the app is deployed from it as a normal deploy job: its host fetches the tarball, loads it, tags it `berth-upload/{slug}:{deployment id}` (`tagged_as`) and switches the route when the new container answers. " +
      "`loaded_image` is null in this answer (the host loads the image after it): the job's log says which image it loaded. " +
      "At most IMAGE_UPLOAD_MAX_MB (default 2048) MB; a larger body gets 413 and nothing is kept. Same permission as a deploy: `dkp_` keys and `pak_` keys of scope full or deploy.",
    request: { params: AppParams, body: { content: uploadContent, required: true } },
    responses: {
      200: json(
        z.object({
          loaded_image: z.string().nullable(),
          tagged_as: z.string(),
          size_bytes: z.number().int(),
          app: AppSchema,
          deployment: DeploymentSchema,
          job: Job,
        }),
        "Image stored and deployment started",
      ),
      ...uploadErrors,
    },
  }),
  async (c) => {
    const loaded = await loadApp(c, c.req.valid("param").appId, "deploy");
    // Anything but multipart is the raw tarball: Dockup's `curl --data-binary @app.tar` sends it as form-urlencoded.
    if (/^(application\/json|text\/)/i.test(c.req.header("content-type") ?? "")) {
      throw new ApiError("invalid_request", "Send the image as multipart/form-data (field `image`) or as application/octet-stream");
    }
    const { app: row, deployment, job, tag, sizeBytes } = await uploadAndDeploy(c, loaded);
    return c.json(
      { loaded_image: null, tagged_as: tag, size_bytes: sizeBytes, app: presentApp(c.env, row), deployment: presentDeployment(deployment), job: presentJob(job) },
      200,
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
