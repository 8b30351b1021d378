/** Sleep on idle: which apps their host has put to sleep, and when they last got a request. */
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { app } from "./apps";
import { updatedAt } from "./columns";

/** One row per app whose host has reported on its sleep; no row is awake and never reported. */
export const appSleep = sqliteTable("app_sleep", {
  appId: text("app_id")
    .primaryKey()
    .references(() => app.id, { onDelete: "cascade" }),
  /** Its containers stopped by the host after `sleep_after_minutes` without a request; the next request wakes it. */
  sleeping: integer("sleeping", { mode: "boolean" }).notNull().default(false),
  /** When it last went to sleep or woke. */
  changedAt: integer("changed_at", { mode: "timestamp_ms" }),
  /** The last request Caddy logged for the app's host name, as its agent saw it. */
  lastRequestAt: integer("last_request_at", { mode: "timestamp_ms" }),
  updatedAt: updatedAt(),
});
