import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link } from "@tanstack/react-router";
import { useId, useRef, useState } from "react";
import { type ApiKey, api, unwrap } from "../api/client";
import { can } from "../permissions";
import { orgKeysQuery, personalKeysQuery, useOrg } from "../queries";
import { ConfirmMutation } from "../ui/ConfirmMutation";
import { ErrorMessage } from "../ui/ErrorMessage";
import { formatDate } from "../ui/format";
import { Cards, Empty, QueryState } from "../ui/ListState";
import { Page, Status } from "../ui/Page";
import { SecretPanel } from "../ui/SecretPanel";
import { usePageTitle } from "../ui/title";

type Scope = ApiKey["scope"];
type NewKey = { name: string; scope: Scope; expiresInDays?: number };

/** What each scope reaches (src/auth/permissions.ts SCOPE_PERMISSIONS), in words. */
const SCOPES: { value: Scope; label: string }[] = [
  { value: "read-only", label: "read-only: reads projects, hosts, members and instances" },
  { value: "deploy", label: "deploy: read-only, plus deploying apps and running instances" },
  { value: "full", label: "full: everything its maker may do, except keys, members and hosts" },
];

/** The org's `pak_` keys (owner, admin). */
export function OrgApiKeys({ orgSlug }: { orgSlug: string }) {
  usePageTitle("API keys");
  const { org, role, orgs } = useOrg(orgSlug);
  const allowed = can(role, "apikey:read");
  const params = { path: { slug: orgSlug } };
  return (
    <Page id="keys-heading" title="API keys" subtitle={org ? `of ${org.name}` : null}>
      <p className="muted">
        Keys let scripts and CI call the API as this organization (<code>pak_…</code>), with the scope you choose and never more than you may do yourself. Keys for your own
        account, across all your organizations, are on <Link to="/account/api-keys">your personal keys</Link>.
      </p>
      {orgs.isPending ? <p aria-busy="true">Loading…</p> : null}
      {orgs.data && !allowed ? <Empty>Only owners and admins can see and manage this organization's API keys. You can make personal keys for your own account instead.</Empty> : null}
      {allowed ? (
        <KeyManager
          kind="organization key"
          list={orgKeysQuery(orgSlug)}
          create={(body) => unwrap(api.POST("/org/{slug}/api-keys", { params, body })).then((d) => d.key)}
          revoke={(id) => unwrap(api.DELETE("/org/{slug}/api-keys/{id}", { params: { path: { slug: orgSlug, id } } }))}
        />
      ) : null}
    </Page>
  );
}

/** The signed-in person's own `dkp_` keys. */
export function PersonalApiKeys() {
  usePageTitle("Personal API keys");
  return (
    <section aria-labelledby="keys-heading">
      <h1 id="keys-heading">Personal API keys</h1>
      <p className="muted">
        A personal key (<code>dkp_…</code>) acts as you, in every organization you belong to, limited by its scope. For a key that belongs to one organization, open its API keys page.
      </p>
      <KeyManager
        kind="personal key"
        list={personalKeysQuery}
        create={(body) => unwrap(api.POST("/api-keys", { body }))}
        revoke={(id) => unwrap(api.DELETE("/api-keys/{id}", { params: { path: { id } } }))}
      />
    </section>
  );
}

function KeyManager(props: {
  kind: string;
  list: ReturnType<typeof orgKeysQuery> | typeof personalKeysQuery;
  create: (input: NewKey) => Promise<ApiKey>;
  revoke: (id: string) => Promise<unknown>;
}) {
  const queryClient = useQueryClient();
  const keys = useQuery(props.list);
  const [status, setStatus] = useState("");
  const [created, setCreated] = useState<ApiKey | null>(null);
  const form = useRef<HTMLFormElement>(null);
  const ids = { name: useId(), scope: useId(), expiry: useId() };
  const refresh = async (message: string) => {
    setStatus(message);
    await queryClient.cancelQueries({ queryKey: props.list.queryKey });
    await queryClient.invalidateQueries({ queryKey: props.list.queryKey });
  };
  const create = useMutation({
    mutationFn: props.create,
    onSuccess: async (key) => {
      form.current?.reset();
      setCreated(key);
      await refresh(`Created the ${props.kind} ${key.name}. Copy its secret now.`);
    },
  });

  return (
    <>
      <Status>{status}</Status>
      <form
        ref={form}
        className="stack-form"
        aria-label={`Create a ${props.kind}`}
        onSubmit={(e) => {
          e.preventDefault();
          const data = new FormData(e.currentTarget);
          const days = Number(data.get("expiry"));
          setCreated(null);
          create.mutate({ name: String(data.get("name")).trim(), scope: String(data.get("scope")) as Scope, ...(days > 0 ? { expiresInDays: days } : {}) });
        }}
      >
        <h2 className="section-title">New key</h2>
        <div className="fields">
          <label htmlFor={ids.name}>Key name</label>
          <input id={ids.name} name="name" required maxLength={64} placeholder="e.g. GitHub Actions" autoComplete="off" />
          <label htmlFor={ids.scope}>Scope</label>
          <select id={ids.scope} name="scope" defaultValue="read-only">
            {SCOPES.map((s) => (
              <option key={s.value} value={s.value}>
                {s.label}
              </option>
            ))}
          </select>
          <label htmlFor={ids.expiry}>Expires</label>
          <select id={ids.expiry} name="expiry" defaultValue="90">
            <option value="30">in 30 days</option>
            <option value="90">in 90 days</option>
            <option value="365">in a year</option>
            <option value="0">never</option>
          </select>
        </div>
        <div>
          <button type="submit" className="primary" disabled={create.isPending}>
            {create.isPending ? "Creating…" : "Create key"}
          </button>
        </div>
      </form>
      <ErrorMessage error={create.error} />
      {created?.key ? <NewSecret apiKey={created} onDone={() => setCreated(null)} /> : null}

      <QueryState query={keys} loading="Loading keys…" />
      <h2 className="section-title">Keys in use</h2>
      {keys.data ? (
        <Cards label="API keys" items={keys.data} empty={<Empty>No keys yet. Name one above, pick the narrowest scope that does the job, and press Create key. Its secret is shown once, right after.</Empty>}>
          {(k) => <KeyRow key={k.id} apiKey={k} revoke={props.revoke} onRevoked={refresh} />}
        </Cards>
      ) : null}
    </>
  );
}

/** The secret, once: Berth keeps only its hash, so this is the only time anyone sees it. */
function NewSecret({ apiKey, onDone }: { apiKey: ApiKey; onDone: () => void }) {
  return (
    <SecretPanel
      id="new-secret-heading"
      title={<>Secret of {apiKey.name}</>}
      copy={{
        label: `Secret of the key ${apiKey.name}`,
        value: apiKey.key ?? "",
        hint: (
          <p className="muted small">
            Send it as <code>Authorization: Bearer …</code>.
          </p>
        ),
      }}
      doneLabel="I have copied it"
      onDone={onDone}
    >
      <p>
        <strong>Copy it now: you will not see this again.</strong> Berth keeps only a hash of it. If you lose it, revoke the key and make a new one.
      </p>
    </SecretPanel>
  );
}

function KeyRow({ apiKey, revoke, onRevoked }: { apiKey: ApiKey; revoke: (id: string) => Promise<unknown>; onRevoked: (message: string) => Promise<void> }) {
  const [confirming, setConfirming] = useState(false);
  const remove = useMutation({
    mutationFn: () => revoke(apiKey.id),
    onSuccess: async () => {
      setConfirming(false);
      await onRevoked(`Revoked the key ${apiKey.name}; it stopped working.`);
    },
  });
  return (
    <li className="card">
      <div>
        <h3 className="card-title">{apiKey.name}</h3>
        <p className="muted small">
          <code>{apiKey.key_prefix}…</code> · <span className="badge">{apiKey.scope}</span> · made {formatDate(apiKey.createdAt)} · last used {formatDate(apiKey.lastUsedAt)} ·{" "}
          {apiKey.expiresAt ? `expires ${formatDate(apiKey.expiresAt)}` : "does not expire"}
        </p>
      </div>
      <div className="actions">
        <button type="button" className="danger-outline" onClick={() => setConfirming(true)} aria-label={`Revoke ${apiKey.name}`}>
          Revoke
        </button>
      </div>
      <ConfirmMutation open={confirming} onClose={() => setConfirming(false)} mutation={remove} title={`Revoke ${apiKey.name}?`} confirmLabel="Revoke key">
        <p>Anything still using this key is refused from now on. This cannot be undone.</p>
      </ConfirmMutation>
    </li>
  );
}
