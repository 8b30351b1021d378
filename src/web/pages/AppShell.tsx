import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, Outlet, useNavigate, useParams } from "@tanstack/react-router";
import { useId } from "react";
import { authCall, authClient, sessionQuery } from "../auth";
import { orgsQuery } from "../queries";
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
        <nav aria-label="Main" className="nav">
          {orgSlug ? (
            <Link to="/orgs/$orgSlug/projects" params={{ orgSlug }} activeProps={{ "aria-current": "page" }}>
              Projects
            </Link>
          ) : null}
        </nav>
        <div className="account">
          <ThemeSelect />
          {user ? (
            <span className="muted" title={user.email}>
              {user.name}
            </span>
          ) : null}
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
