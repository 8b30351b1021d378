import { useQuery } from "@tanstack/react-query";
import { Link } from "@tanstack/react-router";
import { aiKeyQuery } from "../queries";
import { QueryState } from "../ui/ListState";
import { Page } from "../ui/Page";
import { usePageTitle } from "../ui/title";
import { CompleteCommand, ExplainCommand, SuggestCommand } from "./ai-tools";

/** DevPocket's AI help with the person's own stored key: suggest, complete, explain. The key itself lives on AI settings. */
export function AiAssistant() {
  usePageTitle("AI assistant");
  const stored = useQuery(aiKeyQuery);
  return (
    <Page id="ai-assistant-heading" title="AI assistant">
      <QueryState query={stored} loading="Reading your AI settings…" />
      {stored.data ? (
        stored.data.configured ? (
          <p className="muted">
            Uses your stored AI key{stored.data.key_hint ? ` (ends in ${stored.data.key_hint})` : ""}: your provider bills you. <Link to="/account/ai">Change it in AI settings</Link>.
          </p>
        ) : (
          <p className="notice">
            <strong>No AI key stored yet.</strong> These tools use your own key for OpenRouter or any OpenAI-compatible provider.{" "}
            <Link to="/account/ai">Save your AI key in AI settings</Link> first.
          </p>
        )
      ) : null}
      <SuggestCommand />
      <CompleteCommand />
      <ExplainCommand />
    </Page>
  );
}
