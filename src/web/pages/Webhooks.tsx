import { queryOptions, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useRef, useState } from "react";
import { api, unwrap } from "../api/client";
import type { components } from "../api/openapi.gen";
import { can } from "../permissions";
import { useOrg } from "../queries";
import { ConfirmMutation } from "../ui/ConfirmMutation";
import { ErrorMessage } from "../ui/ErrorMessage";
import { formatDate } from "../ui/format";
import { Cards, Empty, QueryState } from "../ui/ListState";
import { Page, Status } from "../ui/Page";
import { SecretPanel } from "../ui/SecretPanel";
import { usePageTitle } from "../ui/title";

type Webhook = components["schemas"]["Webhook"];
type Delivery = components["schemas"]["WebhookDelivery"];

/** The events Berth sends (src/services/webhooks.ts WEBHOOK_EVENTS), in words. */
const EVENTS: { value: string; label: string }[] = [
  { value: "deployment.failed", label: "A deploy failed" },
  { value: "deployment.succeeded", label: "A deploy succeeded" },
  { value: "instance.failed", label: "An instance job failed (create, power, resize, rebuild, delete)" },
  { value: "instance.succeeded", label: "An instance job succeeded" },
];

const webhooksQuery = (orgSlug: string) =>
  queryOptions({
    queryKey: ["orgs", orgSlug, "webhooks"],
    queryFn: ({ signal }) => unwrap(api.GET("/org/{slug}/webhooks", { params: { path: { slug: orgSlug } }, signal })).then((d) => d.webhooks),
  });

const deliveriesQuery = (orgSlug: string) =>
  queryOptions({
    queryKey: ["orgs", orgSlug, "webhook-deliveries"],
    queryFn: ({ signal }) => unwrap(api.GET("/org/{slug}/webhook-deliveries", { params: { path: { slug: orgSlug }, query: { limit: 50 } }, signal })).then((d) => d.deliveries),
  });

/** An org's outbound webhooks and their delivery log (owner, admin). */
export function Webhooks({ orgSlug }: { orgSlug: string }) {
  usePageTitle("Webhooks");
  const { org, role, orgs } = useOrg(orgSlug);
  const allowed = can(role, "webhook:manage");
  return (
    <Page id="webhooks-heading" title="Webhooks" subtitle={org ? `of ${org.name}` : null}>
      <p className="muted">
        Berth posts a signed JSON message to each webhook when something it subscribes to happens, such as a failed deploy. Check the{" "}
        <code>X-Berth-Signature-256</code> header (an HMAC-SHA256 of the body with the webhook's secret) before trusting a message.
      </p>
      {orgs.isPending ? <p aria-busy="true">Loading…</p> : null}
      {orgs.data && !allowed ? <Empty>Only owners and admins can see and manage this organization's webhooks.</Empty> : null}
      {allowed ? <WebhookManager orgSlug={orgSlug} /> : null}
    </Page>
  );
}

function WebhookManager({ orgSlug }: { orgSlug: string }) {
  const queryClient = useQueryClient();
  const hooks = useQuery(webhooksQuery(orgSlug));
  // While a delivery is still being tried, look again every few seconds.
  const deliveries = useQuery({ ...deliveriesQuery(orgSlug), refetchInterval: (q) => (q.state.data?.some((d) => d.status === "pending") ? 2_000 : false) });
  const [status, setStatus] = useState("");
  const [created, setCreated] = useState<Webhook | null>(null);
  const [all, setAll] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  const ids = { url: useId(), events: useId() };
  const params = { path: { slug: orgSlug } };
  const refresh = async (message: string) => {
    setStatus(message);
    await queryClient.invalidateQueries({ queryKey: ["orgs", orgSlug, "webhooks"] });
    await queryClient.invalidateQueries({ queryKey: ["orgs", orgSlug, "webhook-deliveries"] });
  };
  const create = useMutation({
    mutationFn: (body: { url: string; events: string[] }) => unwrap(api.POST("/org/{slug}/webhooks", { params, body })).then((d) => d.webhook),
    onSuccess: async (hook) => {
      form.current?.reset();
      setAll(false);
      setCreated(hook);
      await refresh(`Added the webhook to ${hook.url}. Copy its secret now.`);
    },
  });

  return (
    <>
      <Status>{status}</Status>
      <form
        ref={form}
        className="stack-form"
        aria-label="Add a webhook"
        onSubmit={(e) => {
          e.preventDefault();
          const data = new FormData(e.currentTarget);
          const events = all ? ["*"] : data.getAll("events").map(String);
          setCreated(null);
          create.mutate({ url: String(data.get("url")).trim(), events });
        }}
      >
        <h2 className="section-title">New webhook</h2>
        <div className="fields">
          <label htmlFor={ids.url}>Payload URL</label>
          <input id={ids.url} name="url" type="url" required maxLength={2048} placeholder="https://hooks.example.com/berth" autoComplete="off" />
        </div>
        <fieldset className="checks" aria-describedby={ids.events}>
          <legend>Send me</legend>
          <p id={ids.events} className="muted small">
            Pick at least one event, or everything.
          </p>
          <label>
            <input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} /> Everything, including events added later
          </label>
          {EVENTS.map((ev) => (
            <label key={ev.value}>
              <input type="checkbox" name="events" value={ev.value} disabled={all} defaultChecked={ev.value === "deployment.failed"} /> {ev.label} <code>{ev.value}</code>
            </label>
          ))}
        </fieldset>
        <div>
          <button type="submit" className="primary" disabled={create.isPending}>
            {create.isPending ? "Adding…" : "Add webhook"}
          </button>
        </div>
      </form>
      <ErrorMessage error={create.error} />
      {created?.secret ? (
        <SecretPanel
          id="webhook-secret-heading"
          title="The new webhook's signing secret"
          copy={{ label: `Signing secret of the webhook to ${created.url}`, value: created.secret }}
          doneLabel="I have copied it"
          onDone={() => setCreated(null)}
        >
          <p>
            <strong>Copy it now: you will not see this again.</strong> Your receiver needs it to check each message's signature. If you lose it, delete the webhook and add it again.
          </p>
        </SecretPanel>
      ) : null}

      <QueryState query={hooks} loading="Loading webhooks…" />
      <h2 className="section-title">Webhooks</h2>
      {hooks.data ? (
        <Cards label="Webhooks" items={hooks.data} empty={<Empty>No webhooks yet. Add your receiver's URL above to hear about failed deploys where your team already looks.</Empty>}>
          {(h) => <WebhookRow key={h.id} orgSlug={orgSlug} hook={h} onChange={refresh} />}
        </Cards>
      ) : null}

      <h2 className="section-title">Recent deliveries</h2>
      <QueryState query={deliveries} loading="Loading deliveries…" />
      {deliveries.data ? <DeliveryTable deliveries={deliveries.data} hooks={hooks.data ?? []} /> : null}
    </>
  );
}

function WebhookRow({ orgSlug, hook, onChange }: { orgSlug: string; hook: Webhook; onChange: (message: string) => Promise<void> }) {
  const [confirming, setConfirming] = useState(false);
  const params = { path: { slug: orgSlug, id: hook.id } };
  const test = useMutation({
    mutationFn: () => unwrap(api.POST("/org/{slug}/webhooks/{id}/test", { params })),
    onSuccess: () => onChange(`Sent a test message to ${hook.url}; its delivery is below.`),
  });
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE("/org/{slug}/webhooks/{id}", { params })),
    onSuccess: async () => {
      setConfirming(false);
      await onChange(`Deleted the webhook to ${hook.url}.`);
    },
  });
  return (
    <li className="card">
      <div>
        <h3 className="card-title">
          <code>{hook.url}</code>
        </h3>
        <p className="muted small">
          {hook.events.map((e) => (
            <span key={e} className="badge">
              {e === "*" ? "everything" : e}
            </span>
          ))}{" "}
          · added {formatDate(hook.createdAt)}
        </p>
        <ErrorMessage error={test.error} />
      </div>
      <div className="actions">
        <button type="button" onClick={() => test.mutate()} disabled={test.isPending} aria-label={`Send test to ${hook.url}`}>
          Send test
        </button>
        <button type="button" className="danger-outline" onClick={() => setConfirming(true)} aria-label={`Delete the webhook to ${hook.url}`}>
          Delete
        </button>
      </div>
      <ConfirmMutation open={confirming} onClose={() => setConfirming(false)} mutation={remove} title="Delete this webhook?" confirmLabel="Delete webhook">
        <p>
          Berth stops sending to <code>{hook.url}</code>, and messages still being tried are dropped.
        </p>
      </ConfirmMutation>
    </li>
  );
}

const STATUS_WORDS: Record<Delivery["status"], string> = { pending: "being tried", succeeded: "delivered", failed: "gave up" };

function DeliveryTable({ deliveries, hooks }: { deliveries: Delivery[]; hooks: Webhook[] }) {
  if (!deliveries.length) return <Empty>Nothing sent yet. Press Send test on a webhook to see a delivery here.</Empty>;
  const urlOf = (id: string) => hooks.find((h) => h.id === id)?.url ?? "a deleted webhook";
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a region that scrolls sideways on a phone must be reachable by keyboard
    <section className="table-wrap" aria-label="Delivery log" tabIndex={0}>
      <table aria-label="Recent deliveries">
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Event</th>
            <th scope="col">To</th>
            <th scope="col">Result</th>
            <th scope="col">Tries</th>
          </tr>
        </thead>
        <tbody>
          {deliveries.map((d) => (
            <tr key={d.id}>
              <td>{formatDate(d.createdAt)}</td>
              <td>
                <code>{d.event}</code>
              </td>
              <td>
                <code className="small">{urlOf(d.webhookId)}</code>
              </td>
              <td>
                <span className={`badge status-delivery-${d.status}`}>{STATUS_WORDS[d.status]}</span>
                {d.responseStatus ? <span className="muted small"> HTTP {d.responseStatus}</span> : null}
                {d.error ? <div className="muted small">{d.error}</div> : null}
              </td>
              <td>{d.attempts}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
