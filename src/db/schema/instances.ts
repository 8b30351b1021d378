/** Suble's instances: VMs on the org's Proxmox nodes, and each instance's activity feed. */
import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { user } from "./auth";
import { createdAt, updatedAt } from "./columns";
import { host } from "./hosts";
import { org, project } from "./tenancy";

/**
 * An instance's lifecycle. `queued` until its host starts the create job, `provisioning`
 * while it runs; `resizing`, `rebuilding` and `deleting` while those jobs run; `error` when
 * a create or rebuild failed. `running` and `stopped` are the VM's power state at rest.
 */
export const INSTANCE_STATUSES = [
  "queued", "provisioning", "installing", "running", "stopped", "resizing", "rebuilding", "deleting", "error", "deleted",
] as const;
export type InstanceStatus = (typeof INSTANCE_STATUSES)[number];

export const POWER_STATES = ["running", "stopped", "unknown"] as const;
export type PowerState = (typeof POWER_STATES)[number];

export const BACKUP_TIERS = ["none", "basic", "extended"] as const;
export type BackupTier = (typeof BACKUP_TIERS)[number];

export const instance = sqliteTable(
  "instance",
  {
    id: text("id").primaryKey(),
    projectId: text("project_id")
      .notNull()
      .references(() => project.id, { onDelete: "cascade" }),
    orgId: text("org_id")
      .notNull()
      .references(() => org.id, { onDelete: "cascade" }),
    /** The hostname: one lowercase RFC 1123 label, unique among live instances of the project. */
    name: text("name").notNull(),
    status: text("status").$type<InstanceStatus>().notNull().default("queued"),
    powerState: text("power_state").$type<PowerState>().notNull().default("unknown"),
    backupTier: text("backup_tier").$type<BackupTier>().notNull().default("none"),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    /** Plan code (`bxs-2-4`); it changes when a resize succeeds. */
    planCode: text("plan_code").notNull(),
    /** The OS image (`img_…`) it was installed from (or last rebuilt from). */
    imageId: text("image_id"),
    /** Set once one-click apps can be installed (Suble's `source.app`). */
    appSlug: text("app_slug"),
    /** The Proxmox node (host) it was placed on, its node name and VM id there, as the create job reported them. */
    hostId: text("host_id").references(() => host.id, { onDelete: "set null" }),
    node: text("node"),
    vmid: integer("vmid"),
    ipv4: text("ipv4"),
    /** AES-GCM ciphertext (src/lib/secrets.ts) of the root password, shown until acknowledged, then cleared. */
    rootPasswordCiphertext: text("root_password_ciphertext"),
    /**
     * AES-GCM ciphertext of the password the open job must set (create, rebuild, password reset); the
     * agent fetches it for its lease and it is cleared when that job ends. Never in a job payload.
     */
    jobPasswordCiphertext: text("job_password_ciphertext"),
    /** SSH public keys put on the VM at create or rebuild (Suble's `ssh_keys_snapshot`). */
    sshKeys: text("ssh_keys", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    /** Private network ids asked for at create; attached once networks exist. */
    networks: text("networks", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    /** The job working on the instance now (its progress is shown on the instance), cleared when it ends. */
    activeJobId: text("active_job_id"),
    activeJobType: text("active_job_type"),
    createdBy: text("created_by").references(() => user.id, { onDelete: "set null" }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    deletedAt: integer("deleted_at", { mode: "timestamp_ms" }),
  },
  (t) => [
    // A deleted instance frees its name (and one being deleted keeps it until the VM is gone).
    uniqueIndex("instance_project_name_live_uq").on(t.projectId, t.name).where(sql`deleted_at IS NULL`),
    index("instance_project_idx").on(t.projectId, t.createdAt),
    index("instance_host_idx").on(t.hostId),
  ],
);

/** The instance's activity feed (Suble's `/events`), newest first; `seq` orders it and backs the cursor. */
export const instanceEvent = sqliteTable(
  "instance_event",
  {
    seq: integer("seq").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    instanceId: text("instance_id")
      .notNull()
      .references(() => instance.id, { onDelete: "cascade" }),
    /** `create.requested`, `create.succeeded`, `power.reboot.requested`, `resize.failed`, … */
    type: text("type").notNull(),
    message: text("message").notNull(),
    /** Facts about the event; never a secret. */
    meta: text("meta", { mode: "json" }).$type<Record<string, unknown>>(),
    /** Who asked for it (null for what the host reported). */
    userId: text("user_id").references(() => user.id, { onDelete: "set null" }),
    createdAt: createdAt(),
  },
  (t) => [index("instance_event_instance_idx").on(t.instanceId, t.seq)],
);
