/**
 * `POST /ai/suggest` read as it streams: the route answers server-sent events (`delta` with
 * `{delta}` as the provider writes, then `done` with the whole AISuggestion, or `error` with
 * the error envelope). openapi-fetch reads whole bodies, so this one call is a plain fetch,
 * its events parsed by eventsource-parser (already the Worker's parser for the provider's
 * stream). A failure before the stream starts is an ordinary error answer.
 */
import { EventSourceParserStream } from "eventsource-parser/stream";
import { toApiError } from "./api/errors";
import type { components } from "./api/openapi.gen";

export type SuggestInput = Omit<components["schemas"]["AISuggestInput"], "stream" | "api_key" | "model">;
export type Suggestion = components["schemas"]["AISuggestion"];

export async function streamSuggestion(input: SuggestInput, onDelta: (textSoFar: string) => void, signal?: AbortSignal): Promise<Suggestion> {
  const response = await fetch("/api/v1/ai/suggest", {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify({ ...input, stream: true }),
    signal,
  });
  if (!response.ok || !response.body) throw toApiError(response.status, await response.json().catch(() => undefined));
  if (!(response.headers.get("content-type") ?? "").includes("text/event-stream")) return (await response.json()) as Suggestion;
  let text = "";
  const events = response.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
  for await (const event of events) {
    if (event.event === "delta") {
      text += (JSON.parse(event.data) as { delta: string }).delta;
      onDelta(text);
    } else if (event.event === "done") {
      return JSON.parse(event.data) as Suggestion;
    } else if (event.event === "error") {
      throw toApiError(502, JSON.parse(event.data));
    }
  }
  throw toApiError(502, { error: { code: "ai_provider_error", message: "The answer broke off before it was complete. Try again." } });
}
