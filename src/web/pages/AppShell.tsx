import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, Outlet, useNavigate, useParams } from "@tanstack/react-router";
import { useId } from "react";
import { authCall, authClient, sessionQuery } from "../auth";
import { can } from "../permissions";
import { notificationsQuery, orgsQuery } from "../queries";
import { ErrorMessage } from "../ui/ErrorMessage";
import { ThemeSelect } from "../ui/ThemeSelect";

/** The signed-in frame: who you are, which org you are in, the pages, and the way out. */
export function AppShell() {
  const session = useQuery(sessionQuery);
  const orgs = useQuery(orgsQuery);
  const { orgSlug } = useParams({ strict: false });
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const switcherId = useId();
  const signOut = useMutation({
    mutationFn: () => authCall(authClient.signOut()),
    onSuccess: async () => {
      queryClient.clear();
      await navigate({ to: "/sign-in" });
    },
  });
  const user = session.data?.user;
  // Off an org's pages (your personal keys, an invitation), the links lead to the org you were last in.
  const navOrg = orgSlug ?? orgs.data?.find((o) => o.slug === localStorage.getItem("berth-org"))?.slug;
  const role = orgs.data?.find((o) => o.slug === navOrg)?.role;
  const current = { "aria-current": "page" } as const;
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/" className="brand">
          Berth
        </Link>
        <div className="org-switcher">
          <label htmlFor={switcherId}>Organization</label>
          <select
            id={switcherId}
            value={orgSlug ?? ""}
            disabled={!orgs.data}
            onChange={(e) => void navigate({ to: "/orgs/$orgSlug/projects", params: { orgSlug: e.target.value } })}
          >
            {orgSlug && !orgs.data?.some((o) => o.slug === orgSlug) ? <option value={orgSlug}>{orgSlug}</option> : null}
            {orgs.data?.map((o) => (
              <option key={o.id} value={o.slug}>
                {o.name}
                {o.personal ? " (personal)" : ""}
              </option>
            ))}
          </select>
        </div>
        {orgSlug && role ? (
          <span className="muted small" data-testid="org-role">
            Your role: <strong>{role}</strong>
          </span>
        ) : null}
        <nav aria-label="Main" className="nav">
          {navOrg ? (
            <>
              <Link to="/orgs/$orgSlug/projects" params={{ orgSlug: navOrg }} activeProps={current}>
                Projects
              </Link>
              <Link to="/orgs/$orgSlug/hosts" params={{ orgSlug: navOrg }} activeProps={current}>
                Hosts
              </Link>
              <Link to="/orgs/$orgSlug/members" params={{ orgSlug: navOrg }} activeProps={current}>
                Members
              </Link>
              {can(role, "apikey:read") ? (
                <Link to="/orgs/$orgSlug/api-keys" params={{ orgSlug: navOrg }} activeProps={current}>
                  API keys
                </Link>
              ) : null}
              {can(role, "command:exec") ? (
                <>
                  <Link to="/orgs/$orgSlug/ssh" params={{ orgSlug: navOrg }} activeProps={current}>
                    SSH profiles
                  </Link>
                  <Link to="/orgs/$orgSlug/commands" params={{ orgSlug: navOrg }} activeProps={current} activeOptions={{ includeSearch: false }}>
                    Commands
                  </Link>
                </>
              ) : null}
              {can(role, "audit:read") ? (
                <Link to="/orgs/$orgSlug/audit" params={{ orgSlug: navOrg }} activeProps={current} activeOptions={{ includeSearch: false }}>
                  Audit log
                </Link>
              ) : null}
              {can(role, "webhook:manage") ? (
                <Link to="/orgs/$orgSlug/webhooks" params={{ orgSlug: navOrg }} activeProps={current}>
                  Webhooks
                </Link>
              ) : null}
              <NotificationsLink orgSlug={navOrg} />
            </>
          ) : null}
          <Link to="/account/assistant" activeProps={current}>
            AI assistant
          </Link>
          <Link to="/account/ai" activeProps={current}>
            AI settings
          </Link>
          <Link to="/account/devices" activeProps={current}>
            Devices and sync
          </Link>
          <Link to="/account/git" activeProps={current}>
            Git accounts
          </Link>
        </nav>
        <div className="account">
          <ThemeSelect />
          {user ? (
            <span className="muted" title={user.email}>
              {user.name}
            </span>
          ) : null}
          <Link to="/account/api-keys" activeProps={current}>
            Personal keys
          </Link>
          <Link to="/account/security" activeProps={current}>
            Security
          </Link>
          <button type="button" onClick={() => signOut.mutate()} disabled={signOut.isPending}>
            Sign out
          </button>
        </div>
      </header>
      <ErrorMessage error={signOut.error ?? orgs.error} />
      <main id="main" className="content" tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}

/** The navigation's way to the person's notifications, with how many are unread (looked at again every 30 s). */
function NotificationsLink({ orgSlug }: { orgSlug: string }) {
  const list = useQuery({ ...notificationsQuery(orgSlug), refetchInterval: 30_000 });
  const unread = list.data?.unread ?? 0;
  return (
    <Link to="/orgs/$orgSlug/notifications" params={{ orgSlug }} activeProps={{ "aria-current": "page" }}>
      Notifications
      {unread ? (
        <>
          {" "}
          <span className="badge" aria-hidden="true">
            {unread}
          </span>
          <span className="sr-only">, {unread} unread</span>
        </>
      ) : null}
    </Link>
  );
}
