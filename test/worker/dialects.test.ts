/**
 * Each seed's error dialect on its own routes, with the expected codes read from the
 * seed's own document (../shared/seeds/, passed in by test/vitest.config.ts), so a client
 * written against that document reads the codes it expects.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { api, lastMailTo, signUp, type TestUser, tokenIn } from "./helpers";

interface SeedOperation {
  requestBody?: unknown;
  responses: Record<string, { description?: string; content?: { "application/json"?: { example?: unknown } } }>;
}
type Paths = Record<string, Record<string, SeedOperation>>;

const backlex = JSON.parse(env.SEED_BACKLEX) as { paths: Paths; components: { schemas: Record<string, { properties?: any }> } };
const suble = JSON.parse(env.SEED_SUBLE) as { paths: Paths };

/** The code a Suble response description starts with: "project_not_found — Project uid not found". */
function subleCode(method: string, path: string, status: number): string {
  const description = suble.paths[path]?.[method]?.responses[String(status)]?.description ?? "";
  const code = /^([a-z_]+) —/.exec(description)?.[1];
  if (!code) throw new Error(`Suble documents no ${status} code for ${method.toUpperCase()} ${path}: "${description}"`);
  return code;
}

let served: Paths;
let owner: TestUser;
let projectSlug: string;

beforeAll(async () => {
  served = (await api("/openapi.json")).body.paths;
  owner = await signUp();
  projectSlug = (await api(`/projects/${owner.projectId}`, { token: owner.token })).body.slug;
});

/** backlex's operations Berth serves, with their documents. */
function backlexServed(): Array<{ method: string; path: string; seed: SeedOperation; ours: SeedOperation }> {
  return Object.entries(backlex.paths).flatMap(([path, ops]) =>
    Object.entries(ops)
      .filter(([method]) => served[path]?.[method])
      .map(([method, seed]) => ({ method, path, seed, ours: served[path]![method]! })),
  );
}

const fill = (path: string) =>
  path
    .replace("{slug}", owner.orgSlug)
    .replace("{projectSlug}", projectSlug)
    .replace(/\{[^}]+\}/g, "doesnotexist00000000");

describe("backlex's dialect (AppError)", () => {
  it("answers a body that fails validation with the status and code its document names, on every backlex operation Berth serves that takes one", async () => {
    const checked: string[] = [];
    const wrong: string[] = [];
    for (const { method, path, seed, ours } of backlexServed()) {
      if (!ours.requestBody) continue;
      const documented = seed.responses["422"]?.description ?? "";
      const code = /\(code ([A-Z_]+)\)/.exec(documented)?.[1];
      expect(code, `${method} ${path}: ${documented}`).toBeTruthy();
      const res = await api(fill(path), { method: method.toUpperCase(), token: owner.token, raw: "[]" });
      checked.push(`${method} ${path}`);
      if (res.status !== 422 || res.body?.error?.code !== code) wrong.push(`${method.toUpperCase()} ${path} → ${res.status} ${res.text.slice(0, 160)}`);
    }
    expect(wrong).toEqual([]);
    expect(checked.length).toBeGreaterThan(8);
  });

  it("answers a missing credential with the code of its AppError example, upper-case like every backlex code", async () => {
    const example = backlex.components.schemas.AppError?.properties?.error?.properties?.code?.example;
    expect(example).toBe("UNAUTHORIZED");
    const wrong: string[] = [];
    for (const { method, path } of backlexServed()) {
      if (path === "/invitations/accept" && method === "get") continue;
      const res = await api(fill(path), { method: method.toUpperCase(), ...(method === "get" || method === "delete" ? {} : { body: {} }) });
      if (res.status !== 401 || res.body?.error?.code !== example) wrong.push(`${method.toUpperCase()} ${path} → ${res.status} ${res.text.slice(0, 120)}`);
    }
    expect(wrong).toEqual([]);
  });

  it("answers query validation with 422 VALIDATION too (the audit log's filters)", async () => {
    const code = /\(code ([A-Z_]+)\)/.exec(backlex.paths["/org/{slug}/audit"]!.get!.responses["422"]!.description!)?.[1];
    const res = await api(`/org/${owner.orgSlug}/audit?limit=0`, { token: owner.token });
    expect(res.status, res.text).toBe(422);
    expect(res.body.error.code).toBe(code);
    expect(res.body.error.details.issues[0].path).toBe("limit");
  });

  it("keeps the envelope, its message, details and request id", async () => {
    const res = await api("/org", { token: owner.token, body: { name: "" } });
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({ code: "VALIDATION", message: expect.stringContaining("name"), request_id: expect.any(String) });
    expect(res.body.error.details.issues.map((i: { path: string }) => i.path)).toContain("name");
  });
});

describe("Suble's codes", () => {
  it("a blank project name: the 400 code POST /projects documents", async () => {
    const code = subleCode("post", "/projects", 400);
    for (const name of ["", "   "]) {
      const res = await api("/projects", { token: owner.token, body: { name } });
      expect(res.status, res.text).toBe(400);
      expect(res.body.error.code).toBe(code);
    }
    const renamed = await api(`/projects/${owner.projectId}`, { token: owner.token, method: "PATCH", body: { name: "" } });
    expect(renamed.status).toBe(400);
    expect(renamed.body.error.code).toBe(code);
  });

  it("a blank or malformed member email: the 400 code POST /projects/{project}/members documents", async () => {
    const code = subleCode("post", "/projects/{project}/members", 400);
    for (const email of ["", "not-an-email"]) {
      const res = await api(`/projects/${owner.projectId}/members`, { token: owner.token, body: { email } });
      expect(res.status, res.text).toBe(400);
      expect(res.body.error.code).toBe(code);
    }
  });

  it("a project that does not exist, or is another tenant's: the 404 code each served operation documents", async () => {
    const stranger = await signUp();
    const cases: Array<[method: string, path: string, body?: unknown]> = [
      ["get", "/projects/{project}"],
      ["patch", "/projects/{project}", { name: "Taken" }],
      ["delete", "/projects/{project}"],
      ["post", "/projects/{project}/members", { email: "someone@example.com" }],
      ["get", "/projects/{project}/jobs"],
      ["get", "/projects/{project}/jobs/{job}"],
      ["get", "/projects/{project}/api-keys"],
      ["post", "/projects/{project}/api-keys", { name: "ci" }],
    ];
    for (const [method, path, body] of cases) {
      expect(served[path]?.[method], `${method} ${path} is served`).toBeTruthy();
      const code = subleCode(method, path, 404);
      for (const project of ["prj_doesnotexist0000", stranger.projectId]) {
        const url = path.replace("{project}", project).replace("{job}", "job_doesnotexist0000");
        const res = await api(url, { method: method.toUpperCase(), token: owner.token, body });
        expect(`${method} ${url} → ${res.status} ${res.body?.error?.code}`).toBe(`${method} ${url} → 404 ${code}`);
      }
    }
  });

  it("a key that does not exist: the 404 code DELETE /projects/{project}/api-keys/{key} documents", async () => {
    const code = subleCode("delete", "/projects/{project}/api-keys/{key}", 404);
    const res = await api(`/projects/${owner.projectId}/api-keys/pak_doesnotexist`, { method: "DELETE", token: owner.token });
    expect(res.status, res.text).toBe(404);
    expect(res.body.error.code).toBe(code);
  });

  it("two-factor enrolment: the 409 of a second enable and the 400 of a code that is not 6 digits, as /account/mfa/* documents", async () => {
    const u = await signUp();
    const first = await api("/account/mfa/enable", { method: "POST", token: u.token });
    expect(first.status, first.text).toBe(200);
    // Suble's example answer has exactly these fields (Berth adds the backup codes).
    const example = suble.paths["/account/mfa/enable"]!.post!.responses["200"]!.content!["application/json"]!.example as Record<string, unknown>;
    for (const field of Object.keys(example)) expect(typeof first.body[field], field).toBe("string");
    const confirmed = await api("/account/mfa/confirm", { token: u.token, body: { code: "12345" } });
    expect(confirmed.status).toBe(400);
    expect(confirmed.body.error.code).toBe(subleCode("post", "/account/mfa/confirm", 400));
    const disabled = await api("/account/mfa/disable", { token: u.token, body: { code: "abcdef" } });
    expect(disabled.status).toBe(400);
    expect(disabled.body.error.code).toBe(subleCode("post", "/account/mfa/disable", 400));
    // Turned on, a second enable is the documented 409.
    const { createOTP } = await import("@better-auth/utils/otp");
    const { base32 } = await import("@better-auth/utils/base32");
    const code = await createOTP(base32.decode(first.body.secret), { digits: 6, period: 30 }).totp();
    expect((await api("/account/mfa/confirm", { token: u.token, body: { code } })).status).toBe(204);
    const again = await api("/account/mfa/enable", { method: "POST", token: u.token });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe(subleCode("post", "/account/mfa/enable", 409));
  });

  it("is said the same way at DevPocket's /api/ prefix", async () => {
    const res = await api("/api/projects", { token: owner.token, body: { name: "" } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe(subleCode("post", "/projects", 400));
    const org = await api("/api/org", { token: owner.token, body: { name: "" } });
    expect(org.status).toBe(422);
  });
});

describe("the OpenAPI document says what each route answers", () => {
  it("names each route's codes in its dialect", async () => {
    expect(served["/org"]!.post!.responses["422"]?.description).toContain("`VALIDATION`");
    expect(served["/org"]!.post!.responses["400"]?.description ?? "").not.toContain("invalid_request");
    expect(served["/projects"]!.post!.responses["400"]?.description).toContain("`invalid_name`");
    expect(served["/projects/{project}/jobs"]!.get!.responses["404"]?.description).toContain("`project_not_found`");
    expect(served["/projects/{project}"]!.get!.responses["404"]?.description).toContain("`not_found`");
    expect(served["/projects/{project}"]!.get!.responses["404"]?.description).not.toContain("project_not_found");
  });
});

describe("Suble's project members, as its clients send them", () => {
  const example = (method: string, path: string) => (suble.paths[path]![method] as { requestBody?: { content: { "application/json": { example: Record<string, string> } } } }).requestBody?.content["application/json"].example;

  it("invites with the documented body (role: member), lists Suble's role names back, and PATCH without a body changes nothing", async () => {
    const team = await signUp();
    const guest = await signUp();
    const body: Record<string, string> = { ...example("post", "/projects/{project}/members"), email: guest.email };
    expect(body.role).toBe("member");
    const invited = await api(`/projects/${team.projectId}/members`, { token: team.token, body });
    expect(invited.status, invited.text).toBe(204);
    const mail = await lastMailTo(guest.email);
    const token = tokenIn(mail.text, "inv_");
    expect((await api("/invitations/accept", { token: guest.token, body: { token } })).status).toBe(200);

    const listed = await api(`/projects/${team.projectId}/members`, { token: team.token });
    expect(listed.status).toBe(200);
    const documented = (suble.paths["/projects/{project}/members"]!.get!.responses["200"]!.content!["application/json"]!.example as Array<{ role: string }>).map((m) => m.role);
    expect(new Set(listed.body.map((m: { role: string }) => m.role))).toEqual(new Set(documented));
    expect(listed.body.find((m: { email: string }) => m.email === guest.email)).toMatchObject({ role: "member", berthRole: "developer", status: "accepted" });
    expect(listed.body.find((m: { email: string }) => m.email === team.email)).toMatchObject({ role: "owner", berthRole: "owner" });

    // Suble documents PATCH …/members/{email} with no body: a no-op, 204.
    const path = `/projects/${team.projectId}/members/${encodeURIComponent(guest.email)}`;
    const noop = await api(path, { token: team.token, method: "PATCH" });
    expect(noop.status, noop.text).toBe(204);
    expect((await api(`/projects/${team.projectId}`, { token: guest.token })).body.role).toBe("developer");
    // … for a member that exists.
    const missing = await api(`/projects/${team.projectId}/members/${encodeURIComponent("nobody@example.com")}`, { token: team.token, method: "PATCH" });
    expect(missing.status).toBe(404);
    // With a body it changes the grant, in Berth's roles or Suble's.
    expect((await api(path, { token: team.token, method: "PATCH", body: { role: "viewer" } })).status).toBe(204);
    expect((await api(`/projects/${team.projectId}`, { token: guest.token })).body.role).toBe("viewer");
    expect((await api(path, { token: team.token, method: "PATCH", body: { role: "member" } })).status).toBe(204);
    expect((await api(`/projects/${team.projectId}`, { token: guest.token })).body.role).toBe("developer");
  });

  it("lists projects with memberCount, as documented, counting org seats and project grants", async () => {
    const documented = (suble.paths["/projects"]!.get!.responses["200"]!.content!["application/json"]!.example as Array<Record<string, unknown>>)[0]!;
    expect(documented).toHaveProperty("memberCount");
    const team = await signUp();
    const before = await api("/projects", { token: team.token });
    expect(before.body[0].memberCount).toBe(1);
    const guest = await signUp();
    await api(`/projects/${team.projectId}/members`, { token: team.token, body: { email: guest.email } });
    const token = tokenIn((await lastMailTo(guest.email)).text, "inv_");
    await api("/invitations/accept", { token: guest.token, body: { token } });
    const after = await api("/projects", { token: team.token });
    for (const key of Object.keys(documented)) expect(after.body[0], key).toHaveProperty(key);
    expect(after.body.find((p: { id: string }) => p.id === team.projectId).memberCount).toBe(2);
    // The same count on the project itself.
    expect((await api(`/projects/${team.projectId}`, { token: team.token })).body.memberCount).toBe(2);
  });
});
