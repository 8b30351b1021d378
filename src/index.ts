/** The Worker: wires middleware and routes; no logic lives here. */
import { createApp } from "./app";
import { authenticate, authOf, enforceAuthRateLimit, requestContext } from "./auth/middleware";
import { apiV1 } from "./routes";

const app = createApp();
app.use("*", requestContext);

// better-auth's own endpoints, for the SPA's better-auth client.
app.use("/api/auth/sign-in/*", (c, next) => enforceAuthRateLimit(c, "better-auth-signin", "-").then(next));
app.use("/api/auth/sign-up/*", (c, next) => enforceAuthRateLimit(c, "better-auth-signup", "-").then(next));
app.on(["GET", "POST"], "/api/auth/*", (c) => authOf(c).handler(c.req.raw));

app.use("/api/v1/*", authenticate);
app.route("/api/v1", apiV1());

export default app;
