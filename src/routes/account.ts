/** backlex's account: the signed-in person's profile. */
import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { createRouter } from "../app";
import { requireUser } from "../auth/access";
import { user } from "../db/schema";
import { errorResponses, notFound } from "../lib/errors";
import { audited, withAlso } from "../services/audit";
import { findUser } from "../services/users";
import { displayText, json, jsonBody, name, Ok } from "./schemas";

const router = createRouter();

const Account = z
  .object({
    id: z.string(),
    email: z.string(),
    name: z.string().nullable(),
    username: z.string().nullable(),
    emailVerified: z.boolean(),
    title: z.string().nullable(),
    timezone: z.string().nullable(),
    preferences: z.record(z.string(), z.unknown()).nullable(),
  })
  .openapi("Account");

router.openapi(
  createRoute({
    method: "get",
    path: "/account",
    tags: ["Account"],
    summary: "Your profile and preferences",
    responses: { 200: json(z.object({ account: Account }), "Account"), ...errorResponses },
  }),
  async (c) => {
    const u = await findUser(c.var.db, requireUser(c, "account:read").userId);
    if (!u) throw notFound("User", "user_not_found");
    const preferences = u.preferences ? (JSON.parse(u.preferences) as Record<string, unknown>) : null;
    return c.json(
      {
        account: {
          id: u.id,
          email: u.email,
          name: u.name,
          username: u.username,
          emailVerified: u.emailVerified,
          title: u.title,
          timezone: u.timezone,
          preferences,
        },
      },
      200,
    );
  },
);

const UpdateAccountInput = z
  .object({
    name: name(120).optional(),
    title: displayText(120).optional(),
    timezone: displayText(60).optional(),
    preferences: z
      .record(z.string().max(64), z.unknown())
      .refine((v) => JSON.stringify(v).length <= 16_384, "preferences may be at most 16 KiB")
      .optional(),
  })
  .openapi("UpdateAccountInput");

router.openapi(
  createRoute({
    method: "patch",
    path: "/account",
    tags: ["Account"],
    summary: "Update your profile",
    request: jsonBody(UpdateAccountInput),
    responses: { 200: json(Ok, "Updated"), ...errorResponses },
  }),
  async (c) => {
    const p = requireUser(c, "account:update");
    const input = c.req.valid("json");
    const { preferences, ...rest } = input;
    const update = c.var.db
      .update(user)
      .set({ ...rest, ...(preferences ? { preferences: JSON.stringify(preferences) } : {}), updatedAt: new Date() })
      .where(eq(user.id, p.userId));
    await withAlso(c.var.db, update, audited(c, () => ({ orgId: null, action: "account.update", targetType: "user", targetId: p.userId, metadata: { fields: Object.keys(input) } }))(p.userId));
    return c.json({ ok: true }, 200);
  },
);

export default router;
