/**
 * The apps whose container logs someone is watching: the host's agent follows each from
 * `since` (the time of the last line it sent) and `at_since` (how many lines at that very
 * time it sent), and picks up there when it reconnects, without sending any line twice.
 */
import type { SchemaComponent } from "../sql-schema";

export const FOLLOWS_SCHEMA: SchemaComponent = {
  name: "follows",
  steps: [
    "CREATE TABLE IF NOT EXISTS follows (app_id TEXT PRIMARY KEY, scope TEXT NOT NULL, since TEXT);",
    "ALTER TABLE follows ADD COLUMN at_since INTEGER NOT NULL DEFAULT 0;",
  ],
};

export class Follows {
  constructor(private readonly sql: SqlStorage) {}

  /** Starts following; false when the app was already followed. */
  add(appId: string, scope: string, since: string, atSince: number): boolean {
    if (this.sql.exec("SELECT app_id FROM follows WHERE app_id = ?", appId).toArray()[0]) return false;
    this.sql.exec("INSERT INTO follows (app_id, scope, since, at_since) VALUES (?, ?, ?, ?)", appId, scope, since, atSince);
    return true;
  }

  remove(appId: string) {
    this.sql.exec("DELETE FROM follows WHERE app_id = ?", appId);
  }

  all(): Array<{ app_id: string; since: string | null; at_since: number }> {
    return this.sql
      .exec("SELECT app_id, since, at_since FROM follows")
      .toArray()
      .map((f) => ({ app_id: f.app_id as string, since: (f.since as string | null) ?? null, at_since: Number(f.at_since ?? 0) }));
  }

  /** The scope (ProjectDO) watching an app, or null when nobody follows it. */
  scopeOf(appId: string): string | null {
    return (this.sql.exec("SELECT scope FROM follows WHERE app_id = ?", appId).toArray()[0]?.scope as string | undefined) ?? null;
  }

  /** Lines with these times (in order) went on: the resume point moves to the last of them. */
  advance(appId: string, times: string[]) {
    const last = times.at(-1);
    if (last === undefined) return;
    const row = this.sql.exec("SELECT since, at_since FROM follows WHERE app_id = ?", appId).toArray()[0];
    if (!row) return;
    let time = (row.since as string | null) ?? "";
    let count = Number(row.at_since ?? 0);
    for (const t of times) {
      if (t === time) count++;
      else [time, count] = [t, 1];
    }
    this.sql.exec("UPDATE follows SET since = ?, at_since = ? WHERE app_id = ?", time, count, appId);
  }
}
