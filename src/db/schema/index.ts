/**
 * D1 schema, one module per resource family. better-auth owns `user`, `session`,
 * `account` and `verification`; everything else is Berth's. Migrations in /migrations
 * are generated from these modules by drizzle-kit (`npm run db:generate`).
 */
export * from "./apps";
export * from "./audit";
export * from "./auth";
export * from "./catalog";
export * from "./credentials";
export * from "./hosts";
export * from "./instances";
export * from "./tenancy";
export * from "./terminal";
export * from "./devpocket";
export * from "./webhooks";
export * from "./replicas";
export * from "./sleep";
