/**
 * DevPocket's user and subscription routes: `GET/PUT /user/profile`, `GET /user/devices`
 * (the devices that synced), `GET /subscription/plans` (the tiers, records in D1) and
 * `GET /subscription/current` (the plan of the caller's personal org, or of `?org=`).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, eq, ne } from "drizzle-orm";
import { createRouter } from "../../app";
import { authorizeOrg, requireUser } from "../../auth/access";
import { org, subscriptionPlan, user } from "../../db/schema";
import type { Database } from "../../db/client";
import { ApiError, errorResponsesFor, notFound } from "../../lib/errors";
import { audited, withAlso } from "../../services/audit";
import { listDevices } from "../../services/sync";
import { findUser } from "../../services/users";
import { email, json, jsonBody, slugParam } from "../schemas";

const router = createRouter();

const Profile = z
  .object({
    id: z.string(),
    email: z.string(),
    username: z.string().nullable(),
    name: z.string().nullable(),
    subscription_tier: z.string().openapi({ description: "The plan of your personal org: free, pro, team or enterprise" }),
    created_at: z.string(),
  })
  .openapi("DevPocketUser");

async function personalOrg(db: Database, userId: string) {
  const [row] = await db.select().from(org).where(and(eq(org.createdBy, userId), eq(org.personal, true))).limit(1);
  return row ?? null;
}

async function profileOf(db: Database, userId: string) {
  const [u, own] = await Promise.all([findUser(db, userId), personalOrg(db, userId)]);
  if (!u) throw notFound("User", "user_not_found");
  return {
    id: u.id,
    email: u.email,
    username: u.displayUsername ?? u.username ?? null,
    name: u.name,
    subscription_tier: own?.planId ?? "free",
    created_at: u.createdAt.toISOString(),
  };
}

router.openapi(
  createRoute({
    method: "get",
    path: "/user/profile",
    tags: ["User"],
    summary: "Your profile",
    responses: { 200: json(Profile, "Profile"), ...errorResponsesFor("user_not_found") },
  }),
  async (c) => c.json(await profileOf(c.var.db, requireUser(c, "account:read").userId), 200),
);

const UpdateProfile = z
  .object({
    username: z.string().trim().min(3).max(30).regex(/^[a-zA-Z0-9_.]+$/, "letters, digits, _ and . only").optional(),
    email: email.optional(),
  })
  .refine((v) => v.username !== undefined || v.email !== undefined, { message: "username or email is required", path: ["username"] })
  .openapi("DevPocketProfileUpdate");

router.openapi(
  createRoute({
    method: "put",
    path: "/user/profile",
    tags: ["User"],
    summary: "Change your username or email",
    description: "A new email is unverified until confirmed through better-auth's verification mail.",
    request: jsonBody(UpdateProfile),
    responses: { 200: json(Profile, "Profile updated"), ...errorResponsesFor("user_not_found", "username_taken", "email_taken") },
  }),
  async (c) => {
    const userId = requireUser(c, "account:update").userId;
    const input = c.req.valid("json");
    const current = await findUser(c.var.db, userId);
    if (!current) throw notFound("User", "user_not_found");
    const set: Partial<typeof user.$inferInsert> = {};
    if (input.username !== undefined) {
      // better-auth's username plugin keeps usernames lower-case and the spelling as typed beside it.
      const normal = input.username.toLowerCase();
      const [taken] = await c.var.db.select({ id: user.id }).from(user).where(and(eq(user.username, normal), ne(user.id, userId)));
      if (taken) throw new ApiError("username_taken", "This username is taken");
      set.username = normal;
      set.displayUsername = input.username;
    }
    if (input.email !== undefined && input.email !== current.email) {
      const [taken] = await c.var.db.select({ id: user.id }).from(user).where(and(eq(user.email, input.email), ne(user.id, userId)));
      if (taken) throw new ApiError("email_taken", "An account with this email exists");
      set.email = input.email;
      set.emailVerified = false;
    }
    if (Object.keys(set).length) {
      const update = c.var.db
        .update(user)
        .set({ ...set, updatedAt: new Date() })
        .where(eq(user.id, userId));
      await withAlso(
        c.var.db,
        update,
        audited(c, () => ({ orgId: null, action: "account.update", targetType: "user", targetId: userId, metadata: { fields: Object.keys(input) } }))(userId),
      );
    }
    return c.json(await profileOf(c.var.db, userId), 200);
  },
);

const Device = z
  .object({ device_id: z.string(), device_type: z.string(), device_name: z.string().nullable(), last_active: z.string() })
  .openapi("DevPocketDevice");

router.openapi(
  createRoute({
    method: "get",
    path: "/user/devices",
    tags: ["User"],
    summary: "Your devices that synced, most recently active first",
    responses: { 200: json(z.array(Device), "Devices"), ...errorResponsesFor() },
  }),
  async (c) => {
    const rows = await listDevices(c.var.db, requireUser(c, "account:read").userId);
    return c.json(
      rows.map((d) => ({ device_id: d.deviceId, device_type: d.deviceType, device_name: d.deviceName, last_active: d.lastActiveAt.toISOString() })),
      200,
    );
  },
);

const Plan = z
  .object({ plan_id: z.string(), name: z.string(), price: z.number(), currency: z.string(), interval: z.string(), features: z.array(z.string()) })
  .openapi("SubscriptionPlan");

const presentPlan = (p: typeof subscriptionPlan.$inferSelect) => ({ plan_id: p.id, name: p.name, price: p.price, currency: "USD", interval: "month", features: p.features });

router.openapi(
  createRoute({
    method: "get",
    path: "/subscription/plans",
    tags: ["Subscription"],
    summary: "The plans, cheapest first",
    security: [],
    responses: { 200: json(z.array(Plan), "Plans"), ...errorResponsesFor() },
  }),
  async (c) => {
    const rows = await c.var.db.select().from(subscriptionPlan).where(eq(subscriptionPlan.active, true)).orderBy(asc(subscriptionPlan.position));
    return c.json(rows.map(presentPlan), 200);
  },
);

/** The end of the current calendar month (UTC): plans are billed by the month. */
function periodEnd(now = new Date()): string {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString();
}

router.openapi(
  createRoute({
    method: "get",
    path: "/subscription/current",
    tags: ["Subscription"],
    summary: "The plan of your personal org, or of another org of yours (`?org=`)",
    request: { query: z.object({ org: slugParam("org").optional().openapi({ param: { name: "org", in: "query" } }) }) },
    responses: {
      200: json(
        z
          .object({
            plan_id: z.string(),
            plan: Plan.nullable(),
            org: z.string(),
            status: z.string(),
            current_period_end: z.string(),
            cancel_at_period_end: z.boolean(),
          })
          .openapi("CurrentSubscription"),
        "The current subscription",
      ),
      ...errorResponsesFor(),
    },
  }),
  async (c) => {
    const slug = c.req.valid("query").org;
    const o = slug ? (await authorizeOrg(c, slug, "org:read")).org : await personalOrg(c.var.db, requireUser(c, "account:read").userId);
    if (!o) throw notFound("Organization");
    const [plan] = await c.var.db.select().from(subscriptionPlan).where(eq(subscriptionPlan.id, o.planId));
    return c.json(
      {
        plan_id: o.planId,
        plan: plan ? presentPlan(plan) : null,
        org: o.slug,
        status: o.status === "active" ? "active" : o.status,
        current_period_end: periodEnd(),
        cancel_at_period_end: false,
      },
      200,
    );
  },
);

export default router;
