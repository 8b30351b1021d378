import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, unwrap } from "../api/client";
import type { components } from "../api/openapi.gen";
import { notificationsQuery, useOrg } from "../queries";
import { ErrorMessage } from "../ui/ErrorMessage";
import { formatDate } from "../ui/format";
import { Cards, Empty, QueryState } from "../ui/ListState";
import { Page, Status } from "../ui/Page";
import { usePageTitle } from "../ui/title";

type Notification = components["schemas"]["Notification"];

/** The signed-in person's notifications in one org: failed deploys and instance jobs. */
export function Notifications({ orgSlug }: { orgSlug: string }) {
  usePageTitle("Notifications");
  const { org } = useOrg(orgSlug);
  const queryClient = useQueryClient();
  const list = useQuery(notificationsQuery(orgSlug));
  const [status, setStatus] = useState("");
  const refresh = async (message: string) => {
    setStatus(message);
    await queryClient.invalidateQueries({ queryKey: notificationsQuery(orgSlug).queryKey });
  };
  const readAll = useMutation({
    mutationFn: () => unwrap(api.POST("/org/{slug}/notifications/read-all", { params: { path: { slug: orgSlug } } })),
    onSuccess: () => refresh("Marked every notification read."),
  });
  const unread = list.data?.unread ?? 0;
  return (
    <Page id="notifications-heading" title="Notifications" subtitle={org ? `in ${org.name}` : null}>
      <Status>{status}</Status>
      <p className="muted">Berth tells you here when a deploy or an instance job in this organization fails. To send these to a chat or your own service, add a webhook.</p>
      <QueryState query={list} loading="Loading notifications…" />
      {list.data ? (
        <>
          <div className="actions start">
            <span>{unread ? `${unread} unread` : "All read"}</span>
            {unread ? (
              <button type="button" onClick={() => readAll.mutate()} disabled={readAll.isPending}>
                Mark all read
              </button>
            ) : null}
          </div>
          <ErrorMessage error={readAll.error} />
          <Cards label="Notifications" items={list.data.notifications} empty={<Empty>Nothing to tell you yet. When a deploy or an instance job fails, you will see it here.</Empty>}>
            {(n) => <NotificationRow key={n.id} orgSlug={orgSlug} note={n} onRead={refresh} />}
          </Cards>
        </>
      ) : null}
    </Page>
  );
}

function NotificationRow({ orgSlug, note, onRead }: { orgSlug: string; note: Notification; onRead: (message: string) => Promise<void> }) {
  const read = useMutation({
    mutationFn: () => unwrap(api.POST("/org/{slug}/notifications/{id}/read", { params: { path: { slug: orgSlug, id: note.id } } })),
    onSuccess: () => onRead(`Marked “${note.title}” read.`),
  });
  return (
    <li className={`card notification${note.read ? "" : " unread"}`}>
      <div>
        <h3 className="card-title">
          {note.read ? null : <span className="sr-only">Unread: </span>}
          {note.link ? <a href={note.link}>{note.title}</a> : note.title}
        </h3>
        {note.body ? <p className="small">{note.body}</p> : null}
        <p className="muted small">
          <code>{note.kind}</code> · {formatDate(note.createdAt)}
        </p>
        <ErrorMessage error={read.error} />
      </div>
      {note.read ? null : (
        <div className="actions">
          <button type="button" onClick={() => read.mutate()} disabled={read.isPending} aria-label={`Mark “${note.title}” read`}>
            Mark read
          </button>
        </div>
      )}
    </li>
  );
}
