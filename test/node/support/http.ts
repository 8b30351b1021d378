/**
 * One GET with a chosen Host header on a fresh connection, for requests through
 * Caddy by an app's hostname (Node's fetch does not let a caller set Host), or
 * straight to a container's address.
 * Status 0 when nothing answered.
 */
import { request } from "node:http";

export function getWithHost(port: number, host: string, path = "/", timeoutMs = 5_000, address = "127.0.0.1"): Promise<{ status: number; text: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve) => {
    const req = request({ host: address, port, path, headers: { host }, timeout: timeoutMs, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
      res.on("error", (err) => resolve({ status: 0, text: String(err), headers: {} }));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", (err) => resolve({ status: 0, text: String(err), headers: {} }));
    req.end();
  });
}
