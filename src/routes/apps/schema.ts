/** Dockup's app shapes and input rules, written once: what the app routes take and answer. */
import { z } from "@hono/zod-openapi";
import { APP_STATUSES, DEPLOYMENT_STATUSES } from "../../db/schema";
import { SLUG_PATTERN } from "../../lib/slug";
import { APP_SLUG_MAX, type AppSettings } from "../../services/apps";
import { gitBranchProblem, gitRepoUrlProblem } from "../../services/git-builds";
import { name, slugParam } from "../schemas";

// ---------------------------------------------------------------- shapes

export const AppSchema = z
  .object({
    id: z.string().openapi({ example: "app_8kd2mq4zr1ab0c9d" }),
    name: z.string(),
    slug: z.string().openapi({ example: "web" }),
    project_id: z.string(),
    image: z.string().openapi({ example: "nginx:alpine" }),
    internal_port: z.number().int(),
    env_vars: z.record(z.string(), z.string()).openapi({
      description: "The variables' names, each with a masked value: values are write-only.",
      example: { DATABASE_URL: "••••••" },
    }),
    command: z.string().nullable(),
    cpu_limit: z.number(),
    memory_limit: z.number().int(),
    gpu_enabled: z.boolean(),
    git_repo_url: z.string().nullable(),
    git_branch: z.string().nullable(),
    git_provider: z.enum(["github", "custom"]).nullable(),
    git_webhook_url: z.string().nullable().openapi({
      description: "With a repository: where the git provider sends push events (GitHub's `push`, signed with the app's webhook secret in `X-Hub-Signature-256`)",
      example: "https://berth.example.com/api/v1/apps/app_8kd2mq4zr1ab0c9d/git/webhook",
    }),
    git_webhook_secret: z.string().optional().openapi({
      description: "Shown once, in the answer that made it (the app got a repository, or the secret was renewed): the push webhook's secret. Never returned again.",
    }),
    status: z.enum(["running", "stopped", "paused", "restarting", "starting"]).openapi({
      description: "Dockup's container status; an app never deployed, or whose deploy failed, is `stopped`.",
    }),
    state: z.enum(APP_STATUSES).openapi({ description: "Berth's own state, which tells `created` and `failed` from `stopped`." }),
    sleeping: z.boolean().optional().openapi({
      description:
        "In the answers that read the app (its own, the project's list, create and update; not those of actions, which wake it): asleep after `sleep_after_minutes` without a request (see `/apps/{appId}/autoscale`). Its containers are stopped, so `status` is `stopped`; the next request through its URL wakes it.",
    }),
    cpu_usage: z.number().nullable().openapi({ description: "Percent, as last reported" }),
    memory_usage: z.number().nullable().openapi({ description: "MB, as last reported" }),
    url: z.string().openapi({ example: "http://web-app.example.com" }),
    host_id: z.string().nullable(),
    container_id: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("App");

export const DeploymentSchema = z
  .object({
    id: z.string().openapi({ example: "dep_8kd2mq4zr1ab0c9d" }),
    app_id: z.string(),
    image: z.string(),
    status: z.enum(DEPLOYMENT_STATUSES),
    container_id: z.string().nullable(),
    commit_sha: z.string().nullable().openapi({ description: "A build from git: the commit built" }),
    error: z.string().nullable(),
    job_id: z.string().nullable(),
    started_at: z.string().nullable(),
    finished_at: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi("Deployment");

export const AppEventSchema = z
  .object({
    id: z.string().openapi({ example: "aev_8kd2mq4zr1ab0c9d" }),
    type: z.string().openapi({ example: "deploy", description: "`created`, `updated`, `deploy`, `error`, `status`" }),
    message: z.string(),
    data: z.record(z.string(), z.unknown()).nullable(),
    status: z.string().nullable().openapi({ description: "Dockup's name for `data.status`" }),
    details: z.record(z.string(), z.unknown()).nullable().openapi({ description: "Dockup's name for `data`" }),
    created_at: z.string(),
  })
  .openapi("AppEvent");

export const ContainerState = z
  .object({ status: AppSchema.shape.status, container_id: z.string(), host_id: z.string().nullable() })
  .nullable()
  .openapi("ContainerState", { description: "The app's container, or null while it has none" });

// ---------------------------------------------------------------- input rules

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_ENV_VARS = 100;
const MAX_ENV_VALUE_BYTES = 32 * 1024;
const MAX_ENV_TOTAL_BYTES = 512 * 1024;
const bytes = (s: string) => new TextEncoder().encode(s).length;
const noNul = (s: string) => !s.includes("\0");
const noSpace = /^\S+$/;

const envVars = z
  .record(
    z.string().max(256).regex(ENV_KEY, "env var names are letters, digits and '_', not starting with a digit"),
    z
      .string()
      .refine((v) => bytes(v) <= MAX_ENV_VALUE_BYTES, "an env var value is at most 32 KiB")
      .refine(noNul, "an env var value cannot contain NUL"),
  )
  .refine((v) => Object.keys(v).length <= MAX_ENV_VARS, `at most ${MAX_ENV_VARS} env vars`)
  .refine(
    (v) => Object.entries(v).reduce((n, [k, s]) => n + k.length + bytes(s), 0) <= MAX_ENV_TOTAL_BYTES,
    "env vars are at most 512 KiB in all",
  )
  .openapi({ description: "Environment variables as names and values; values are write-only", example: { DATABASE_URL: "postgres://…" } });

const image = z.string().min(1).max(512).regex(noSpace, "an image reference has no whitespace").openapi({ example: "nginx:alpine" });
const internalPort = z.number().int().min(1).max(65535);
const cpuLimit = z.number().min(0.05).max(64).openapi({ description: "CPU cores" });
const memoryLimit = z.number().int().min(16).max(262144).openapi({ description: "MB" });
const command = z.string().max(4096).refine(noNul, "a command cannot contain NUL").openapi({ description: "Overrides the image's command" });
const gitRepoUrl = z
  .string()
  .min(1)
  .max(2048)
  .superRefine((v, ctx) => {
    const problem = gitRepoUrlProblem(v);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  })
  .openapi({ description: "owner/repo for GitHub, or an http(s) URL without credentials. The app is then built from it on each deploy." });
const gitBranch = z
  .string()
  .min(1)
  .max(255)
  .superRefine((v, ctx) => {
    const problem = gitBranchProblem(v);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });
const gitProvider = z.enum(["github", "custom"]);

/** Every setting an app has, without defaults: what create and update share. */
const AppFields = z.object({
  name: name(100),
  image,
  internal_port: internalPort,
  env_vars: envVars,
  command,
  cpu_limit: cpuLimit,
  memory_limit: memoryLimit,
  gpu_enabled: z.boolean(),
  git_repo_url: gitRepoUrl,
  git_branch: gitBranch,
  git_provider: gitProvider,
});

export const CreateAppInput = AppFields.extend({
  image: image.optional().openapi({ description: "Required unless `git_repo_url` is given (then the image is built from the repository)" }),
  slug: z
    .string()
    .max(APP_SLUG_MAX)
    .regex(SLUG_PATTERN, "lowercase letters, digits and hyphens, not starting or ending with one")
    .refine((s) => !/^..--/.test(s), "a slug cannot have '--' in its third and fourth characters (reserved in DNS)")
    .optional()
    .openapi({ description: "Used in the app's host name; derived from the name when omitted. Unique across Berth." }),
  internal_port: internalPort.default(8080),
  env_vars: envVars.optional(),
  command: command.optional(),
  cpu_limit: cpuLimit.default(0.5),
  memory_limit: memoryLimit.default(512),
  gpu_enabled: z.boolean().default(false),
  git_repo_url: gitRepoUrl.optional(),
  git_branch: gitBranch.optional().openapi({ description: "Defaults to main when a repository is given" }),
  git_provider: gitProvider.optional(),
})
  .refine((v) => v.image !== undefined || v.git_repo_url !== undefined, { path: ["image"], message: "an image, or a git_repo_url to build one from" })
  .openapi("CreateAppInput");

/** Any of the settings; `null` clears the optional ones. */
export const UpdateAppInput = AppFields.partial()
  .extend({
    env_vars: envVars.optional().openapi({
      description: "Replaces every variable. A value equal to the mask (`••••••`) keeps that variable's stored value, so an app read and sent back loses nothing.",
    }),
    command: command.nullable().optional(),
    git_repo_url: gitRepoUrl.nullable().optional(),
    git_branch: gitBranch.nullable().optional(),
    git_provider: gitProvider.nullable().optional(),
  })
  .openapi("UpdateAppInput");

/** The one mapper from a request's settings to the service's. */
export function appSettings(input: z.infer<typeof UpdateAppInput>): AppSettings & { name?: string; image?: string } {
  return {
    name: input.name,
    image: input.image,
    internalPort: input.internal_port,
    envVars: input.env_vars,
    command: input.command,
    cpuLimit: input.cpu_limit,
    memoryLimit: input.memory_limit,
    gpuEnabled: input.gpu_enabled,
    gitRepoUrl: input.git_repo_url,
    gitBranch: input.git_branch,
    gitProvider: input.git_provider,
  };
}

export const ProjectAppsParams = z.object({ projectId: slugParam("projectId").openapi({ description: "Project id (prj_…)" }) });
export const AppParams = z.object({ appId: slugParam("appId").openapi({ description: "App id (app_…) or slug" }) });
export const LimitQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50).openapi({ param: { name: "limit", in: "query" }, description: "At most this many, newest first (1–200, default 50)" }),
});

