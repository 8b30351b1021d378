/**
 * The platform administrators' view of D1: applied migrations, row counts, a backup of every
 * table to R2, and (in development only) emptying it. Table names come from sqlite_master and
 * are checked before they are quoted into a statement.
 */
import type { Env } from "../env";

const SAFE_NAME = /^[A-Za-z0-9_]+$/;
/** Tables that hold the schema's history or catalogs seeded by migrations: a reset keeps them. */
const KEPT_ON_RESET = new Set(["d1_migrations", "subscription_plan", "plan", "os_image", "catalog_app"]);

export interface TableInfo {
  name: string;
  sql: string;
}

export async function listTables(db: D1Database): Promise<TableInfo[]> {
  const { results } = await db
    .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name")
    .all<{ name: string; sql: string }>();
  return results.filter((t) => SAFE_NAME.test(t.name));
}

export async function migrationHistory(db: D1Database) {
  try {
    const { results } = await db.prepare("SELECT id, name, applied_at FROM d1_migrations ORDER BY id").all<{ id: number; name: string; applied_at: string }>();
    return results.map((m) => ({ revision: m.name.replace(/\.sql$/, ""), message: m.name, date: new Date(`${m.applied_at.replace(" ", "T")}Z`).toISOString() }));
  } catch {
    // A database made without wrangler's migration table has no history to tell.
    return [];
  }
}

export async function tableStats(db: D1Database) {
  const tables = await listTables(db);
  const counts = tables.length ? await db.batch<{ n: number }>(tables.map((t) => db.prepare(`SELECT count(*) AS n FROM "${t.name}"`))) : [];
  const size = (await db.prepare("SELECT 1").run()).meta.size_after ?? null;
  return { tables: tables.map((t, i) => ({ table_name: t.name, live_rows: counts[i]?.results[0]?.n ?? 0 })), sizeBytes: size };
}

export function humanSize(bytes: number | null): string {
  if (bytes === null) return "unknown";
  const units = ["B", "KiB", "MiB", "GiB"];
  let n = bytes;
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return `${u === 0 ? n : n.toFixed(1)} ${units[u]}`;
}

const PAGE = 500;

/**
 * Every table as JSON lines in R2 (ARCHIVE): a header with each table's schema and row count,
 * then one `{"table","row"}` line a row; gzip unless asked not to. Answers the object's key and size.
 */
export async function backupDatabase(env: Pick<Env, "DB" | "ARCHIVE">, opts: { key: string; includeData: boolean; compress: boolean }) {
  const tables = await listTables(env.DB);
  const lines: string[] = [];
  const rowsOf: Record<string, number> = {};
  if (opts.includeData) {
    for (const t of tables) {
      let n = 0;
      for (let offset = 0; ; offset += PAGE) {
        const { results } = await env.DB.prepare(`SELECT * FROM "${t.name}" ORDER BY rowid LIMIT ? OFFSET ?`).bind(PAGE, offset).all();
        for (const row of results) lines.push(JSON.stringify({ table: t.name, row }));
        n += results.length;
        if (results.length < PAGE) break;
      }
      rowsOf[t.name] = n;
    }
  }
  const header = JSON.stringify({ format: "berth-d1-backup", version: 1, created_at: new Date().toISOString(), tables: tables.map((t) => ({ ...t, rows: rowsOf[t.name] ?? null })) });
  const text = `${[header, ...lines].join("\n")}\n`;
  let body: Uint8Array = new TextEncoder().encode(text);
  if (opts.compress) body = new Uint8Array(await new Response(new Blob([body]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
  await env.ARCHIVE.put(opts.key, body, { httpMetadata: { contentType: "application/x-ndjson", ...(opts.compress ? { contentEncoding: "gzip" } : {}) } });
  return { key: opts.key, size: body.byteLength, tables: tables.length, rows: Object.values(rowsOf).reduce((a, b) => a + b, 0) };
}

/** Empties every table but the migration history and the seeded catalogs. Development only; the caller checks. */
export async function emptyDatabase(db: D1Database): Promise<string[]> {
  const tables = (await listTables(db)).filter((t) => !KEPT_ON_RESET.has(t.name));
  // Foreign keys are checked at the end of the batch (its one transaction), so the order of deletes does not matter.
  await db.batch([db.prepare("PRAGMA defer_foreign_keys = on"), ...tables.map((t) => db.prepare(`DELETE FROM "${t.name}"`))]);
  return tables.map((t) => t.name);
}
