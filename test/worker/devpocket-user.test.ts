/** DevPocket's profile and subscription routes: the caller's own, plans as records, the current plan from the org. */
import { beforeAll, describe, expect, it } from "vitest";
import { api, env, expectApiError, orgWithEveryRole, signUp, type TestUser } from "./helpers";

let ada: TestUser;
let bob: TestUser;
beforeAll(async () => {
  [ada, bob] = await Promise.all([signUp({ name: "Ada" }), signUp({ name: "Bob" })]);
});

describe("GET/PUT /user/profile", () => {
  it("shows the caller's profile with the tier of their personal org", async () => {
    const res = await api("/user/profile", { token: ada.token });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ id: ada.id, email: ada.email, username: null, name: "Ada", subscription_tier: "free", created_at: expect.any(String) });
    expectApiError(await api("/user/profile"), 401, "unauthorized");
  });

  it("changes username and email; a taken one is 409 and changes nothing", async () => {
    const carol = await signUp({ name: "Carol" });
    const uname = `Carol_${Date.now().toString(36)}`;
    const res = await api("/user/profile", { method: "PUT", token: carol.token, body: { username: uname } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ id: carol.id, username: uname, email: carol.email });
    // Sign in with it, as DevPocket's login does.
    const login = await api("/auth/login", { body: { username: uname.toLowerCase(), password: carol.password } });
    expect(login.status, login.text).toBe(200);

    expectApiError(await api("/user/profile", { method: "PUT", token: bob.token, body: { username: uname.toUpperCase() } }), 409, "username_taken");
    expectApiError(await api("/user/profile", { method: "PUT", token: bob.token, body: { email: carol.email.toUpperCase() } }), 409, "email_taken");
    expect((await api("/user/profile", { token: bob.token })).body).toMatchObject({ email: bob.email, username: null });

    const newEmail = `carol-${Date.now().toString(36)}@example.com`;
    const moved = await api("/user/profile", { method: "PUT", token: carol.token, body: { email: newEmail } });
    expect(moved.body.email).toBe(newEmail);
    const row = await env.DB.prepare("SELECT email_verified AS v FROM user WHERE id = ?").bind(carol.id).first<{ v: number }>();
    expect(row?.v).toBe(0);
  });

  it("refuses bad input and keys that may not change the account", async () => {
    for (const body of [{}, { username: "ab" }, { username: "has space" }, { email: "not-an-email" }]) {
      expectApiError(await api("/user/profile", { method: "PUT", token: ada.token, body }), 400, "invalid_request");
    }
    expectApiError(await api("/user/profile", { method: "PUT", body: { username: "whoever" } }), 401, "unauthorized");
    const ro = await api("/api-keys", { token: ada.token, body: { name: "ro", scope: "read-only" } });
    expect((await api("/user/profile", { token: ro.body.key })).status).toBe(200);
    expectApiError(await api("/user/profile", { method: "PUT", token: ro.body.key, body: { username: "takeover" } }), 403, "forbidden");
  });
});

describe("subscriptions", () => {
  it("lists the plans, cheapest first, to anyone", async () => {
    const res = await api("/subscription/plans");
    expect(res.status, res.text).toBe(200);
    expect(res.body.map((p: { plan_id: string }) => p.plan_id)).toEqual(["free", "pro", "team", "enterprise"]);
    expect(res.body[1]).toMatchObject({ plan_id: "pro", name: "Pro", price: 12, currency: "USD", interval: "month", features: expect.arrayContaining([expect.stringContaining("Sync")]) });
  });

  it("answers the current plan of the caller's personal org, or of an org of theirs", async () => {
    const res = await api("/subscription/current", { token: ada.token });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ plan_id: "free", plan: { plan_id: "free", price: 0 }, org: ada.orgSlug, status: "active", cancel_at_period_end: false });
    expect(new Date(res.body.current_period_end).getTime()).toBeGreaterThan(Date.now());

    // An org upgraded to pro: its members (a viewer too) see it; another tenant gets 404.
    const team = await orgWithEveryRole();
    await env.DB.prepare("UPDATE org SET plan_id = 'pro' WHERE id = ?").bind(team.orgId).run();
    const viewer = await api(`/subscription/current?org=${team.slug}`, { token: team.viewer.token });
    expect(viewer.status, viewer.text).toBe(200);
    expect(viewer.body).toMatchObject({ plan_id: "pro", plan: { name: "Pro" }, org: team.slug });
    expectApiError(await api(`/subscription/current?org=${team.slug}`, { token: bob.token }), 404, "not_found");
    expectApiError(await api("/subscription/current?org=no-such-org-anywhere", { token: bob.token }), 404, "not_found");
    expectApiError(await api("/subscription/current"), 401, "unauthorized");
  });
});
