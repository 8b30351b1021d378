import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate } from "@tanstack/react-router";
import { api, unwrap } from "../api/client";
import { sessionQuery } from "../auth";
import { orgsQuery } from "../queries";
import { ErrorMessage } from "../ui/ErrorMessage";
import { usePageTitle } from "../ui/title";

/** Where the mailed invitation link lands (`/invitations/accept?token=…`); signed out, the router sends you to sign in first and back here. */
export function AcceptInvitation({ token }: { token?: string }) {
  usePageTitle("Accept an invitation");
  const session = useQuery(sessionQuery);
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const accept = useMutation({
    mutationFn: () => unwrap(api.POST("/invitations/accept", { body: { token: token ?? "" } })),
    onSuccess: async ({ orgSlug }) => {
      await queryClient.invalidateQueries({ queryKey: orgsQuery.queryKey });
      await navigate({ to: "/orgs/$orgSlug/projects", params: { orgSlug } });
    },
  });
  return (
    <section className="narrow" aria-labelledby="accept-heading">
      <h1 id="accept-heading">Accept an invitation</h1>
      {token ? (
        <>
          <p>
            You were invited to an organization on Berth. Accept to join it, signed in as <strong>{session.data?.user.email ?? "you"}</strong>, with the role the
            invitation names.
          </p>
          <ErrorMessage error={accept.error} />
          <div className="actions start">
            <button type="button" className="primary" onClick={() => accept.mutate()} disabled={accept.isPending}>
              {accept.isPending ? "Joining…" : "Accept invitation"}
            </button>
            <Link to="/">Not now</Link>
          </div>
        </>
      ) : (
        <p>This address has no invitation token. Open the link from the invitation mail exactly as it came, or ask the person who invited you to send it again.</p>
      )}
    </section>
  );
}
