/** Named public shapes shared by several route files; each is what a presenter returns. */
import { z } from "@hono/zod-openapi";
import { OPEN_STATES, TERMINAL_STATES } from "../jobs/states";
import { displayTextProblem } from "../lib/text";

export const Ok = z.object({ ok: z.boolean() }).openapi("Ok");

export const User = z
  .object({
    id: z.string().openapi({ example: "usr_8x2k9d0a1b2c3d4e" }),
    uid: z.string(),
    email: z.string(),
    name: z.string().nullable(),
    fullname: z.string().nullable(),
    username: z.string().nullable(),
    emailVerified: z.boolean(),
    title: z.string().nullable(),
    timezone: z.string().nullable(),
    country: z.string().nullable(),
    language: z.string().nullable(),
    preferences: z.record(z.string(), z.unknown()).nullable(),
    mfaEnabled: z.boolean(),
    role: z.string(),
    createdAt: z.string(),
    created_at: z.string(),
  })
  .openapi("User");

export const Org = z
  .object({
    id: z.string().openapi({ example: "org_3kf9d0a1b2c3d4e5" }),
    slug: z.string(),
    name: z.string(),
    planId: z.string(),
    residency: z.string(),
    defaultRegion: z.string(),
    ipAllowlist: z.array(z.string()),
    webhookUrl: z.string().nullable(),
    status: z.string(),
    personal: z.boolean(),
    createdAt: z.string(),
  })
  .openapi("Org");

export const Project = z
  .object({
    id: z.string().openapi({ example: "prj_8kd2mq4zr1ab0c9d" }),
    uid: z.string(),
    slug: z.string(),
    name: z.string(),
    org_id: z.string(),
    orgId: z.string(),
    org_slug: z.string().optional(),
    status: z.enum(["active", "paused"]),
    environment: z.string(),
    region: z.string().nullable(),
    primaryRegion: z.string().nullable(),
    category: z.string(),
    role: z.string().optional(),
    instanceCount: z.number(),
    memberCount: z.number().optional(),
    createdAt: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Project");

export const ApiKey = z
  .object({
    id: z.string().openapi({ example: "apk_a1b2c3d4e5f6g7h8" }),
    uid: z.string(),
    name: z.string(),
    prefix: z.string(),
    key_prefix: z.string(),
    scope: z.enum(["full", "deploy", "read-only"]),
    permissions: z.number().int().optional(),
    org_id: z.string().nullable(),
    project_id: z.string().nullable(),
    created_by: z.string().optional().openapi({ description: "Org keys: the person the key answers to. It never has more access than they have now." }),
    expires_at: z.string().nullable(),
    expiresAt: z.string().nullable(),
    last_used_at: z.string().nullable(),
    lastUsedAt: z.string().nullable(),
    created_at: z.string(),
    createdAt: z.string(),
    key: z.string().optional().openapi({ description: "The secret: returned once, when the key is created." }),
    token: z.string().optional(),
  })
  .openapi("ApiKey");

/** Common field rules, written once. */
export const email = z.string().trim().toLowerCase().pipe(z.email().max(254));
export const password = z.string().min(8).max(128);
/** A name others see (person, org, project, app, host): not blank, no control or text-direction characters. */
/** The regions an org or project may name (backlex's list). */
export const REGIONS = ["ist", "fra", "ams", "lhr", "sjc", "iad", "sin", "syd"] as const;

export const name = (max: number, min = 1) =>
  z
    .string()
    .trim()
    .min(min)
    .max(max)
    .refine((v) => displayTextProblem(v, max) === null, { message: "must not contain control or text-direction characters" });
/** Optional free text others see (a title, a timezone): may be empty, same characters as a name. */
export const displayText = (max: number) =>
  z
    .string()
    .trim()
    .max(max)
    .refine((v) => v === "" || displayTextProblem(v, max) === null, { message: "must not contain control or text-direction characters" });
export const slugParam = (param: string) =>
  z.string().min(1).max(100).openapi({ param: { name: param, in: "path" } });

/** `responses` entry for a JSON body. */
export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});

/** `request.body` for a required JSON body. */
export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  body: { content: { "application/json": { schema } }, required: true },
});

export const OrgSlugParams = z.object({ slug: slugParam("slug") });

export const JobProgressSchema = z
  .object({ step: z.number(), total: z.number(), percent: z.number(), message: z.string() })
  .openapi("JobProgress");

export const Job = z
  .object({
    uid: z.string().openapi({ example: "job_8x2kf0a9c1d2e3f4" }),
    id: z.string(),
    type: z.string().openapi({ example: "host.exec" }),
    status: z.enum([...OPEN_STATES, ...TERMINAL_STATES]),
    instance: z.string().nullable(),
    host_id: z.string(),
    progress: JobProgressSchema.nullable(),
    error: z.string().nullable(),
    result: z.record(z.string(), z.unknown()).nullable(),
    attempts: z.number().int(),
    created_at: z.string(),
    dispatched_at: z.string().nullable(),
    started_at: z.string().nullable(),
    finished_at: z.string().nullable(),
    deadline_at: z.string().openapi({ description: "Past this time an unfinished job fails with a reason." }),
  })
  .openapi("Job");

export const JobLogLine = z
  .object({
    time: z.string(),
    stream: z.enum(["stdout", "stderr"]),
    offset: z.number().int().openapi({ description: "Byte offset of `text` within its stream." }),
    text: z.string(),
  })
  .openapi("JobLogLine");

/** `?timeout=` of the long-poll endpoints, in seconds (at most 60). */
export const WaitQuery = z.object({
  timeout: z.coerce.number().int().min(0).max(60).default(30).openapi({ param: { name: "timeout", in: "query" }, description: "Seconds to wait, at most 60" }),
});
