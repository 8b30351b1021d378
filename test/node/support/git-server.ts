/**
 * A git server for tests and benchmarks: `git http-backend` (git's own smart HTTP, which
 * shallow clones need; the dumb protocol cannot serve `--depth`) run as CGI behind a small
 * node:http server on loopback, serving the bare repositories under `projectRoot` at
 * `http://127.0.0.1:{port}/{name}.git`.
 */
import { spawn } from "node:child_process";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

/** `git http-backend` as CGI behind node:http: the request's body to its stdin, its headers and body back. */
export function startGitServer(projectRoot: string): Promise<Server> {
  const srv = createServer((req, res) => serveGit(projectRoot, req, res));
  return new Promise((resolve) => srv.listen(0, "127.0.0.1", () => resolve(srv)));
}

/** One request of git's smart HTTP, answered by `git http-backend` for the bare repositories under `projectRoot`. */
export function serveGit(projectRoot: string, req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? "/", "http://git");
  const cgi = spawn("git", ["http-backend"], {
    env: {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: projectRoot,
      GIT_HTTP_EXPORT_ALL: "1",
      REQUEST_METHOD: req.method ?? "GET",
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      REMOTE_ADDR: "127.0.0.1",
      ...(req.headers["content-encoding"] ? { HTTP_CONTENT_ENCODING: req.headers["content-encoding"] } : {}),
      ...(req.headers["git-protocol"] ? { GIT_PROTOCOL: String(req.headers["git-protocol"]) } : {}),
    },
  });
  req.pipe(cgi.stdin);
  let head = Buffer.alloc(0);
  let headersDone = false;
  cgi.stdout.on("data", (chunk: Buffer) => {
    if (headersDone) return void res.write(chunk);
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf("\r\n\r\n");
    if (end < 0) return;
    headersDone = true;
    let status = 200;
    for (const line of head.subarray(0, end).toString("utf8").split("\r\n")) {
      const [name, ...rest] = line.split(":");
      const value = rest.join(":").trim();
      if (/^status$/i.test(name!)) status = Number.parseInt(value, 10);
      else res.setHeader(name!, value);
    }
    res.writeHead(status);
    res.write(head.subarray(end + 4));
  });
  cgi.on("close", () => res.end());
  cgi.on("error", () => res.writeHead(500).end());
}

