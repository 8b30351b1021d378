/**
 * DevPocket's sync across devices: versions per item, a conflict when two devices write
 * from the same base, kept until the user resolves it (local, remote, merge), stats and
 * devices; all of it the caller's own.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { api, expectApiError, signUp, type TestUser } from "./helpers";

const pull = (u: TestUser, device: string, query = "data_types=all") => api(`/sync/data?${query}&device_id=${device}&device_name=${encodeURIComponent(`${device} name`)}`, { token: u.token });

let ada: TestUser;
let bob: TestUser;
beforeAll(async () => {
  [ada, bob] = await Promise.all([signUp({ name: "Ada" }), signUp({ name: "Bob" })]);
});

describe("sync between two devices", () => {
  it("versions items, detects two writes from the same base, keeps the conflict and resolves it three ways", async () => {
    // The phone creates a profile and the settings.
    const first = await api("/sync/data", {
      token: ada.token,
      body: {
        device_id: "phone",
        device_name: "Ada's phone",
        device_type: "ios",
        ssh_profiles: [{ id: "profile-1", name: "Production Server", host: "prod.example.com", username: "deploy", modified_at: "2023-01-01T12:00:00Z" }],
        settings: { theme: "dark", terminal_font_size: 14 },
        sync_timestamp: "2023-01-01T12:00:00Z",
      },
    });
    expect(first.status, first.text).toBe(200);
    expect(first.body).toMatchObject({ message: "Sync data uploaded successfully", conflicts_detected: [] });
    expect(first.body.applied).toEqual(
      expect.arrayContaining([
        { data_type: "ssh_profiles", id: "profile-1", version: 1, deleted: false },
        { data_type: "settings", id: "settings", version: 1, deleted: false },
      ]),
    );

    // The laptop pulls it.
    const pulled = await pull(ada, "laptop");
    expect(pulled.status, pulled.text).toBe(200);
    expect(pulled.body.data.ssh_profiles).toEqual([expect.objectContaining({ id: "profile-1", host: "prod.example.com", version: 1, deleted: false })]);
    expect(pulled.body.data.settings).toEqual([expect.objectContaining({ id: "settings", theme: "dark", version: 1 })]);
    expect(pulled.body).toMatchObject({ total_items: 2, conflicts: [], device_count: 2, conflict_type: null });
    expect(Object.keys(pulled.body.data).sort()).toEqual(["ai_preferences", "commands", "sessions", "settings", "ssh_profiles"]);

    // Both edit from version 1: the laptop first, then the phone.
    const laptop = await api("/sync/data", { token: ada.token, body: { device_id: "laptop", ssh_profiles: [{ id: "profile-1", version: 1, name: "Prod", host: "prod.example.com", username: "deploy", port: 2222 }] } });
    expect(laptop.status, laptop.text).toBe(200);
    expect(laptop.body.applied).toEqual([{ data_type: "ssh_profiles", id: "profile-1", version: 2, deleted: false }]);

    const phone = await api("/sync/data", {
      token: ada.token,
      body: { device_id: "phone", ssh_profiles: [{ id: "profile-1", version: 1, name: "Production", host: "prod.example.com", username: "root" }], settings: { version: 1, theme: "light" } },
    });
    expect(phone.status, phone.text).toBe(409);
    expect(phone.body).toMatchObject({ message: "Sync conflicts detected", error: { code: "sync_conflict" } });
    // What did not conflict was written.
    expect(phone.body.applied).toEqual([{ data_type: "settings", id: "settings", version: 2, deleted: false }]);
    expect(phone.body.conflicts).toHaveLength(1);
    const conflict = phone.body.conflicts[0];
    expect(conflict).toMatchObject({
      conflict_type: "version_mismatch",
      data_type: "ssh_profiles",
      item_id: "profile-1",
      local_data: { name: "Production", username: "root" },
      remote_data: { name: "Prod", port: 2222 },
      local_version: 1,
      remote_version: 2,
      device_info: { local_device_id: "phone", local_device_name: "Ada's phone", remote_device_id: "laptop", remote_device_name: "laptop name" },
      resolution_options: ["local", "remote", "merge"],
      status: "open",
    });
    expect(conflict.conflict_id).toMatch(/^scf_/);

    // The server still holds the laptop's version, and the conflict waits in every pull.
    const waiting = await pull(ada, "tablet", "data_types=ssh_profiles");
    expect(waiting.body.data).toEqual({ ssh_profiles: [expect.objectContaining({ name: "Prod", version: 2 })] });
    expect(waiting.body).toMatchObject({ conflict_type: "version_mismatch", conflicts: [expect.objectContaining({ conflict_id: conflict.conflict_id })] });

    // Another user cannot see or resolve it.
    expect((await pull(bob, "bobs-phone")).body).toMatchObject({ total_items: 0, conflicts: [] });
    expectApiError(await api(`/sync/conflicts/${conflict.conflict_id}/resolve`, { token: bob.token, body: { resolution: "local" } }), 404, "conflict_not_found");

    // Resolved with the phone's data: a new version.
    const resolved = await api(`/sync/conflicts/${conflict.conflict_id}/resolve`, { token: ada.token, body: { resolution: "local" } });
    expect(resolved.status, resolved.text).toBe(200);
    expect(resolved.body).toMatchObject({ message: "Conflict resolved successfully", resolution_method: "local", final_data: { id: "profile-1", name: "Production", username: "root", version: 3 } });
    expect(resolved.body.final_data.port).toBeUndefined();
    expectApiError(await api(`/sync/conflicts/${conflict.conflict_id}/resolve`, { token: ada.token, body: { resolution: "remote" } }), 409, "conflict_resolved");
    expect((await pull(ada, "tablet", "data_types=ssh_profiles")).body).toMatchObject({ data: { ssh_profiles: [expect.objectContaining({ username: "root", version: 3 })] }, conflicts: [] });

    // A second conflict, merged (both sides combined, the device's fields on top).
    const again = await api("/sync/data", { token: ada.token, body: { device_id: "laptop", ssh_profiles: [{ id: "profile-1", version: 2, port: 22, name: "Prod again", host: "prod.example.com", username: "deploy" }] } });
    expect(again.status).toBe(409);
    const merged = await api(`/sync/conflicts/${again.body.conflicts[0].conflict_id}/resolve`, { token: ada.token, body: { resolution: "merge" } });
    expect(merged.status, merged.text).toBe(200);
    expect(merged.body.final_data).toMatchObject({ name: "Prod again", username: "deploy", port: 22, version: 4 });

    // A third, merged with what the user wrote.
    const third = await api("/sync/data", { token: ada.token, body: { device_id: "phone", ssh_profiles: [{ id: "profile-1", version: 3, name: "Phone's", host: "h", username: "u" }] } });
    expect(third.status).toBe(409);
    const custom = await api(`/sync/conflicts/${third.body.conflicts[0].conflict_id}/resolve`, { token: ada.token, body: { resolution: "merge", resolved_data: { name: "Chosen", host: "prod.example.com", username: "ops" } } });
    expect(custom.body.final_data).toEqual({ id: "profile-1", name: "Chosen", host: "prod.example.com", username: "ops", version: 5, modified_at: expect.any(String), deleted: false });

    // A fourth, where the server's side is kept: the version does not move.
    const fourth = await api("/sync/data", { token: ada.token, body: { device_id: "laptop", ssh_profiles: [{ id: "profile-1", version: 1, name: "Stale" }] } });
    expect(fourth.status).toBe(409);
    const kept = await api(`/sync/conflicts/${fourth.body.conflicts[0].conflict_id}/resolve`, { token: ada.token, body: { resolution: "remote" } });
    expect(kept.body.final_data).toMatchObject({ name: "Chosen", version: 5 });

    // The same content from an old base is no conflict: both devices agree.
    const agree = await api("/sync/data", { token: ada.token, body: { device_id: "phone", ssh_profiles: [{ id: "profile-1", version: 2, name: "Chosen", host: "prod.example.com", username: "ops" }] } });
    expect(agree.status, agree.text).toBe(200);

    // Deleting leaves a tombstone other devices see with include_deleted.
    const del = await api("/sync/data", { token: ada.token, body: { device_id: "phone", ssh_profiles: [{ id: "profile-1", version: 5, deleted: true }] } });
    expect(del.body.applied).toEqual([{ data_type: "ssh_profiles", id: "profile-1", version: 6, deleted: true }]);
    expect((await pull(ada, "tablet", "data_types=ssh_profiles")).body.data.ssh_profiles).toEqual([]);
    expect((await pull(ada, "tablet", "data_types=ssh_profiles&include_deleted=true")).body.data.ssh_profiles).toEqual([expect.objectContaining({ id: "profile-1", deleted: true, version: 6 })]);

    // Only what changed after last_sync_timestamp.
    const mark = new Date().toISOString();
    await api("/sync/data", { token: ada.token, body: { device_id: "phone", commands: [{ id: "cmd-1", command: "ls -la" }] } });
    const since = await pull(ada, "tablet", `data_types=commands,ssh_profiles&last_sync_timestamp=${encodeURIComponent(mark)}`);
    expect(since.body.data).toEqual({ commands: [expect.objectContaining({ id: "cmd-1", command: "ls -la", version: 1 })], ssh_profiles: [] });

    // Stats and devices.
    const stats = await api("/sync/stats", { token: ada.token });
    expect(stats.status).toBe(200);
    expect(stats.body).toMatchObject({ active_devices: 3, total_conflicts: 4, resolved_conflicts: 4, last_sync: expect.any(String) });
    expect(stats.body.failed_syncs).toBe(4);
    expect(stats.body.successful_syncs + stats.body.failed_syncs).toBe(stats.body.total_syncs);
    const devices = await api("/user/devices", { token: ada.token });
    expect(devices.status).toBe(200);
    expect(devices.body.map((d: { device_id: string }) => d.device_id).sort()).toEqual(["laptop", "phone", "tablet"]);
    expect(devices.body.find((d: { device_id: string }) => d.device_id === "phone")).toMatchObject({ device_type: "ios", device_name: "Ada's phone", last_active: expect.any(String) });

    // Bob sees none of it.
    expect((await api("/user/devices", { token: bob.token })).body.map((d: { device_id: string }) => d.device_id)).toEqual(["bobs-phone"]);
    expect((await api("/sync/stats", { token: bob.token })).body).toMatchObject({ total_conflicts: 0, active_devices: 1 });
  });
});

describe("two writes of one item at the same moment", () => {
  it("lets exactly one win and keeps the other as a conflict to resolve, for an edit and for a new item", async () => {
    const carol = await signUp({ name: "Carol" });
    const created = await api("/sync/data", { token: carol.token, body: { device_id: "phone", ssh_profiles: [{ id: "race", name: "Base", host: "h.example.com" }] } });
    expect(created.status, created.text).toBe(200);

    // Both devices edit from version 1 and upload at once; then both create the same new item at once.
    for (const [item, base] of [
      ["race", { version: 1 }],
      ["fresh", {}],
    ] as const) {
      const sides = await Promise.all(
        (["laptop", "tablet"] as const).map((device) => api("/sync/data", { token: carol.token, body: { device_id: device, ssh_profiles: [{ id: item, ...base, name: `${device}'s`, host: "h.example.com" }] } })),
      );
      const statuses = sides.map((s) => s.status).sort();
      expect(statuses, sides.map((s) => s.text).join("\n")).toEqual([200, 409]);
      const won = sides.find((s) => s.status === 200)!;
      const lost = sides.find((s) => s.status === 409)!;
      const winner = won === sides[0] ? "laptop" : "tablet";
      const loser = winner === "laptop" ? "tablet" : "laptop";
      expect(won.body.applied).toEqual([{ data_type: "ssh_profiles", id: item, version: "version" in base ? 2 : 1, deleted: false }]);
      expect(lost.body).toMatchObject({ message: "Sync conflicts detected", error: { code: "sync_conflict" }, applied: [] });
      expect(lost.body.conflicts).toEqual([
        expect.objectContaining({
          item_id: item,
          conflict_type: "version" in base ? "version_mismatch" : "concurrent_modification",
          local_data: expect.objectContaining({ name: `${loser}'s` }),
          remote_data: expect.objectContaining({ name: `${winner}'s` }),
          device_info: expect.objectContaining({ local_device_id: loser, remote_device_id: winner }),
        }),
      ]);

      // The server holds the winner's write, and the loser's waits in every pull until resolved.
      const waiting = await pull(carol, "desk", "data_types=ssh_profiles");
      expect(waiting.body.data.ssh_profiles).toContainEqual(expect.objectContaining({ id: item, name: `${winner}'s` }));
      expect(waiting.body.conflicts).toEqual([expect.objectContaining({ conflict_id: lost.body.conflicts[0].conflict_id })]);
      const resolved = await api(`/sync/conflicts/${lost.body.conflicts[0].conflict_id}/resolve`, { token: carol.token, body: { resolution: "local" } });
      expect(resolved.status, resolved.text).toBe(200);
      expect(resolved.body.final_data).toMatchObject({ id: item, name: `${loser}'s`, version: "version" in base ? 3 : 2 });
    }
    expect((await api("/sync/stats", { token: carol.token })).body).toMatchObject({ total_conflicts: 2, resolved_conflicts: 2, failed_syncs: 2 });

    // Two devices resolving one conflict at once: one resolution takes effect, the other is told.
    const stale = await api("/sync/data", { token: carol.token, body: { device_id: "laptop", ssh_profiles: [{ id: "race", version: 1, name: "Stale", host: "h.example.com" }] } });
    expect(stale.status, stale.text).toBe(409);
    const id = stale.body.conflicts[0].conflict_id;
    const answers = await Promise.all([
      api(`/sync/conflicts/${id}/resolve`, { token: carol.token, body: { resolution: "local" } }),
      api(`/sync/conflicts/${id}/resolve`, { token: carol.token, body: { resolution: "merge", resolved_data: { name: "Merged", host: "h.example.com" } } }),
    ]);
    expect(answers.map((a) => a.status).sort(), answers.map((a) => a.text).join("\n")).toEqual([200, 409]);
    const taken = answers.find((a) => a.status === 200)!;
    expect(answers.find((a) => a.status === 409)!.body.error.code).toBe("conflict_resolved");
    const after = await pull(carol, "desk", "data_types=ssh_profiles");
    expect(after.body.conflicts).toEqual([]);
    expect(after.body.data.ssh_profiles.find((p: { id: string }) => p.id === "race")).toMatchObject({ name: taken.body.final_data.name, version: 4 });
  });
});

describe("devices named at sign-in", () => {
  it("are the user's devices, as DevPocket's register and login send them", async () => {
    const email = `dev-${Date.now().toString(36)}@example.com`;
    const reg = await api("/auth/register", { body: { email, username: `dp_${Date.now().toString(36)}`, password: "correct horse battery", device_id: "ipad-1", device_type: "ios" } });
    expect(reg.status, reg.text).toBe(201);
    const login = await api("/auth/login", { body: { username: email, password: "correct horse battery", device_id: "pixel-1", device_type: "android" } });
    expect(login.status, login.text).toBe(200);
    const devices = await api("/user/devices", { token: login.body.token });
    expect(devices.body.map((d: { device_id: string; device_type: string }) => [d.device_id, d.device_type]).sort()).toEqual([["ipad-1", "ios"], ["pixel-1", "android"]]);
  });
});

describe("sync input and access", () => {
  it("refuses bad input with 400 and never syncs secrets", async () => {
    const cases: unknown[] = [
      { ssh_profiles: [{ name: "no id" }] },
      { ssh_profiles: [{ id: "p", password: "hunter2" }] },
      { ssh_profiles: [{ id: "p", version: -1 }] },
      { ssh_profiles: [{ id: "p" }, { id: "p" }] },
      { ssh_profiles: "not a list" },
      { settings: { blob: "x".repeat(20_000) } },
      { device_type: "toaster" },
    ];
    for (const body of cases) {
      const res = await api("/sync/data", { token: ada.token, body });
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(res.body.error.code).toBe("invalid_request");
      expect(res.text).not.toContain("hunter2");
    }
    expectApiError(await api("/sync/data", { token: ada.token, raw: "{" }), 400, "invalid_json");
    expectApiError(await api("/sync/data?data_types=all&device_id=d", { token: ada.token }), 400, "invalid_request");
    expectApiError(await api("/sync/data?data_types=nonsense&device_id=d&device_name=n", { token: ada.token }), 400, "invalid_request");
    expectApiError(await api("/sync/data?data_types=all&device_id=d&device_name=n&last_sync_timestamp=yesterday", { token: ada.token }), 400, "invalid_request");
    expectApiError(await api("/sync/conflicts/scf_nope/resolve", { token: ada.token, body: { resolution: "both" } }), 400, "invalid_request");
    expectApiError(await api("/sync/conflicts/scf_nope/resolve", { token: ada.token, body: { resolution: "local" } }), 404, "conflict_not_found");
  });

  it("limits sync reads and writes per user with 429 rate_limited, as the seed's sync rate limit", async () => {
    const [busy, other] = await Promise.all([signUp({ name: "Busy" }), signUp({ name: "Other" })]);
    // 120 a minute (wrangler.toml SYNC_LIMITER); a window may roll over once while this runs.
    let ok = 0;
    let limited = null as Awaited<ReturnType<typeof pull>> | null;
    for (let i = 0; i < 250 && !limited; i++) {
      const res = await pull(busy, "phone", "data_types=settings");
      if (res.status === 429) limited = res;
      else {
        expect(res.status, res.text).toBe(200);
        ok++;
      }
    }
    expect(limited, "never limited").not.toBeNull();
    expectApiError(limited!, 429, "rate_limited");
    expect(ok).toBeGreaterThanOrEqual(120);
    expectApiError(await api("/sync/data", { token: busy.token, body: { device_id: "phone", settings: { theme: "dark" } } }), 429, "rate_limited");
    expect((await pull(other, "phone", "data_types=settings")).status).toBe(200);
  });

  it("takes repeated data_types", async () => {
    const res = await api("/sync/data?data_types=commands&data_types=settings&device_id=d1&device_name=n", { token: bob.token });
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body.data).sort()).toEqual(["commands", "settings"]);
  });

  it("needs a signed-in caller, and a personal key that may write to upload or resolve", async () => {
    expectApiError(await api("/sync/data?data_types=all&device_id=d&device_name=n"), 401, "unauthorized");
    expectApiError(await api("/sync/data", { body: {} }), 401, "unauthorized");
    expectApiError(await api("/sync/stats"), 401, "unauthorized");
    expectApiError(await api("/sync/conflicts/scf_x/resolve", { body: { resolution: "local" } }), 401, "unauthorized");
    expectApiError(await api("/user/devices"), 401, "unauthorized");
    const ro = await api("/api-keys", { token: bob.token, body: { name: "ro", scope: "read-only" } });
    expect((await api("/sync/stats", { token: ro.body.key })).status).toBe(200);
    expect((await pull({ ...bob, token: ro.body.key }, "d2")).status).toBe(200);
    expectApiError(await api("/sync/data", { token: ro.body.key, body: { commands: [{ id: "c" }] } }), 403, "forbidden");
    expectApiError(await api("/sync/conflicts/scf_x/resolve", { token: ro.body.key, body: { resolution: "local" } }), 403, "forbidden");
  });
});
