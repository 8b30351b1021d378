import { defineConfig } from "drizzle-kit";

// `npm run db:generate` turns changes to schema/*.ts into a new SQL migration
// that `wrangler d1 migrations apply` (dev) and the tests both apply.
export default defineConfig({
  dialect: "sqlite",
  schema: "./src/db/schema/index.ts",
  out: "./migrations",
});
