/**
 * Ordered schema migrations for a Durable Object's SQLite storage. Each component (a
 * module that owns tables) lists its steps; `schema_versions` records how many of them an
 * object has run, so a step runs once per object, in order, inside one transaction, and
 * a deploy that adds a step upgrades every object the first time it wakes.
 *
 * The first step of each component uses CREATE … IF NOT EXISTS: objects made before
 * versions were kept already hold those tables, and adopt them as version 1.
 */
export interface SchemaComponent {
  name: string;
  steps: readonly string[];
}

export function migrate(storage: DurableObjectStorage, components: readonly SchemaComponent[]): void {
  const sql = storage.sql;
  storage.transactionSync(() => {
    sql.exec("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)");
    for (const component of components) {
      const row = sql.exec("SELECT version FROM schema_versions WHERE component = ?", component.name).toArray()[0];
      const from = (row?.version as number | undefined) ?? 0;
      if (from > component.steps.length) {
        throw new Error(`${component.name}: stored schema version ${from} is newer than this code (${component.steps.length})`);
      }
      for (let version = from; version < component.steps.length; version++) sql.exec(component.steps[version]!);
      if (from < component.steps.length) {
        sql.exec(
          "INSERT INTO schema_versions (component, version) VALUES (?, ?) ON CONFLICT DO UPDATE SET version = excluded.version",
          component.name,
          component.steps.length,
        );
      }
    }
  });
}

/** A component's schema version, for tests. */
export function schemaVersion(storage: DurableObjectStorage, component: string): number {
  const row = storage.sql.exec("SELECT version FROM schema_versions WHERE component = ?", component).toArray()[0];
  return (row?.version as number | undefined) ?? 0;
}
