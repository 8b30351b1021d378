import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import ReconnectingWebSocket from "partysocket/ws";
import { useEffect, useId, useRef, useState } from "react";
import { api, type Host, unwrap } from "../api/client";
import { socketUrl } from "../live";
import { can } from "../permissions";
import { hostsQuery, useOrg } from "../queries";
import { ConfirmMutation } from "../ui/ConfirmMutation";
import { ErrorMessage } from "../ui/ErrorMessage";
import { formatBytes, formatDate } from "../ui/format";
import { CardList, Empty } from "../ui/ListState";
import { Page } from "../ui/Page";
import { SecretPanel } from "../ui/SecretPanel";
import { usePageTitle } from "../ui/title";

/** What the API answers when a host is enrolled or given a new token: the command is used as it comes. */
type JoinToken = { hostName: string; agent_command: string; join_token_expires_at: string };

/**
 * A host waiting for its agent is watched through its events socket, which says the moment the
 * agent connects; the list is asked again only now and then, for hosts that fall silent (offline
 * is the absence of heartbeats, which no event announces) and agents that work over HTTP only.
 */
const POLL_MS = 15_000;
/** Sockets one page holds at most, for the hosts it waits for. */
const MAX_WATCHED = 20;

/** Reads the list again whenever the agent of a host not yet online connects, beats or leaves. */
function useHostsComingOnline(orgSlug: string, hostIds: string[]) {
  const queryClient = useQueryClient();
  const key = hostIds.slice(0, MAX_WATCHED).join(",");
  useEffect(() => {
    if (!key) return;
    const { queryKey } = hostsQuery(orgSlug);
    // partysocket reconnects (backoff with jitter); the first frame after each (re)connect reads the list again too.
    const sockets = key.split(",").map((id) => {
      const socket = new ReconnectingWebSocket(() => socketUrl(`/org/${orgSlug}/hosts/${id}/events`), [], {
        maxReconnectionDelay: 10_000,
        minReconnectionDelay: 500 + Math.random() * 1_000,
      });
      socket.addEventListener("message", () => void queryClient.invalidateQueries({ queryKey }));
      return socket;
    });
    return () => {
      for (const socket of sockets) socket.close();
    };
  }, [orgSlug, key, queryClient]);
}

export function Hosts({ orgSlug }: { orgSlug: string }) {
  usePageTitle("Hosts");
  const queryClient = useQueryClient();
  const { org, role } = useOrg(orgSlug);
  const canManage = can(role, "host:manage");
  const hosts = useQuery({ ...hostsQuery(orgSlug), refetchInterval: POLL_MS });
  useHostsComingOnline(orgSlug, hosts.data?.filter((h) => h.status !== "online").map((h) => h.id) ?? []);
  const [status, setStatus] = useState("");
  const [joinToken, setJoinToken] = useState<JoinToken | null>(null);
  const refresh = async (message: string) => {
    setStatus(message);
    const { queryKey } = hostsQuery(orgSlug);
    await queryClient.cancelQueries({ queryKey });
    await queryClient.invalidateQueries({ queryKey });
  };

  // Say so when a host comes online or goes offline, for those who cannot watch the badge.
  const seen = useRef(new Map<string, Host["status"]>());
  useEffect(() => {
    if (!hosts.data) return;
    const changes: string[] = [];
    for (const h of hosts.data) {
      const before = seen.current.get(h.id);
      if (before && before !== h.status) changes.push(`${h.name} is ${h.status}.`);
      seen.current.set(h.id, h.status);
    }
    if (changes.length) setStatus(changes.join(" "));
  }, [hosts.data]);

  return (
    <Page id="hosts-heading" title="Hosts" subtitle={org ? `of ${org.name}` : null} status={status}>
      {canManage ? (
        <EnrolForm
          orgSlug={orgSlug}
          onEnrolled={async (token) => {
            setJoinToken(token);
            await refresh(`Enrolled ${token.hostName}. Run the agent command on it.`);
          }}
        />
      ) : role ? (
        <p className="muted">You are a {role} here: you can see the hosts; owners and admins enrol and delete them.</p>
      ) : null}
      {joinToken ? <AgentCommand token={joinToken} onDone={() => setJoinToken(null)} /> : null}

      <CardList
        query={hosts}
        loading="Loading hosts…"
        label="Hosts"
        empty={
          <Empty title="No hosts yet">
            {canManage
              ? "A host is a machine running Docker or Proxmox VE that Berth deploys to. Name one above, pick its kind and press Enrol host, then run the command shown on it."
              : "An owner or admin of this organization can enrol one."}
          </Empty>
        }
      >
        {(h) => <HostRow key={h.id} orgSlug={orgSlug} host={h} canManage={canManage} onChanged={refresh} onJoinToken={setJoinToken} />}
      </CardList>
    </Page>
  );
}

function EnrolForm({ orgSlug, onEnrolled }: { orgSlug: string; onEnrolled: (token: JoinToken) => Promise<void> }) {
  const ids = { name: useId(), kind: useId(), region: useId() };
  const form = useRef<HTMLFormElement>(null);
  const enrol = useMutation({
    mutationFn: (body: { name: string; kind: Host["kind"]; region?: string }) => unwrap(api.POST("/org/{slug}/hosts", { params: { path: { slug: orgSlug } }, body })),
    onSuccess: async (res) => {
      form.current?.reset();
      await onEnrolled({ hostName: res.host.name, agent_command: res.agent_command, join_token_expires_at: res.join_token_expires_at });
    },
  });
  return (
    <>
      <form
        ref={form}
        className="stack-form"
        aria-label="Enrol a host"
        onSubmit={(e) => {
          e.preventDefault();
          const data = new FormData(e.currentTarget);
          const region = String(data.get("region") ?? "").trim();
          enrol.mutate({ name: String(data.get("name")).trim(), kind: String(data.get("kind")) as Host["kind"], ...(region ? { region } : {}) });
        }}
      >
        <h2 className="section-title">Enrol a host</h2>
        <div className="fields">
          <label htmlFor={ids.name}>Host name</label>
          <input id={ids.name} name="name" required maxLength={100} placeholder="e.g. build-box-1" autoComplete="off" />
          <label htmlFor={ids.kind}>Kind</label>
          <select id={ids.kind} name="kind" defaultValue="docker">
            <option value="docker">Docker</option>
            <option value="proxmox">Proxmox VE</option>
          </select>
          <label htmlFor={ids.region}>Region (optional)</label>
          <input id={ids.region} name="region" maxLength={64} placeholder="e.g. fra" autoComplete="off" />
        </div>
        <div>
          <button type="submit" className="primary" disabled={enrol.isPending}>
            {enrol.isPending ? "Enrolling…" : "Enrol host"}
          </button>
        </div>
      </form>
      <ErrorMessage error={enrol.error} />
    </>
  );
}

function AgentCommand({ token, onDone }: { token: JoinToken; onDone: () => void }) {
  return (
    <SecretPanel
      id="agent-command-heading"
      title={<>Start the agent on {token.hostName}</>}
      copy={{ label: `Agent command for ${token.hostName}`, value: token.agent_command }}
      doneLabel="Done"
      onDone={onDone}
    >
      <p>
        Run this on the host, in a checkout of Berth. <strong>The join token in it works once, until {formatDate(token.join_token_expires_at)}, and is shown only here.</strong> The host
        shows as online below as soon as its agent connects.
      </p>
    </SecretPanel>
  );
}

function HostRow(props: { orgSlug: string; host: Host; canManage: boolean; onChanged: (message: string) => Promise<void>; onJoinToken: (token: JoinToken) => void }) {
  const { host, orgSlug } = props;
  const [confirming, setConfirming] = useState(false);
  const params = { path: { slug: orgSlug, id: host.id } };
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE("/org/{slug}/hosts/{id}", { params })),
    onSuccess: async () => {
      setConfirming(false);
      await props.onChanged(`Deleted host ${host.name}.`);
    },
  });
  const newToken = useMutation({
    mutationFn: () => unwrap(api.POST("/org/{slug}/hosts/{id}/join-token", { params })),
    onSuccess: (res) => props.onJoinToken({ hostName: host.name, agent_command: res.agent_command, join_token_expires_at: res.join_token_expires_at }),
  });
  const waiting = !host.joined_at;
  return (
    <li className="card host">
      <div>
        <h3 className="card-title">{host.name}</h3>
        <p className="muted small">
          <span className="badge">{host.kind === "proxmox" ? "Proxmox VE" : "Docker"}</span>
          {host.region ? ` · ${host.region}` : ""} ·{" "}
          <span className={`status status-${waiting ? "waiting" : host.status}`}>{waiting ? "waiting for its agent" : host.status}</span>
          {!waiting ? ` · last seen ${formatDate(host.last_seen_at)}` : ""}
          {host.status === "online" ? (host.connected ? " · connected" : " · polling") : ""}
        </p>
        <Facts host={host} />
      </div>
      {props.canManage ? (
        <div className="actions">
          {waiting ? (
            <button type="button" onClick={() => newToken.mutate()} disabled={newToken.isPending} aria-label={`New agent command for ${host.name}`}>
              New agent command
            </button>
          ) : null}
          <button type="button" className="danger-outline" onClick={() => setConfirming(true)} aria-label={`Delete ${host.name}`}>
            Delete
          </button>
        </div>
      ) : null}
      <ErrorMessage error={newToken.error} />
      <ConfirmMutation open={confirming} onClose={() => setConfirming(false)} mutation={remove} title={`Delete ${host.name}?`} confirmLabel="Delete host">
        <p>Its agent's credential stops working at once and its unfinished jobs fail. To use the machine again, enrol it anew. This cannot be undone.</p>
      </ConfirmMutation>
    </li>
  );
}

/** What the host's agent reported about the machine. */
function Facts({ host }: { host: Host }) {
  const f = host.facts ?? {};
  const text = (v: unknown) => (typeof v === "string" || typeof v === "number" ? String(v) : null);
  const disk = formatBytes(f.disk_bytes);
  const rows: [string, string | null][] = [
    ["Hostname", text(f.hostname)],
    ["System", [text(f.os), text(f.arch)].filter(Boolean).join(" ") || null],
    ["CPUs", text(f.cpus)],
    ["Memory", formatBytes(f.memory_bytes)],
    ["Disk", disk ? `${formatBytes(f.disk_free_bytes) ?? "?"} free of ${disk}` : null],
    ["Docker", text(f.docker_version)],
    ["Proxmox VE", text(f.proxmox_version)],
    ["Agent", host.agent_version],
  ];
  const known = rows.filter((r): r is [string, string] => !!r[1]);
  if (known.length === 0) return null;
  return (
    <dl className="facts">
      {known.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}
