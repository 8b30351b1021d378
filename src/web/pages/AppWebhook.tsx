/**
 * An app built from git: where its provider sends pushes, and a new secret for them. The
 * secret is shown once, when it is made (at create, or here); renewing it stops the old one
 * at once, so the page asks first.
 */
import { useMutation } from "@tanstack/react-query";
import { useState } from "react";
import { type App, api, unwrap } from "../api/client";
import { ConfirmMutation } from "../ui/ConfirmMutation";
import { CopyField } from "../ui/CopyField";
import { SecretPanel } from "../ui/SecretPanel";

/** Without PUBLIC_URL the API names the path only; the provider needs the whole address. */
export const absoluteHookUrl = (url: string | null | undefined) => (url ? new URL(url, window.location.origin).href : null);

export function AppWebhook({ app }: { app: App }) {
  const [confirming, setConfirming] = useState(false);
  const [secret, setSecret] = useState<string | null>(null);
  const renew = useMutation({
    mutationFn: () => unwrap(api.POST("/apps/{appId}/git/webhook-secret", { params: { path: { appId: app.id } } })),
    onSuccess: (res) => {
      setConfirming(false);
      setSecret(res.git_webhook_secret);
    },
  });
  const hookUrl = absoluteHookUrl(app.git_webhook_url);
  if (!hookUrl) return null;

  if (secret) {
    return (
      <SecretPanel
        id="renewed-webhook-secret-heading"
        title="The push webhook's new secret"
        copy={{ label: "Webhook secret", value: secret, hint: "Shown once. Pushes signed with the old secret are refused from now on." }}
        doneLabel="I have put it in the webhook's settings"
        onDone={() => setSecret(null)}
      >
        <p>Replace the secret in your git provider's webhook settings for this app.</p>
      </SecretPanel>
    );
  }
  return (
    <section className="stack-form" aria-labelledby="push-webhook-heading">
      <h2 id="push-webhook-heading" className="section-title">
        Push webhook
      </h2>
      <p className="muted small">
        Each push to <code>{app.git_branch ?? "the default branch"}</code> builds and deploys the app when your git provider sends it here: content type{" "}
        <code>application/json</code>, the <em>push</em> event, signed with the app's secret.
      </p>
      <CopyField label="Payload URL" value={hookUrl} />
      <div>
        <button type="button" className="danger-outline" onClick={() => setConfirming(true)}>
          Renew webhook secret
        </button>
      </div>
      <ConfirmMutation open={confirming} onClose={() => setConfirming(false)} mutation={renew} title="Renew the push webhook's secret?" confirmLabel="Renew secret">
        <p>The old secret stops working at once: pushes are refused until the provider has the new one.</p>
      </ConfirmMutation>
    </section>
  );
}
