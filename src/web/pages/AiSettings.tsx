import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link } from "@tanstack/react-router";
import { useId, useRef, useState } from "react";
import { api, unwrap } from "../api/client";
import { aiKeyQuery } from "../queries";
import { ConfirmMutation } from "../ui/ConfirmMutation";
import { ErrorMessage } from "../ui/ErrorMessage";
import { formatDate } from "../ui/format";
import { QueryState } from "../ui/ListState";
import { Page } from "../ui/Page";
import { usePageTitle } from "../ui/title";

/**
 * Your own AI provider key (DevPocket's bring-your-own-key): checked with the provider, stored
 * encrypted, never shown again (the API answers only whether one is stored and its last four
 * characters). The AI assistant page spends it.
 */
export function AiSettings() {
  usePageTitle("AI settings");
  const queryClient = useQueryClient();
  const stored = useQuery(aiKeyQuery);
  const [status, setStatus] = useState("");
  const [confirming, setConfirming] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  const ids = { key: useId(), help: useId() };
  const refresh = async (message: string) => {
    setStatus(message);
    await queryClient.invalidateQueries({ queryKey: aiKeyQuery.queryKey });
  };
  // What the field holds when a button is pressed; the field is cleared once the key is saved.
  const typedKey = () => String(new FormData(form.current ?? undefined).get("api_key") ?? "").trim();
  const save = useMutation({
    mutationFn: (api_key: string) => unwrap(api.PUT("/ai/key", { body: { api_key } })),
    onSuccess: async () => {
      form.current?.reset();
      check.reset();
      await refresh("Saved your AI key. It is stored encrypted and will not be shown again.");
    },
  });
  const check = useMutation({
    mutationFn: (api_key: string) => unwrap(api.POST("/ai/validate-key", { body: { api_key } })),
  });
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE("/ai/key")),
    onSuccess: async () => {
      setConfirming(false);
      await refresh("Removed your AI key.");
    },
  });
  const key = stored.data;
  return (
    <Page id="ai-heading" title="AI settings" status={status}>
      <p className="muted">
        Command suggestions and explanations use your own key for OpenRouter or any OpenAI-compatible provider: you pay the provider directly, and nobody else's key is used
        for you.
      </p>
      <QueryState query={stored} loading="Reading your AI settings…" />
      {key ? (
        <section className="job" aria-label="Your stored key">
          {key.configured ? (
            <>
              <p>
                <strong>Key: set</strong> {key.key_hint ? <span className="muted">(ends in {key.key_hint})</span> : null}
              </p>
              <p className="muted small">Saved {formatDate(key.updated_at ?? key.created_at)}. Berth never shows it again; paste a new one below to replace it.</p>
              <div className="actions start">
                <button type="button" className="danger-outline" onClick={() => setConfirming(true)}>
                  Remove key
                </button>
              </div>
            </>
          ) : (
            <p>
              <strong>No key stored yet.</strong> Paste one from your provider's dashboard below, check it, and save it.
            </p>
          )}
        </section>
      ) : null}
      <form
        ref={form}
        className="stack-form"
        aria-label={key?.configured ? "Replace your AI key" : "Save an AI key"}
        onSubmit={(e) => {
          e.preventDefault();
          check.reset();
          save.mutate(typedKey());
        }}
      >
        <h2 className="section-title">{key?.configured ? "Replace your key" : "Your key"}</h2>
        <div className="fields">
          <label htmlFor={ids.key}>AI provider key</label>
          <input id={ids.key} name="api_key" type="password" required maxLength={500} autoComplete="off" spellCheck={false} aria-describedby={ids.help} placeholder="sk-or-…" />
        </div>
        <p id={ids.help} className="muted small">
          Saving checks the key with the provider first. Check key only asks the provider, without saving.
        </p>
        <div className="actions start">
          <button type="submit" className="primary" disabled={save.isPending}>
            {save.isPending ? "Saving…" : key?.configured ? "Replace key" : "Save key"}
          </button>
          <button
            type="button"
            disabled={check.isPending}
            onClick={() => {
              const k = typedKey();
              save.reset();
              if (k) check.mutate(k);
              else form.current?.reportValidity();
            }}
          >
            {check.isPending ? "Checking…" : "Check key"}
          </button>
        </div>
      </form>
      <ErrorMessage error={save.error ?? check.error} />
      {check.data ? (
        <p className={check.data.valid ? "notice" : "error"} role="status">
          {check.data.valid
            ? `The provider accepts this key${check.data.models.length ? `; it offers ${check.data.models.length} model${check.data.models.length === 1 ? "" : "s"}` : ""}. Save it to use it.`
            : "The provider refused this key. Check that you copied all of it, or make a new one at the provider."}
        </p>
      ) : null}
      <ConfirmMutation open={confirming} onClose={() => setConfirming(false)} mutation={remove} title="Remove your AI key?" confirmLabel="Remove key">
        <p>Suggestions and explanations stop working until you save a key again. The key itself stays valid at your provider.</p>
      </ConfirmMutation>
      {key?.configured ? (
        <p>
          <Link to="/account/assistant">Use it on the AI assistant page</Link>: suggest a command, complete one, explain why one failed.
        </p>
      ) : null}
    </Page>
  );
}
