import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Link, useNavigate } from "@tanstack/react-router";
import { useId } from "react";
import type { AuditEvent, Member } from "../api/client";
import { can } from "../permissions";
import { auditQuery, membersQuery, useOrg } from "../queries";
import { formatDate } from "../ui/format";
import { Empty, QueryState } from "../ui/ListState";
import { Page } from "../ui/Page";
import { usePageTitle } from "../ui/title";
import { AUDIT_PAGE_SIZE, type AuditSearch } from "./audit-search";

/** What Berth records (the `action` of every audited change in src/routes). */
const ACTIONS = [
  "account.update",
  "api_key.adopt",
  "api_key.create",
  "api_key.revoke",
  "app.create",
  "app.delete",
  "app.deploy",
  "app.scale",
  "app.update",
  "host.create",
  "host.delete",
  "host.exec",
  "host.join_token",
  "instance.create",
  "instance.delete",
  "instance.password_reset",
  "instance.power",
  "instance.rebuild",
  "instance.rename",
  "instance.resize",
  "invitation.accept",
  "invitation.create",
  "invitation.resend",
  "invitation.revoke",
  "job.cancel",
  "member.leave",
  "member.remove",
  "member.role_change",
  "org.create",
  "org.delete",
  "org.update",
  "project.create",
  "project.delete",
  "project.member_invite",
  "project.member_remove",
  "project.member_update",
  "project.update",
  "registry.create",
  "registry.delete",
];

/** Days in the browser's time zone: from the start of `from` to the end of `to`. */
const startOf = (day: string) => new Date(`${day}T00:00:00`).toISOString();
const endOf = (day: string) => new Date(`${day}T23:59:59.999`).toISOString();

export function Audit({ orgSlug, search }: { orgSlug: string; search: AuditSearch }) {
  usePageTitle("Audit log");
  const navigate = useNavigate();
  const { org, role, orgs } = useOrg(orgSlug);
  const allowed = can(role, "audit:read");
  const page = search.page ?? 1;
  const events = useQuery({
    ...auditQuery(orgSlug, {
      ...(search.action ? { action: search.action } : {}),
      ...(search.from ? { from: startOf(search.from) } : {}),
      ...(search.to ? { to: endOf(search.to) } : {}),
      offset: (page - 1) * AUDIT_PAGE_SIZE,
      // One more than a page: whether there is a next page, without a count.
      limit: AUDIT_PAGE_SIZE + 1,
    }),
    enabled: allowed,
    placeholderData: keepPreviousData,
  });
  const members = useQuery({ ...membersQuery(orgSlug), enabled: allowed });
  const filtered = !!(search.action || search.from || search.to);
  const shown = events.data?.slice(0, AUDIT_PAGE_SIZE) ?? [];
  const hasNext = (events.data?.length ?? 0) > AUDIT_PAGE_SIZE;
  const ids = { action: useId(), from: useId(), to: useId() };
  const go = (next: AuditSearch) => void navigate({ to: "/orgs/$orgSlug/audit", params: { orgSlug }, search: next });

  return (
    <Page id="audit-heading" title="Audit log" subtitle={org ? `of ${org.name}` : null}>
      {orgs.isPending ? <p aria-busy="true">Loading…</p> : null}
      {orgs.data && !allowed ? <Empty>Only owners and admins can read this organization's audit log. Ask one of them if you need to know who changed something.</Empty> : null}
      {allowed ? (
        <>
          <form
            className="inline-form"
            aria-label="Filter the audit log"
            key={`${search.action}|${search.from}|${search.to}`}
            onSubmit={(e) => {
              e.preventDefault();
              const data = new FormData(e.currentTarget);
              const value = (name: string) => String(data.get(name) ?? "") || undefined;
              go({ action: value("action"), from: value("from"), to: value("to") });
            }}
          >
            <label htmlFor={ids.action}>Action</label>
            <select id={ids.action} name="action" defaultValue={search.action ?? ""}>
              <option value="">any action</option>
              {(search.action && !ACTIONS.includes(search.action) ? [search.action, ...ACTIONS] : ACTIONS).map((a) => (
                <option key={a} value={a}>
                  {a}
                </option>
              ))}
            </select>
            <label htmlFor={ids.from}>From</label>
            <input id={ids.from} name="from" type="date" defaultValue={search.from ?? ""} />
            <label htmlFor={ids.to}>To</label>
            <input id={ids.to} name="to" type="date" defaultValue={search.to ?? ""} />
            <button type="submit" className="primary">
              Apply filters
            </button>
            {filtered ? (
              <Link to="/orgs/$orgSlug/audit" params={{ orgSlug }} search={{}}>
                Clear filters
              </Link>
            ) : null}
          </form>

          <QueryState query={events} loading="Loading events…" />
          {events.data && shown.length === 0 ? (
            <Empty>
              {filtered
                ? "Nothing matches these filters. Pick another action, widen the dates, or clear the filters."
                : page > 1
                  ? "There are no more events. Go back to the first page."
                  : "Nothing recorded yet. Changes to projects, members, keys and hosts appear here as they happen."}
            </Empty>
          ) : null}
          {shown.length > 0 ? (
            // biome-ignore lint/a11y/noNoninteractiveTabindex: a region that scrolls sideways on a phone must be reachable by keyboard
            <section className="table-wrap" aria-label="Audit events" tabIndex={0}>
              <table>
                <caption className="sr-only">
                  Audit events, newest first, page {page}
                  {filtered ? ", filtered" : ""}
                </caption>
                <thead>
                  <tr>
                    <th scope="col">When</th>
                    <th scope="col">Action</th>
                    <th scope="col">Who</th>
                    <th scope="col">What</th>
                    <th scope="col">Details</th>
                  </tr>
                </thead>
                <tbody>
                  {shown.map((e) => (
                    <tr key={e.id}>
                      <td>
                        <time dateTime={e.createdAt}>{formatDate(e.createdAt)}</time>
                      </td>
                      <td>
                        <code>{e.action}</code>
                      </td>
                      <td>{actorOf(e, members.data)}</td>
                      <td>{e.target ? `${e.target.type} ${e.target.id ?? ""}` : ""}</td>
                      <td className="small">{detailsOf(e)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </section>
          ) : null}
          {page > 1 || hasNext ? (
            <nav className="pager" aria-label="Audit log pages">
              {page > 1 ? (
                <Link to="/orgs/$orgSlug/audit" params={{ orgSlug }} search={{ ...search, page: page - 1 > 1 ? page - 1 : undefined }}>
                  Newer events
                </Link>
              ) : (
                <span />
              )}
              <span className="muted small">Page {page}</span>
              {hasNext ? (
                <Link to="/orgs/$orgSlug/audit" params={{ orgSlug }} search={{ ...search, page: page + 1 }}>
                  Older events
                </Link>
              ) : (
                <span />
              )}
            </nav>
          ) : null}
        </>
      ) : null}
    </Page>
  );
}

function actorOf(e: AuditEvent, members: Member[] | undefined): string {
  // The control plane itself: autoscaling, replacing a replica that died.
  if (e.actor.type === "system") return `Berth (${e.actor.id})`;
  const person = e.actor.userId ? members?.find((m) => m.userId === e.actor.userId) : undefined;
  const who = person ? person.name || person.email : (e.actor.userId ?? "someone no longer here");
  return e.actor.type === "api_key" ? `API key ${e.actor.id} of ${who}` : who;
}

function detailsOf(e: AuditEvent): string {
  if (!e.metadata) return "";
  return Object.entries(e.metadata)
    .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(", ");
}
