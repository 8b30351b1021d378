/**
 * One shell command for a request in plain language, from the user's own AI key: shared by
 * `POST /ai/suggest` and `/ws/terminal`'s `ai_convert`.
 */
import type { Env } from "../env";
import { complete, DEFAULT_MODEL } from "./ai-provider";

export const SUGGEST_SYSTEM =
  "You turn a request in plain language into one POSIX shell command. Answer with the command only: no prose, no code fences, no leading $.";

/** The first command of a model's answer: code fences and a leading prompt sign taken off. */
export function commandOf(text: string): string {
  const fenced = text.match(/```[a-z]*\n([\s\S]*?)```/i);
  const body = (fenced?.[1] ?? text).trim();
  return body.replace(/^\$\s+/, "").trim();
}

export async function suggestCommand(env: Pick<Env, "AI_BASE_URL" | "AI_TIMEOUT_MS">, apiKey: string, prompt: string, model = DEFAULT_MODEL): Promise<string> {
  const answer = await complete(env, apiKey, model, [
    { role: "system", content: SUGGEST_SYSTEM },
    { role: "user", content: prompt },
  ], 200);
  return commandOf(answer.text);
}
