/**
 * An app's volumes and its replicas, autoscale and sleep on idle (README: Apps, "Replicas and
 * autoscale", "Sleep on idle"). Both change what the next deploy runs (volumes) or what the
 * control plane does (autoscale); a viewer sees the values and no controls. Validation errors
 * from the API are shown beside the field they are about.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useState } from "react";
import { type App, api, unwrap } from "../api/client";
import { ApiError } from "../api/errors";
import type { components } from "../api/openapi.gen";
import { ErrorMessage } from "../ui/ErrorMessage";
import { formatBytes, formatDate } from "../ui/format";
import { QueryState } from "../ui/ListState";
import { ConfirmMutation } from "../ui/ConfirmMutation";

type Volume = components["schemas"]["Volume"];
type Autoscale = components["schemas"]["Autoscale"];
type AutoscaleInput = components["schemas"]["AutoscaleInput"];

/** The API's `details.issues` by field (`min_replicas` → "must not exceed max_replicas"). */
export function fieldIssues(error: unknown): Record<string, string> {
  if (!(error instanceof ApiError) || error.code !== "invalid_request") return {};
  const issues = (error.details as { issues?: Array<{ path?: string; message?: string }> } | undefined)?.issues ?? [];
  const out: Record<string, string> = {};
  for (const i of issues) if (i.path && i.message && !out[i.path]) out[i.path] = i.message;
  return out;
}

/** An input's error, tied to it by aria-describedby; nothing when there is none. */
function FieldError({ id, message }: { id: string; message?: string }) {
  return message ? (
    <p id={id} className="field-error error small">
      {message}
    </p>
  ) : null;
}

/** Props that tie an input to its hint and, when there is one, its error. */
const described = (hintId: string | null, errorId: string, message?: string) => ({
  "aria-invalid": message ? true : undefined,
  "aria-describedby": [hintId, message ? errorId : null].filter(Boolean).join(" ") || undefined,
});

const volumesQuery = (projectId: string, appId: string) => ({
  queryKey: ["projects", projectId, "apps", appId, "volumes"],
  queryFn: ({ signal }: { signal: AbortSignal }) => unwrap(api.GET("/apps/{appId}/volumes", { params: { path: { appId } }, signal })),
});

const autoscaleQuery = (projectId: string, appId: string) => ({
  queryKey: ["projects", projectId, "apps", appId, "autoscale"],
  queryFn: ({ signal }: { signal: AbortSignal }) => unwrap(api.GET("/apps/{appId}/autoscale", { params: { path: { appId } }, signal })),
});

export function Volumes({ projectId, app, canEdit, onSaved }: { projectId: string; app: App; canEdit: boolean; onSaved: (message: string) => void }) {
  const ids = { path: useId(), size: useId(), pathHint: useId(), sizeHint: useId(), pathError: useId(), sizeError: useId() };
  const queryClient = useQueryClient();
  // Used bytes are measured by the host every 30 s.
  const volumes = useQuery({ ...volumesQuery(projectId, app.id), refetchInterval: 30_000 });
  const [detaching, setDetaching] = useState<Volume | null>(null);
  const [attaches, setAttaches] = useState(0);
  const refresh = () => queryClient.invalidateQueries({ queryKey: volumesQuery(projectId, app.id).queryKey });

  const attach = useMutation({
    mutationFn: (body: { mount_path: string; size_mb: number }) => unwrap(api.POST("/apps/{appId}/volumes", { params: { path: { appId: app.id } }, body })),
    onSuccess: async (v) => {
      setAttaches((n) => n + 1);
      onSaved(`Volume attached at ${v.mount_path}. Redeploy ${app.name} to mount it.`);
      await refresh();
    },
  });
  const detach = useMutation({
    mutationFn: () => unwrap(api.DELETE("/apps/{appId}/volumes", { params: { path: { appId: app.id }, query: { mount_path: detaching?.mount_path ?? "" } } })),
    onSuccess: async (res) => {
      setDetaching(null);
      onSaved(`Volume at ${res.volume.mount_path} detached; its data is kept on the host. Redeploy ${app.name} to unmount it.`);
      await refresh();
    },
  });
  const issues = fieldIssues(attach.error);
  const otherError = attach.error && !issues.mount_path && !issues.size_mb ? attach.error : null;

  return (
    <section aria-labelledby="volumes-heading">
      <h2 id="volumes-heading" className="section-title">
        Volumes
      </h2>
      <p className="muted small">Data in a volume survives deploys and restarts. Attaching or detaching one takes effect at the next deploy: redeploy to mount or unmount it.</p>
      <QueryState query={volumes} loading="Loading volumes…" />
      {volumes.data && !volumes.data.length ? <p className="muted">No volumes: the app keeps nothing across deploys.</p> : null}
      {volumes.data?.length ? (
        // biome-ignore lint/a11y/noNoninteractiveTabindex: a region that scrolls sideways on a phone must be reachable by keyboard
        <section className="table-wrap" aria-label="Attached volumes" tabIndex={0}>
          <table>
            <thead>
              <tr>
                <th scope="col">Mount path</th>
                <th scope="col">Name</th>
                <th scope="col">Requested</th>
                <th scope="col">Used</th>
                {canEdit ? (
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                ) : null}
              </tr>
            </thead>
            <tbody>
              {volumes.data.map((v) => (
                <tr key={v.name}>
                  <td className="small">
                    <code>{v.mount_path}</code>
                  </td>
                  <td className="small">
                    <code>{v.name}</code>
                  </td>
                  <td className="small">{v.size_mb} MB</td>
                  <td className="small">{v.used_bytes === null ? <span className="muted">not measured yet (mounted by the next deploy)</span> : `${formatBytes(v.used_bytes)} at ${formatDate(v.measured_at)}`}</td>
                  {canEdit ? (
                    <td className="small">
                      <button type="button" className="danger-outline" aria-label={`Detach the volume at ${v.mount_path}`} onClick={() => setDetaching(v)}>
                        Detach
                      </button>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ) : null}
      {volumes.data?.length ? <p className="muted small">The requested size is informational: Docker's local volume driver cannot cap a volume, so it can hold what the host's disk can.</p> : null}
      {canEdit ? (
        <>
          <form
            key={attaches}
            className="stack-form"
            aria-label="Attach a volume"
            noValidate
            onSubmit={(e) => {
              e.preventDefault();
              const data = new FormData(e.currentTarget);
              const size = String(data.get("size_mb") ?? "").trim();
              attach.mutate({ mount_path: String(data.get("mount_path") ?? "").trim(), size_mb: size === "" ? 1024 : Number(size) });
            }}
          >
            <h3 className="section-title">Attach a volume</h3>
            <div className="fields">
              <label htmlFor={ids.path}>Mount path</label>
              <div>
                <input id={ids.path} name="mount_path" required maxLength={512} placeholder="/data" autoComplete="off" spellCheck={false} {...described(ids.pathHint, ids.pathError, issues.mount_path)} />
                <p id={ids.pathHint} className="muted small">
                  An absolute path inside the container; not /proc, /sys or /dev.
                </p>
                <FieldError id={ids.pathError} message={issues.mount_path} />
              </div>
              <label htmlFor={ids.size}>Size (MB)</label>
              <div>
                <input id={ids.size} name="size_mb" type="number" min={1} max={1048576} step={1} defaultValue={1024} {...described(ids.sizeHint, ids.sizeError, issues.size_mb)} />
                <p id={ids.sizeHint} className="muted small">
                  1 to 1048576; informational only.
                </p>
                <FieldError id={ids.sizeError} message={issues.size_mb} />
              </div>
            </div>
            <div>
              <button type="submit" disabled={attach.isPending}>
                {attach.isPending ? "Attaching…" : "Attach volume"}
              </button>
            </div>
          </form>
          <ErrorMessage error={otherError} />
          <ConfirmMutation
            open={!!detaching}
            onClose={() => setDetaching(null)}
            mutation={detach}
            title={`Detach the volume at ${detaching?.mount_path ?? ""}?`}
            confirmLabel="Detach volume"
          >
            <p>
              The next deploy runs {app.name} without it. The volume <code>{detaching?.name}</code> and its data are kept on the host: attaching {detaching?.mount_path} again brings
              them back.
            </p>
          </ConfirmMutation>
        </>
      ) : null}
    </section>
  );
}

const FIELDS = ["enabled", "cpu_threshold", "min_replicas", "max_replicas", "cooldown_seconds", "sleep_after_minutes"] as const;

export function Scaling({ projectId, app, canEdit, onSaved }: { projectId: string; app: App; canEdit: boolean; onSaved: (message: string) => void }) {
  const base = useId();
  const id = (f: string) => `${base}-${f}`;
  const queryClient = useQueryClient();
  const query = useQuery({ ...autoscaleQuery(projectId, app.id), refetchInterval: (q) => (q.state.data?.scaling ? 3_000 : 30_000) });
  const cfg = query.data;
  const [saves, setSaves] = useState(0);
  const save = useMutation({
    mutationFn: (body: AutoscaleInput) => unwrap(api.PUT("/apps/{appId}/autoscale", { params: { path: { appId: app.id } }, body })),
    onSuccess: async (after) => {
      queryClient.setQueryData(autoscaleQuery(projectId, app.id).queryKey, after);
      setSaves((n) => n + 1);
      onSaved(
        `Scaling of ${app.name} saved: autoscale ${after.enabled ? `on, ${after.min_replicas} to ${after.max_replicas} replicas` : `off, ${after.min_replicas} ${after.min_replicas === 1 ? "replica" : "replicas"}`}; sleep ${after.sleep_after_minutes ? `after ${after.sleep_after_minutes} minutes idle` : "never"}.`,
      );
      await queryClient.invalidateQueries({ queryKey: ["projects", projectId, "jobs"] });
    },
  });
  const issues = fieldIssues(save.error);
  const otherError = save.error && !FIELDS.some((f) => issues[f]) ? save.error : null;

  return (
    <section aria-labelledby="scaling-heading">
      <h2 id="scaling-heading" className="section-title">
        Replicas, autoscale and sleep
      </h2>
      <QueryState query={query} loading="Loading the scaling settings…" />
      {cfg ? (
        <>
          <State cfg={cfg} />
          <p className="muted small">
            With more than one replica, Caddy checks each with <code>GET /</code> every 2 s: <strong>an app that runs several replicas must answer GET / with a status below 400</strong>,
            or its replicas are taken out of the route.
          </p>
          {canEdit ? (
            <>
              <form
                key={`${saves}|${cfg.updated_at}`}
                className="stack-form"
                aria-label="Scaling settings"
                noValidate
                onSubmit={(e) => {
                  e.preventDefault();
                  const data = new FormData(e.currentTarget);
                  const num = (f: string) => Number(String(data.get(f) ?? "").trim() || Number.NaN);
                  save.mutate({
                    enabled: data.get("enabled") === "on",
                    cpu_threshold: num("cpu_threshold"),
                    min_replicas: num("min_replicas"),
                    max_replicas: num("max_replicas"),
                    cooldown_seconds: num("cooldown_seconds"),
                    sleep_after_minutes: num("sleep_after_minutes"),
                  });
                }}
              >
                <h3 className="section-title">Scaling settings</h3>
                <label className="inline-check">
                  <input type="checkbox" name="enabled" defaultChecked={cfg.enabled} /> Autoscale on CPU
                </label>
                <p className="muted small">Off, the app runs the minimum number of replicas. On, Berth moves between the minimum and the maximum, one replica at a time.</p>
                <div className="fields">
                  <NumberField
                    id={id("cpu_threshold")}
                    name="cpu_threshold"
                    label="CPU threshold (%)"
                    hint="1 to 100: scale up when the replicas' average CPU is above this share of the app's CPU limit."
                    min={1}
                    max={100}
                    step="any"
                    value={cfg.cpu_threshold}
                    error={issues.cpu_threshold}
                  />
                  <NumberField id={id("min_replicas")} name="min_replicas" label="Minimum replicas" hint="1 to 10, at most the maximum." min={1} max={10} value={cfg.min_replicas} error={issues.min_replicas} />
                  <NumberField id={id("max_replicas")} name="max_replicas" label="Maximum replicas" hint="1 to 10, at least the minimum." min={1} max={10} value={cfg.max_replicas} error={issues.max_replicas} />
                  <NumberField
                    id={id("cooldown_seconds")}
                    name="cooldown_seconds"
                    label="Cool-down (seconds)"
                    hint="30 to 86400: the least time between two CPU steps."
                    min={30}
                    max={86400}
                    value={cfg.cooldown_seconds}
                    error={issues.cooldown_seconds}
                  />
                  <NumberField
                    id={id("sleep_after_minutes")}
                    name="sleep_after_minutes"
                    label="Sleep after (minutes idle)"
                    hint="0 to 10080; 0 = never. Asleep, its containers stop and the first request wakes it."
                    min={0}
                    max={10080}
                    value={cfg.sleep_after_minutes}
                    error={issues.sleep_after_minutes}
                  />
                </div>
                <div>
                  <button type="submit" disabled={save.isPending}>
                    {save.isPending ? "Saving…" : "Save scaling"}
                  </button>
                </div>
              </form>
              <ErrorMessage error={otherError} />
            </>
          ) : (
            <Settings cfg={cfg} />
          )}
        </>
      ) : null}
    </section>
  );
}

function NumberField(props: { id: string; name: string; label: string; hint: string; min: number; max: number; step?: number | "any"; value: number; error?: string }) {
  const hintId = `${props.id}-hint`;
  const errorId = `${props.id}-error`;
  return (
    <>
      <label htmlFor={props.id}>{props.label}</label>
      <div>
        <input id={props.id} name={props.name} type="number" required min={props.min} max={props.max} step={props.step ?? 1} defaultValue={props.value} {...described(hintId, errorId, props.error)} />
        <p id={hintId} className="muted small">
          {props.hint}
        </p>
        <FieldError id={errorId} message={props.error} />
      </div>
    </>
  );
}

function State({ cfg }: { cfg: Autoscale }) {
  return (
    <dl className="facts">
      <div>
        <dt>Replicas</dt>
        <dd>{cfg.replicas}</dd>
      </div>
      <div>
        <dt>Running</dt>
        <dd>{cfg.replicas_running ?? "not reported yet"}</dd>
      </div>
      <div>
        <dt>Scaling</dt>
        <dd>{cfg.scaling ? "under way" : "no"}</dd>
      </div>
      <div>
        <dt>Asleep</dt>
        <dd>{cfg.sleeping ? `since ${formatDate(cfg.slept_at)}` : "no"}</dd>
      </div>
      <div>
        <dt>Last request</dt>
        <dd>{formatDate(cfg.last_request_at)}</dd>
      </div>
    </dl>
  );
}

/** What a viewer sees instead of the form. */
function Settings({ cfg }: { cfg: Autoscale }) {
  return (
    <dl className="facts">
      <div>
        <dt>Autoscale</dt>
        <dd>{cfg.enabled ? "on" : "off"}</dd>
      </div>
      <div>
        <dt>CPU threshold</dt>
        <dd>{cfg.cpu_threshold} %</dd>
      </div>
      <div>
        <dt>Replicas</dt>
        <dd>
          {cfg.min_replicas} to {cfg.max_replicas}
        </dd>
      </div>
      <div>
        <dt>Cool-down</dt>
        <dd>{cfg.cooldown_seconds} s</dd>
      </div>
      <div>
        <dt>Sleep after</dt>
        <dd>{cfg.sleep_after_minutes ? `${cfg.sleep_after_minutes} minutes idle` : "never"}</dd>
      </div>
    </dl>
  );
}
