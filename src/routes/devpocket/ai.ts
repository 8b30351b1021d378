/**
 * DevPocket's AI routes, bring your own key: `POST /ai/suggest`, `/ai/explain`,
 * `/ai/complete`, `/ai/validate-key` as its document has them (the key in `api_key`), plus
 * Berth's key storage (`GET/PUT/DELETE /ai/key`) so a client may leave `api_key` out. The
 * key goes to the provider and nowhere else: not into a response, an error or a log.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { createRouter } from "../../app";
import { requireUser } from "../../auth/access";
import type { AppEnv } from "../../env";
import { ApiError, errorBody, errorResponsesFor } from "../../lib/errors";
import { type ChatMessage, complete, DEFAULT_MODEL, openCompletionStream, readCompletionStream, validateKey } from "../../services/ai-provider";
import { commandOf, SUGGEST_SYSTEM } from "../../services/ai-suggest";
import { deleteAiKey, findAiKeyInfo, keyHint, storeAiKey, storedAiKey } from "../../services/ai-keys";
import { json, jsonBody } from "../schemas";

const router = createRouter();

const aiErrors = errorResponsesFor("ai_key_missing", "ai_key_invalid", "ai_quota_exceeded", "ai_rate_limited", "ai_key_unreadable", "ai_request_rejected", "ai_provider_error", "ai_provider_unavailable", "ai_provider_timeout");

const apiKeyField = z
  .string()
  .trim()
  .min(8)
  .max(512)
  .regex(/^[\x21-\x7e]+$/, "an API key is printable ASCII without spaces")
  .openapi({ description: "Your OpenRouter (or other OpenAI-compatible) API key. Optional when you stored one with `PUT /ai/key`." });
const model = z
  .string()
  .max(100)
  .regex(/^[A-Za-z0-9._:/-]+$/, "a model name such as claude-3-haiku or openai/gpt-4o")
  .default(DEFAULT_MODEL)
  .openapi({ description: "claude-3-haiku, gpt-4o-mini, gpt-4o, or any model id the provider knows" });
const prompt = (max: number) => z.string().trim().min(1).max(max);

/**
 * The key for this call: the one in the body, else the stored one. Using the stored key spends
 * the user's credits, so a personal API key needs the scope that may change the account.
 */
async function keyFor(c: Context<AppEnv>, bodyKey: string | undefined): Promise<{ userId: string; key: string }> {
  const p = requireUser(c, "account:read");
  if (bodyKey) return { userId: p.userId, key: bodyKey };
  requireUser(c, "account:update");
  const stored = await storedAiKey(c.var.db, c.env, p.userId);
  if (!stored) throw new ApiError("ai_key_missing", "Send api_key, or store one with PUT /ai/key");
  return { userId: p.userId, key: stored };
}

const wantsStream = (c: Context<AppEnv>, stream: boolean | undefined) => stream ?? (c.req.header("accept") ?? "").includes("text/event-stream");

const EXPLAIN_SYSTEM =
  'You explain why a shell command failed. Answer with JSON only: {"explanation": "one short paragraph", "suggestions": ["a command or step to try", "..."]}.';
const COMPLETE_SYSTEM =
  "You complete a partly typed shell command. Answer with up to 5 complete commands that start with the given text, one per line, nothing else.";

const ContextMessage = z.object({ role: z.enum(["user", "assistant", "system"]), content: z.string().max(8000) }).passthrough();

const SuggestInput = z
  .object({
    prompt: prompt(4000).openapi({ description: "What you want to do, in plain language" }),
    api_key: apiKeyField.optional(),
    context: z.array(ContextMessage).max(20).optional().openapi({ description: "Earlier turns of the conversation" }),
    model,
    stream: z.boolean().optional().openapi({ description: "Answer as server-sent events (`delta` events, then `done`); also chosen by `Accept: text/event-stream`" }),
  })
  .openapi("AISuggestInput");
const SuggestOutput = z
  .object({ suggestion: z.string(), cached: z.boolean(), model: z.string(), tokens_used: z.number().int().nullable() })
  .openapi("AISuggestion");

router.openapi(
  createRoute({
    method: "post",
    path: "/ai/suggest",
    tags: ["AI"],
    summary: "A shell command for a request in plain language (your own key)",
    description:
      "With `stream: true` (or `Accept: text/event-stream`) the answer is server-sent events: `delta` events with `{\"delta\"}` as the provider streams, then one `done` event with the whole `AISuggestion`; a failure after the stream began is an `error` event with the error envelope.",
    request: jsonBody(SuggestInput),
    responses: {
      200: { description: "The suggestion", content: { "application/json": { schema: SuggestOutput }, "text/event-stream": { schema: z.string() } } },
      ...aiErrors,
    },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { key } = await keyFor(c, input.api_key);
    const messages: ChatMessage[] = [
      { role: "system", content: SUGGEST_SYSTEM },
      ...(input.context ?? []).map((m) => ({ role: m.role, content: m.content })),
      { role: "user", content: input.prompt },
    ];
    if (!wantsStream(c, input.stream)) {
      const answer = await complete(c.env, key, input.model, messages, 200);
      return c.json({ suggestion: commandOf(answer.text), cached: false, model: input.model, tokens_used: answer.tokensUsed }, 200);
    }
    // Opened before the response starts, so a refused key or an outage is an ordinary error answer.
    const body = await openCompletionStream(c.env, key, input.model, messages, 200);
    // The route's typed responses are JSON; an SSE response is a plain Response, declared as text/event-stream above.
    return streamSSE(c, async (sse) => {
      try {
        const answer = await readCompletionStream(body, (delta) => sse.writeSSE({ event: "delta", data: JSON.stringify({ delta }) }));
        await sse.writeSSE({ event: "done", data: JSON.stringify({ suggestion: commandOf(answer.text), cached: false, model: input.model, tokens_used: answer.tokensUsed }) });
      } catch (err) {
        const e = err instanceof ApiError ? err : new ApiError("ai_provider_error", "The AI provider's stream broke off");
        await sse.writeSSE({ event: "error", data: JSON.stringify(errorBody(e.code, e.message, e.details, c.get("requestId"))) });
      }
    }) as never;
  },
);

const ExplainInput = z
  .object({ command: prompt(4000), error: prompt(16_000), api_key: apiKeyField.optional(), model })
  .openapi("AIExplainInput");
const ExplainOutput = z.object({ explanation: z.string(), suggestions: z.array(z.string()), tokens_used: z.number().int().nullable() }).openapi("AIExplanation");

/** The model was asked for JSON; a model that answers in prose still gives an explanation. */
export function explanationOf(text: string): { explanation: string; suggestions: string[] } {
  const start = text.indexOf("{");
  const end = text.lastIndexOf("}");
  if (start >= 0 && end > start) {
    try {
      const parsed = JSON.parse(text.slice(start, end + 1)) as { explanation?: unknown; suggestions?: unknown };
      if (typeof parsed.explanation === "string") {
        const suggestions = Array.isArray(parsed.suggestions) ? parsed.suggestions.filter((s): s is string => typeof s === "string").slice(0, 10) : [];
        return { explanation: parsed.explanation, suggestions };
      }
    } catch {
      /* prose after all */
    }
  }
  return { explanation: text.trim(), suggestions: [] };
}

router.openapi(
  createRoute({
    method: "post",
    path: "/ai/explain",
    tags: ["AI"],
    summary: "Why a command failed, and what to try (your own key)",
    request: jsonBody(ExplainInput),
    responses: { 200: json(ExplainOutput, "The explanation"), ...aiErrors },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { key } = await keyFor(c, input.api_key);
    const answer = await complete(c.env, key, input.model, [
      { role: "system", content: EXPLAIN_SYSTEM },
      { role: "user", content: `Command:\n${input.command}\n\nError output:\n${input.error}` },
    ]);
    return c.json({ ...explanationOf(answer.text), tokens_used: answer.tokensUsed }, 200);
  },
);

const CompleteInput = z
  .object({
    partial_command: z.string().min(1).max(2000),
    api_key: apiKeyField.optional(),
    context: z.array(z.string().max(2000)).max(20).optional().openapi({ description: "Recent commands, newest last" }),
    model,
  })
  .openapi("AICompleteInput");
const CompleteOutput = z.object({ completions: z.array(z.string()), tokens_used: z.number().int().nullable() }).openapi("AICompletions");

router.openapi(
  createRoute({
    method: "post",
    path: "/ai/complete",
    tags: ["AI"],
    summary: "Completions of a partly typed command (your own key)",
    request: jsonBody(CompleteInput),
    responses: { 200: json(CompleteOutput, "Up to 5 completions"), ...aiErrors },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const { key } = await keyFor(c, input.api_key);
    const history = input.context?.length ? `Recent commands:\n${input.context.join("\n")}\n\n` : "";
    const answer = await complete(c.env, key, input.model, [
      { role: "system", content: COMPLETE_SYSTEM },
      { role: "user", content: `${history}Complete: ${input.partial_command}` },
    ], 200);
    const completions = [
      ...new Set(
        answer.text
          .split("\n")
          .map((line) => commandOf(line.replace(/^\s*(?:\d+[.)]|[-*])\s+/, "")).replace(/^`|`$/g, ""))
          .filter((line) => line && !line.startsWith("```")),
      ),
    ].slice(0, 5);
    return c.json({ completions, tokens_used: answer.tokensUsed }, 200);
  },
);

const ValidateOutput = z.object({ valid: z.boolean(), models: z.array(z.string()) }).openapi("AIKeyValidation");

router.openapi(
  createRoute({
    method: "post",
    path: "/ai/validate-key",
    tags: ["AI"],
    summary: "Whether the provider accepts a key, and its models",
    description: "A key the provider refuses is `200` with `valid: false`; only an outage is an error.",
    request: jsonBody(z.object({ api_key: apiKeyField }).openapi("AIValidateKeyInput")),
    responses: { 200: json(ValidateOutput, "Validation result"), ...aiErrors },
  }),
  async (c) => {
    requireUser(c, "account:read");
    return c.json(await validateKey(c.env, c.req.valid("json").api_key), 200);
  },
);

const StoredKey = z
  .object({ configured: z.boolean(), key_hint: z.string().nullable(), created_at: z.string().nullable(), updated_at: z.string().nullable() })
  .openapi("AIStoredKey");

router.openapi(
  createRoute({
    method: "get",
    path: "/ai/key",
    tags: ["AI"],
    summary: "Whether you stored an AI key (its last four characters only)",
    responses: { 200: json(StoredKey, "The stored key, described"), ...errorResponsesFor() },
  }),
  async (c) => {
    const info = await findAiKeyInfo(c.var.db, requireUser(c, "account:read").userId);
    return c.json(
      { configured: Boolean(info), key_hint: info?.hint ?? null, created_at: info?.createdAt.toISOString() ?? null, updated_at: info?.updatedAt.toISOString() ?? null },
      200,
    );
  },
);

router.openapi(
  createRoute({
    method: "put",
    path: "/ai/key",
    tags: ["AI"],
    summary: "Store your AI key, encrypted, after the provider accepts it",
    request: jsonBody(z.object({ api_key: apiKeyField }).openapi("AIStoreKeyInput")),
    responses: { 200: json(StoredKey.extend({ models: z.array(z.string()) }), "Stored"), ...aiErrors },
  }),
  async (c) => {
    const userId = requireUser(c, "account:update").userId;
    const { api_key } = c.req.valid("json");
    const checked = await validateKey(c.env, api_key);
    if (!checked.valid) throw new ApiError("ai_key_invalid", "The AI provider refused the API key; nothing was stored");
    await storeAiKey(c.var.db, c.env, userId, api_key);
    const info = await findAiKeyInfo(c.var.db, userId);
    return c.json(
      { configured: true, key_hint: keyHint(api_key), created_at: info?.createdAt.toISOString() ?? null, updated_at: info?.updatedAt.toISOString() ?? null, models: checked.models },
      200,
    );
  },
);

router.openapi(
  createRoute({
    method: "delete",
    path: "/ai/key",
    tags: ["AI"],
    summary: "Forget your stored AI key",
    responses: { 204: { description: "Forgotten (or there was none)" }, ...errorResponsesFor() },
  }),
  async (c) => {
    await deleteAiKey(c.var.db, requireUser(c, "account:update").userId);
    return c.body(null, 204);
  },
);

export default router;
