import { isLocal } from "./config";
import type { Database } from "./db/client";
import type { Principal } from "./auth/principal";
import type { HostDO } from "./durable/host-do";
import type { ProjectDO } from "./durable/project-do";
import type { TerminalDO } from "./durable/terminal-do";
import type { JobsQueueMessage } from "./jobs/queue";
import type { WebhookQueueMessage } from "./services/webhooks";

/** Bindings and vars from wrangler.toml, plus secrets set with `wrangler secret put`. */
export interface Env {
  DB: D1Database;
  AUTH_LIMITER: RateLimit;
  AUTH_IP_LIMITER: RateLimit;
  /** DevPocket's sync reads and writes per user (wrangler.toml). */
  SYNC_LIMITER: RateLimit;
  PROJECT_DO: DurableObjectNamespace<ProjectDO>;
  HOST_DO: DurableObjectNamespace<HostDO>;
  TERMINAL_DO: DurableObjectNamespace<TerminalDO>;
  JOBS: Queue<JobsQueueMessage>;
  /** Outbound webhook deliveries (src/services/webhooks.ts). */
  WEBHOOKS: Queue<WebhookQueueMessage>;
  ENVIRONMENT: string;
  BASE_DOMAIN: string;
  /** `cloudflare` (the MAIL send_email binding) in production; `outbox` (D1, read at /api/v1/dev/outbox) locally. */
  MAIL_TRANSPORT: string;
  /** The send_email binding, for MAIL_TRANSPORT=cloudflare. */
  MAIL?: SendEmail;
  /** The address mail is sent from, for MAIL_TRANSPORT=cloudflare. */
  MAIL_FROM?: string;
  /** Signs sessions. Required outside development. */
  AUTH_SECRET?: string;
  /** Encrypts secrets at rest (app env vars): 32 bytes in base64, or any string to derive a key from. Required outside development. */
  ENCRYPTION_KEY?: string;
  /** Public origin of the API, used in mailed links. Defaults to the request's origin. */
  PUBLIC_URL?: string;
  /** Other origins (comma-separated) whose pages may act with a user's session cookie, e.g. a dashboard on its own host. */
  TRUSTED_ORIGINS?: string;
  /** Agent timing (seconds); defaults in src/services/host-settings.ts. */
  AGENT_HEARTBEAT_SECONDS?: string;
  AGENT_LEASE_TTL_SECONDS?: string;
  JOB_QUEUE_GRACE_SECONDS?: string;
  /** Terminal sessions (seconds); defaults in src/services/terminal-settings.ts. */
  TERMINAL_IDLE_SECONDS?: string;
  TERMINAL_GRACE_SECONDS?: string;
  /** Instance jobs' run time limits, `kind=seconds` pairs (`power=60,create=1800`); see src/services/instance-jobs.ts. */
  INSTANCE_JOB_SECONDS?: string;
  /** The most bytes of a command's stdout (and of its stderr) kept in its history; default 65536. */
  COMMAND_OUTPUT_MAX_BYTES?: string;
  /** Job history retention; defaults in src/services/retention-settings.ts. */
  JOB_LOG_RETENTION_DAYS?: string;
  JOB_LOG_MAX_MB?: string;
  /** Frames a second one project's object sends to the subscribers of one app's live logs; default in src/durable/project/log-outbox.ts. */
  APP_LOG_FRAMES_PER_SECOND?: string;
  JOB_RETENTION_DAYS?: string;
  JOB_RETENTION_MAX?: string;
  JOB_EVENT_RETENTION_DAYS?: string;
  JOB_PRUNE_INTERVAL_MINUTES?: string;
  /** Largest image tarball `POST /apps/{appId}/upload-image` and `POST /deploy/{slug}` take, in MB; default 2048 (src/services/image-uploads.ts). */
  IMAGE_UPLOAD_MAX_MB?: string;
  /** DevPocket's AI: the OpenAI-compatible API called with the user's key (default OpenRouter's), and how long to wait for it (ms). */
  AI_BASE_URL?: string;
  AI_TIMEOUT_MS?: string;
  /** Webhook deliveries: tries per delivery (default 6), the first retry's delay in seconds (default 10, ×4 each time), and how long to wait for a receiver (ms, default 10000). */
  WEBHOOK_MAX_ATTEMPTS?: string;
  WEBHOOK_RETRY_BASE_SECONDS?: string;
  WEBHOOK_TIMEOUT_MS?: string;
  /**
   * GitHub account linking (Dockup's `/auth/oauth/accounts` and `/git/repos`): the OAuth app's
   * client id (a var) and secret (`wrangler secret put GITHUB_CLIENT_SECRET`). Without a client id
   * no account can be linked. GITHUB_URL is where users authorize and codes become tokens
   * (default https://github.com), GITHUB_API_URL the REST API (default https://api.github.com):
   * set both for GitHub Enterprise (`https://ghe.example.com`, `https://ghe.example.com/api/v3`).
   */
  GITHUB_CLIENT_ID?: string;
  GITHUB_CLIENT_SECRET?: string;
  GITHUB_URL?: string;
  GITHUB_API_URL?: string;
  /** How long to wait for GitHub's REST API (ms); default 10000. */
  GITHUB_TIMEOUT_MS?: string;
  /** R2: archived job output (and, later, image tarballs and exports). */
  ARCHIVE: R2Bucket;
}

/** Per-request values, made once by middleware and read from `c.var`. */
export interface Variables {
  db: Database;
  principal: Principal | null;
  /** Why a presented credential was refused, for the 401 message. */
  authError: string | undefined;
  requestId: string;
}

export type AppEnv = { Bindings: Env; Variables: Variables };

export const APP_VERSION = "0.1.0";

const DEV_SECRET = "berth-local-development-secret-not-for-production";

/** The session-signing secret; development runs with a fixed one so `npm run dev` needs no set-up. */
export function authSecret(env: Env): string {
  if (env.AUTH_SECRET) return env.AUTH_SECRET;
  if (isLocal(env)) return DEV_SECRET;
  throw new Error("AUTH_SECRET is not set: run `wrangler secret put AUTH_SECRET`");
}
