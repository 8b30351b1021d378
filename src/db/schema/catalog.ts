/** Suble's catalog: compute plans, OS images and one-click apps, seeded by a migration. */
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** Compute plans an instance is ordered with. Seeded by a migration; `active` ones are offered. */
export const plan = sqliteTable(
  "plan",
  {
    id: text("id").primaryKey(),
    code: text("code").notNull().unique(),
    name: text("name").notNull(),
    family: text("family").notNull(),
    vcpu: integer("vcpu").notNull(),
    memoryMb: integer("memory_mb").notNull(),
    diskGb: integer("disk_gb").notNull(),
    networkMbps: integer("network_mbps").notNull(),
    priceMonthlyOre: integer("price_monthly_ore").notNull(),
    priceHourlyOre: integer("price_hourly_ore").notNull(),
    sort: integer("sort").notNull(),
    active: integer("active", { mode: "boolean" }).notNull().default(true),
  },
  (t) => [index("plan_active_sort_idx").on(t.active, t.sort)],
);

/** OS images an instance is installed from; each is a VM template of that name on the Proxmox nodes. */
export const osImage = sqliteTable(
  "os_image",
  {
    id: text("id").primaryKey(),
    family: text("family").notNull(),
    version: text("version").notNull(),
    displayName: text("display_name").notNull(),
    protocol: text("protocol").$type<"ssh" | "rdp">().notNull(),
    defaultUser: text("default_user").notNull(),
    minDiskGb: integer("min_disk_gb").notNull(),
    hasGuestAgent: integer("has_guest_agent", { mode: "boolean" }).notNull(),
    /** The VM template's name on a node (clone source). */
    template: text("template").notNull(),
    active: integer("active", { mode: "boolean" }).notNull().default(true),
  },
  (t) => [index("os_image_family_idx").on(t.family, t.version)],
);

/** One-click apps (Suble's `/apps`, served at `/catalog/apps`): an image plus what is installed on it. */
export const catalogApp = sqliteTable(
  "catalog_app",
  {
    seq: integer("seq").primaryKey({ autoIncrement: true }),
    id: text("id").notNull(),
    slug: text("slug").notNull(),
    version: text("version").notNull(),
    name: text("name").notNull(),
    description: text("description").notNull(),
    logo: text("logo"),
    category: text("category").notNull(),
    minVcpu: integer("min_vcpu").notNull(),
    minMemoryMb: integer("min_memory_mb").notNull(),
    minDiskGb: integer("min_disk_gb").notNull(),
    imageFamily: text("image_family").notNull(),
    imageVersion: text("image_version").notNull(),
    active: integer("active", { mode: "boolean" }).notNull().default(true),
  },
  (t) => [index("catalog_app_slug_idx").on(t.slug, t.active)],
);
