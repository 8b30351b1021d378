/** Suble's catalog as its clients read it: plans, images, and one-click apps at /catalog/apps. */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, createOrgKey, expectApiError, signUp } from "./helpers";

describe("catalog", () => {
  it("lists active plans in display order, in Suble's shape", async () => {
    const u = await signUp();
    const res = await api("/plans", { token: u.token });
    expect(res.status, res.text).toBe(200);
    expect(res.body.plans[0]).toEqual({
      uid: "pln_bxs1", code: "bxs-1", name: "BXS 1", family: "bxs", vcpu: 1, memoryMb: 2048, diskGb: 40,
      networkMbps: 10000, priceMonthlyOre: 4000, priceHourlyOre: 6,
    });
    const codes = res.body.plans.map((p: { code: string }) => p.code);
    expect(codes).toContain("bxs-2-4");
    // An inactive plan is not offered.
    await env.DB.prepare("INSERT INTO plan (id, code, name, family, vcpu, memory_mb, disk_gb, network_mbps, price_monthly_ore, price_hourly_ore, sort, active) VALUES ('pln_old', 'old-1', 'Old', 'old', 1, 512, 10, 100, 100, 1, 1, 0)").run();
    expect((await api("/plans", { token: u.token })).body.plans.map((p: { code: string }) => p.code)).not.toContain("old-1");
  });

  it("lists active images by family, newest first, without the node's template name", async () => {
    const u = await signUp();
    const res = await api("/images", { token: u.token });
    expect(res.status).toBe(200);
    const ubuntu = res.body.images.filter((i: { family: string }) => i.family === "ubuntu").map((i: { version: string }) => i.version);
    expect(ubuntu).toEqual(["24.04", "22.04"]);
    expect(res.body.images[0]).not.toHaveProperty("template");
    expect(res.body.images.find((i: { uid: string }) => i.uid === "img_ubuntu2404")).toMatchObject({ displayName: "Ubuntu 24.04 LTS", defaultUser: "ubuntu", hasGuestAgent: true, protocol: "ssh" });
  });

  it("serves one-click apps at /catalog/apps, the latest active version of each, and 404 app_not_found", async () => {
    const u = await signUp();
    await env.DB.prepare("INSERT INTO catalog_app (id, slug, version, name, description, category, min_vcpu, min_memory_mb, min_disk_gb, image_family, image_version) VALUES ('app_coolify', 'coolify', '4.2.0', 'Coolify', 'Newer', 'panel', 2, 4096, 40, 'ubuntu', '24.04')").run();
    const list = await api("/catalog/apps", { token: u.token });
    expect(list.status).toBe(200);
    const coolify = list.body.apps.filter((a: { slug: string }) => a.slug === "coolify");
    expect(coolify).toHaveLength(1);
    expect(coolify[0]).toMatchObject({ version: "4.2.0", requirements: { minVcpu: 2, minMemoryMb: 4096, minDiskGb: 40, image: { family: "ubuntu", version: "24.04" } } });
    const one = await api("/catalog/apps/wordpress", { token: u.token });
    expect(one.status).toBe(200);
    expect(one.body.app).toMatchObject({ slug: "wordpress", category: "cms" });
    expectApiError(await api("/catalog/apps/no-such-app", { token: u.token }), 404, "app_not_found");
  });

  it("is for any credential (a read-only key too) and 401 without one", async () => {
    const u = await signUp();
    const key = await createOrgKey(u, u.orgSlug, "read-only");
    for (const path of ["/plans", "/images", "/catalog/apps", "/catalog/apps/coolify"]) {
      expect((await api(path, { token: key.key })).status).toBe(200);
      expectApiError(await api(path), 401, "unauthorized");
    }
  });
});
