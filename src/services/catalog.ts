/** Suble's catalog: compute plans, OS images and one-click apps, as records a migration seeds. */
import { and, asc, desc, eq, max } from "drizzle-orm";
import type { Database } from "../db/client";
import { catalogApp, osImage, plan } from "../db/schema";

export function listPlans(db: Database) {
  return db.select().from(plan).where(eq(plan.active, true)).orderBy(asc(plan.sort), asc(plan.code));
}

export function findPlanByCode(db: Database, code: string) {
  return db.query.plan.findFirst({ where: and(eq(plan.code, code), eq(plan.active, true)) });
}

/** Grouped by family, newest version first. */
export function listImages(db: Database) {
  return db.select().from(osImage).where(eq(osImage.active, true)).orderBy(asc(osImage.family), desc(osImage.version));
}

export function findImage(db: Database, id: string) {
  return db.query.osImage.findFirst({ where: and(eq(osImage.id, id), eq(osImage.active, true)) });
}

/** The latest active version of each one-click app (the highest row wins), by name. */
export async function listCatalogApps(db: Database) {
  const latest = db
    .select({ seq: max(catalogApp.seq).as("latest_seq") })
    .from(catalogApp)
    .where(eq(catalogApp.active, true))
    .groupBy(catalogApp.slug)
    .as("latest");
  return db.select({ app: catalogApp }).from(catalogApp).innerJoin(latest, eq(latest.seq, catalogApp.seq)).orderBy(asc(catalogApp.name)).then((rows) => rows.map((r) => r.app));
}

export function findCatalogApp(db: Database, slug: string) {
  return db.query.catalogApp.findFirst({ where: and(eq(catalogApp.slug, slug), eq(catalogApp.active, true)), orderBy: desc(catalogApp.seq) });
}

type PlanRow = typeof plan.$inferSelect;
type ImageRow = typeof osImage.$inferSelect;
type CatalogAppRow = typeof catalogApp.$inferSelect;

export const presentPlan = (p: PlanRow) => ({
  uid: p.id,
  code: p.code,
  name: p.name,
  family: p.family,
  vcpu: p.vcpu,
  memoryMb: p.memoryMb,
  diskGb: p.diskGb,
  networkMbps: p.networkMbps,
  priceMonthlyOre: p.priceMonthlyOre,
  priceHourlyOre: p.priceHourlyOre,
});

/** The template name stays Berth's business: clients see the image, not the node's template. */
export const presentImage = (i: ImageRow) => ({
  uid: i.id,
  family: i.family,
  version: i.version,
  displayName: i.displayName,
  protocol: i.protocol,
  defaultUser: i.defaultUser,
  minDiskGb: i.minDiskGb,
  hasGuestAgent: i.hasGuestAgent,
});

export const presentCatalogApp = (a: CatalogAppRow) => ({
  uid: a.id,
  slug: a.slug,
  version: a.version,
  name: a.name,
  description: a.description,
  logo: a.logo,
  category: a.category,
  requirements: { minVcpu: a.minVcpu, minMemoryMb: a.minMemoryMb, minDiskGb: a.minDiskGb, image: { family: a.imageFamily, version: a.imageVersion } },
});
