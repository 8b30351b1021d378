/**
 * An app's running container, asked of its host's agent as it is now:
 * Dockup's `GET /apps/{appId}/logs?tail=N` and `GET /apps/{appId}/stats`.
 * The agent must hold its socket; otherwise 503 `host_unreachable`.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createRouter } from "../app";
import { hostMailbox, projectScope, projectJobs } from "../durable/clients";
import type { AppEnv } from "../env";
import { ApiError, errorResponsesFor } from "../lib/errors";
import type { RpcMethod } from "../protocol/agent";
import { statsHistory } from "../services/app-reports";
import { AppParams, loadApp } from "./apps/index";
import { json } from "./schemas";

const router = createRouter();
const tags = ["Apps"];

const LogLine = z
  .object({ time: z.string().openapi({ description: "ISO 8601" }), stream: z.enum(["stdout", "stderr"]), text: z.string() })
  .openapi("AppLogLine");

const Stats = z
  .object({ cpu_percent: z.number(), memory_mb: z.number(), memory_max_mb: z.number(), net_rx_bytes: z.number(), net_tx_bytes: z.number() })
  .openapi("AppStats");

/** Asks the host's agent, and checks the answer's shape: an agent is not trusted to answer well. */
async function ask<T extends z.ZodType>(c: Context<AppEnv>, hostId: string, method: RpcMethod, params: { app_id: string; tail?: number }, shape: T): Promise<z.infer<T>> {
  const reply = await hostMailbox(c.env, hostId).rpc(method, params);
  if (reply.ok) {
    const parsed = shape.safeParse(JSON.parse(reply.json));
    if (!parsed.success) throw new ApiError("agent_error", "The host's agent answered in an unexpected shape; is it up to date?");
    return parsed.data;
  }
  if (reply.code === "failed") throw new ApiError("agent_error", reply.error);
  throw new ApiError("host_unreachable", reply.error);
}

router.openapi(
  createRoute({
    method: "get",
    path: "/apps/{appId}/logs",
    tags,
    summary: "The app container's last log lines, stdout and stderr kept apart",
    request: {
      params: AppParams,
      query: z.object({ tail: z.coerce.number().int().min(1).max(5000).default(100).openapi({ param: { name: "tail", in: "query" } }) }),
    },
    responses: { 200: json(z.array(LogLine), "Log lines, oldest first"), ...errorResponsesFor("app_not_found", "host_unreachable", "agent_error") },
  }),
  async (c) => {
    const { app: row } = await loadApp(c, c.req.valid("param").appId, "project:read");
    if (!row.hostId) return c.json([], 200);
    const lines = await ask(c, row.hostId, "app.logs", { app_id: row.id, tail: c.req.valid("query").tail }, z.array(LogLine));
    return c.json(lines, 200);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/apps/{appId}/stats",
    tags,
    summary: "The app container's CPU, memory and network use now",
    request: { params: AppParams },
    responses: {
      200: json(Stats, "A sample"),
      ...errorResponsesFor("app_not_found", "not_running", "host_unreachable", "agent_error"),
    },
  }),
  async (c) => {
    const { app: row } = await loadApp(c, c.req.valid("param").appId, "project:read");
    if (!row.hostId) throw new ApiError("not_running", "This app has not been deployed yet");
    const stats = await ask(c, row.hostId, "app.stats", { app_id: row.id }, Stats.nullable());
    if (!stats) throw new ApiError("not_running", "This app has no running container");
    // A read writes nothing: the app's cpu_usage and memory_usage come from the host's 30 s sweep.
    return c.json(stats, 200);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/apps/{appId}/stats/history",
    tags,
    summary: "The app's 30-second samples over the last `minutes` (kept 24 hours)",
    request: {
      params: AppParams,
      query: z.object({ minutes: z.coerce.number().int().min(1).max(1440).default(60).openapi({ param: { name: "minutes", in: "query" } }) }),
    },
    responses: { 200: json(z.array(Stats.extend({ time: z.string(), cpu_pct: z.number(), net_rx_mb: z.number(), net_tx_mb: z.number(), created_at: z.string(), replicas: z.number().int().openapi({ description: "Replicas the sample sums over" }) }).openapi("AppStatsSample")), "Samples, oldest first"), ...errorResponsesFor("app_not_found") },
  }),
  async (c) => {
    const { app: row } = await loadApp(c, c.req.valid("param").appId, "project:read");
    return c.json(await statsHistory(c.var.db, row.id, c.req.valid("query").minutes), 200);
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/apps/{appId}/logs/stream",
    tags,
    summary: "WebSocket: the app's log lines as they arrive, `{stream, line}`",
    description:
      "Upgrade to a WebSocket; pass the credential as `?token=` (or cookie or bearer). The last `tail` lines come first, then " +
      "each new line as `{stream, line, time}`, once and in order. With `batch=1` a message carries many lines instead: " +
      "`{lines: [{stream, line, time}, …]}`. The host's agent follows the container only while someone listens, and a " +
      "stream survives the agent reconnecting without losing or repeating lines. A connection that falls more than 5 s " +
      "behind the app skips its oldest lines and is told how many: a `{stream: \"stderr\", line, time, skipped}` message " +
      "(with `batch=1`, `skipped` in the next message); GET /apps/{appId}/logs has them.",
    request: {
      params: AppParams,
      query: z.object({
        tail: z.coerce.number().int().min(0).max(5000).default(100).openapi({ param: { name: "tail", in: "query" } }),
        batch: z.enum(["0", "1", "true", "false"]).optional().openapi({ param: { name: "batch", in: "query" }, description: "Many lines per message" }),
      }),
    },
    responses: { 101: { description: "Switching to the WebSocket" }, ...errorResponsesFor("app_not_found", "upgrade_required") },
  }),
  async (c) => {
    const { app: row } = await loadApp(c, c.req.valid("param").appId, "project:read");
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new ApiError("upgrade_required", "This endpoint is a WebSocket; connect with an Upgrade: websocket request");
    }
    const url = new URL(c.req.url);
    const scope = projectScope(row.projectId);
    const { tail, batch } = c.req.valid("query");
    url.search = new URLSearchParams({ app: row.id, host: row.hostId ?? "", scope, tail: String(tail), batch: batch === "1" || batch === "true" ? "1" : "0" }).toString();
    return projectJobs(c.env, scope).fetch(new Request(url, c.req.raw));
  },
);

export default router;
