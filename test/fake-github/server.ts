/**
 * A stand-in for GitHub on loopback, for account linking and repository listing: the OAuth
 * web flow (`/login/oauth/authorize`, `/login/oauth/access_token`) and the REST API under
 * `/api/v3` (where GitHub Enterprise serves it) — `/user`, `/user/emails`, `/user/repos`,
 * `/repos/{owner}/{repo}/branches` — in GitHub's shapes, with its `Link` header pagination
 * and its `{"message": "Bad credentials"}` 401. Started by test/vitest.config.ts (worker
 * tests, through GITHUB_URL / GITHUB_API_URL) and by the node tests that build private
 * repositories.
 *
 * Users exist by being named: `/login/oauth/authorize?…&login=ada-1` signs in as `ada-1`
 * (the real page would ask; a test adds `login`, or a browser is `octocat`). Every user owns `{login}/repo-1` …
 * `{login}/repo-5` (repo-2 and repo-4 private), each with the branches `main`, `dev` and
 * `feature/x`. Pages hold at most 2 items (GitHub's cap is 100) so that pagination shows
 * with a handful. A login starting `outage-` gets 503 from the repository routes. Test
 * controls: `POST /__revoke/{login}` revokes the user's tokens (GitHub's 401 after);
 * `GET /__tokens/{login}` lists the user's live tokens (for a git server that checks them);
 * `GET /__seen` lists what the API was asked, without tokens.
 *
 * With `gitRoot`, it also serves git's smart HTTP as GitHub does, at `/{owner}/{name}.git`,
 * for the bare repositories `{gitRoot}/{owner}/{name}.git` — only to a request whose basic
 * auth password is a live token of `owner` (GitHub's `x-access-token:<token>`); anything else
 * gets GitHub's 401 with `WWW-Authenticate`. `GET /__git-auth` lists the Authorization
 * schemes git requests came with (never the credentials).
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { serveGit } from "../node/support/git-server.ts";

export const FAKE_GITHUB_CLIENT_ID = "Iv1.berthtestclient";
export const FAKE_GITHUB_CLIENT_SECRET = "berth-test-github-client-secret";
const PAGE_MAX = 2;
const REPOS_PER_USER = 5;
const BRANCHES = ["main", "dev", "feature/x"];

const idOf = (login: string) => Number.parseInt(createHash("sha256").update(login).digest("hex").slice(0, 8), 16);
const shaOf = (text: string) => createHash("sha1").update(text).digest("hex");

function reposOf(origin: string, login: string) {
  return Array.from({ length: REPOS_PER_USER }, (_, i) => {
    const name = `repo-${i + 1}`;
    const full = `${login}/${name}`;
    return {
      id: idOf(full),
      node_id: `R_${idOf(full)}`,
      name,
      full_name: full,
      private: (i + 1) % 2 === 0,
      owner: { login, id: idOf(login), type: "User" },
      html_url: `${origin}/${full}`,
      description: `Test repository ${i + 1} of ${login}`,
      fork: false,
      url: `${origin}/api/v3/repos/${full}`,
      clone_url: `${origin}/${full}.git`,
      default_branch: "main",
      visibility: (i + 1) % 2 === 0 ? "private" : "public",
      pushed_at: new Date(Date.UTC(2026, 0, 10 - i)).toISOString(),
      updated_at: new Date(Date.UTC(2026, 0, 10 - i)).toISOString(),
    };
  });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(body === undefined ? undefined : JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of req) text += chunk;
  return text;
}

/** One page of `items` and GitHub's Link header for the others. */
function paged<T>(res: ServerResponse, url: URL, origin: string, items: T[]) {
  const perPage = Math.min(PAGE_MAX, Math.max(1, Number(url.searchParams.get("per_page")) || 30));
  const page = Math.max(1, Number(url.searchParams.get("page")) || 1);
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const link = (p: number, rel: string) => {
    const u = new URL(url.pathname + url.search, origin);
    u.searchParams.set("page", String(p));
    u.searchParams.set("per_page", String(perPage));
    return `<${u.href}>; rel="${rel}"`;
  };
  const links = [];
  if (page < last) links.push(link(page + 1, "next"), link(last, "last"));
  if (page > 1) links.push(link(1, "first"), link(page - 1, "prev"));
  send(res, 200, items.slice((page - 1) * perPage, page * perPage), links.length ? { link: links.join(", ") } : {});
}

export async function startFakeGitHub(opts: { gitRoot?: string } = {}): Promise<{ url: string; apiUrl: string; close: () => Promise<void> }> {
  /** Codes waiting to be exchanged, and live tokens, to their login. */
  const codes = new Map<string, { login: string; redirectUri: string }>();
  const tokens = new Map<string, string>();
  const seen: string[] = [];
  const gitAuth: string[] = [];
  let origin = "";

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", origin);
    const path = url.pathname;

    if (req.method === "GET" && path === "/login/oauth/authorize") {
      const redirect = url.searchParams.get("redirect_uri");
      // The real page asks who signs in; here a test says (`login`), or it is `octocat`.
      const login = url.searchParams.get("login") ?? "octocat";
      if (url.searchParams.get("client_id") !== FAKE_GITHUB_CLIENT_ID || !redirect || !login || !/^[A-Za-z0-9-]{1,39}$/.test(login)) {
        return send(res, 400, { error: "invalid_request" });
      }
      const code = randomBytes(10).toString("hex");
      codes.set(code, { login, redirectUri: redirect });
      const back = new URL(redirect);
      back.searchParams.set("code", code);
      const state = url.searchParams.get("state");
      if (state) back.searchParams.set("state", state);
      res.writeHead(302, { location: back.href }).end();
      return;
    }
    if (req.method === "POST" && path === "/login/oauth/access_token") {
      const form = new URLSearchParams(await readBody(req));
      const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? "")?.[1];
      const [basicId, basicSecret] = basic ? Buffer.from(basic, "base64").toString().split(":").map(decodeURIComponent) : [];
      const clientId = form.get("client_id") ?? basicId;
      const clientSecret = form.get("client_secret") ?? basicSecret;
      // GitHub answers 200 with an error body for a bad code or client.
      if (clientId !== FAKE_GITHUB_CLIENT_ID || clientSecret !== FAKE_GITHUB_CLIENT_SECRET) return send(res, 200, { error: "incorrect_client_credentials" });
      const pending = codes.get(form.get("code") ?? "");
      codes.delete(form.get("code") ?? "");
      if (!pending || pending.redirectUri !== form.get("redirect_uri")) return send(res, 200, { error: "bad_verification_code" });
      const token = `gho_${randomBytes(18).toString("hex")}`;
      tokens.set(token, pending.login);
      return send(res, 200, { access_token: token, token_type: "bearer", scope: "read:user,repo,user:email" });
    }
    if (req.method === "POST" && path.startsWith("/__revoke/")) {
      const login = decodeURIComponent(path.slice("/__revoke/".length));
      for (const [token, owner] of tokens) if (owner === login) tokens.delete(token);
      return send(res, 204, undefined);
    }
    if (req.method === "GET" && path.startsWith("/__tokens/")) {
      const login = decodeURIComponent(path.slice("/__tokens/".length));
      return send(res, 200, [...tokens].filter(([, owner]) => owner === login).map(([token]) => token));
    }
    if (req.method === "GET" && path === "/__seen") return send(res, 200, seen);
    if (req.method === "GET" && path === "/__git-auth") return send(res, 200, gitAuth);

    const repoPath = /^\/([A-Za-z0-9-]{1,39})\/[A-Za-z0-9._-]{1,100}\.git\//.exec(path);
    if (opts.gitRoot && repoPath) {
      const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? "")?.[1];
      gitAuth.push(req.headers.authorization?.split(" ")[0] ?? "none");
      const password = basic ? Buffer.from(basic, "base64").toString().split(":").slice(1).join(":") : "";
      if (tokens.get(password) !== repoPath[1]) {
        res.writeHead(401, { "www-authenticate": 'Basic realm="GitHub"', "content-type": "text/plain" }).end("Invalid username or token.");
        return;
      }
      return serveGit(opts.gitRoot, req, res);
    }

    if (!path.startsWith("/api/v3/")) return send(res, 404, { message: "Not Found" });
    const api = path.slice("/api/v3".length);
    seen.push(`${req.method} ${api}${url.search}`);
    if (seen.length > 500) seen.splice(0, 100);
    const bearer = /^(?:Bearer|token) (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
    const login = bearer ? tokens.get(bearer) : undefined;
    if (!login) return send(res, 401, { message: "Bad credentials", documentation_url: "https://docs.github.com/rest", status: "401" });
    if (!req.headers["user-agent"]) return send(res, 403, { message: "Request forbidden by administrative rules. Please make sure your request has a User-Agent header" });

    if (req.method === "GET" && api === "/user") {
      return send(res, 200, { login, id: idOf(login), node_id: `U_${idOf(login)}`, avatar_url: `${origin}/avatars/${login}`, type: "User", name: `The ${login}`, email: null, bio: null });
    }
    if (req.method === "GET" && api === "/user/emails") {
      return send(res, 200, [{ email: `${login}@users.github.test`, primary: true, verified: true, visibility: "private" }]);
    }
    if (login.startsWith("outage-")) return send(res, 503, { message: "Service Unavailable" });
    if (req.method === "GET" && api === "/user/repos") return paged(res, url, origin, reposOf(origin, login));
    const branches = /^\/repos\/([^/]+)\/([^/]+)\/branches$/.exec(api);
    if (req.method === "GET" && branches) {
      const full = `${decodeURIComponent(branches[1]!)}/${decodeURIComponent(branches[2]!)}`;
      if (!reposOf(origin, login).some((r) => r.full_name === full)) return send(res, 404, { message: "Not Found", documentation_url: "https://docs.github.com/rest/branches/branches#list-branches", status: "404" });
      return paged(
        res,
        url,
        origin,
        BRANCHES.map((name) => ({ name, commit: { sha: shaOf(`${full}@${name}`), url: `${origin}/api/v3/repos/${full}/commits/${shaOf(`${full}@${name}`)}` }, protected: name === "main" })),
      );
    }
    return send(res, 404, { message: "Not Found", documentation_url: "https://docs.github.com/rest" });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  server.unref();
  const { port } = server.address() as AddressInfo;
  origin = `http://127.0.0.1:${port}`;
  return {
    url: origin,
    apiUrl: `${origin}/api/v3`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
