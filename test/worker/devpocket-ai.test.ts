/**
 * DevPocket's AI routes against a local OpenAI-compatible provider (test/fake-ai/server.ts,
 * reached through AI_BASE_URL): suggestions whole and streamed, explanations, completions,
 * key validation, the key stored encrypted and used when `api_key` is left out, and every
 * provider failure as a clear error that never carries the key.
 */
import { beforeAll, describe, expect, it, vi } from "vitest";
import { api, env, expectApiError, fetchWorker, signUp, type TestUser } from "./helpers";

const GOOD = "sk-test-0123456789abcdef";

/** What the fake provider saw in the last chat request. */
async function lastProviderRequest() {
  const res = await fetch(`${env.AI_BASE_URL}/__last`);
  return (await res.json()) as { model: string; messages: Array<{ role: string; content: string }>; stream: boolean; bearer: boolean };
}

/** Server-sent events of a response, in order. */
function eventsOf(text: string): Array<{ event: string; data: any }> {
  return text
    .split("\n\n")
    .filter((block) => block.trim())
    .map((block) => {
      const event = block.match(/^event: (.*)$/m)?.[1] ?? "message";
      const data = block
        .split("\n")
        .filter((l) => l.startsWith("data: "))
        .map((l) => l.slice(6))
        .join("\n");
      return { event, data: JSON.parse(data) };
    });
}

let ada: TestUser;
let bob: TestUser;
beforeAll(async () => {
  [ada, bob] = await Promise.all([signUp({ name: "Ada" }), signUp({ name: "Bob" })]);
});

describe("POST /ai/suggest", () => {
  it("turns a request into one command with the caller's key and the model the seed names", async () => {
    const res = await api("/ai/suggest", { token: ada.token, body: { prompt: "delete logs older than a week", api_key: GOOD, context: [{ role: "user", content: "I am in /var/log" }] } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ suggestion: "find . -name '*.log' -mtime +7 -delete", cached: false, model: "claude-3-haiku", tokens_used: 30 });
    const seen = await lastProviderRequest();
    expect(seen).toMatchObject({ model: "anthropic/claude-3-haiku", stream: false, bearer: true });
    expect(seen.messages.map((m) => m.role)).toEqual(["system", "user", "user"]);
    expect(seen.messages.at(-1)?.content).toBe("delete logs older than a week");
  });

  it("streams the provider's chunks as server-sent events, then the whole suggestion", async () => {
    const res = await fetchWorker("/api/v1/ai/suggest", {
      method: "POST",
      headers: { authorization: `Bearer ${ada.token}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ prompt: "delete old logs", api_key: GOOD, model: "gpt-4o-mini" }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const events = eventsOf(await res.text());
    const deltas = events.filter((e) => e.event === "delta");
    expect(deltas.length).toBeGreaterThan(3);
    expect(deltas.map((e) => e.data.delta).join("")).toBe("```sh\nfind . -name '*.log' -mtime +7 -delete\n```");
    expect(events.at(-1)).toEqual({ event: "done", data: { suggestion: "find . -name '*.log' -mtime +7 -delete", cached: false, model: "gpt-4o-mini", tokens_used: 30 } });
    expect(await lastProviderRequest()).toMatchObject({ model: "openai/gpt-4o-mini", stream: true });
  });

  it("ends a stream that breaks off with an error event in the envelope", async () => {
    const res = await api("/ai/suggest", { token: ada.token, body: { prompt: "x", api_key: "sk-cut-0123456789", stream: true } });
    expect(res.status).toBe(200);
    const events = eventsOf(res.text);
    expect(events.at(-1)).toMatchObject({ event: "error", data: { error: { code: "ai_provider_error", message: expect.any(String) } } });
    expect(res.text).not.toContain("sk-cut-0123456789");
  });

  it("answers a refused stream as an ordinary error, before any event", async () => {
    const res = await api("/ai/suggest", { token: ada.token, body: { prompt: "x", api_key: "sk-bad-0123456789", stream: true } });
    expectApiError(res, 401, "ai_key_invalid");
  });

  it("checks its input", async () => {
    expectApiError(await api("/ai/suggest", { token: ada.token, body: { api_key: GOOD } }), 400, "invalid_request");
    expectApiError(await api("/ai/suggest", { token: ada.token, body: { prompt: " ", api_key: GOOD } }), 400, "invalid_request");
    expectApiError(await api("/ai/suggest", { token: ada.token, body: { prompt: "x", api_key: GOOD, model: "bad model!" } }), 400, "invalid_request");
    expectApiError(await api("/ai/suggest", { token: ada.token, body: { prompt: "x", api_key: "sk test with spaces" } }), 400, "invalid_request");
    expectApiError(await api("/ai/suggest", { token: ada.token, raw: "{" }), 400, "invalid_json");
    // No key in the body and none stored.
    expectApiError(await api("/ai/suggest", { token: bob.token, body: { prompt: "x" } }), 400, "ai_key_missing");
  });

  it("needs a signed-in caller", async () => {
    expectApiError(await api("/ai/suggest", { body: { prompt: "x", api_key: GOOD } }), 401, "unauthorized");
  });
});

describe("provider failures", () => {
  const cases: Array<[string, number, string]> = [
    ["sk-bad-0123456789", 401, "ai_key_invalid"],
    ["sk-broke-0123456789", 402, "ai_quota_exceeded"],
    ["sk-limit-0123456789", 429, "ai_rate_limited"],
    ["sk-down-0123456789", 502, "ai_provider_error"],
    ["sk-drop-0123456789", 502, "ai_provider_unavailable"],
    ["sk-slow-0123456789", 504, "ai_provider_timeout"],
  ];
  it.each(cases)("%s is %i %s, and the key is nowhere in the answer", async (key, status, code) => {
    const res = await api("/ai/explain", { token: ada.token, body: { command: "cd /srv/app", error: "No such file or directory", api_key: key } });
    expectApiError(res, status, code);
    expect(res.text).not.toContain(key);
    if (code === "ai_rate_limited") expect(res.body.error.details).toMatchObject({ provider_status: 429, retry_after: "7" });
  });

  it("passes on an unknown model as the provider's rejection", async () => {
    const res = await api("/ai/suggest", { token: ada.token, body: { prompt: "x", api_key: GOOD, model: "nope/unknown" } });
    expectApiError(res, 502, "ai_request_rejected");
    expect(res.body.error.details.provider_message).toContain("not a valid model");
  });
});

describe("POST /ai/explain and /ai/complete", () => {
  it("explains an error with suggestions", async () => {
    const res = await api("/ai/explain", { token: ada.token, body: { command: "cd /srv/app", error: "cd: /srv/app: No such file or directory", api_key: GOOD } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ explanation: "The directory does not exist, so cd cannot enter it.", suggestions: ["mkdir -p /srv/app", "ls /srv"], tokens_used: 30 });
    expect((await lastProviderRequest()).messages.at(-1)?.content).toContain("No such file or directory");
  });

  it("completes a partial command: numbered and bulleted lines cleaned, duplicates once", async () => {
    const res = await api("/ai/complete", { token: ada.token, body: { partial_command: "git s", context: ["git pull"], api_key: GOOD } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ completions: ["git status", "git stash list", "git switch main"], tokens_used: 30 });
    expectApiError(await api("/ai/complete", { token: ada.token, body: { api_key: GOOD } }), 400, "invalid_request");
    expectApiError(await api("/ai/explain", { token: ada.token, body: { command: "ls", api_key: GOOD } }), 400, "invalid_request");
  });
});

describe("POST /ai/validate-key", () => {
  it("says valid with the provider's models, or not valid, and fails only on an outage", async () => {
    const ok = await api("/ai/validate-key", { token: ada.token, body: { api_key: GOOD } });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body).toEqual({ valid: true, models: ["anthropic/claude-3-haiku", "openai/gpt-4o-mini"] });
    // A plain OpenAI-compatible API has no /key: its model list decides.
    expect((await api("/ai/validate-key", { token: ada.token, body: { api_key: "sk-plain-0123456789" } })).body).toMatchObject({ valid: true });
    const bad = await api("/ai/validate-key", { token: ada.token, body: { api_key: "sk-bad-0123456789" } });
    expect(bad.status).toBe(200);
    expect(bad.body).toEqual({ valid: false, models: [] });
    expectApiError(await api("/ai/validate-key", { token: ada.token, body: { api_key: "sk-down-0123456789" } }), 502, "ai_provider_error");
    expectApiError(await api("/ai/validate-key", { token: ada.token, body: {} }), 400, "invalid_request");
    expectApiError(await api("/ai/validate-key", { body: { api_key: GOOD } }), 401, "unauthorized");
  });
});

describe("the stored key", () => {
  it("is stored encrypted after the provider accepts it, shown by its last four characters only, used when api_key is left out, and never seen by another user", async () => {
    const carol = await signUp({ name: "Carol" });
    expect((await api("/ai/key", { token: carol.token })).body).toEqual({ configured: false, key_hint: null, created_at: null, updated_at: null });
    expectApiError(await api("/ai/key", { method: "PUT", token: carol.token, body: { api_key: "sk-bad-0123456789" } }), 401, "ai_key_invalid");
    expect((await api("/ai/key", { token: carol.token })).body.configured).toBe(false);

    const key = "sk-test-carols-own-key-9f3a";
    const put = await api("/ai/key", { method: "PUT", token: carol.token, body: { api_key: key } });
    expect(put.status, put.text).toBe(200);
    expect(put.body).toMatchObject({ configured: true, key_hint: "…9f3a", models: ["anthropic/claude-3-haiku", "openai/gpt-4o-mini"] });
    expect(put.text).not.toContain(key);
    const got = await api("/ai/key", { token: carol.token });
    expect(got.body).toMatchObject({ configured: true, key_hint: "…9f3a" });
    expect(got.text).not.toContain(key);

    // At rest it is ciphertext.
    const row = await env.DB.prepare("SELECT encrypted FROM ai_key WHERE user_id = ?").bind(carol.id).first<{ encrypted: string }>();
    expect(row?.encrypted).toMatch(/^v1\./);
    expect(row?.encrypted).not.toContain("carols-own-key");

    // Used when the body has no key.
    const suggested = await api("/ai/suggest", { token: carol.token, body: { prompt: "delete old logs" } });
    expect(suggested.status, suggested.text).toBe(200);
    expect((await lastProviderRequest()).bearer).toBe(true);

    // Bob has none, and sees none of Carol's.
    expect((await api("/ai/key", { token: bob.token })).body.configured).toBe(false);
    expectApiError(await api("/ai/suggest", { token: bob.token, body: { prompt: "x" } }), 400, "ai_key_missing");

    // A read-only personal key may use a key it is given, but not spend the stored one nor change it.
    const ro = await api("/api-keys", { token: carol.token, body: { name: "ro", scope: "read-only" } });
    expect(ro.status, ro.text).toBe(201);
    const roKey: string = ro.body.key;
    expect((await api("/ai/suggest", { token: roKey, body: { prompt: "x", api_key: GOOD } })).status).toBe(200);
    expectApiError(await api("/ai/suggest", { token: roKey, body: { prompt: "x" } }), 403, "forbidden");
    expectApiError(await api("/ai/key", { method: "PUT", token: roKey, body: { api_key: GOOD } }), 403, "forbidden");
    expectApiError(await api("/ai/key", { method: "DELETE", token: roKey }), 403, "forbidden");
    expect((await api("/ai/key", { token: roKey })).body.configured).toBe(true);

    // Forgotten.
    expect((await api("/ai/key", { method: "DELETE", token: carol.token })).status).toBe(204);
    expect((await api("/ai/key", { token: carol.token })).body.configured).toBe(false);
    expectApiError(await api("/ai/suggest", { token: carol.token, body: { prompt: "x" } }), 400, "ai_key_missing");
  });

  it("needs a signed-in caller", async () => {
    for (const method of ["GET", "PUT", "DELETE"]) {
      expectApiError(await api("/ai/key", { method, body: method === "PUT" ? { api_key: GOOD } : undefined }), 401, "unauthorized");
    }
  });
});

describe("the key in logs", () => {
  it("appears in no log line, whatever the provider does", async () => {
    const spies = (["log", "info", "warn", "error", "debug"] as const).map((m) => vi.spyOn(console, m).mockImplementation(() => undefined));
    const secret = crypto.randomUUID().replace(/-/g, "");
    try {
      for (const kind of ["test", "bad", "down", "drop", "slow", "cut", "limit"]) {
        const key = `sk-${kind}-${secret}`;
        await api("/ai/suggest", { token: ada.token, body: { prompt: "x", api_key: key, stream: kind === "cut" } });
        await api("/ai/validate-key", { token: ada.token, body: { api_key: key } });
      }
      await api("/ai/key", { method: "PUT", token: ada.token, body: { api_key: `sk-test-${secret}` } });
      await api("/ai/suggest", { token: ada.token, body: { prompt: "x" } });
      // A body that fails validation after the key.
      await api("/ai/suggest", { token: ada.token, body: { api_key: `sk-test-${secret}`, prompt: 42 } });
      const logged = spies.flatMap((s) => s.mock.calls.flat()).map((arg) => (typeof arg === "string" ? arg : JSON.stringify(arg)));
      expect(logged.filter((line) => line.includes(secret))).toEqual([]);
    } finally {
      for (const s of spies) s.mockRestore();
      await api("/ai/key", { method: "DELETE", token: ada.token });
    }
  });
});
