/** Durable Object storage schemas: ordered steps, run once per object, recorded per component. */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { migrate, schemaVersion } from "../../src/durable/sql-schema";

const objectNamed = (name: string) => env.PROJECT_DO.get(env.PROJECT_DO.idFromName(name));

describe("Durable Object schema migrations", () => {
  it("a ProjectDO records the version of each component it holds", async () => {
    const stub = objectNamed(`schema-${crypto.randomUUID()}`);
    await stub.listJobs();
    await runInDurableObject(stub, async (_instance, state) => {
      expect(schemaVersion(state.storage, "jobs")).toBe(2);
      expect(schemaVersion(state.storage, "events")).toBe(1);
      expect(schemaVersion(state.storage, "job_logs")).toBe(1);
    });
  });

  it("runs each step once, in order, and only the new ones when a step is added", async () => {
    const stub = objectNamed(`schema-${crypto.randomUUID()}`);
    await runInDurableObject(stub, async (_instance, state) => {
      const v1 = { name: "widgets", steps: ["CREATE TABLE widgets (id TEXT PRIMARY KEY)"] };
      migrate(state.storage, [v1]);
      // Running it again would fail on the CREATE if the step ran twice.
      migrate(state.storage, [v1]);
      const v2 = { name: "widgets", steps: [...v1.steps, "ALTER TABLE widgets ADD COLUMN size INTEGER NOT NULL DEFAULT 0"] };
      migrate(state.storage, [v2]);
      migrate(state.storage, [v2]);
      expect(schemaVersion(state.storage, "widgets")).toBe(2);
      state.storage.sql.exec("INSERT INTO widgets (id, size) VALUES ('w', 3)");
      expect(state.storage.sql.exec("SELECT size FROM widgets").one().size).toBe(3);
    });
  });

  it("refuses to run older code against a newer schema, and rolls back a failing step", async () => {
    const stub = objectNamed(`schema-${crypto.randomUUID()}`);
    await runInDurableObject(stub, async (_instance, state) => {
      migrate(state.storage, [{ name: "gadgets", steps: ["CREATE TABLE gadgets (id TEXT)", "CREATE INDEX gadgets_id ON gadgets(id)"] }]);
      expect(() => migrate(state.storage, [{ name: "gadgets", steps: ["CREATE TABLE gadgets (id TEXT)"] }])).toThrow(/newer than this code/);
      expect(() =>
        migrate(state.storage, [{ name: "broken", steps: ["CREATE TABLE broken_one (id TEXT)", "THIS IS NOT SQL"] }]),
      ).toThrow();
      // Nothing of the failed run stays: neither its table nor a version.
      expect(schemaVersion(state.storage, "broken")).toBe(0);
      expect(state.storage.sql.exec("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'broken_one'").one().n).toBe(0);
    });
  });
});
