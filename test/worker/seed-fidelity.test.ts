/** Seed fidelity: each seed's existing client works by changing only the base URL. */
import { describe, expect, it } from "vitest";
import { api, signUp } from "./helpers";

describe("DevPocket's /api/ prefix", () => {
  it("serves the same routes at /api/v1/api/…", async () => {
    const user = await signUp();
    const direct = await api("/auth/login", { body: { email: user.email, password: user.password } });
    const prefixed = await api("/api/auth/login", { body: { email: user.email, password: user.password } });
    expect(direct.status).toBe(200);
    expect(prefixed.status, prefixed.text).toBe(200);
    const me = await api("/api/account", { token: user.token });
    expect(me.status, me.text).toBe(200);
    expect(me.body.account.email).toBe(user.email);
    // Errors, too, in the one envelope.
    const missing = await api("/api/no-such-route", { token: user.token });
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: "not_found", request_id: expect.any(String) });
    expect((await api("/api/account")).status).toBe(401);
  });
});
