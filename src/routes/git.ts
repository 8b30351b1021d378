/**
 * Git builds' push webhook: `POST /apps/{appId}/git/webhook` takes GitHub's `push` events
 * (any provider that signs the same way), checks `X-Hub-Signature-256` against the app's
 * webhook secret, and deploys the app when the push is to its branch. It carries no Berth
 * credential: the signature is the only thing that lets a caller in, and the answer for an
 * app without a repository is the same 404 as for none. `POST /apps/{appId}/git/webhook-secret`
 * makes a new secret (shown once) for those who lost it.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { createRouter } from "../app";
import { app as appTable } from "../db/schema";
import { ApiError, conflict, errorResponsesFor, notFound } from "../lib/errors";
import { appEventOf, findApp, presentApp, presentDeployment } from "../services/apps";
import { audited, withAlso } from "../services/audit";
import { startDeploy } from "../services/deployments";
import { newWebhookSecret, webhookSignatureValid } from "../services/git-builds";
import { presentJob } from "../services/jobs";
import { findProject } from "../services/projects";
import { AppParams, DeploymentSchema, loadApp } from "./apps/index";
import { Job, json } from "./schemas";

const router = createRouter();
const tags = ["Git"];

/** GitHub sends at most 25 MB, a push with thousands of commits; Berth reads only `ref`, `after` and `deleted`. */
const WEBHOOK_MAX_BYTES = 5 * 1024 * 1024;

const PushEvent = z.object({
  ref: z.string().max(1024),
  after: z.string().max(64).optional(),
  deleted: z.boolean().optional(),
  pusher: z.object({ name: z.string().max(256).optional() }).optional(),
});

/** The push event's JSON: the body itself, or GitHub's form encoding (`payload=<json>`). */
function parsePush(body: ArrayBuffer, contentType: string | undefined): z.infer<typeof PushEvent> {
  const text = new TextDecoder().decode(body);
  let value: unknown;
  try {
    value = JSON.parse(/^application\/x-www-form-urlencoded\b/i.test(contentType ?? "") ? (new URLSearchParams(text).get("payload") ?? "") : text);
  } catch {
    throw new ApiError("invalid_json", "The push event is not JSON (or, form-encoded, has no `payload` field)");
  }
  const parsed = PushEvent.safeParse(value);
  if (!parsed.success) throw new ApiError("invalid_request", "Not a push event: it needs `ref` (e.g. refs/heads/main)", { issues: parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })) });
  return parsed.data;
}

router.openapi(
  createRoute({
    method: "post",
    path: "/apps/{appId}/git/webhook",
    tags,
    security: [],
    summary: "Push webhook: a signed push to the app's branch builds and deploys it",
    description:
      "Point the git provider's webhook here (GitHub: content type `application/json` or form, secret = the app's `git_webhook_secret`, event `push`). " +
      "`X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body under the secret>` is required; a missing or wrong one is `401 invalid_signature`. " +
      "A push to the app's `git_branch` answers `202` with the deployment and its job (built from the branch's head, as `POST /apps/{appId}/deploy` would); " +
      "a push to another branch, a branch deletion or another event answers `204` and does nothing; GitHub's `ping` answers `200`. " +
      "An app without a repository answers 404 as an unknown one does.",
    request: {
      params: AppParams,
      body: {
        content: {
          "application/json": { schema: { type: "object" as const, description: "GitHub's push event (`ref`, `after`, …)" } },
          "application/x-www-form-urlencoded": { schema: { type: "object" as const, properties: { payload: { type: "string" as const, description: "The push event as JSON" } } } },
        },
        required: true,
      },
    },
    responses: {
      200: json(z.object({ ok: z.literal(true), message: z.string() }), "A `ping` event: the webhook reaches Berth and is signed right"),
      202: json(
        z.object({ message: z.string(), commit: z.string().nullable(), deployment: DeploymentSchema, job: Job }),
        "A push to the app's branch: the build and deploy started",
      ),
      204: { description: "A push to another branch, a branch deletion, or an event other than push: nothing done" },
      ...errorResponsesFor("app_not_found", "invalid_signature", "payload_too_large", "no_host_available"),
    },
  }),
  async (c) => {
    if (Number(c.req.header("content-length") ?? 0) > WEBHOOK_MAX_BYTES) throw new ApiError("payload_too_large", `A webhook body is at most ${WEBHOOK_MAX_BYTES / (1024 * 1024)} MB`);
    const body = await c.req.arrayBuffer();
    if (body.byteLength > WEBHOOK_MAX_BYTES) throw new ApiError("payload_too_large", `A webhook body is at most ${WEBHOOK_MAX_BYTES / (1024 * 1024)} MB`);
    const row = await findApp(c.var.db, c.req.valid("param").appId);
    // No repository, no secret: the same answer as no app, to a caller that has proved nothing yet.
    if (!row?.gitRepoUrl || !row.gitWebhookSecretCiphertext || !(await findProject(c.var.db, row.projectId))) throw notFound("App", "app_not_found");
    const valid = await webhookSignatureValid(c.env, row.gitWebhookSecretCiphertext, body, c.req.header("x-hub-signature-256")).catch(() => false);
    if (!valid) {
      throw new ApiError("invalid_signature", "X-Hub-Signature-256 is missing or does not match this app's webhook secret (sha256=<hex HMAC-SHA256 of the body>)");
    }
    const event = c.req.header("x-github-event") ?? "push";
    if (event === "ping") return c.json({ ok: true as const, message: "pong: the webhook reaches Berth and its signature is right" }, 200);
    if (event !== "push") return c.body(null, 204);
    const push = parsePush(body, c.req.header("content-type"));
    const branch = row.gitBranch || "main";
    if (push.deleted || push.ref !== `refs/heads/${branch}`) return c.body(null, 204);
    const commit = push.after && /^[0-9a-f]{40,64}$/.test(push.after) ? push.after : null;
    const { deployment, job } = await startDeploy(c.var.db, c.env, row, null, undefined, (started) =>
      appEventOf(c.var.db, "deploy", `Push${commit ? ` of ${commit.slice(0, 12)}` : ""} to ${branch}${push.pusher?.name ? ` by ${push.pusher.name}` : ""}: build and deploy requested`, {
        deployment_id: started.deploymentId,
        job_id: started.jobId,
        trigger: "push",
        commit_sha: commit,
      })(started.appId),
    );
    return c.json({ message: `Building ${branch} and deploying it`, commit, deployment: presentDeployment(deployment), job: presentJob(job) }, 202);
  },
);

router.openapi(
  createRoute({
    method: "post",
    path: "/apps/{appId}/git/webhook-secret",
    tags,
    summary: "A new push webhook secret, shown once; the old one stops working at once",
    request: { params: AppParams },
    responses: {
      200: json(z.object({ git_webhook_secret: z.string(), git_webhook_url: z.string() }), "The new secret: put it in the git provider's webhook settings"),
      ...errorResponsesFor("app_not_found", "git_not_configured"),
    },
  }),
  async (c) => {
    const { app: row, project } = await loadApp(c, c.req.valid("param").appId, "deploy");
    if (!row.gitRepoUrl) throw conflict("git_not_configured", "The app has no git repository: set git_repo_url (PUT /apps/{appId}) first");
    const { secret, ciphertext } = await newWebhookSecret(c.env);
    await withAlso(c.var.db, c.var.db.update(appTable).set({ gitWebhookSecretCiphertext: ciphertext, updatedAt: new Date() }).where(eq(appTable.id, row.id)), [
      ...appEventOf(c.var.db, "updated", "Settings changed: git_webhook_secret", { fields: ["git_webhook_secret"] })(row.id),
      ...audited(c, () => ({ orgId: project.orgId, action: "app.git_webhook_secret.renew", targetType: "app", targetId: row.id }))(row.id),
    ]);
    return c.json({ git_webhook_secret: secret, git_webhook_url: presentApp(c.env, row).git_webhook_url ?? "" }, 200);
  },
);

export default router;
