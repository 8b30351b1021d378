/**
 * The apps whose container logs someone is watching: the host's agent follows each from
 * `since` (the last line it sent), and picks up there when it reconnects.
 */
import type { SchemaComponent } from "../sql-schema";

export const FOLLOWS_SCHEMA: SchemaComponent = {
  name: "follows",
  steps: ["CREATE TABLE IF NOT EXISTS follows (app_id TEXT PRIMARY KEY, scope TEXT NOT NULL, since TEXT);"],
};

export class Follows {
  constructor(private readonly sql: SqlStorage) {}

  /** Starts following; false when the app was already followed. */
  add(appId: string, scope: string, since: string): boolean {
    if (this.sql.exec("SELECT app_id FROM follows WHERE app_id = ?", appId).toArray()[0]) return false;
    this.sql.exec("INSERT INTO follows (app_id, scope, since) VALUES (?, ?, ?)", appId, scope, since);
    return true;
  }

  remove(appId: string) {
    this.sql.exec("DELETE FROM follows WHERE app_id = ?", appId);
  }

  all(): Array<{ app_id: string; since: string | null }> {
    return this.sql.exec("SELECT app_id, since FROM follows").toArray().map((f) => ({ app_id: f.app_id as string, since: (f.since as string | null) ?? null }));
  }

  /** The scope (ProjectDO) watching an app, or null when nobody follows it. */
  scopeOf(appId: string): string | null {
    return (this.sql.exec("SELECT scope FROM follows WHERE app_id = ?", appId).toArray()[0]?.scope as string | undefined) ?? null;
  }

  advance(appId: string, since: string) {
    this.sql.exec("UPDATE follows SET since = ? WHERE app_id = ?", since, appId);
  }
}
