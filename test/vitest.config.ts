import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import { startFakeAiProvider } from "./fake-ai/server.ts";
import { FAKE_GITHUB_CLIENT_ID, FAKE_GITHUB_CLIENT_SECRET, startFakeGitHub } from "./fake-github/server.ts";
import { startFakeWebhookReceiver } from "./fake-webhook/server.ts";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
/** A seed document (../shared/seeds/), for the tests that take their expected codes from it. */
const seed = (file: string) => readFileSync(here(`../../shared/seeds/${file}`), "utf8");

/** One fake AI provider per test run, started when the worker project is configured. */
let fakeAiProvider: ReturnType<typeof startFakeAiProvider> | undefined;
const fakeAi = () => (fakeAiProvider ??= startFakeAiProvider());
/** One webhook receiver per test run, for test/worker/webhooks.test.ts. */
let fakeWebhookReceiver: ReturnType<typeof startFakeWebhookReceiver> | undefined;
const fakeWebhooks = () => (fakeWebhookReceiver ??= startFakeWebhookReceiver());
/** One GitHub stand-in per test run, for test/worker/github.test.ts. */
let fakeGitHubServer: ReturnType<typeof startFakeGitHub> | undefined;
const fakeGitHub = () => (fakeGitHubServer ??= startFakeGitHub());

export default defineConfig({
  root: here(".."),
  test: {
    projects: [
      {
        // Inside workerd, against the real D1 / rate-limit bindings from wrangler.toml.
        plugins: [
          cloudflareTest(async () => ({
            wrangler: { configPath: here("../wrangler.toml") },
            miniflare: {
              // wrangler.toml is the production config; tests run with local settings on top.
              bindings: {
                ENVIRONMENT: "test",
                MAIL_TRANSPORT: "outbox",
                BASE_DOMAIN: "localhost",
                // Small retention caps, so test/worker/retention.test.ts can reach them quickly.
                JOB_RETENTION_MAX: "10",
                JOB_LOG_MAX_MB: "1",
                // Short terminal timeouts, so test/worker/terminals.test.ts sees sessions idle out and be abandoned.
                TERMINAL_IDLE_SECONDS: "3",
                TERMINAL_GRACE_SECONDS: "2",
                // A small upload limit, so test/worker/uploads.test.ts reaches it with a 13 MB body.
                IMAGE_UPLOAD_MAX_MB: "12",
                // DevPocket's AI routes call a local OpenAI-compatible provider (test/fake-ai/server.ts), with a short timeout.
                AI_BASE_URL: (await fakeAi()).url,
                AI_TIMEOUT_MS: "1500",
                // Webhooks go to a local receiver (test/fake-webhook/server.ts); three quick tries, a short wait.
                WEBHOOK_RECEIVER_URL: (await fakeWebhooks()).url,
                WEBHOOK_MAX_ATTEMPTS: "3",
                WEBHOOK_RETRY_BASE_SECONDS: "0",
                WEBHOOK_TIMEOUT_MS: "1000",
                // GitHub account linking against a local stand-in (test/fake-github/server.ts), its API where Enterprise has it.
                GITHUB_CLIENT_ID: FAKE_GITHUB_CLIENT_ID,
                GITHUB_CLIENT_SECRET: FAKE_GITHUB_CLIENT_SECRET,
                GITHUB_URL: (await fakeGitHub()).url,
                GITHUB_API_URL: (await fakeGitHub()).apiUrl,
                GITHUB_TIMEOUT_MS: "2000",
                TEST_MIGRATIONS: await readD1Migrations(here("../migrations")),
                // The seeds' own documents: test/worker/dialects.test.ts reads its expected codes from them.
                SEED_SUBLE: seed("001_712ea82ddb872eaf.txt"),
                SEED_BACKLEX: seed("002_ed5fbb156ace5f76.txt"),
              },
            },
          })),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts"],
          // Flows that sign up several users take a few seconds on a busy 2-core machine.
          testTimeout: 30_000,
          setupFiles: ["test/worker/setup.ts"],
        },
      },
      {
        // In Node, against a real `wrangler dev` (what `npm run dev` starts).
        test: {
          name: "node",
          include: ["test/node/**/*.test.ts", "agent/test/**/*.test.ts"],
          // dockerd, the registry and Caddy for the Docker host tests (test/host/setup.sh).
          globalSetup: ["test/node/global-setup.ts"],
          // One file at a time: they share one dockerd and one Caddy, whose every config change
          // reloads all its servers, and a 2-core machine.
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
