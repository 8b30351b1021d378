/** The Worker: wires middleware and routes, the queue consumer and the Durable Objects; no logic lives here. */
import { bodyLimit } from "hono/body-limit";
import { createApp } from "./app";
import { authenticate, authOf, forgetCredentialsAfterWrites, requestContext } from "./auth/middleware";
import { limitBetterAuth } from "./auth/rate-limits";
import { auditBetterAuthTwoFactor } from "./auth/two-factor-audit";
import { cachedConfigProblems, isLocal } from "./config";
import type { Env } from "./env";
import { handleQueue } from "./jobs/queue";
import { errorJson } from "./lib/errors";
import { apiV1 } from "./routes";
import devRoutes from "./routes/dev";
import devpocketDevRoutes from "./routes/devpocket/dev";

const app = createApp();

app.use("*", requestContext);
// A deployment missing its secrets or public settings serves nothing (see config.ts).
app.use("*", async (c, next) => {
  const problems = cachedConfigProblems(c.env);
  if (problems.length) return errorJson(c, "misconfigured", "This Berth deployment is not configured yet", { problems });
  await next();
});

// better-auth's own endpoints, for the SPA's better-auth client, in better-auth's own error format.
app.use(
  "/api/auth/*",
  bodyLimit({
    maxSize: 64 * 1024,
    onError: (c) => c.json({ code: "PAYLOAD_TOO_LARGE", message: "The request body may be at most 64 KiB" }, 413),
  }),
);
app.use("/api/auth/*", limitBetterAuth);
app.use("/api/auth/two-factor/*", auditBetterAuthTwoFactor);
app.on(["GET", "POST"], "/api/auth/*", (c) => authOf(c).handler(c.req.raw));

// DevPocket's clients put `/api/` before every path on an origin-only base: with the base
// `…/api/v1` they call `/api/v1/api/…`, which is the same route as `/api/v1/…`.
app.all("/api/v1/api/*", (c) => {
  const url = new URL(c.req.url);
  url.pathname = url.pathname.replace(/^\/api\/v1\/api\//, "/api/v1/");
  return app.fetch(new Request(url, c.req.raw), c.env, c.executionCtx);
});

// The mail outbox exists only in local development and tests.
app.use("/api/v1/dev/*", async (c, next) => {
  if (!(isLocal(c.env) && c.env.MAIL_TRANSPORT === "outbox")) return c.notFound();
  await next();
});
app.route("/api/v1", devRoutes);

app.use("/api/v1/*", forgetCredentialsAfterWrites, authenticate);
// DevPocket's test-data utilities: behind the same local-only gate as the outbox, and signed in.
app.route("/api/v1", devpocketDevRoutes);
app.route("/api/v1", apiV1());

export default {
  fetch: app.fetch,
  queue: async (batch, env) => {
    if (cachedConfigProblems(env).length) throw new Error("refusing to run: configuration incomplete");
    await handleQueue(batch, env);
  },
} satisfies ExportedHandler<Env>;

export { HostDO } from "./durable/host-do";
export { ProjectDO } from "./durable/project-do";
export { TerminalDO } from "./durable/terminal-do";
