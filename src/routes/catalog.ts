/**
 * Suble's catalog: `GET /plans`, `GET /images`, and its one-click apps, which Berth serves at
 * `/catalog/apps` because Dockup's apps hold `/apps` (README, "Endpoints served").
 * Any signed-in person or key may read it.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../app";
import { errorResponses, errorResponsesFor, notFound } from "../lib/errors";
import { findCatalogApp, listCatalogApps, listImages, listPlans, presentCatalogApp, presentImage, presentPlan } from "../services/catalog";
import { json, slugParam } from "./schemas";

const router = createRouter();
const tags = ["Catalog"];

const Plan = z
  .object({
    uid: z.string().openapi({ example: "pln_bxs1" }),
    code: z.string().openapi({ example: "bxs-1" }),
    name: z.string(),
    family: z.string(),
    vcpu: z.number().int(),
    memoryMb: z.number().int(),
    diskGb: z.number().int(),
    networkMbps: z.number().int(),
    priceMonthlyOre: z.number().int().openapi({ description: "Integer øre, excluding VAT" }),
    priceHourlyOre: z.number().int(),
  })
  .openapi("Plan");

const Image = z
  .object({
    uid: z.string().openapi({ example: "img_ubuntu2404" }),
    family: z.string(),
    version: z.string(),
    displayName: z.string(),
    protocol: z.enum(["ssh", "rdp"]),
    defaultUser: z.string(),
    minDiskGb: z.number().int(),
    hasGuestAgent: z.boolean(),
  })
  .openapi("Image");

const CatalogApp = z
  .object({
    uid: z.string().openapi({ example: "app_coolify" }),
    slug: z.string(),
    version: z.string(),
    name: z.string(),
    description: z.string(),
    logo: z.string().nullable(),
    category: z.string(),
    requirements: z.object({
      minVcpu: z.number().int(),
      minMemoryMb: z.number().int(),
      minDiskGb: z.number().int(),
      image: z.object({ family: z.string(), version: z.string() }),
    }),
  })
  .openapi("CatalogApp");

router.openapi(
  createRoute({ method: "get", path: "/plans", tags, summary: "Active compute plans, in display order", responses: { 200: json(z.object({ plans: z.array(Plan) }), "Plans"), ...errorResponses } }),
  async (c) => c.json({ plans: (await listPlans(c.var.db)).map(presentPlan) }, 200),
);

router.openapi(
  createRoute({ method: "get", path: "/images", tags, summary: "Active OS images, by family, newest version first", responses: { 200: json(z.object({ images: z.array(Image) }), "Images"), ...errorResponses } }),
  async (c) => c.json({ images: (await listImages(c.var.db)).map(presentImage) }, 200),
);

router.openapi(
  createRoute({
    method: "get",
    path: "/catalog/apps",
    tags,
    summary: "One-click apps, the latest version of each (Suble's GET /apps)",
    responses: { 200: json(z.object({ apps: z.array(CatalogApp) }), "Apps"), ...errorResponses },
  }),
  async (c) => c.json({ apps: (await listCatalogApps(c.var.db)).map(presentCatalogApp) }, 200),
);

router.openapi(
  createRoute({
    method: "get",
    path: "/catalog/apps/{slug}",
    tags,
    summary: "One one-click app, its latest version (Suble's GET /apps/{slug})",
    request: { params: z.object({ slug: slugParam("slug") }) },
    responses: { 200: json(z.object({ app: CatalogApp }), "The app"), ...errorResponsesFor("app_not_found") },
  }),
  async (c) => {
    const app = await findCatalogApp(c.var.db, c.req.valid("param").slug);
    if (!app) throw notFound("App", "app_not_found");
    return c.json({ app: presentCatalogApp(app) }, 200);
  },
);

export default router;
