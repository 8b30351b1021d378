/** The Worker: wires middleware and routes, the queue consumer and the Durable Objects; no logic lives here. */
import { bodyLimit } from "hono/body-limit";
import { createApp } from "./app";
import { authenticate, authOf, requestContext } from "./auth/middleware";
import { limitBetterAuth } from "./auth/rate-limits";
import type { Env } from "./env";
import { handleQueue } from "./jobs/queue";
import { apiV1 } from "./routes";

const app = createApp();
app.use("*", requestContext);

// better-auth's own endpoints, for the SPA's better-auth client, in better-auth's own error format.
app.use(
  "/api/auth/*",
  bodyLimit({
    maxSize: 64 * 1024,
    onError: (c) => c.json({ code: "PAYLOAD_TOO_LARGE", message: "The request body may be at most 64 KiB" }, 413),
  }),
);
app.use("/api/auth/*", limitBetterAuth);
app.on(["GET", "POST"], "/api/auth/*", (c) => authOf(c).handler(c.req.raw));

app.use("/api/v1/*", authenticate);
app.route("/api/v1", apiV1());

export default {
  fetch: app.fetch,
  queue: (batch, env) => handleQueue(batch, env),
} satisfies ExportedHandler<Env>;

export { HostDO } from "./durable/host-do";
export { ProjectDO } from "./durable/project-do";
