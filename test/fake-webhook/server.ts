/**
 * A webhook receiver on loopback for the webhook tests, started by test/vitest.config.ts;
 * the Worker's tests learn its address from the WEBHOOK_RECEIVER_URL binding.
 *
 * `POST /hook/{name}` records the delivery (headers and raw body) and answers by the
 * name's first word, so each test picks its receiver's behaviour:
 * `ok-…` 204; `fail-…` 500; `flaky-…` 503 the first time, then 200; `slow-…` no answer
 * for 5 s. `GET /__received/{name}` lists what `{name}` received, oldest first.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
  event: string | undefined;
  delivery: string | undefined;
  signature: string | undefined;
  contentType: string | undefined;
  body: string;
}

async function readBody(req: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of req) text += chunk;
  return text;
}

export async function startFakeWebhookReceiver(): Promise<{ url: string; close: () => Promise<void> }> {
  const received = new Map<string, Received[]>();
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const list = /^\/__received\/([\w-]{1,100})$/.exec(path);
    if (req.method === "GET" && list) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(received.get(list[1]!) ?? []));
      return;
    }
    const hook = /^\/hook\/([\w-]{1,100})$/.exec(path);
    if (req.method !== "POST" || !hook) {
      res.writeHead(404).end();
      return;
    }
    const name = hook[1]!;
    const header = (h: string) => (typeof req.headers[h] === "string" ? (req.headers[h] as string) : undefined);
    const got = received.get(name) ?? [];
    got.push({ event: header("x-berth-event"), delivery: header("x-berth-delivery"), signature: header("x-berth-signature-256"), contentType: header("content-type"), body: await readBody(req) });
    received.set(name, got);
    const kind = name.split("-")[0];
    if (kind === "ok") res.writeHead(204).end();
    else if (kind === "fail") res.writeHead(500, { "content-type": "text/plain" }).end("receiver broke");
    else if (kind === "flaky") res.writeHead(got.length === 1 ? 503 : 200).end();
    else if (kind === "slow") setTimeout(() => res.writeHead(200).end(), 5_000).unref();
    else res.writeHead(400).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  server.unref();
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
