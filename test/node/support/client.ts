/** A small API client for node tests and benchmarks: JSON in, JSON out, bearer credential. */
export interface Client {
  call<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
}

export function client(baseUrl: string, token?: string): Client {
  return {
    async call(method, path, body) {
      const headers: Record<string, string> = {};
      if (token) headers.authorization = `Bearer ${token}`;
      if (body !== undefined) headers["content-type"] = "application/json";
      const res = await fetch(`${baseUrl}/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    },
  };
}

/** Signs up a new user and returns a client for them, with their personal org's slug. */
export async function signedUp(baseUrl: string) {
  const email = `user-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}@example.com`;
  const res = await client(baseUrl).call("POST", "/auth/register", { email, password: "correct horse battery", name: "Agent Tester" });
  if (res.status !== 201) throw new Error(`sign-up failed: ${res.status} ${JSON.stringify(res.body)}`);
  const api = client(baseUrl, res.body.token);
  const orgs = await api.call("GET", "/orgs");
  return { api, token: res.body.token as string, slug: orgs.body.orgs[0].slug as string };
}

/**
 * Waits for a job to end through the API's long poll (`…/jobs/{job}/wait`), up to `seconds`;
 * a job still open then fails the test with `context()` (e.g. the tail of the agent's output).
 */
export async function waitForJob(api: Client, projectId: string, jobId: string, opts: { seconds?: number; context?: () => string } = {}) {
  const end = Date.now() + (opts.seconds ?? 120) * 1000;
  for (;;) {
    const res = await api.call("GET", `/projects/${projectId}/jobs/${jobId}/wait?timeout=20`);
    if (res.status !== 200) throw new Error(`waiting for job ${jobId}: ${res.status} ${JSON.stringify(res.body)}`);
    if (res.body.done) return res.body.job;
    if (Date.now() > end) throw new Error(`job ${jobId} not done: ${JSON.stringify(res.body.job)}\n${opts.context?.() ?? ""}`);
  }
}
