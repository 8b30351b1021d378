import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link } from "@tanstack/react-router";
import { useId, useRef, useState } from "react";
import { api, type Image, type Instance, type Plan, unwrap } from "../api/client";
import { can } from "../permissions";
import { useProjectEvents } from "../live";
import { imagesQuery, instancesQuery, plansQuery, projectsQuery, useOrg } from "../queries";
import { ConfirmMutation } from "../ui/ConfirmMutation";
import { ErrorMessage } from "../ui/ErrorMessage";
import { CardList, Empty } from "../ui/ListState";
import { LiveBadge } from "../ui/LiveBadge";
import { Page } from "../ui/Page";
import { SecretPanel } from "../ui/SecretPanel";
import { usePageTitle } from "../ui/title";

/**
 * The project's event socket (live.ts) refreshes the list on every job event. Without it
 * (while it reconnects) the list is asked again often while a job works, otherwise now and then.
 */
const BUSY_POLL_MS = 2_000;
const SETTLED_POLL_MS = 15_000;
const LIVE_POLL_MS = 60_000;
const AT_REST = new Set(["running", "stopped", "error"]);

/** A password the API showed once: kept on the page until the person says it is saved. */
type Secret = { instanceId: string; name: string; password: string; acknowledge: boolean };

const planLabel = (p: Plan) => `${p.name} — ${p.vcpu} vCPU, ${p.memoryMb / 1024} GB memory, ${p.diskGb} GB disk`;

export function Instances({ orgSlug, projectId }: { orgSlug: string; projectId: string }) {
  const queryClient = useQueryClient();
  const { role } = useOrg(orgSlug);
  const project = useQuery(projectsQuery(orgSlug)).data?.find((p) => p.id === projectId);
  usePageTitle(project ? `Instances of ${project.name}` : "Instances");
  const canCreate = can(role, "instance:create");
  const canManage = can(role, "instance:manage");
  const live = useProjectEvents(projectId);
  const instances = useQuery({
    ...instancesQuery(projectId),
    refetchInterval: (query) =>
      live === "live" ? LIVE_POLL_MS : query.state.data?.some((i) => i.job_uid || !AT_REST.has(i.status)) ? BUSY_POLL_MS : SETTLED_POLL_MS,
  });
  const plans = useQuery(plansQuery);
  const [status, setStatus] = useState("");
  const [secret, setSecret] = useState<Secret | null>(null);
  const refresh = async (message: string) => {
    setStatus(message);
    await queryClient.invalidateQueries({ queryKey: instancesQuery(projectId).queryKey });
  };

  return (
    <Page
      id="instances-heading"
      title="Instances"
      subtitle={
        <>
          of {project?.name ?? "this project"} · <Link to="/orgs/$orgSlug/projects" params={{ orgSlug }}>all projects</Link>{" "}
          <LiveBadge state={live} what="Live updates" />
        </>
      }
      status={status}
    >
      {canCreate ? (
        <OrderForm
          projectId={projectId}
          plans={plans.data ?? []}
          onOrdered={async (created) => {
            if (created.root_password) setSecret({ instanceId: created.uid, name: created.name, password: created.root_password, acknowledge: true });
            await refresh(`Ordered ${created.name}. It is being created on a Proxmox node.`);
          }}
        />
      ) : role ? (
        <p className="muted">You are a {role} here: you can see the instances; owners, admins and developers order and manage them.</p>
      ) : null}
      {secret ? <PasswordPanel projectId={projectId} secret={secret} onDone={() => setSecret(null)} /> : null}

      <CardList
        query={instances}
        loading="Loading instances…"
        label="Instances"
        empty={
          <Empty title="No instances yet">
            {canCreate
              ? "An instance is a VM on one of your organization's Proxmox VE nodes. Pick a plan and an image above and press Order instance. No node yet? Enrol one on the Hosts page."
              : "An owner, admin or developer of this organization can order one."}
          </Empty>
        }
      >
        {(i) => <InstanceRow key={i.uid} projectId={projectId} instance={i} plans={plans.data ?? []} canManage={canManage} onChanged={refresh} onSecret={setSecret} />}
      </CardList>
    </Page>
  );
}

function OrderForm({ projectId, plans, onOrdered }: { projectId: string; plans: Plan[]; onOrdered: (created: Instance & { root_password?: string | null }) => Promise<void> }) {
  const ids = { name: useId(), plan: useId(), image: useId(), keys: useId() };
  const form = useRef<HTMLFormElement>(null);
  const images = useQuery(imagesQuery);
  const order = useMutation({
    mutationFn: (body: { name: string; plan: string; source: { image: string }; ssh_keys: string[]; networks: string[]; backup_tier: "none" }) =>
      unwrap(api.POST("/projects/{project}/instances", { params: { path: { project: projectId } }, body })),
    onSuccess: async (res) => {
      form.current?.reset();
      await onOrdered(res.instance);
    },
  });
  return (
    <>
      <form
        ref={form}
        className="stack-form"
        aria-label="Order an instance"
        onSubmit={(e) => {
          e.preventDefault();
          const data = new FormData(e.currentTarget);
          const keys = String(data.get("ssh_keys") ?? "").split("\n").map((k) => k.trim()).filter(Boolean);
          order.mutate({ name: String(data.get("name")).trim(), plan: String(data.get("plan")), source: { image: String(data.get("image")) }, ssh_keys: keys, networks: [], backup_tier: "none" });
        }}
      >
        <h2 className="section-title">Order an instance</h2>
        <div className="fields">
          <label htmlFor={ids.name}>Hostname</label>
          <input id={ids.name} name="name" required maxLength={63} pattern="[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?" placeholder="e.g. web-01" autoComplete="off" aria-describedby={`${ids.name}-hint`} />
          <p id={`${ids.name}-hint`} className="muted small">
            Lowercase letters, digits and hyphens.
          </p>
          <label htmlFor={ids.plan}>Plan</label>
          <select id={ids.plan} name="plan" required>
            {plans.map((p) => (
              <option key={p.code} value={p.code}>
                {planLabel(p)}
              </option>
            ))}
          </select>
          <label htmlFor={ids.image}>Image</label>
          <select id={ids.image} name="image" required>
            {(images.data ?? []).map((img: Image) => (
              <option key={img.uid} value={img.uid}>
                {img.displayName}
              </option>
            ))}
          </select>
          <label htmlFor={ids.keys}>SSH public keys (optional, one per line)</label>
          <textarea id={ids.keys} name="ssh_keys" rows={2} placeholder="ssh-ed25519 AAAA… you@laptop" />
        </div>
        <div>
          <button type="submit" className="primary" disabled={order.isPending || !plans.length}>
            {order.isPending ? "Ordering…" : "Order instance"}
          </button>
        </div>
      </form>
      <ErrorMessage error={order.error ?? images.error} />
    </>
  );
}

function PasswordPanel({ projectId, secret, onDone }: { projectId: string; secret: Secret; onDone: () => void }) {
  const acknowledge = useMutation({
    mutationFn: () => unwrap(api.POST("/projects/{project}/instances/{instance}/password/acknowledge", { params: { path: { project: projectId, instance: secret.instanceId } } })),
    onSuccess: onDone,
  });
  return (
    <SecretPanel
      id="root-password-heading"
      title={<>Root password of {secret.name}</>}
      copy={{ label: `Root password of ${secret.name}`, value: secret.password }}
      doneLabel="I have saved it"
      onDone={() => (secret.acknowledge ? acknowledge.mutate() : onDone())}
      primary
      busy={acknowledge.isPending}
      error={<ErrorMessage error={acknowledge.error} />}
    >
      <p>
        <strong>Copy it now: once you say it is saved, Berth forgets it and you will not see it again.</strong>
      </p>
    </SecretPanel>
  );
}

type Dialog = null | "delete" | "rebuild";

function InstanceRow(props: { projectId: string; instance: Instance; plans: Plan[]; canManage: boolean; onChanged: (message: string) => Promise<void>; onSecret: (s: Secret) => void }) {
  const { instance: i, projectId } = props;
  const [dialog, setDialog] = useState<Dialog>(null);
  const resizeId = useId();
  const path = { project: projectId, instance: i.uid };
  const done = (message: string) => async () => {
    setDialog(null);
    await props.onChanged(message);
  };
  const power = useMutation({
    mutationFn: (type: "start" | "stop" | "shutdown" | "reboot" | "reset") => unwrap(api.POST("/projects/{project}/instances/{instance}/actions", { params: { path }, body: { type } })),
    onSuccess: (_res, type) => props.onChanged(`${i.name}: ${type} requested.`),
  });
  const resize = useMutation({
    mutationFn: (plan: string) => unwrap(api.POST("/projects/{project}/instances/{instance}/resize", { params: { path }, body: { plan } })),
    onSuccess: (_res, plan) => props.onChanged(`${i.name}: resize to ${plan} requested.`),
  });
  const rebuild = useMutation({
    mutationFn: async () => {
      await unwrap(api.POST("/projects/{project}/instances/{instance}/rebuild", { params: { path }, body: { source: { image: i.image_id ?? "" }, backup: false } }));
      // The rebuild's new root password is on the instance until acknowledged.
      return unwrap(api.GET("/projects/{project}/instances/{instance}", { params: { path } }));
    },
    onSuccess: async (res) => {
      if (res.instance.root_password) props.onSecret({ instanceId: i.uid, name: i.name, password: res.instance.root_password, acknowledge: true });
      await done(`${i.name}: rebuild requested.`)();
    },
  });
  const password = useMutation({
    mutationFn: () => unwrap(api.POST("/projects/{project}/instances/{instance}/password", { params: { path }, body: {} })),
    onSuccess: (res) => props.onSecret({ instanceId: i.uid, name: i.name, password: res.password, acknowledge: false }),
  });
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE("/projects/{project}/instances/{instance}", { params: { path } })),
    onSuccess: done(`${i.name}: deletion requested.`),
  });
  const busy = !!i.job_uid || !AT_REST.has(i.status);
  const bigger = props.plans.filter((p) => p.code !== i.plan_code && p.diskGb >= (props.plans.find((c) => c.code === i.plan_code)?.diskGb ?? 0));
  return (
    <li className="card instance">
      <div>
        <h3 className="card-title">{i.name}</h3>
        <p className="muted small">
          <span className={`status status-${i.status}`}>{i.status}</span>
          {i.primary_ip ? ` · ${i.primary_ip}` : ""} · {i.plan_code} · {i.image_name ?? "no image"}
          {i.node ? ` · on ${i.node}${i.vmid ? ` (VM ${i.vmid})` : ""}` : ""}
        </p>
        {i.job_uid ? (
          <p className="small" aria-live="polite">
            {i.job_type}: {i.progress_message ?? "waiting for the node"}
            {i.progress_percent !== null ? ` (${i.progress_percent}%)` : ""}
          </p>
        ) : null}
        {i.status === "error" && i.error_message ? <p className="error small">{i.error_message}</p> : null}
      </div>
      {props.canManage ? (
        <div className="actions">
          {i.status === "stopped" ? (
            <button type="button" disabled={busy || power.isPending} onClick={() => power.mutate("start")} aria-label={`Start ${i.name}`}>
              Start
            </button>
          ) : null}
          {i.status === "running"
            ? (["shutdown", "reboot", "stop", "reset"] as const).map((a) => (
                <button key={a} type="button" disabled={busy || power.isPending} onClick={() => power.mutate(a)} aria-label={`${a[0]?.toUpperCase()}${a.slice(1)} ${i.name}`}>
                  {a[0]?.toUpperCase()}
                  {a.slice(1)}
                </button>
              ))
            : null}
          {i.status === "running" || i.status === "stopped" ? (
            <>
              <label className="sr-only" htmlFor={resizeId}>
                New plan for {i.name}
              </label>
              <select id={resizeId} defaultValue="" disabled={busy || resize.isPending || !bigger.length} onChange={(e) => e.target.value && resize.mutate(e.target.value)}>
                <option value="">Resize…</option>
                {bigger.map((p) => (
                  <option key={p.code} value={p.code}>
                    {planLabel(p)}
                  </option>
                ))}
              </select>
              <button type="button" disabled={busy || password.isPending} onClick={() => password.mutate()} aria-label={`New password for ${i.name}`}>
                New password
              </button>
              <button type="button" disabled={busy} onClick={() => setDialog("rebuild")} aria-label={`Rebuild ${i.name}`}>
                Rebuild
              </button>
            </>
          ) : null}
          <button type="button" className="danger-outline" disabled={i.status === "deleting"} onClick={() => setDialog("delete")} aria-label={`Delete ${i.name}`}>
            Delete
          </button>
        </div>
      ) : null}
      <ErrorMessage error={power.error ?? resize.error ?? password.error} />
      <ConfirmMutation open={dialog === "rebuild"} onClose={() => setDialog(null)} mutation={rebuild} title={`Rebuild ${i.name}?`} confirmLabel="Wipe and rebuild">
        <p>
          Its disk is wiped and {i.image_name ?? "its image"} installed again, keeping its address. <strong>Everything on it is lost</strong>: Berth takes no backup first.
        </p>
      </ConfirmMutation>
      <ConfirmMutation open={dialog === "delete"} onClose={() => setDialog(null)} mutation={remove} title={`Delete ${i.name}?`} confirmLabel="Delete instance">
        <p>The VM and its disks are destroyed on its node. This cannot be undone.</p>
      </ConfirmMutation>
    </li>
  );
}
