import { applyD1Migrations, env } from "cloudflare:test";

// The same migrations `npm run dev` applies, on this test file's fresh D1.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
