import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate } from "@tanstack/react-router";
import { useId, useRef, useState } from "react";
import { type App, api, unwrap } from "../api/client";
import { useProjectEvents } from "../live";
import { can } from "../permissions";
import { appsQuery, gitBranchesQuery, gitReposQuery, oauthAccountsQuery, projectsQuery, useOrg } from "../queries";
import { CopyField } from "../ui/CopyField";
import { ErrorMessage } from "../ui/ErrorMessage";
import { CardList, Empty } from "../ui/ListState";
import { LiveBadge } from "../ui/LiveBadge";
import { Page } from "../ui/Page";
import { SecretPanel } from "../ui/SecretPanel";
import { usePageTitle } from "../ui/title";
import { absoluteHookUrl } from "./AppWebhook";

/** `KEY=value` lines into an object; blank lines and `#` comments are skipped. Throws, in words, on a line without `=`. */
export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [n, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`Environment variables, line ${n + 1}: write it as NAME=value.`);
    env[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return env;
}

export function AppStatus({ app }: { app: Pick<App, "state" | "sleeping"> }) {
  // Asleep: its host stopped it after a while without requests, and the next one wakes it.
  if (app.sleeping) return <span className="status status-app-stopped" title="Stopped after a while without requests; the next request wakes it">asleep</span>;
  return <span className={`status status-app-${app.state}`}>{app.state === "created" ? "not deployed yet" : app.state}</span>;
}

export function Apps({ orgSlug, projectId }: { orgSlug: string; projectId: string }) {
  const { role } = useOrg(orgSlug);
  const project = useQuery(projectsQuery(orgSlug)).data?.find((p) => p.id === projectId);
  usePageTitle(project ? `Apps of ${project.name}` : "Apps");
  const canDeploy = can(role, "deploy");
  const live = useProjectEvents(projectId);
  // Job events refresh the list; a container's own changes (a crash) are seen by asking now and then.
  const apps = useQuery({ ...appsQuery(projectId), refetchInterval: 15_000 });

  return (
    <Page
      id="apps-heading"
      title="Apps"
      subtitle={
        <>
          of {project?.name ?? "this project"} · <Link to="/orgs/$orgSlug/projects" params={{ orgSlug }}>all projects</Link> ·{" "}
          <Link to="/orgs/$orgSlug/projects/$projectId/jobs" params={{ orgSlug, projectId }}>
            jobs
          </Link>{" "}
          <LiveBadge state={live} what="Live updates" />
        </>
      }
    >
      {canDeploy ? <CreateForm orgSlug={orgSlug} projectId={projectId} /> : role ? <p className="muted">You are a {role} here: you can see the apps; owners, admins and developers create and deploy them.</p> : null}
      <CardList
        query={apps}
        loading="Loading apps…"
        label="Apps"
        empty={
          <Empty title="No apps yet">
            {canDeploy
              ? "An app is a container image run on one of your organization's Docker hosts and served at its own address. Give it a name and an image above and press Create app, then Deploy. No Docker host yet? Enrol one on the Hosts page."
              : "An owner, admin or developer of this organization can create one."}
          </Empty>
        }
      >
        {(a) => (
          <li key={a.id} className="card app">
            <div>
              <h3 className="card-title">
                <Link to="/orgs/$orgSlug/projects/$projectId/apps/$appId" params={{ orgSlug, projectId, appId: a.id }}>
                  {a.name}
                </Link>
              </h3>
              <p className="muted small">
                <AppStatus app={a} /> · <code>{a.image}</code> · {a.cpu_limit} CPU · {a.memory_limit} MB
              </p>
              {a.state === "running" ? (
                <p className="small">
                  <a href={a.url} target="_blank" rel="noopener noreferrer">
                    {a.url}
                  </a>
                </p>
              ) : null}
            </div>
          </li>
        )}
      </CardList>
    </Page>
  );
}

type CreateAppBody = {
  name: string;
  slug?: string;
  image?: string;
  git_repo_url?: string;
  git_branch?: string;
  internal_port: number;
  env_vars: Record<string, string>;
  cpu_limit: number;
  memory_limit: number;
  gpu_enabled: boolean;
};

function CreateForm({ orgSlug, projectId }: { orgSlug: string; projectId: string }) {
  const ids = { name: useId(), slug: useId(), image: useId(), port: useId(), env: useId(), cpu: useId(), memory: useId(), source: useId() };
  const form = useRef<HTMLFormElement>(null);
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const [formError, setFormError] = useState<unknown>(null);
  const [source, setSource] = useState<"image" | "git">("image");
  // An app from git: its push webhook's secret is shown once, before going to the app.
  const [created, setCreated] = useState<(App & { git_webhook_secret?: string }) | null>(null);
  const open = (app: App) => navigate({ to: "/orgs/$orgSlug/projects/$projectId/apps/$appId", params: { orgSlug, projectId, appId: app.id } });
  const create = useMutation({
    mutationFn: (body: CreateAppBody) => unwrap(api.POST("/projects/{projectId}/apps", { params: { path: { projectId } }, body })),
    onSuccess: async (app) => {
      form.current?.reset();
      await queryClient.invalidateQueries({ queryKey: appsQuery(projectId).queryKey });
      const withSecret = app as App & { git_webhook_secret?: string };
      if (withSecret.git_webhook_secret) setCreated(withSecret);
      else await open(app);
    },
  });
  if (created?.git_webhook_secret) {
    const hookUrl = absoluteHookUrl(created.git_webhook_url);
    return (
      <SecretPanel
        id="webhook-secret-heading"
        title={`Created ${created.name}: its push webhook secret`}
        copy={{ label: "Webhook secret", value: created.git_webhook_secret, hint: "Shown once. Renew it on the app's page if you lose it." }}
        doneLabel="I have saved it: open the app"
        primary
        onDone={() => void open(created)}
      >
        <p>
          To build and deploy on every push, add a webhook at your git provider: payload URL <code>{hookUrl}</code>, content type <code>application/json</code>,
          the secret below, the <em>push</em> event.
        </p>
        {hookUrl ? <CopyField label="Payload URL" value={hookUrl} /> : null}
      </SecretPanel>
    );
  }
  return (
    <>
      <form
        ref={form}
        className="stack-form"
        aria-label="Create an app"
        onSubmit={(e) => {
          e.preventDefault();
          setFormError(null);
          const data = new FormData(e.currentTarget);
          let env: Record<string, string>;
          try {
            env = parseEnv(String(data.get("env") ?? ""));
          } catch (err) {
            setFormError(err);
            return;
          }
          const slug = String(data.get("slug") ?? "").trim();
          const repo = String(data.get("repo") ?? "").trim();
          const typedUrl = String(data.get("repo_url") ?? "").trim();
          const branch = String(data.get("branch") ?? "").trim();
          create.mutate({
            name: String(data.get("name")).trim(),
            ...(slug ? { slug } : {}),
            ...(source === "image" ? { image: String(data.get("image")).trim() } : { git_repo_url: repo && repo !== TYPED ? repo : typedUrl, ...(branch ? { git_branch: branch } : {}) }),
            internal_port: Number(data.get("port")),
            env_vars: env,
            cpu_limit: Number(data.get("cpu")),
            memory_limit: Number(data.get("memory")),
            gpu_enabled: false,
          });
        }}
      >
        <h2 className="section-title">Create an app</h2>
        <div className="fields">
          <label htmlFor={ids.name}>App name</label>
          <input id={ids.name} name="name" required maxLength={100} placeholder="e.g. web" autoComplete="off" />
          <label htmlFor={ids.slug}>Address name (optional)</label>
          <input
            id={ids.slug}
            name="slug"
            maxLength={40}
            pattern="[a-z0-9]([a-z0-9\-]*[a-z0-9])?"
            placeholder="derived from the name"
            autoComplete="off"
            aria-describedby={`${ids.slug}-hint`}
          />
          <p id={`${ids.slug}-hint`} className="muted small span-2">
            The app is served at http://<em>name</em>-app.<em>your domain</em>: lowercase letters, digits and hyphens, unique across Berth.
          </p>
          <fieldset className="span-2 source-choice">
            <legend>Source</legend>
            <label>
              <input type="radio" name="source" value="image" checked={source === "image"} onChange={() => setSource("image")} /> Pull from a registry
            </label>{" "}
            <label>
              <input type="radio" name="source" value="git" checked={source === "git"} onChange={() => setSource("git")} /> Build from git on the host
            </label>
          </fieldset>
          {source === "image" ? (
            <>
              <label htmlFor={ids.image}>Image</label>
              <input id={ids.image} name="image" required maxLength={512} pattern="\S+" placeholder="e.g. nginx:alpine or registry.example.com/web:v1" autoComplete="off" spellCheck={false} />
            </>
          ) : (
            <GitSourceFields />
          )}
          <label htmlFor={ids.port}>Port it listens on</label>
          <input id={ids.port} name="port" type="number" required min={1} max={65535} defaultValue={8080} />
          <label htmlFor={ids.env}>Environment variables (optional)</label>
          <textarea id={ids.env} name="env" rows={3} placeholder={"NAME=value, one a line"} spellCheck={false} aria-describedby={`${ids.env}-hint`} />
          <p id={`${ids.env}-hint`} className="muted small span-2">
            Stored encrypted; after saving, only their names are shown.
          </p>
          <label htmlFor={ids.cpu}>CPU limit (cores)</label>
          <input id={ids.cpu} name="cpu" type="number" required min={0.05} max={64} step={0.05} defaultValue={0.5} />
          <label htmlFor={ids.memory}>Memory limit (MB)</label>
          <input id={ids.memory} name="memory" type="number" required min={16} max={262144} step={1} defaultValue={512} />
        </div>
        <div>
          <button type="submit" className="primary" disabled={create.isPending}>
            {create.isPending ? "Creating…" : "Create app"}
          </button>
        </div>
      </form>
      <ErrorMessage error={formError ?? create.error} />
    </>
  );
}

/** The repository picker's choice for "I will type a URL". */
const TYPED = "__typed__";

/**
 * Where a git app's source is: a repository of the linked GitHub account and one of its
 * branches, or a typed URL and branch (any http(s) git server, or owner/repo on GitHub).
 */
function GitSourceFields() {
  const ids = { repo: useId(), url: useId(), branch: useId(), hint: useId() };
  const accounts = useQuery(oauthAccountsQuery);
  const linked = Boolean(accounts.data?.some((a) => a.provider === "github"));
  const repos = useQuery({ ...gitReposQuery, enabled: linked });
  const [repo, setRepo] = useState("");
  const picked = repos.data?.find((r) => r.full_name === repo);
  const branches = useQuery({ ...gitBranchesQuery(repo), enabled: Boolean(picked) });
  const typed = !picked;
  return (
    <>
      {linked ? (
        <>
          <label htmlFor={ids.repo}>Repository</label>
          <select id={ids.repo} name="repo" value={repo || TYPED} onChange={(e) => setRepo(e.target.value === TYPED ? "" : e.target.value)} aria-describedby={ids.hint}>
            <option value={TYPED}>Type a repository URL…</option>
            {(repos.data ?? []).map((r) => (
              <option key={r.id} value={r.full_name}>
                {r.full_name}
                {r.private ? " (private)" : ""}
              </option>
            ))}
          </select>
          <p id={ids.hint} className="muted small span-2">
            {repos.isPending ? "Reading your GitHub repositories…" : repos.error ? "Your GitHub repositories could not be read; type a URL instead." : "From your linked GitHub account; private ones build with it."}
          </p>
        </>
      ) : (
        <p className="muted small span-2">
          <Link to="/account/git">Link your GitHub account</Link> to pick a repository, or type its URL.
        </p>
      )}
      {typed ? (
        <>
          <label htmlFor={ids.url}>Repository URL</label>
          <input id={ids.url} name="repo_url" required maxLength={2048} pattern="\S+" placeholder="https://git.example.com/team/app.git or owner/repo" autoComplete="off" spellCheck={false} />
          <label htmlFor={ids.branch}>Branch</label>
          <input id={ids.branch} name="branch" maxLength={255} placeholder="main" autoComplete="off" spellCheck={false} />
        </>
      ) : (
        <>
          <label htmlFor={ids.branch}>Branch</label>
          <select id={ids.branch} name="branch" key={repo} defaultValue={picked?.default_branch}>
            {(branches.data ?? [{ name: picked?.default_branch ?? "main", commit_sha: null, protected: false }]).map((b) => (
              <option key={b.name} value={b.name}>
                {b.name}
                {b.name === picked?.default_branch ? " (default)" : ""}
              </option>
            ))}
          </select>
        </>
      )}
    </>
  );
}
