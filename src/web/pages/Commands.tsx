import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate } from "@tanstack/react-router";
import { useEffect, useId, useRef, useState } from "react";
import { api, type Command, type SshProfile, unwrap } from "../api/client";
import { can } from "../permissions";
import { commandHistoryQuery, commandQuery, sshProfilesQuery, useOrg } from "../queries";
import { ErrorMessage } from "../ui/ErrorMessage";
import { formatDate } from "../ui/format";
import { Empty, QueryState } from "../ui/ListState";
import { Page } from "../ui/Page";
import { usePageTitle } from "../ui/title";
import { SuggestCommand } from "./ai-tools";
import { COMMAND_STATUSES, COMMANDS_PAGE_SIZE, type CommandSearch } from "./command-search";

/** A command still pending or running is read again this often, at most MAX_POLLS times (its timeout is at most an hour; the page gives up sooner and says so). */
const POLL_MS = 1_000;
const MAX_POLLS = 300;

const finished = (c: Command | undefined) => c?.status === "success" || c?.status === "error";

/** Where the history and the profiles of this page live in the cache, to read again after a run. */
const historyKey = (orgSlug: string) => ["devpocket", "commands", orgSlug];

/** Runs commands over your SSH profiles, and your history of them in this org. */
export function Commands({ orgSlug, search }: { orgSlug: string; search: CommandSearch }) {
  usePageTitle("Commands");
  const { org, role, orgs } = useOrg(orgSlug);
  const allowed = can(role, "command:exec");
  const profiles = useQuery({ ...sshProfilesQuery(orgSlug), enabled: allowed });
  return (
    <Page id="commands-heading" title="Commands" subtitle={org ? `yours, in ${org.name}` : null}>
      {orgs.isPending ? <p aria-busy="true">Loading…</p> : null}
      {orgs.data && !allowed ? <Empty>As a {role ?? "non-member"} here you cannot run commands. Owners, admins and developers can.</Empty> : null}
      {allowed ? (
        <>
          <QueryState query={profiles} loading="Loading your SSH profiles…" />
          {profiles.data?.length === 0 ? (
            <Empty title="No SSH profile yet">
              Commands run over SSH. <Link to="/orgs/$orgSlug/ssh" params={{ orgSlug }}>Add an SSH profile</Link> first, then come back to run commands on it.
            </Empty>
          ) : null}
          {profiles.data && profiles.data.length > 0 ? <RunForm orgSlug={orgSlug} profiles={profiles.data} initialProfile={search.profile} /> : null}
          <History orgSlug={orgSlug} search={search} profiles={profiles.data ?? []} />
        </>
      ) : null}
    </Page>
  );
}

function RunForm({ orgSlug, profiles, initialProfile }: { orgSlug: string; profiles: SshProfile[]; initialProfile?: string }) {
  const queryClient = useQueryClient();
  const ids = { profile: useId(), command: useId(), timeout: useId() };
  const [ran, setRan] = useState<string | null>(null);
  const commandField = useRef<HTMLInputElement>(null);
  const run = useMutation({
    mutationFn: (body: { profile_id: string; command: string; timeout: number }) => unwrap(api.POST("/commands/execute", { body })),
    onSuccess: async (c) => {
      setRan(c.id);
      queryClient.setQueryData(commandQuery(c.id).queryKey, c);
      await queryClient.invalidateQueries({ queryKey: historyKey(orgSlug) });
    },
  });
  return (
    <>
      <form
        className="stack-form"
        aria-label="Run a command"
        onSubmit={(e) => {
          e.preventDefault();
          const data = new FormData(e.currentTarget);
          setRan(null);
          run.mutate({ profile_id: String(data.get("profile")), command: String(data.get("command")), timeout: Number(data.get("timeout")) || 30 });
        }}
      >
        <h2 className="section-title">Run a command</h2>
        <div className="fields">
          <label htmlFor={ids.profile}>On profile</label>
          <select id={ids.profile} name="profile" defaultValue={profiles.some((p) => p.id === initialProfile) ? initialProfile : profiles[0]?.id}>
            {profiles.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name} ({p.username}@{p.host}:{p.port})
              </option>
            ))}
          </select>
          <label htmlFor={ids.command}>Command</label>
          <input ref={commandField} id={ids.command} name="command" required maxLength={8192} className="code" autoComplete="off" spellCheck={false} placeholder="e.g. uptime" />
          <label htmlFor={ids.timeout}>Time limit (seconds)</label>
          <input id={ids.timeout} name="timeout" type="number" min={1} max={3600} defaultValue={30} />
        </div>
        <div>
          <button type="submit" className="primary" disabled={run.isPending}>
            {run.isPending ? "Running…" : "Run"}
          </button>
        </div>
      </form>
      <ErrorMessage error={run.error} />
      <details className="ai-suggest">
        <summary>Not sure of the command? Ask AI</summary>
        <SuggestCommand
          headingLevel={3}
          onUse={(command) => {
            const field = commandField.current;
            if (!field) return;
            field.value = command;
            field.focus();
          }}
        />
      </details>
      {ran ? <CommandResult orgSlug={orgSlug} commandId={ran} heading="Result" /> : null}
    </>
  );
}

/** A command as it is now, read again while it runs. */
function useCommand(commandId: string) {
  return useQuery({
    ...commandQuery(commandId),
    refetchInterval: (q) => (finished(q.state.data) || q.state.dataUpdateCount > MAX_POLLS ? false : POLL_MS),
  });
}

function CommandResult({ orgSlug, commandId, heading }: { orgSlug: string; commandId: string; heading: string }) {
  const command = useCommand(commandId);
  const c = command.data;
  const headingId = useId();
  const queryClient = useQueryClient();
  const done = finished(c);
  // A command that ended after the run's answer (read again above): the history below says so too.
  useEffect(() => {
    if (done) void queryClient.invalidateQueries({ queryKey: historyKey(orgSlug) });
  }, [done, orgSlug, queryClient]);
  return (
    <section className="job command-result" aria-labelledby={headingId}>
      <h2 id={headingId} className="section-title">
        {heading}
      </h2>
      <QueryState query={command} loading="Reading the command…" />
      {c ? <CommandOutput orgSlug={orgSlug} command={c} /> : null}
    </section>
  );
}

function statusWords(c: Command): string {
  switch (c.status) {
    case "pending":
      return "Waiting for a host to run it…";
    case "running":
      return "Running…";
    case "success":
      return "Finished";
    default:
      return c.exit_code === null ? "Failed" : "Finished with an error";
  }
}

function CommandOutput({ orgSlug, command: c, onDetail = false }: { orgSlug: string; command: Command; onDetail?: boolean }) {
  return (
    <>
      <p>
        <code>{c.command}</code>
      </p>
      <dl className="facts">
        <div>
          <dt>Status</dt>
          <dd className={`status status-${c.status === "success" ? "online" : c.status === "error" ? "error" : "waiting"}`}>{statusWords(c)}</dd>
        </div>
        <div>
          <dt>Exit code</dt>
          <dd>{c.exit_code ?? "none"}</dd>
        </div>
        <div>
          <dt>Took</dt>
          <dd>{c.duration_ms === null ? "—" : `${c.duration_ms} ms`}</dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>{formatDate(c.executed_at ?? c.created_at)}</dd>
        </div>
      </dl>
      {c.error ? <p className="error">{c.error}</p> : null}
      {c.output_truncated ? (
        <p className="notice">Output cut: it was longer than Berth keeps, so only its beginning is shown.</p>
      ) : null}
      {finished(c) || c.stdout || c.stderr ? (
        <>
          <h3 className="small">Standard output</h3>
          {/* biome-ignore lint/a11y/noNoninteractiveTabindex: output that scrolls must be reachable by keyboard to be read */}
          <pre className="log" role="log" aria-label="Standard output" tabIndex={0}>
            {c.stdout || "(nothing)"}
          </pre>
          {c.stderr ? (
            <>
              <h3 className="small">Standard error</h3>
              {/* biome-ignore lint/a11y/noNoninteractiveTabindex: output that scrolls must be reachable by keyboard to be read */}
              <pre className="log log-err" role="log" aria-label="Standard error" tabIndex={0}>
                {c.stderr}
              </pre>
            </>
          ) : null}
        </>
      ) : null}
      <p className="small">
        {onDetail ? null : (
          <Link to="/orgs/$orgSlug/commands/$commandId" params={{ orgSlug, commandId: c.id }}>
            Details of this command
          </Link>
        )}
        {c.rerun_of ? (
          <>
            {onDetail ? "A" : " · a"} rerun of{" "}
            <Link to="/orgs/$orgSlug/commands/$commandId" params={{ orgSlug, commandId: c.rerun_of }}>
              an earlier command
            </Link>
          </>
        ) : null}
      </p>
    </>
  );
}

/** Runs a command again over the same profile, as a new command; then opens it. */
function RerunButton({ orgSlug, command }: { orgSlug: string; command: Command }) {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const rerun = useMutation({
    mutationFn: () => unwrap(api.POST("/commands/{command_id}/rerun", { params: { path: { command_id: command.id } }, body: {} })),
    onSuccess: async (c) => {
      queryClient.setQueryData(commandQuery(c.id).queryKey, c);
      await queryClient.invalidateQueries({ queryKey: historyKey(orgSlug) });
      await navigate({ to: "/orgs/$orgSlug/commands/$commandId", params: { orgSlug, commandId: c.id } });
    },
  });
  return (
    <>
      <button type="button" onClick={() => rerun.mutate()} disabled={rerun.isPending || !command.profile_id} aria-label={`Run again: ${command.command}`}>
        {rerun.isPending ? "Running…" : "Run again"}
      </button>
      <ErrorMessage error={rerun.error} />
    </>
  );
}

function History({ orgSlug, search, profiles }: { orgSlug: string; search: CommandSearch; profiles: SshProfile[] }) {
  const navigate = useNavigate();
  const page = search.page ?? 1;
  const history = useQuery({
    ...commandHistoryQuery(orgSlug, {
      ...(search.q ? { search: search.q } : {}),
      ...(search.status ? { status: search.status } : {}),
      ...(search.profile ? { profile_id: search.profile } : {}),
      offset: (page - 1) * COMMANDS_PAGE_SIZE,
      limit: COMMANDS_PAGE_SIZE,
    }),
    placeholderData: keepPreviousData,
  });
  const filtered = !!(search.q || search.status || search.profile);
  const ids = { q: useId(), status: useId(), profile: useId(), heading: useId() };
  const go = (next: CommandSearch) => void navigate({ to: "/orgs/$orgSlug/commands", params: { orgSlug }, search: next });
  const profileName = (id: string | null) => profiles.find((p) => p.id === id)?.name ?? "a deleted profile";
  const data = history.data;
  return (
    <section aria-labelledby={ids.heading}>
      <h2 id={ids.heading} className="section-title">
        History
      </h2>
      <form
        className="inline-form"
        aria-label="Filter the history"
        key={`${search.q}|${search.status}|${search.profile}`}
        onSubmit={(e) => {
          e.preventDefault();
          const form = new FormData(e.currentTarget);
          const value = (name: string) => String(form.get(name) ?? "") || undefined;
          go({ q: value("q"), status: value("status") as CommandSearch["status"], profile: value("profile") });
        }}
      >
        <label htmlFor={ids.q}>Contains</label>
        <input id={ids.q} name="q" type="search" defaultValue={search.q ?? ""} maxLength={200} />
        <label htmlFor={ids.status}>Status</label>
        <select id={ids.status} name="status" defaultValue={search.status ?? ""}>
          <option value="">any</option>
          {COMMAND_STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <label htmlFor={ids.profile}>Profile</label>
        <select id={ids.profile} name="profile" defaultValue={search.profile ?? ""}>
          <option value="">any</option>
          {profiles.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name}
            </option>
          ))}
        </select>
        <button type="submit">Apply filters</button>
        {filtered ? (
          <Link to="/orgs/$orgSlug/commands" params={{ orgSlug }} search={{}}>
            Clear filters
          </Link>
        ) : null}
      </form>
      <QueryState query={history} loading="Loading your history…" />
      {data && data.commands.length === 0 ? (
        <Empty>
          {search.q || search.status
            ? "No command matches these filters. Change them, or clear the filters."
            : page > 1
              ? "There are no more commands. Go back to the first page."
              : search.profile
                ? "No commands on this profile yet. Run one above; each appears here with its output."
                : "No commands yet. Run one on a profile above; each appears here with its output."}
        </Empty>
      ) : null}
      {data && data.commands.length > 0 ? (
        // biome-ignore lint/a11y/noNoninteractiveTabindex: a region that scrolls sideways on a phone must be reachable by keyboard
        <section className="table-wrap" aria-label="Command history" tabIndex={0}>
          <table>
            <caption className="sr-only">
              Your commands, newest first, page {page}
              {filtered ? ", filtered" : ""}
            </caption>
            <thead>
              <tr>
                <th scope="col">Command</th>
                <th scope="col">Profile</th>
                <th scope="col">Status</th>
                <th scope="col">Exit code</th>
                <th scope="col">When</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {data.commands.map((c) => (
                <tr key={c.id}>
                  <td>
                    <Link to="/orgs/$orgSlug/commands/$commandId" params={{ orgSlug, commandId: c.id }}>
                      <code>{c.command.length > 80 ? `${c.command.slice(0, 80)}…` : c.command}</code>
                    </Link>
                  </td>
                  <td>{profileName(c.profile_id)}</td>
                  <td>{c.status}</td>
                  <td>{c.exit_code ?? ""}</td>
                  <td>
                    <time dateTime={c.created_at}>{formatDate(c.created_at)}</time>
                  </td>
                  <td>
                    <RerunButton orgSlug={orgSlug} command={c} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ) : null}
      {data && (page > 1 || data.has_more) ? (
        <nav className="pager" aria-label="History pages">
          {page > 1 ? (
            <Link to="/orgs/$orgSlug/commands" params={{ orgSlug }} search={{ ...search, page: page - 1 > 1 ? page - 1 : undefined }}>
              Newer commands
            </Link>
          ) : (
            <span />
          )}
          <span className="muted small">
            Page {page} of {Math.max(1, Math.ceil(data.total / COMMANDS_PAGE_SIZE))}
          </span>
          {data.has_more ? (
            <Link to="/orgs/$orgSlug/commands" params={{ orgSlug }} search={{ ...search, page: page + 1 }}>
              Older commands
            </Link>
          ) : (
            <span />
          )}
        </nav>
      ) : null}
    </section>
  );
}

/** One command of your history: its output, and running it again. */
export function CommandDetail({ orgSlug, commandId }: { orgSlug: string; commandId: string }) {
  usePageTitle("Command");
  const command = useCommand(commandId);
  const c = command.data;
  return (
    <Page id="command-heading" title="Command">
      <p>
        <Link to="/orgs/$orgSlug/commands" params={{ orgSlug }}>
          ← All commands
        </Link>
      </p>
      <QueryState query={command} loading="Reading the command…" />
      {c ? (
        <>
          <div className="job command-result">
            <CommandOutput orgSlug={orgSlug} command={c} onDetail />
          </div>
          <div className="actions start">
            <RerunButton orgSlug={orgSlug} command={c} />
          </div>
        </>
      ) : null}
    </Page>
  );
}
