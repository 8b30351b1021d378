import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate } from "@tanstack/react-router";
import { useEffect, useId, useRef, useState } from "react";
import { type App, api, unwrap } from "../api/client";
import { useAppLogs } from "../app-logs";
import { useProjectEvents } from "../live";
import { can } from "../permissions";
import { appQuery, deploymentsQuery, jobsQuery, statsHistoryQuery, statsQuery, useOrg } from "../queries";
import { ConfirmMutation } from "../ui/ConfirmMutation";
import { ErrorMessage } from "../ui/ErrorMessage";
import { formatBytes, formatDate } from "../ui/format";
import { LineChart } from "../ui/LineChart";
import { QueryState } from "../ui/ListState";
import { LiveBadge } from "../ui/LiveBadge";
import { Page } from "../ui/Page";
import { usePageTitle } from "../ui/title";
import { Scaling, Volumes } from "./AppScale";
import { AppSettings } from "./AppSettings";
import { AppWebhook } from "./AppWebhook";
import { AppStatus } from "./Apps";
import { isOpen, JobView } from "./JobView";

const TRANSITIONAL = new Set(["starting", "restarting"]);

type Action = "deploy" | "start" | "stop" | "restart";
const ACTION_WORDS: Record<Action, string> = { deploy: "Deploy", start: "Start", stop: "Stop", restart: "Restart" };

export function AppDetail({ orgSlug, projectId, appId }: { orgSlug: string; projectId: string; appId: string }) {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const { role } = useOrg(orgSlug);
  const canDeploy = can(role, "deploy");
  const canExec = can(role, "app:exec");
  const live = useProjectEvents(projectId);
  // Job events refresh the app; Docker's own events (a crash, a restart by its policy) are seen by asking now and then.
  const query = useQuery({ ...appQuery(projectId, appId), refetchInterval: (q) => (TRANSITIONAL.has(q.state.data?.app.state ?? "") ? 2_000 : 15_000) });
  const app = query.data?.app;
  usePageTitle(app ? `${app.name} · Apps` : "App");
  const jobs = useQuery(jobsQuery(projectId, appId));
  const [status, setStatus] = useState("");
  const [confirming, setConfirming] = useState(false);

  const act = useMutation({
    mutationFn: async (action: Action) => {
      const path = { appId };
      if (action === "deploy") return unwrap(api.POST("/apps/{appId}/deploy", { params: { path } }));
      if (action === "start") return unwrap(api.POST("/apps/{appId}/start", { params: { path } }));
      if (action === "stop") return unwrap(api.POST("/apps/{appId}/stop", { params: { path } }));
      return unwrap(api.POST("/apps/{appId}/restart", { params: { path } }));
    },
    onSuccess: async (_res, action) => {
      setStatus(`${app?.name ?? "The app"}: ${action} requested.`);
      await queryClient.invalidateQueries({ queryKey: ["projects", projectId] });
    },
  });
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE("/apps/{appId}", { params: { path: { appId } } })),
    onSuccess: async () => {
      setConfirming(false);
      queryClient.removeQueries({ queryKey: appQuery(projectId, appId).queryKey });
      await queryClient.invalidateQueries({ queryKey: ["projects", projectId, "apps"] });
      await navigate({ to: "/orgs/$orgSlug/projects/$projectId/apps", params: { orgSlug, projectId } });
    },
  });

  const latest = jobs.data?.[0];
  const busy = act.isPending || (latest ? isOpen(latest) : false);
  return (
    <Page
      id="app-heading"
      title={app?.name ?? "App"}
      subtitle={
        <>
          <Link to="/orgs/$orgSlug/projects/$projectId/apps" params={{ orgSlug, projectId }}>
            all apps
          </Link>{" "}
          <LiveBadge state={live} what="Live updates" />
        </>
      }
      status={status}
    >
      <QueryState query={query} loading="Loading the app…" />
      {app ? (
        <>
          <section className="card app-summary" aria-label="Summary">
            <div>
              <p>
                <AppStatus app={app} /> · <code>{app.image}</code> · port {app.internal_port}
              </p>
              <p className="small">
                {app.state === "running" ? (
                  <a href={app.url} target="_blank" rel="noopener noreferrer" aria-label={`Open ${app.url} (${app.name}, in a new tab)`}>
                    Open {app.url}
                  </a>
                ) : (
                  <span className="muted">Served at {app.url} once running.</span>
                )}
                {canExec && app.state === "running" ? (
                  <>
                    {" · "}
                    <Link to="/orgs/$orgSlug/projects/$projectId/apps/$appId/terminal" params={{ orgSlug, projectId, appId: app.id }} aria-label={`Open a terminal in ${app.name}`}>
                      Open a terminal
                    </Link>
                  </>
                ) : null}
              </p>
              <p className="muted small">
                {app.cpu_limit} CPU · {app.memory_limit} MB · env: {Object.keys(app.env_vars).join(", ") || "none"}
                {app.host_id ? ` · host ${app.host_id}` : ""}
              </p>
            </div>
            {canDeploy ? (
              <div className="actions">
                <button type="button" className="primary" disabled={busy} onClick={() => act.mutate("deploy")}>
                  {app.state === "created" ? "Deploy" : "Redeploy"}
                </button>
                {app.container_id
                  ? (app.state === "running" ? (["restart", "stop"] as const) : (["start"] as const)).map((a) => (
                      <button key={a} type="button" disabled={busy} onClick={() => act.mutate(a)} aria-label={`${ACTION_WORDS[a]} ${app.name}`}>
                        {ACTION_WORDS[a]}
                      </button>
                    ))
                  : null}
                <button type="button" className="danger-outline" onClick={() => setConfirming(true)} aria-label={`Delete ${app.name}`}>
                  Delete
                </button>
              </div>
            ) : null}
            <ErrorMessage error={act.error} />
          </section>
          <ConfirmMutation open={confirming} onClose={() => setConfirming(false)} mutation={remove} title={`Delete ${app.name}?`} confirmLabel="Delete app">
            <p>
              Its container and its address ({app.url}) are removed from its host, and the name <strong>{app.slug}</strong> becomes free for anyone. Its environment variables
              are forgotten. This cannot be undone.
            </p>
          </ConfirmMutation>

          {latest ? (
            <JobView projectId={projectId} job={latest} canCancel={canDeploy} title={isOpen(latest) ? "Current job" : "Last job"} />
          ) : (
            <p className="muted">{canDeploy ? "Nothing has run yet. Press Deploy to pull the image and start it on one of your Docker hosts." : "Nothing has run yet."}</p>
          )}

          <AppLogs app={app} />
          <Stats projectId={projectId} app={app} />
          {canDeploy ? <AppSettings projectId={projectId} app={app} onSaved={setStatus} onDeploy={() => act.mutate("deploy")} deploying={busy} /> : null}
          {canDeploy ? <AppWebhook app={app} /> : null}
          {canDeploy ? <Limits projectId={projectId} app={app} onSaved={setStatus} /> : null}
          <Volumes projectId={projectId} app={app} canEdit={canDeploy} onSaved={setStatus} />
          <Scaling projectId={projectId} app={app} canEdit={canDeploy} onSaved={setStatus} />
          <Deployments projectId={projectId} appId={app.id} />
        </>
      ) : null}
    </Page>
  );
}

function AppLogs({ app }: { app: App }) {
  const deployed = !!app.container_id;
  const { lines, state, gaps } = useAppLogs(app.id, app.container_id);
  const box = useRef<HTMLPreElement>(null);
  const [follow, setFollow] = useState(true);
  useEffect(() => {
    if (follow && box.current && lines.length) box.current.scrollTop = box.current.scrollHeight;
  }, [lines, follow]);
  return (
    <section aria-labelledby="app-logs-heading">
      <div className="page-head">
        <h2 id="app-logs-heading" className="section-title">
          Logs
        </h2>
        {deployed ? <LiveBadge state={state} what="Log stream" /> : null}
      </div>
      {!deployed ? (
        <p className="muted">The container's output shows here, live, once a deploy has started it.</p>
      ) : (
        <>
          {gaps ? <p className="muted small">The stream was interrupted {gaps === 1 ? "once" : `${gaps} times`}; lines written meanwhile are not shown here.</p> : null}
          <label className="inline-check small">
            <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Keep the newest line in view
          </label>
          {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a log that scrolls must be reachable by keyboard to be read */}
          <pre ref={box} className="log tall" role="log" aria-label={`Logs of ${app.name}`} tabIndex={0}>
            {lines.length
              ? lines.map((l) => (
                  <span key={l.key} className={l.stream === "stderr" ? "log-err" : undefined}>
                    <span className="muted">{l.time.slice(11, 19)} </span>
                    {l.line}
                    {"\n"}
                  </span>
                ))
              : state === "live"
                ? "No output yet: lines appear here as the app writes them."
                : "Connecting to the log stream…"}
          </pre>
        </>
      )}
    </section>
  );
}

const RANGES = [15, 60, 360, 1440] as const;

function Stats({ projectId, app }: { projectId: string; app: App }) {
  const running = app.state === "running";
  const [minutes, setMinutes] = useState<number>(60);
  const rangeId = useId();
  const now = useQuery({ ...statsQuery(projectId, app.id), enabled: running, refetchInterval: running ? 5_000 : false });
  const history = useQuery({ ...statsHistoryQuery(projectId, app.id, minutes), refetchInterval: 30_000, enabled: app.state !== "created" });
  const samples = history.data ?? [];
  const series = (pick: (s: (typeof samples)[number]) => number) => samples.map((s) => ({ t: Date.parse(s.created_at), v: pick(s) }));
  return (
    <section aria-labelledby="app-stats-heading">
      <h2 id="app-stats-heading" className="section-title">
        Resources
      </h2>
      {running && now.data ? (
        <dl className="facts">
          <div>
            <dt>CPU now</dt>
            <dd>{now.data.cpu_percent.toFixed(1)} %</dd>
          </div>
          <div>
            <dt>Memory now</dt>
            <dd>
              {Math.round(now.data.memory_mb)} of {Math.round(now.data.memory_max_mb)} MB
            </dd>
          </div>
          <div>
            <dt>Received</dt>
            <dd>{formatBytes(now.data.net_rx_bytes)}</dd>
          </div>
          <div>
            <dt>Sent</dt>
            <dd>{formatBytes(now.data.net_tx_bytes)}</dd>
          </div>
        </dl>
      ) : running ? (
        <QueryState query={now} loading="Asking the host…" />
      ) : (
        <p className="muted">Usage now shows while the app runs.</p>
      )}
      {app.state !== "created" ? (
        <>
          <div className="inline-form tight">
            <label htmlFor={rangeId}>History</label>
            <select id={rangeId} value={minutes} onChange={(e) => setMinutes(Number(e.target.value))}>
              {RANGES.map((m) => (
                <option key={m} value={m}>
                  last {m < 60 ? `${m} minutes` : m === 60 ? "hour" : `${m / 60} hours`}
                </option>
              ))}
            </select>
          </div>
          <ErrorMessage error={history.error} />
          <div className="charts">
            <LineChart title="CPU" unit="%" points={series((s) => s.cpu_pct)} />
            <LineChart title="Memory" unit="MB" points={series((s) => s.memory_mb)} max={app.memory_limit} />
          </div>
          {history.data && !samples.length ? <p className="muted small">No samples yet: the host reports one every 30 seconds while the app runs.</p> : null}
        </>
      ) : null}
    </section>
  );
}

function Limits({ projectId, app, onSaved }: { projectId: string; app: App; onSaved: (message: string) => void }) {
  const ids = { cpu: useId(), memory: useId() };
  const queryClient = useQueryClient();
  const save = useMutation({
    mutationFn: (body: { cpu_limit: number; memory_limit: number }) => unwrap(api.PUT("/apps/{appId}", { params: { path: { appId: app.id } }, body })),
    onSuccess: async (updated) => {
      onSaved(`Limits of ${updated.name} are now ${updated.cpu_limit} CPU and ${updated.memory_limit} MB${updated.container_id ? ", applied to the running container" : ""}.`);
      await queryClient.invalidateQueries({ queryKey: ["projects", projectId, "apps"] });
    },
  });
  return (
    <>
      <form
        key={`${app.cpu_limit}/${app.memory_limit}`}
        className="stack-form"
        aria-label="Limits"
        onSubmit={(e) => {
          e.preventDefault();
          const data = new FormData(e.currentTarget);
          save.mutate({ cpu_limit: Number(data.get("cpu")), memory_limit: Number(data.get("memory")) });
        }}
      >
        <h2 className="section-title">Limits</h2>
        <div className="fields">
          <label htmlFor={ids.cpu}>CPU limit (cores)</label>
          <input id={ids.cpu} name="cpu" type="number" required min={0.05} max={64} step={0.05} defaultValue={app.cpu_limit} />
          <label htmlFor={ids.memory}>Memory limit (MB)</label>
          <input id={ids.memory} name="memory" type="number" required min={16} max={262144} step={1} defaultValue={app.memory_limit} />
        </div>
        <p className="muted small">A running container gets new limits at once, without a restart.</p>
        <div>
          <button type="submit" disabled={save.isPending}>
            {save.isPending ? "Saving…" : "Save limits"}
          </button>
        </div>
      </form>
      <ErrorMessage error={save.error} />
    </>
  );
}

function Deployments({ projectId, appId }: { projectId: string; appId: string }) {
  const deployments = useQuery(deploymentsQuery(projectId, appId));
  return (
    <section aria-labelledby="deployments-heading">
      <h2 id="deployments-heading" className="section-title">
        Deployments
      </h2>
      <QueryState query={deployments} loading="Loading deployments…" />
      {deployments.data && !deployments.data.length ? <p className="muted">None yet: each Deploy adds one here.</p> : null}
      {deployments.data?.length ? (
        // biome-ignore lint/a11y/noNoninteractiveTabindex: a region that scrolls sideways on a phone must be reachable by keyboard
        <section className="table-wrap" aria-label="Deployment history" tabIndex={0}>
          <table>
            <thead>
              <tr>
                <th scope="col">Asked</th>
                <th scope="col">Image</th>
                <th scope="col">Commit</th>
                <th scope="col">Status</th>
                <th scope="col">Ended</th>
              </tr>
            </thead>
            <tbody>
              {deployments.data.map((d) => (
                <tr key={d.id}>
                  <td className="small">{formatDate(d.created_at)}</td>
                  <td className="small">
                    <code>{d.image}</code>
                  </td>
                  <td className="small">{d.commit_sha ? <code title={d.commit_sha}>{d.commit_sha.slice(0, 12)}</code> : "—"}</td>
                  <td className="small">
                    <span className={`status status-job-${d.status}`}>{d.status}</span>
                    {d.error ? <p className="error small">{d.error}</p> : null}
                  </td>
                  <td className="small">{d.finished_at ? formatDate(d.finished_at) : "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ) : null}
    </section>
  );
}
