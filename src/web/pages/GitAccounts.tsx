import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { authCall, authClient } from "../auth";
import { oauthAccountsQuery } from "../queries";
import { ConfirmMutation } from "../ui/ConfirmMutation";
import { ErrorMessage } from "../ui/ErrorMessage";
import { formatDate } from "../ui/format";
import { QueryState } from "../ui/ListState";
import { Page } from "../ui/Page";
import { usePageTitle } from "../ui/title";

/**
 * Linked git accounts: link GitHub through better-auth's account linking (GitHub's own page
 * asks, then sends the browser back here), see who is linked, unlink. Apps then list your
 * repositories in their create form, and private ones build with the account.
 */
export function GitAccounts() {
  usePageTitle("Git accounts");
  const queryClient = useQueryClient();
  const accounts = useQuery(oauthAccountsQuery);
  const [unlinking, setUnlinking] = useState<string | null>(null);
  const [status, setStatus] = useState("");
  // better-auth sends the browser back with ?error=… when GitHub or the link failed.
  const returnedError = new URLSearchParams(window.location.search).get("error");
  const link = useMutation({
    mutationFn: () => authCall(authClient.linkSocial({ provider: "github", callbackURL: "/account/git", errorCallbackURL: "/account/git" })),
  });
  const unlink = useMutation({
    mutationFn: () => authCall(authClient.unlinkAccount({ accountId: unlinking ?? "" })),
    onSuccess: async () => {
      setUnlinking(null);
      setStatus("Unlinked your GitHub account. Its token is deleted from Berth; revoke the app at GitHub too if you like.");
      await queryClient.invalidateQueries({ queryKey: oauthAccountsQuery.queryKey });
      await queryClient.invalidateQueries({ queryKey: ["git"] });
    },
  });
  const github = accounts.data?.find((a) => a.provider === "github");
  return (
    <Page id="git-accounts-heading" title="Git accounts" status={status}>
      <p className="muted">
        Link your GitHub account to pick repositories and branches when you create an app, and to build private repositories. Berth keeps the account's token encrypted and never shows it.
      </p>
      {returnedError ? <p role="alert" className="error">GitHub was not linked ({returnedError.replace(/_/g, " ")}). Try again.</p> : null}
      <QueryState query={accounts} loading="Reading your linked accounts…" />
      {accounts.data ? (
        <section className="job" aria-label="Linked accounts">
          {accounts.data.length === 0 ? (
            <p>
              <strong>No account linked yet.</strong>
            </p>
          ) : (
            <ul className="plain">
              {accounts.data.map((a) => (
                <li key={a.id}>
                  <strong>{a.provider === "github" ? "GitHub" : a.provider}</strong>: {a.username ?? a.account_id}{" "}
                  <span className="muted small">linked {formatDate(a.created_at)}</span>{" "}
                  <button type="button" className="danger-outline" onClick={() => setUnlinking(a.id)} aria-label={`Unlink ${a.provider} account ${a.username ?? a.account_id}`}>
                    Unlink
                  </button>
                </li>
              ))}
            </ul>
          )}
          {github ? null : (
            <div className="actions start">
              <button type="button" className="primary" onClick={() => link.mutate(undefined)} disabled={link.isPending}>
                {link.isPending ? "Opening GitHub…" : "Link GitHub"}
              </button>
            </div>
          )}
        </section>
      ) : null}
      <ErrorMessage error={link.error} />
      <ConfirmMutation open={unlinking !== null} onClose={() => setUnlinking(null)} mutation={unlink} title="Unlink your GitHub account?" confirmLabel="Unlink">
        <p>Repositories are no longer listed, and apps you set up from private repositories stop building until you link it again.</p>
      </ConfirmMutation>
    </Page>
  );
}
