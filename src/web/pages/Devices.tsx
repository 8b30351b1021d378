import { queryOptions, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, type SyncConflict, unwrap } from "../api/client";
import { devicesQuery, syncStatsQuery } from "../queries";
import { ErrorMessage } from "../ui/ErrorMessage";
import { formatDate } from "../ui/format";
import { CardList, Empty, QueryState } from "../ui/ListState";
import { Page } from "../ui/Page";
import { usePageTitle } from "../ui/title";

/**
 * The API lists open conflicts only in a pull (`GET /sync/data`), which names the device that
 * pulls and counts as a sync. So this page pulls, as "Berth dashboard" (one id per browser),
 * only when the stats say some conflict is open, and asks for no items (changed after now).
 */
const DEVICE_KEY = "berth-sync-device";
function browserDeviceId(): string {
  let id = localStorage.getItem(DEVICE_KEY);
  if (!id) {
    id = `berth-web-${crypto.randomUUID()}`;
    localStorage.setItem(DEVICE_KEY, id);
  }
  return id;
}

const openConflictsQuery = queryOptions({
  queryKey: ["devpocket", "conflicts"],
  queryFn: ({ signal }) =>
    unwrap(
      api.GET("/sync/data", {
        params: {
          query: { data_types: "all", device_id: browserDeviceId(), device_name: "Berth dashboard", device_type: "web", last_sync_timestamp: new Date().toISOString() },
        },
        signal,
      }),
    ).then((d) => d.conflicts),
});

const RESOLUTIONS: Record<SyncConflict["resolution_options"][number], { label: string; done: string }> = {
  local: { label: "Keep the uploaded change", done: "kept the change the uploading device made" },
  remote: { label: "Keep what was stored", done: "kept what was stored before" },
  merge: { label: "Merge both", done: "merged both, the uploaded fields over the stored ones" },
};

const DATA_TYPES: Record<SyncConflict["data_type"], string> = {
  ssh_profiles: "SSH profile",
  sessions: "session",
  commands: "command",
  settings: "settings",
  ai_preferences: "AI preferences",
};

/** Your devices that sync (DevPocket's apps), your syncs counted, and conflicts waiting for you. */
export function Devices() {
  usePageTitle("Devices and sync");
  const devices = useQuery(devicesQuery);
  const stats = useQuery(syncStatsQuery);
  const open = stats.data ? stats.data.total_conflicts - stats.data.resolved_conflicts : 0;
  const conflicts = useQuery({ ...openConflictsQuery, enabled: open > 0 });
  const [status, setStatus] = useState("");
  const s = stats.data;
  return (
    <Page id="devices-heading" title="Devices and sync" status={status}>
      <p className="muted">
        DevPocket's apps keep your SSH profiles (without their secrets), sessions, commands and settings in step across your devices through Berth. When two devices change the
        same thing, Berth keeps both and asks you here which one wins.
      </p>
      <h2 className="section-title">Your devices</h2>
      <CardList
        query={devices}
        loading="Loading your devices…"
        label="Devices"
        empty={
          <Empty title="No devices yet">
            A device appears here once it syncs: sign in to DevPocket's app on your phone or computer with this account and turn on sync.
          </Empty>
        }
      >
        {(d) => (
          <li key={d.device_id} className="card">
            <div>
              <h3 className="card-title">{d.device_name ?? d.device_id}</h3>
              <p className="muted small">
                <span className="badge">{d.device_type}</span> · last active {formatDate(d.last_active)}
              </p>
            </div>
          </li>
        )}
      </CardList>

      <h2 className="section-title">Sync</h2>
      <QueryState query={stats} loading="Counting your syncs…" />
      {s ? (
        s.total_syncs === 0 && s.total_conflicts === 0 ? (
          <Empty>Nothing has synced yet. Once a device syncs, its syncs and any conflicts are counted here.</Empty>
        ) : (
          <dl className="facts">
            <div>
              <dt>Syncs</dt>
              <dd>{s.total_syncs}</dd>
            </div>
            <div>
              <dt>Succeeded</dt>
              <dd>{s.successful_syncs}</dd>
            </div>
            <div>
              <dt>Met a conflict</dt>
              <dd>{s.failed_syncs}</dd>
            </div>
            <div>
              <dt>Last sync</dt>
              <dd>{formatDate(s.last_sync)}</dd>
            </div>
            <div>
              <dt>Active devices (30 days)</dt>
              <dd>{s.active_devices}</dd>
            </div>
            <div>
              <dt>Conflicts resolved</dt>
              <dd>
                {s.resolved_conflicts} of {s.total_conflicts}
              </dd>
            </div>
          </dl>
        )
      ) : null}

      <h2 className="section-title">Open conflicts</h2>
      {s && open === 0 ? <Empty>No open conflicts: every device agrees.</Empty> : null}
      {open > 0 ? (
        <CardList query={conflicts} loading="Loading the open conflicts…" label="Open conflicts" empty={<Empty>No open conflicts: every device agrees.</Empty>}>
          {(c) => <ConflictRow key={c.conflict_id} conflict={c} onResolved={setStatus} />}
        </CardList>
      ) : null}
    </Page>
  );
}

const show = (data: Record<string, unknown>) => JSON.stringify(data, null, 2);

function ConflictRow({ conflict: c, onResolved }: { conflict: SyncConflict; onResolved: (message: string) => void }) {
  const queryClient = useQueryClient();
  const what = `${DATA_TYPES[c.data_type]} ${c.item_id}`;
  const resolve = useMutation({
    mutationFn: (resolution: SyncConflict["resolution_options"][number]) =>
      unwrap(api.POST("/sync/conflicts/{conflict_id}/resolve", { params: { path: { conflict_id: c.conflict_id } }, body: { resolution } })),
    onSuccess: async (_, resolution) => {
      onResolved(`Resolved the conflict over ${what}: ${RESOLUTIONS[resolution].done}.`);
      await queryClient.invalidateQueries({ queryKey: ["devpocket"] });
    },
  });
  const local = c.device_info.local_device_name ?? c.device_info.local_device_id ?? "the uploading device";
  const remote = c.device_info.remote_device_name ?? c.device_info.remote_device_id ?? "another device";
  return (
    <li className="card">
      <div className="command-result">
        <h3 className="card-title">{what}</h3>
        <p className="muted small">
          {c.conflict_type === "version_mismatch" ? "Changed on two devices from the same version" : "Uploaded without a version while another device had changed it"} ·{" "}
          {formatDate(c.timestamp)}
        </p>
        <h4 className="small">Uploaded by {local}</h4>
        {/* biome-ignore lint/a11y/noNoninteractiveTabindex: output that scrolls must be reachable by keyboard to be read */}
        <pre className="log" role="log" aria-label={`Uploaded by ${local}`} tabIndex={0}>
          {show(c.local_data)}
        </pre>
        <h4 className="small">Stored, from {remote}</h4>
        {/* biome-ignore lint/a11y/noNoninteractiveTabindex: output that scrolls must be reachable by keyboard to be read */}
        <pre className="log" role="log" aria-label={`Stored, from ${remote}`} tabIndex={0}>
          {show(c.remote_data)}
        </pre>
      </div>
      <div className="actions">
        {c.resolution_options.map((r) => (
          <button key={r} type="button" onClick={() => resolve.mutate(r)} disabled={resolve.isPending} aria-label={`${RESOLUTIONS[r].label} for ${what}`}>
            {RESOLUTIONS[r].label}
          </button>
        ))}
      </div>
      <ErrorMessage error={resolve.error} />
    </li>
  );
}
