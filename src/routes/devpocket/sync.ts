/**
 * DevPocket's sync: `GET/POST /sync/data`, `GET /sync/stats`,
 * `POST /sync/conflicts/{conflict_id}/resolve`. Everything is the caller's own: another
 * user's conflict is `404` like one that does not exist. Rules in services/sync.ts.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createRouter } from "../../app";
import { requireUser } from "../../auth/access";
import { SYNC_DATA_TYPES, type SyncDataType } from "../../db/schema";
import type { AppEnv } from "../../env";
import { ApiError, errorBody, ErrorEnvelope, errorResponsesFor } from "../../lib/errors";
import {
  deviceNames,
  listDevices,
  openConflicts,
  presentConflict,
  pullItems,
  pushItems,
  recordPull,
  resolveConflict,
  syncStats,
  touchDevice,
  type UploadItem,
} from "../../services/sync";
import { json, jsonBody } from "../schemas";

const router = createRouter();

const deviceId = z.string().trim().min(1).max(200);
const deviceName = z.string().trim().min(1).max(120);
const deviceType = z.enum(["ios", "android", "web", "desktop", "other"]);

const MAX_ITEM_BYTES = 16_384;
const MAX_ITEMS = 500;
/** SSH secrets are not synced in the clear: `/ssh/profiles` keeps them encrypted. */
const SECRET_FIELDS = new Set(["password", "private_key", "privateKey", "passphrase", "api_key"]);

const Item = z
  .object({
    id: z.string().trim().min(1).max(200),
    version: z.number().int().min(0).optional().openapi({ description: "The version this device last saw (absent for a new item)" }),
    deleted: z.boolean().optional().openapi({ description: "Delete the item (kept as a tombstone for other devices)" }),
  })
  .catchall(z.unknown())
  .refine((v) => JSON.stringify(v).length <= MAX_ITEM_BYTES, `an item may be at most ${MAX_ITEM_BYTES} bytes of JSON`)
  .refine((v) => !Object.keys(v).some((k) => SECRET_FIELDS.has(k)), "secrets (password, private_key, passphrase, api_key) are not synced; store them with /ssh/profiles or PUT /ai/key")
  .openapi("SyncItemInput");
const SingleItem = z
  .object({ version: z.number().int().min(0).optional(), deleted: z.boolean().optional() })
  .catchall(z.unknown())
  .refine((v) => JSON.stringify(v).length <= MAX_ITEM_BYTES, `at most ${MAX_ITEM_BYTES} bytes of JSON`)
  .refine((v) => !Object.keys(v).some((k) => SECRET_FIELDS.has(k)), "secrets are not synced");

const UploadInput = z
  .object({
    device_id: deviceId.optional(),
    device_name: deviceName.optional(),
    device_type: deviceType.optional(),
    sync_timestamp: z.string().max(64).optional(),
    ssh_profiles: z.array(Item).max(MAX_ITEMS).optional(),
    sessions: z.array(Item).max(MAX_ITEMS).optional(),
    commands: z.array(Item).max(MAX_ITEMS).optional(),
    settings: SingleItem.optional(),
    ai_preferences: SingleItem.optional(),
  })
  .openapi("SyncUpload");

const SyncConflict = z
  .object({
    conflict_id: z.string(),
    conflict_type: z.enum(["version_mismatch", "concurrent_modification"]),
    data_type: z.enum(SYNC_DATA_TYPES),
    item_id: z.string(),
    local_data: z.record(z.string(), z.unknown()),
    remote_data: z.record(z.string(), z.unknown()),
    local_version: z.number().int().nullable(),
    remote_version: z.number().int(),
    local_timestamp: z.string(),
    remote_timestamp: z.string(),
    timestamp: z.string(),
    device_info: z.object({
      local_device_id: z.string().nullable(),
      local_device_name: z.string().nullable(),
      remote_device_id: z.string().nullable(),
      remote_device_name: z.string().nullable(),
    }),
    resolution_options: z.array(z.enum(["local", "remote", "merge"])),
    status: z.enum(["open", "resolved"]),
    resolution: z.enum(["local", "remote", "merge"]).nullable(),
  })
  .openapi("SyncConflict");

const Applied = z.array(z.object({ data_type: z.enum(SYNC_DATA_TYPES), id: z.string(), version: z.number().int(), deleted: z.boolean() }));

/** The upload's items, one list; two of the same item in one upload is a mistake, not a conflict. */
function itemsOf(input: z.infer<typeof UploadInput>): UploadItem[] {
  const items: UploadItem[] = [];
  for (const type of SYNC_DATA_TYPES) {
    const value = input[type];
    if (!value) continue;
    const list = Array.isArray(value) ? value : [{ ...value, id: type }];
    for (const raw of list) {
      const { id, version, deleted, ...data } = raw as { id: string; version?: number; deleted?: boolean } & Record<string, unknown>;
      items.push({ dataType: type, key: id, baseVersion: version, deleted: deleted === true, data });
    }
  }
  const seen = new Set<string>();
  for (const item of items) {
    const k = `${item.dataType}/${item.key}`;
    if (seen.has(k)) throw new ApiError("invalid_request", `${k} appears twice in one upload`, { issues: [{ path: item.dataType, message: `duplicate id ${item.key}` }] });
    seen.add(k);
  }
  if (items.length > MAX_ITEMS) throw new ApiError("invalid_request", `At most ${MAX_ITEMS} items an upload`);
  return items;
}

/** One sync read or write of the user's (SYNC_LIMITER: the seed's 429 "Sync rate limit exceeded"). */
async function spendSync(c: Context<AppEnv>, userId: string) {
  const { success } = await c.env.SYNC_LIMITER.limit({ key: `sync:${userId}` });
  if (!success) throw new ApiError("rate_limited", "Sync rate limit exceeded: at most 120 sync reads and writes a minute; wait and try again");
}

router.openapi(
  createRoute({
    method: "post",
    path: "/sync/data",
    tags: ["Sync"],
    summary: "Upload changes from a device",
    description:
      "Each item names the `version` it was based on. Items whose version is still current are written (their new versions in `applied`); an item another device changed since is not written but kept as a conflict: the answer is then `409` with `conflicts` (what was not in conflict is written all the same). `settings` and `ai_preferences` are one object each.",
    request: jsonBody(UploadInput),
    responses: {
      200: json(z.object({ message: z.string(), timestamp: z.string(), conflicts_detected: z.array(SyncConflict), applied: Applied }), "Uploaded"),
      ...errorResponsesFor("sync_conflict", "rate_limited"),
      409: json(
        ErrorEnvelope.extend({ message: z.string(), conflicts: z.array(SyncConflict), applied: Applied, timestamp: z.string() }),
        "`sync_conflict`: Items were changed on another device since the version they name; resolve each with `POST /sync/conflicts/{conflict_id}/resolve`.",
      ),
    },
  }),
  async (c) => {
    const userId = requireUser(c, "account:update").userId;
    await spendSync(c, userId);
    const input = c.req.valid("json");
    const items = itemsOf(input);
    if (input.device_id) await touchDevice(c.var.db, userId, { deviceId: input.device_id, deviceName: input.device_name, deviceType: input.device_type });
    const result = await pushItems(c.var.db, userId, input.device_id, items);
    const timestamp = new Date().toISOString();
    if (result.conflicts.length) {
      const names = await deviceNames(c.var.db, userId);
      const message = "Sync conflicts detected";
      return c.json(
        {
          ...errorBody("sync_conflict", `${result.conflicts.length} item(s) changed on another device since the version sent`, null, c.get("requestId")),
          message,
          conflicts: result.conflicts.map((x) => presentConflict(x, names)),
          applied: result.applied,
          timestamp,
        },
        409,
      );
    }
    return c.json({ message: "Sync data uploaded successfully", timestamp, conflicts_detected: [], applied: result.applied }, 200);
  },
);

/** `data_types=a,b` or `data_types=a&data_types=b`; `all` is every type. */
const DataTypes = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(",")).map((s) => s.trim()).filter(Boolean))
  .pipe(z.array(z.enum([...SYNC_DATA_TYPES, "all"])).min(1))
  .transform((list): SyncDataType[] => (list.includes("all") ? [...SYNC_DATA_TYPES] : [...new Set(list as SyncDataType[])]));

const PullQuery = z.object({
  data_types: DataTypes.openapi({ param: { name: "data_types", in: "query", required: true }, description: "ssh_profiles, sessions, commands, settings, ai_preferences or all; comma-separated or repeated", type: "string" }),
  device_id: deviceId.openapi({ param: { name: "device_id", in: "query", required: true } }),
  device_name: deviceName.openapi({ param: { name: "device_name", in: "query", required: true } }),
  device_type: deviceType.optional().openapi({ param: { name: "device_type", in: "query" } }),
  last_sync_timestamp: z.iso.datetime({ offset: true }).optional().openapi({ param: { name: "last_sync_timestamp", in: "query" }, description: "Only items changed after this" }),
  include_deleted: z.enum(["true", "false", "1", "0"]).optional().openapi({ param: { name: "include_deleted", in: "query" } }),
});

router.openapi(
  createRoute({
    method: "get",
    path: "/sync/data",
    tags: ["Sync"],
    summary: "Items to bring a device up to date, and the conflicts waiting for you",
    request: { query: PullQuery },
    responses: {
      200: json(
        z.object({
          data: z.record(z.string(), z.array(z.record(z.string(), z.unknown()))),
          sync_timestamp: z.string(),
          total_items: z.number().int(),
          conflicts: z.array(SyncConflict),
          device_count: z.number().int(),
          conflict_type: z.string().nullable(),
        }),
        "Sync data",
      ),
      ...errorResponsesFor("rate_limited"),
    },
  }),
  async (c) => {
    const userId = requireUser(c, "account:read").userId;
    await spendSync(c, userId);
    const q = c.req.valid("query");
    // The time is taken first, so the next pull's `last_sync_timestamp` misses nothing written meanwhile.
    const syncTimestamp = new Date();
    await touchDevice(c.var.db, userId, { deviceId: q.device_id, deviceName: q.device_name, deviceType: q.device_type });
    const includeDeleted = q.include_deleted === "true" || q.include_deleted === "1";
    const [{ data, total }, conflicts, devices, names] = await Promise.all([
      pullItems(c.var.db, userId, q.data_types, q.last_sync_timestamp ? new Date(q.last_sync_timestamp) : undefined, includeDeleted),
      openConflicts(c.var.db, userId),
      listDevices(c.var.db, userId),
      deviceNames(c.var.db, userId),
    ]);
    await recordPull(c.var.db, userId, q.device_id);
    const shown = conflicts.filter((x) => q.data_types.includes(x.dataType)).map((x) => presentConflict(x, names));
    return c.json(
      { data, sync_timestamp: syncTimestamp.toISOString(), total_items: total, conflicts: shown, device_count: devices.length, conflict_type: shown[0]?.conflict_type ?? null },
      200,
    );
  },
);

router.openapi(
  createRoute({
    method: "get",
    path: "/sync/stats",
    tags: ["Sync"],
    summary: "Your sync operations, devices and conflicts, counted",
    description: "A sync that met a conflict counts as failed; a device is active when it synced in the last 30 days.",
    responses: {
      200: json(
        z.object({
          total_syncs: z.number().int(),
          successful_syncs: z.number().int(),
          failed_syncs: z.number().int(),
          last_sync: z.string().nullable(),
          active_devices: z.number().int(),
          total_conflicts: z.number().int(),
          resolved_conflicts: z.number().int(),
        }),
        "Statistics",
      ),
      ...errorResponsesFor(),
    },
  }),
  async (c) => c.json(await syncStats(c.var.db, requireUser(c, "account:read").userId), 200),
);

router.openapi(
  createRoute({
    method: "post",
    path: "/sync/conflicts/{conflict_id}/resolve",
    tags: ["Sync"],
    summary: "Resolve a sync conflict",
    description:
      "`local` writes the uploading device's data, `remote` keeps the server's, `merge` writes `resolved_data` or, without it, the server's fields overlaid with the device's. The item's new `version` is in `final_data`.",
    request: {
      params: z.object({ conflict_id: z.string().min(1).max(64).openapi({ param: { name: "conflict_id", in: "path" } }) }),
      ...jsonBody(
        z
          .object({
            resolution: z.enum(["local", "remote", "merge"]),
            resolved_data: z
              .record(z.string(), z.unknown())
              .nullable()
              .optional()
              .refine((v) => !v || JSON.stringify(v).length <= MAX_ITEM_BYTES, `at most ${MAX_ITEM_BYTES} bytes of JSON`)
              .refine((v) => !v || !Object.keys(v).some((k) => SECRET_FIELDS.has(k)), "secrets are not synced"),
          })
          .openapi("SyncResolveInput"),
      ),
    },
    responses: {
      200: json(z.object({ message: z.string(), conflict_id: z.string(), resolution_method: z.string(), final_data: z.record(z.string(), z.unknown()) }), "Resolved"),
      ...errorResponsesFor("conflict_not_found", "conflict_resolved"),
    },
  }),
  async (c) => {
    const userId = requireUser(c, "account:update").userId;
    const { conflict_id } = c.req.valid("param");
    const { resolution, resolved_data } = c.req.valid("json");
    const { final } = await resolveConflict(c.var.db, userId, conflict_id, resolution, resolved_data);
    return c.json({ message: "Conflict resolved successfully", conflict_id, resolution_method: resolution, final_data: final }, 200);
  },
);

export default router;
