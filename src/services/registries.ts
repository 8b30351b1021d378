/**
 * Private image registries of an org. A deploy of an image whose registry the
 * org has configured pulls with its credentials, which the agent fetches for
 * that one deploy; the password is stored encrypted and never returned.
 */
import type { BatchItem } from "drizzle-orm/batch";
import { and, asc, eq, inArray } from "drizzle-orm";
import type { Database } from "../db/client";
import { registry } from "../db/schema";
import type { Env } from "../env";
import { conflict } from "../lib/errors";
import { newId } from "../lib/ids";
import { type Also, NOTHING, withAlso } from "./audit";
import { decryptJson, encryptJson } from "../lib/secrets";

export type RegistryRow = typeof registry.$inferSelect;
export interface RegistryAuth {
  username: string;
  password: string;
  serveraddress: string;
}

/** `https://ghcr.io/` → `ghcr.io`; `127.0.0.1:5001` stays. */
export function registryHost(url: string): string {
  return url.trim().replace(/^[a-z]+:\/\//i, "").replace(/\/.*$/, "").toLowerCase();
}

/** The registry an image reference pulls from (Docker's rule: a first component with a dot or a port, or `localhost`). */
export function imageRegistry(image: string): string {
  const first = image.split("/")[0]!;
  return image.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost") ? first.toLowerCase() : "docker.io";
}

export async function createRegistry(
  db: Database,
  env: Env,
  input: { orgId: string; name: string; url: string; username?: string | null; password?: string | null; createdBy: string | null },
  also: (created: { id: string; url: string }) => BatchItem<"sqlite">[] = () => [],
): Promise<RegistryRow> {
  const url = registryHost(input.url);
  const [existing] = await db.select({ id: registry.id }).from(registry).where(and(eq(registry.orgId, input.orgId), eq(registry.url, url)));
  if (existing) throw conflict("registry_exists", `This org already has credentials for ${url}; delete them first`);
  const id = newId("reg");
  const insert = db
    .insert(registry)
    .values({
      id,
      orgId: input.orgId,
      name: input.name,
      url,
      username: input.username ?? null,
      passwordCiphertext: input.password ? await encryptJson(env, input.password) : null,
      createdBy: input.createdBy,
    })
    .returning();
  const [row] = await withAlso(db, insert, also({ id, url }));
  return row!;
}

export function listRegistries(db: Database, orgIds: string[]) {
  if (!orgIds.length) return Promise.resolve([] as RegistryRow[]);
  return db.select().from(registry).where(inArray(registry.orgId, orgIds)).orderBy(asc(registry.createdAt));
}

export async function findRegistry(db: Database, id: string) {
  const [row] = await db.select().from(registry).where(eq(registry.id, id));
  return row ?? null;
}

export async function deleteRegistry(db: Database, id: string, also: Also = NOTHING) {
  await withAlso(db, db.delete(registry).where(eq(registry.id, id)), also(id));
}

/** The org's credentials for the registry an image comes from, or null. */
export async function registryAuthFor(db: Database, env: Env, orgId: string, image: string): Promise<RegistryAuth | null> {
  const host = imageRegistry(image);
  const [row] = await db.select().from(registry).where(and(eq(registry.orgId, orgId), eq(registry.url, host)));
  if (!row?.username || !row.passwordCiphertext) return null;
  return { username: row.username, password: await decryptJson<string>(env, row.passwordCiphertext), serveraddress: host };
}

export async function hasRegistryAuth(db: Database, orgId: string, image: string): Promise<boolean> {
  const [row] = await db.select({ id: registry.id }).from(registry).where(and(eq(registry.orgId, orgId), eq(registry.url, imageRegistry(image))));
  return Boolean(row);
}

export function presentRegistry(row: RegistryRow) {
  return {
    id: row.id,
    name: row.name,
    url: row.url,
    username: row.username,
    has_password: row.passwordCiphertext !== null,
    org_id: row.orgId,
    created_at: row.createdAt.toISOString(),
  };
}
