/** The one error envelope: every failure names its code and carries the request's id. */
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../../src/lib/error-codes";
import { api, signUp } from "./helpers";

describe("error envelope", () => {
  it("gives every kind of failure a request_id, a fresh one per request, Cloudflare's ray id when there is one", async () => {
    const u = await signUp();
    const failures = [
      await api("/projects"), // 401
      await api("/no/such/route"), // 404 from the router
      await api("/projects", { token: u.token, body: { name: "" } }), // 400 validation
      await api("/projects", { token: u.token, raw: "{not json" }), // 400 invalid_json
      await api(`/projects/prj_nope00000000000`, { token: u.token }), // 404 from a route
    ];
    const ids = new Set<string>();
    for (const res of failures) {
      expect(res.status, res.text).toBeGreaterThanOrEqual(400);
      expect(res.body.error).toMatchObject({ code: expect.any(String), message: expect.any(String), request_id: expect.stringMatching(/^\S{8,}$/) });
      ids.add(res.body.error.request_id);
    }
    expect(ids.size).toBe(failures.length);
    const rayed = await api("/projects", { headers: { "cf-ray": "8c2f0e1d2a3b4c5d-AMS" } });
    expect(rayed.body.error.request_id).toBe("8c2f0e1d2a3b4c5d-AMS");
  });

  it("answers each code with the status its table gives, and the OpenAPI document names the codes a route can answer", async () => {
    const u = await signUp();
    const taken = await api("/projects", { token: u.token, body: { name: "Twice", slug: `twice-${Date.now().toString(36)}` } });
    const again = await api("/projects", { token: u.token, body: { name: "Twice", slug: taken.body.slug } });
    expect(again.body.error.code).toBe("slug_taken");
    expect(again.status).toBe(ERROR_CODES.slug_taken.status);
    const doc = await api("/openapi.json");
    const post = doc.body.paths["/projects/{project}/members"].post;
    expect(post.responses["409"].description).toContain("`already_member`");
    expect(post.responses["401"].description).toContain("`unauthorized`");
    expect(doc.body.components.schemas.Error.properties.error.properties).toHaveProperty("request_id");
  });
});
