/** bench:api's baseline Worker: one D1 read per request, answered as JSON. */
interface Env {
  DB: D1Database;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/api/v1/system/status") return Response.json({ status: "ok" });
    if (url.pathname !== "/api/v1/projects") return new Response("not found", { status: 404 });
    const { results } = await env.DB.prepare("SELECT id, name, slug, created_at FROM project WHERE org_id = ? ORDER BY created_at").bind("org_bench").all();
    return Response.json(results);
  },
} satisfies ExportedHandler<Env>;
