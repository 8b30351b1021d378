/**
 * DevPocket's per-user records: the user's own AI provider key (encrypted), the devices
 * that sync, the synced items with their versions, the conflicts kept for the user to
 * resolve and a log of sync operations for the stats. Nothing here belongs to an org:
 * every query names the user. Subscription plans are the catalog of DevPocket's tiers.
 */
import { sql } from "drizzle-orm";
import { index, integer, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { user } from "./auth";
import { createdAt, updatedAt } from "./columns";

/** The user's OpenRouter (or other OpenAI-compatible) key, encrypted with ENCRYPTION_KEY (lib/secrets.ts). */
export const aiKey = sqliteTable("ai_key", {
  userId: text("user_id")
    .primaryKey()
    .references(() => user.id, { onDelete: "cascade" }),
  encrypted: text("encrypted").notNull(),
  /** The key's last four characters, safe to show so a user knows which key is stored. */
  hint: text("hint").notNull(),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

export const DEVICE_TYPES = ["ios", "android", "web", "desktop", "other"] as const;

export const device = sqliteTable(
  "device",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    /** The client's own identifier for the device. */
    deviceId: text("device_id").notNull(),
    deviceType: text("device_type").notNull().default("other"),
    deviceName: text("device_name"),
    lastActiveAt: integer("last_active_at", { mode: "timestamp_ms" }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("device_user_device_uq").on(t.userId, t.deviceId)],
);

export const SYNC_DATA_TYPES = ["ssh_profiles", "sessions", "commands", "settings", "ai_preferences"] as const;
export type SyncDataType = (typeof SYNC_DATA_TYPES)[number];

export const syncItem = sqliteTable(
  "sync_item",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    dataType: text("data_type").$type<SyncDataType>().notNull(),
    /** The client's id for the item (`settings` and `ai_preferences` are one item each). */
    itemKey: text("item_key").notNull(),
    data: text("data", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    /** Starts at 1, one more on every accepted write. A write names the version it was based on. */
    version: integer("version").notNull().default(1),
    deletedAt: integer("deleted_at", { mode: "timestamp_ms" }),
    updatedByDevice: text("updated_by_device"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("sync_item_user_key_uq").on(t.userId, t.dataType, t.itemKey), index("sync_item_user_updated_idx").on(t.userId, t.updatedAt)],
);

export const syncConflict = sqliteTable(
  "sync_conflict",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    dataType: text("data_type").$type<SyncDataType>().notNull(),
    itemKey: text("item_key").notNull(),
    conflictType: text("conflict_type").$type<"version_mismatch" | "concurrent_modification">().notNull(),
    /** What the uploading device sent. */
    localData: text("local_data", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    localDeviceId: text("local_device_id"),
    localVersion: integer("local_version"),
    /** What the server held when the upload arrived. */
    remoteData: text("remote_data", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    remoteDeviceId: text("remote_device_id"),
    remoteVersion: integer("remote_version").notNull(),
    remoteUpdatedAt: integer("remote_updated_at", { mode: "timestamp_ms" }).notNull(),
    resolution: text("resolution").$type<"local" | "remote" | "merge">(),
    resolvedAt: integer("resolved_at", { mode: "timestamp_ms" }),
    createdAt: createdAt(),
  },
  (t) => [index("sync_conflict_user_idx").on(t.userId, t.resolvedAt)],
);

/** One row per sync call, for `GET /sync/stats`. */
export const syncEvent = sqliteTable(
  "sync_event",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    deviceId: text("device_id"),
    direction: text("direction").$type<"pull" | "push">().notNull(),
    outcome: text("outcome").$type<"ok" | "conflict">().notNull(),
    conflicts: integer("conflicts").notNull().default(0),
    createdAt: createdAt(),
  },
  (t) => [index("sync_event_user_idx").on(t.userId, t.createdAt)],
);

/** DevPocket's subscription tiers; an org's `plan_id` names one. */
export const subscriptionPlan = sqliteTable("subscription_plan", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  /** US dollars a month. */
  price: real("price").notNull(),
  features: text("features", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
  position: integer("position").notNull().default(0),
  active: integer("active", { mode: "boolean" }).notNull().default(true),
  createdAt: createdAt(),
});
