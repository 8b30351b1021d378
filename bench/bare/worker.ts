/**
 * The benchmarks' baseline Worker: one D1 read per request, answered as JSON (bench:api), and
 * a WebSocket that echoes every frame at once (bench:terminal).
 */
interface Env {
  DB: D1Database;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/api/v1/system/status") return Response.json({ status: "ok" });
    if (url.pathname === "/echo" && request.headers.get("upgrade") === "websocket") {
      const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
      server.accept();
      server.addEventListener("message", (e) => server.send(e.data));
      return new Response(null, { status: 101, webSocket: client });
    }
    if (url.pathname !== "/api/v1/projects") return new Response("not found", { status: 404 });
    const { results } = await env.DB.prepare("SELECT id, name, slug, created_at FROM project WHERE org_id = ? ORDER BY created_at").bind("org_bench").all();
    return Response.json(results);
  },
} satisfies ExportedHandler<Env>;
