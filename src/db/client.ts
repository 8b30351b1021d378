import { drizzle } from "drizzle-orm/d1";
import * as schema from "./schema";

const clients = new WeakMap<D1Database, ReturnType<typeof makeDb>>();

const makeDb = (d1: D1Database) => drizzle(d1, { schema });

/** drizzle over a D1 binding; made once per binding (an isolate keeps its bindings), as it holds no request state. */
export function createDb(d1: D1Database) {
  let db = clients.get(d1);
  if (!db) {
    db = makeDb(d1);
    clients.set(d1, db);
  }
  return db;
}

export type Database = ReturnType<typeof createDb>;
export { schema };
