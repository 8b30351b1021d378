import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link } from "@tanstack/react-router";
import { useId, useRef, useState } from "react";
import { api, type SshConnected, type SshProfile, unwrap } from "../api/client";
import { can } from "../permissions";
import { sshProfilesQuery, useOrg } from "../queries";
import { ConfirmMutation } from "../ui/ConfirmMutation";
import { ErrorMessage } from "../ui/ErrorMessage";
import { formatDate } from "../ui/format";
import { CardList, Empty } from "../ui/ListState";
import { Page } from "../ui/Page";
import { usePageTitle } from "../ui/title";

type NewProfile = { name: string; host: string; port: number; username: string; password?: string; private_key?: string; passphrase?: string };

/**
 * Your own SSH profiles in this org (DevPocket): saved with a password or a private key,
 * which the API encrypts and never returns, so the page only ever says "set". Testing one
 * has an online host's agent connect and log in; the server's key is pinned the first time.
 */
export function SshProfiles({ orgSlug }: { orgSlug: string }) {
  usePageTitle("SSH profiles");
  const queryClient = useQueryClient();
  const { org, role, orgs } = useOrg(orgSlug);
  const allowed = can(role, "command:exec");
  const profiles = useQuery({ ...sshProfilesQuery(orgSlug), enabled: allowed });
  const [status, setStatus] = useState("");
  const refresh = async (message: string) => {
    setStatus(message);
    const { queryKey } = sshProfilesQuery(orgSlug);
    await queryClient.cancelQueries({ queryKey });
    await queryClient.invalidateQueries({ queryKey });
  };
  return (
    <Page id="ssh-heading" title="SSH profiles" subtitle={org ? `yours, in ${org.name}` : null} status={status}>
      <p className="muted">
        A profile is a server you reach over SSH. The SSH client runs on one of this organization's online hosts, so servers only that host can reach work too. Profiles are yours
        alone: nobody else in the organization sees them.
      </p>
      {orgs.isPending ? <p aria-busy="true">Loading…</p> : null}
      {orgs.data && !allowed ? <Empty>As a {role ?? "non-member"} here you cannot use SSH profiles. Owners, admins and developers can.</Empty> : null}
      {allowed ? (
        <>
          <ProfileForm orgSlug={orgSlug} onSaved={(p) => refresh(`Saved the profile ${p.name}. Test it to pin the server's key.`)} />
          <h2 className="section-title">Your profiles</h2>
          <CardList
            query={profiles}
            loading="Loading profiles…"
            label="SSH profiles"
            empty={
              <Empty title="No SSH profiles yet">
                Fill in a server's address, your username there and a password or private key above, and press Save profile. Then test it, and run commands on it.
              </Empty>
            }
          >
            {(p) => <ProfileRow key={p.id} orgSlug={orgSlug} profile={p} onChanged={refresh} />}
          </CardList>
        </>
      ) : null}
    </Page>
  );
}

function ProfileForm({ orgSlug, onSaved }: { orgSlug: string; onSaved: (p: SshProfile) => Promise<void> }) {
  const ids = { name: useId(), host: useId(), port: useId(), username: useId(), method: useId(), password: useId(), key: useId(), passphrase: useId(), help: useId() };
  const [method, setMethod] = useState<"password" | "key">("password");
  const form = useRef<HTMLFormElement>(null);
  const save = useMutation({
    mutationFn: (body: NewProfile) => unwrap(api.POST("/ssh/profiles", { body: { ...body, org: orgSlug } })),
    onSuccess: async (p) => {
      // The secret leaves the page with the form: it is never shown again.
      form.current?.reset();
      setMethod("password");
      await onSaved(p);
    },
  });
  return (
    <>
      <form
        ref={form}
        className="stack-form"
        aria-label="New SSH profile"
        onSubmit={(e) => {
          e.preventDefault();
          const data = new FormData(e.currentTarget);
          const text = (name: string) => String(data.get(name) ?? "");
          const passphrase = text("passphrase");
          save.mutate({
            name: text("name").trim(),
            host: text("host").trim(),
            port: Number(text("port")) || 22,
            username: text("username").trim(),
            ...(method === "password" ? { password: text("password") } : { private_key: text("private_key"), ...(passphrase ? { passphrase } : {}) }),
          });
        }}
      >
        <h2 className="section-title">New profile</h2>
        <div className="fields">
          <label htmlFor={ids.name}>Profile name</label>
          <input id={ids.name} name="name" required maxLength={100} placeholder="e.g. build box" autoComplete="off" />
          <label htmlFor={ids.host}>Server address</label>
          <input id={ids.host} name="host" required maxLength={255} placeholder="e.g. 10.0.0.5 or ssh.example.com" autoComplete="off" spellCheck={false} />
          <label htmlFor={ids.port}>Port</label>
          <input id={ids.port} name="port" type="number" min={1} max={65535} defaultValue={22} required />
          <label htmlFor={ids.username}>Username</label>
          <input id={ids.username} name="username" required maxLength={100} autoComplete="off" spellCheck={false} />
          <label htmlFor={ids.method}>Sign in with</label>
          <select id={ids.method} value={method} onChange={(e) => setMethod(e.target.value as "password" | "key")}>
            <option value="password">a password</option>
            <option value="key">a private key</option>
          </select>
          {method === "password" ? (
            <>
              <label htmlFor={ids.password}>Password</label>
              <input id={ids.password} name="password" type="password" required autoComplete="new-password" aria-describedby={ids.help} />
            </>
          ) : (
            <>
              <label htmlFor={ids.key}>Private key</label>
              <textarea
                id={ids.key}
                name="private_key"
                required
                rows={4}
                className="code"
                spellCheck={false}
                autoComplete="off"
                placeholder="-----BEGIN OPENSSH PRIVATE KEY-----"
                aria-describedby={ids.help}
              />
              <label htmlFor={ids.passphrase}>Key passphrase (if any)</label>
              <input id={ids.passphrase} name="passphrase" type="password" autoComplete="new-password" />
            </>
          )}
        </div>
        <p id={ids.help} className="muted small">
          Stored encrypted. Berth never shows it again, here or anywhere: the profile only says it is set.
        </p>
        <div>
          <button type="submit" className="primary" disabled={save.isPending}>
            {save.isPending ? "Saving…" : "Save profile"}
          </button>
        </div>
      </form>
      <ErrorMessage error={save.error} />
    </>
  );
}

/** A connection test's outcome in words, including what happened to the host key. */
function connectedWords(p: SshProfile, r: SshConnected): string {
  const took = r.duration_ms === null ? "" : ` in ${r.duration_ms} ms`;
  const key = r.host_key_pinned
    ? `The server's host key ${r.host_key_fingerprint} is now pinned: a different key will be refused.`
    : `The server's host key matches the pinned ${r.host_key_fingerprint}.`;
  return `Connected to ${p.host}:${p.port} as ${p.username} and signed in${took}. ${key}`;
}

function ProfileRow({ orgSlug, profile: p, onChanged }: { orgSlug: string; profile: SshProfile; onChanged: (message: string) => Promise<void> }) {
  const [confirming, setConfirming] = useState(false);
  const [unpinning, setUnpinning] = useState(false);
  const test = useMutation({
    mutationFn: () => unwrap(api.POST("/ssh/connect", { body: { profile_id: p.id } })),
    // The result is said in the card itself (below); the list is read again for the pinned key.
    onSuccess: async () => onChanged(""),
  });
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE("/ssh/profiles/{id}", { params: { path: { id: p.id } } })),
    onSuccess: async () => {
      setConfirming(false);
      await onChanged(`Deleted the profile ${p.name}.`);
    },
  });
  const unpin = useMutation({
    mutationFn: () => unwrap(api.PATCH("/ssh/profiles/{id}", { params: { path: { id: p.id } }, body: { reset_host_key: true } })),
    onSuccess: async () => {
      setUnpinning(false);
      test.reset();
      await onChanged(`Forgot the pinned host key of ${p.name}. The next test pins the key the server shows then.`);
    },
  });
  return (
    <li className="card">
      <div>
        <h3 className="card-title">{p.name}</h3>
        <p className="muted small">
          <code>
            {p.username}@{p.host}:{p.port}
          </code>
        </p>
        <dl className="facts">
          <div>
            <dt>Password</dt>
            <dd>{p.has_password ? "set" : "not set"}</dd>
          </div>
          <div>
            <dt>Private key</dt>
            <dd>{p.has_private_key ? "set" : "not set"}</dd>
          </div>
          <div>
            <dt>Host key</dt>
            <dd>{p.host_key_fingerprint ? <code>{p.host_key_fingerprint}</code> : "not pinned yet: pinned at the first successful test"}</dd>
          </div>
          <div>
            <dt>Last connected</dt>
            <dd>{formatDate(p.last_connected_at)}</dd>
          </div>
        </dl>
      </div>
      <div className="actions">
        <button type="button" onClick={() => test.mutate()} disabled={test.isPending} aria-label={`Test connection to ${p.name}`}>
          {test.isPending ? "Testing…" : "Test connection"}
        </button>
        <Link className="button" to="/orgs/$orgSlug/commands" params={{ orgSlug }} search={{ profile: p.id }} aria-label={`Run a command on ${p.name}`}>
          Run a command
        </Link>
        {p.host_key_fingerprint ? (
          <button type="button" onClick={() => setUnpinning(true)} aria-label={`Forget the pinned key of ${p.name}`}>
            Forget the pinned key
          </button>
        ) : null}
        <button type="button" className="danger-outline" onClick={() => setConfirming(true)} aria-label={`Delete ${p.name}`}>
          Delete
        </button>
      </div>
      {test.isSuccess ? (
        <p className="notice" role="status">
          {connectedWords(p, test.data)}
        </p>
      ) : null}
      <ErrorMessage error={test.error} />
      <ConfirmMutation open={unpinning} onClose={() => setUnpinning(false)} mutation={unpin} title={`Forget the host key of ${p.name}?`} confirmLabel="Forget the key">
        <p>
          Do this only when you know the server's key changed (it was reinstalled, say). The next test trusts and pins whatever key the server shows then, including one of
          someone in the middle.
        </p>
      </ConfirmMutation>
      <ConfirmMutation open={confirming} onClose={() => setConfirming(false)} mutation={remove} title={`Delete ${p.name}?`} confirmLabel="Delete profile">
        <p>Its password or key is deleted with it. Commands already run stay in your history.</p>
      </ConfirmMutation>
    </li>
  );
}
