import type { D1Migration } from "cloudflare:test";
import type { Env as AppBindings } from "../../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends AppBindings {
      TEST_MIGRATIONS: D1Migration[];
      /** The Suble and backlex seed documents (OpenAPI JSON), as text. */
      SEED_SUBLE: string;
      SEED_BACKLEX: string;
      /** The local webhook receiver (test/fake-webhook/server.ts). */
      WEBHOOK_RECEIVER_URL: string;
    }
  }
}
