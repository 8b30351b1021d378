/** How many replicas each app runs, and the control plane's scaling bookkeeping (services/replicas.ts). */
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { app } from "./apps";
import { updatedAt } from "./columns";

export const appReplicas = sqliteTable("app_replicas", {
  appId: text("app_id")
    .primaryKey()
    .references(() => app.id, { onDelete: "cascade" }),
  /** The count the control plane last asked the host for (an `app.scale` or a deploy). */
  desired: integer("desired").notNull().default(1),
  /** Replicas running as the host last reported them; null until it has. */
  running: integer("running"),
  /** When the count last changed: CPU samples from before it were of another count. */
  changedAt: integer("changed_at", { mode: "timestamp_ms" }),
  /** When the CPU last changed it: the cool-down counts from here. */
  autoChangedAt: integer("auto_changed_at", { mode: "timestamp_ms" }),
  /** The `app.scale` job under way, if any: no second one is asked for meanwhile. */
  jobId: text("job_id"),
  jobAt: integer("job_at", { mode: "timestamp_ms" }),
  updatedAt: updatedAt(),
});
