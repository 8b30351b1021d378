/**
 * The AI provider: any OpenAI-compatible chat-completions API (OpenRouter by default,
 * `AI_BASE_URL` for another), called with the user's own key. Every failure becomes an
 * ApiError that names the provider's side, never a 500, and never carries the key.
 */
import { createParser } from "eventsource-parser";
import type { Env } from "../env";
import { ApiError } from "../lib/errors";

export const DEFAULT_AI_BASE_URL = "https://openrouter.ai/api/v1";
const DEFAULT_TIMEOUT_MS = 30_000;

/** DevPocket's model names, as its document lists them, and the OpenRouter ids they stand for. */
const MODEL_ALIASES: Record<string, string> = {
  "claude-3-haiku": "anthropic/claude-3-haiku",
  "gpt-4o-mini": "openai/gpt-4o-mini",
  "gpt-4o": "openai/gpt-4o",
};
export const DEFAULT_MODEL = "claude-3-haiku";

export const providerModel = (model: string) => MODEL_ALIASES[model] ?? model;

type ProviderEnv = Pick<Env, "AI_BASE_URL" | "AI_TIMEOUT_MS">;

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface Completion {
  text: string;
  tokensUsed: number | null;
}

function baseUrl(env: ProviderEnv): string {
  return (env.AI_BASE_URL?.trim() || DEFAULT_AI_BASE_URL).replace(/\/+$/, "");
}

function timeoutMs(env: ProviderEnv): number {
  const n = Number(env.AI_TIMEOUT_MS);
  return Number.isFinite(n) && n > 0 ? n : DEFAULT_TIMEOUT_MS;
}

/** One request to the provider; a network failure or timeout becomes the matching ApiError. */
async function send(env: ProviderEnv, apiKey: string, path: string, init: RequestInit = {}): Promise<Response> {
  const signal = AbortSignal.timeout(timeoutMs(env));
  try {
    return await fetch(`${baseUrl(env)}${path}`, {
      ...init,
      signal,
      headers: { ...(init.headers as Record<string, string> | undefined), authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    });
  } catch (err) {
    if (signal.aborted) throw new ApiError("ai_provider_timeout", `The AI provider did not answer within ${Math.round(timeoutMs(env) / 1000)} s`);
    // The cause is a connection failure; its text names the provider's address, never the key.
    throw new ApiError("ai_provider_unavailable", "The AI provider could not be reached", { cause: err instanceof Error ? err.name : "network" });
  }
}

/** What a provider's refusal means to the caller; the provider's own message, when JSON, is passed on as details. */
async function refusal(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => "");
  let providerMessage: string | undefined;
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } | string };
    const m = typeof body.error === "string" ? body.error : body.error?.message;
    if (typeof m === "string") providerMessage = m.slice(0, 300);
  } catch {
    /* not JSON: keep nothing of it */
  }
  const details = { provider_status: res.status, ...(providerMessage ? { provider_message: providerMessage } : {}) };
  if (res.status === 401 || res.status === 403) return new ApiError("ai_key_invalid", "The AI provider refused the API key", details);
  if (res.status === 402) return new ApiError("ai_quota_exceeded", "The AI provider says the key has no credits left", details);
  if (res.status === 429) {
    const retry = res.headers.get("retry-after");
    return new ApiError("ai_rate_limited", "Rate limited by the AI provider; try again shortly", { ...details, ...(retry ? { retry_after: retry } : {}) });
  }
  if (res.status === 400 || res.status === 404 || res.status === 422) return new ApiError("ai_request_rejected", "The AI provider rejected the request (is the model name right?)", details);
  return new ApiError("ai_provider_error", `The AI provider failed (${res.status})`, details);
}

/** A chat completion, whole. */
export async function complete(env: ProviderEnv, apiKey: string, model: string, messages: ChatMessage[], maxTokens = 400): Promise<Completion> {
  const res = await send(env, apiKey, "/chat/completions", {
    method: "POST",
    body: JSON.stringify({ model: providerModel(model), messages, max_tokens: maxTokens, temperature: 0.2 }),
  });
  if (!res.ok) throw await refusal(res);
  const body = (await res.json().catch(() => null)) as { choices?: Array<{ message?: { content?: unknown } }>; usage?: { total_tokens?: unknown } } | null;
  const text = body?.choices?.[0]?.message?.content;
  if (typeof text !== "string") throw new ApiError("ai_provider_error", "The AI provider answered without a completion");
  const tokens = body?.usage?.total_tokens;
  return { text, tokensUsed: typeof tokens === "number" ? tokens : null };
}

/**
 * Opens a streamed chat completion: resolves once the provider has accepted the request,
 * so a refusal (bad key, rate limit, outage) throws like `complete` before anything is sent
 * to the caller. Read the answer with `readCompletionStream`.
 */
export async function openCompletionStream(env: ProviderEnv, apiKey: string, model: string, messages: ChatMessage[], maxTokens = 400): Promise<ReadableStream<Uint8Array>> {
  const res = await send(env, apiKey, "/chat/completions", {
    method: "POST",
    headers: { accept: "text/event-stream" },
    body: JSON.stringify({ model: providerModel(model), messages, max_tokens: maxTokens, temperature: 0.2, stream: true }),
  });
  if (!res.ok) throw await refusal(res);
  if (!res.body) throw new ApiError("ai_provider_error", "The AI provider answered without a body");
  return res.body;
}

/**
 * Reads the provider's server-sent chunks as they come, each delta handed to `onDelta`;
 * resolves with the whole text. A failure mid-stream throws ApiError("ai_provider_error").
 */
export async function readCompletionStream(body: ReadableStream<Uint8Array>, onDelta: (delta: string) => Promise<void> | void): Promise<Completion> {
  let text = "";
  let tokensUsed: number | null = null;
  let failure: string | null = null;
  const deltas: string[] = [];
  const parser = createParser({
    onEvent(event) {
      if (event.data === "[DONE]") return;
      try {
        const chunk = JSON.parse(event.data) as { choices?: Array<{ delta?: { content?: unknown } }>; usage?: { total_tokens?: unknown }; error?: { message?: unknown } };
        if (chunk.error) failure = typeof chunk.error.message === "string" ? chunk.error.message.slice(0, 300) : "error";
        const delta = chunk.choices?.[0]?.delta?.content;
        if (typeof delta === "string" && delta) deltas.push(delta);
        if (typeof chunk.usage?.total_tokens === "number") tokensUsed = chunk.usage.total_tokens;
      } catch {
        /* a keep-alive or other line that is not JSON */
      }
    },
  });
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
      for (const delta of deltas.splice(0)) {
        text += delta;
        await onDelta(delta);
      }
      if (failure) throw new ApiError("ai_provider_error", "The AI provider failed mid-answer", { provider_message: failure });
    }
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError("ai_provider_error", "The AI provider's stream broke off");
  } finally {
    reader.releaseLock();
  }
  return { text, tokensUsed };
}

/**
 * Whether the provider accepts the key, and the models it offers. OpenRouter's model list
 * answers any key, so its key endpoint (`GET /key`) decides there; a plain OpenAI-compatible
 * API has no such endpoint (404), and its model list, which needs the key, decides.
 */
export async function validateKey(env: ProviderEnv, apiKey: string): Promise<{ valid: boolean; models: string[] }> {
  const keyInfo = await send(env, apiKey, "/key");
  if (keyInfo.status === 401 || keyInfo.status === 403) return { valid: false, models: [] };
  if (!keyInfo.ok && keyInfo.status !== 404) throw await refusal(keyInfo);
  await keyInfo.body?.cancel();
  const models = await send(env, apiKey, "/models");
  if (models.status === 401 || models.status === 403) return { valid: false, models: [] };
  if (!models.ok) throw await refusal(models);
  const body = (await models.json().catch(() => null)) as { data?: Array<{ id?: unknown }> } | null;
  const ids = (body?.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === "string");
  return { valid: true, models: ids.slice(0, 500) };
}
