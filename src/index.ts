/** The Worker: wires middleware and routes, the queue consumer and the Durable Objects; no logic lives here. */
import { createApp } from "./app";
import { authenticate, authOf, enforceAuthRateLimit, requestContext } from "./auth/middleware";
import type { Env } from "./env";
import { handleQueue } from "./jobs/queue";
import { apiV1 } from "./routes";

/** The account a better-auth sign-in or sign-up names (email or username), read from a copy of the body. */
async function accountNamed(request: Request): Promise<string> {
  const body = (await request.clone().json().catch(() => null)) as { email?: unknown; username?: unknown } | null;
  const name = body?.email ?? body?.username;
  return typeof name === "string" ? name.slice(0, 254) : "-";
}

const app = createApp();
app.use("*", requestContext);

// better-auth's own endpoints, for the SPA's better-auth client.
app.use("/api/auth/sign-in/*", async (c, next) => {
  await enforceAuthRateLimit(c, "better-auth-signin", await accountNamed(c.req.raw));
  await next();
});
app.use("/api/auth/sign-up/*", async (c, next) => {
  await enforceAuthRateLimit(c, "better-auth-signup", await accountNamed(c.req.raw));
  await next();
});
app.on(["GET", "POST"], "/api/auth/*", (c) => authOf(c).handler(c.req.raw));

app.use("/api/v1/*", authenticate);
app.route("/api/v1", apiV1());

export default {
  fetch: app.fetch,
  queue: (batch, env) => handleQueue(batch, env),
} satisfies ExportedHandler<Env>;

export { HostDO } from "./durable/host-do";
export { ProjectDO } from "./durable/project-do";
