/**
 * A local OpenAI-compatible provider for the AI tests: `POST /chat/completions` (whole, or
 * streamed as `chat.completion.chunk` server-sent events ending in `data: [DONE]`, the way
 * OpenAI and OpenRouter stream), `GET /models`, and OpenRouter's `GET /key`. It is started
 * on loopback by test/vitest.config.ts and the Worker reaches it through AI_BASE_URL.
 *
 * What it does is chosen by the bearer key, so each test picks its case:
 * `sk-test-…` accepted; `sk-bad-…` 401; `sk-broke-…` 402; `sk-limit-…` 429 with Retry-After;
 * `sk-down-…` 503; `sk-drop-…` the connection is cut; `sk-slow-…` no answer for 5 s;
 * `sk-plain-…` accepted, but like a plain OpenAI-compatible API it has no `/key` (404);
 * `sk-cut-…` a stream that fails after its first chunk.
 * `GET /__last` tells a test what the last chat request carried (model, messages, stream,
 * and whether the key arrived as `Authorization: Bearer`).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

interface ChatRequest {
  model?: string;
  messages?: Array<{ role: string; content: string }>;
  stream?: boolean;
}

const REPLIES = {
  suggest: "```sh\nfind . -name '*.log' -mtime +7 -delete\n```",
  explain: 'Here you go: {"explanation": "The directory does not exist, so cd cannot enter it.", "suggestions": ["mkdir -p /srv/app", "ls /srv"]}',
  complete: "1. git status\n2. git stash list\n- git switch main\n1. git status",
  other: "ok",
};

function replyFor(req: ChatRequest): string {
  const system = req.messages?.find((m) => m.role === "system")?.content ?? "";
  if (system.includes("POSIX shell command")) return REPLIES.suggest;
  if (system.includes("explain why")) return REPLIES.explain;
  if (system.includes("complete a partly typed")) return REPLIES.complete;
  return REPLIES.other;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

const refusal = (status: number, message: string) => ({ error: { message, code: status } });

async function readBody(req: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of req) text += chunk;
  return text;
}

export async function startFakeAiProvider(): Promise<{ url: string; close: () => Promise<void> }> {
  let last: unknown = null;
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://fake");
    if (url.pathname === "/__last") return send(res, 200, last);
    const auth = req.headers.authorization ?? "";
    const key = auth.startsWith("Bearer ") ? auth.slice(7) : "";
    if (key.startsWith("sk-drop-")) return req.socket.destroy();
    if (key.startsWith("sk-slow-")) {
      const timer = setTimeout(() => send(res, 504, refusal(504, "too late")), 5_000);
      timer.unref();
      res.on("close", () => clearTimeout(timer));
      return;
    }
    if (!key || key.startsWith("sk-bad-")) return send(res, 401, refusal(401, "No auth credentials found"));
    if (key.startsWith("sk-broke-")) return send(res, 402, refusal(402, "Insufficient credits"));
    if (key.startsWith("sk-limit-")) return send(res, 429, refusal(429, "Rate limit exceeded"), { "retry-after": "7" });
    if (key.startsWith("sk-down-")) return send(res, 503, refusal(503, "Upstream overloaded"));

    if (req.method === "GET" && url.pathname === "/key") {
      if (key.startsWith("sk-plain-")) return send(res, 404, refusal(404, "Not found"));
      return send(res, 200, { data: { label: "sk-test…", usage: 0, limit: null, is_free_tier: false } });
    }
    if (req.method === "GET" && url.pathname === "/models") {
      return send(res, 200, { object: "list", data: [{ id: "anthropic/claude-3-haiku", object: "model" }, { id: "openai/gpt-4o-mini", object: "model" }] });
    }
    if (req.method === "POST" && url.pathname === "/chat/completions") {
      let body: ChatRequest;
      try {
        body = JSON.parse(await readBody(req)) as ChatRequest;
      } catch {
        return send(res, 400, refusal(400, "Invalid JSON"));
      }
      last = { model: body.model, messages: body.messages, stream: Boolean(body.stream), bearer: auth === `Bearer ${key}` && key.length > 0 };
      if (!body.model || !Array.isArray(body.messages)) return send(res, 400, refusal(400, "model and messages are required"));
      if (body.model === "nope/unknown") return send(res, 400, refusal(400, "nope/unknown is not a valid model ID"));
      const content = replyFor(body);
      const usage = { prompt_tokens: 20, completion_tokens: 10, total_tokens: 30 };
      const base = { id: "chatcmpl-fake1", created: Math.floor(Date.now() / 1000), model: body.model };
      if (!body.stream) {
        return send(res, 200, { ...base, object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }], usage });
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}) =>
        `data: ${JSON.stringify({ ...base, object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`;
      // OpenRouter sends comments while the model warms up; a client must skip them.
      res.write(": OPENROUTER PROCESSING\n\n");
      res.write(chunk({ role: "assistant", content: "" }, null));
      const pieces = content.match(/[\s\S]{1,6}/g) ?? [];
      if (key.startsWith("sk-cut-")) {
        res.write(chunk({ content: pieces[0] }, null));
        res.write(`data: ${JSON.stringify({ error: { message: "provider fell over", code: 502 } })}\n\n`);
        return res.end();
      }
      for (const piece of pieces) res.write(chunk({ content: piece }, null));
      res.write(chunk({}, "stop", { usage }));
      res.write("data: [DONE]\n\n");
      return res.end();
    }
    send(res, 404, refusal(404, "Not found"));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  server.unref();
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
