/**
 * DevPocket's AI help, each spending the person's stored key: a command suggested for a
 * request in plain language (streamed as it arrives), completions of a partly typed command
 * (a keyboard-driven list), and why a command failed. Used by the AI assistant page, and the
 * suggestion also by the Commands page, where it fills the command field.
 */
import { useMutation } from "@tanstack/react-query";
import { Link } from "@tanstack/react-router";
import { useId, useRef, useState } from "react";
import { streamSuggestion, type Suggestion } from "../ai-stream";
import { api, unwrap } from "../api/client";
import { ApiError } from "../api/errors";
import { CopyField } from "../ui/CopyField";
import { ErrorMessage } from "../ui/ErrorMessage";

/** An AI call's failure in words; with no key stored, the way to store one. */
export function AiError({ error }: { error: unknown }) {
  return (
    <ErrorMessage error={error}>
      {error instanceof ApiError && (error.code === "ai_key_missing" || error.code === "ai_key_unreadable" || error.code === "ai_key_invalid") ? (
        <p>
          <Link to="/account/ai">Save your AI key in AI settings</Link>
        </p>
      ) : null}
    </ErrorMessage>
  );
}

type Turn = { prompt: string; suggestion: string };
/** Earlier turns sent as context: the route takes 20 messages at most (one is the shell line). */
const MAX_TURNS = 9;

/**
 * A request in plain language → one command, shown as the provider writes it. Follow-ups keep
 * the conversation (its earlier turns go as `context`), so "only files over 1 GB" refines the
 * last answer. `onUse`, where given, puts the command where it will be run.
 */
export function SuggestCommand({ onUse, headingLevel = 2 }: { onUse?: (command: string) => void; headingLevel?: 2 | 3 }) {
  const ids = { prompt: useId(), shell: useId(), heading: useId(), shellHelp: useId() };
  const [turns, setTurns] = useState<Turn[]>([]);
  const [partial, setPartial] = useState("");
  const [status, setStatus] = useState("");
  const form = useRef<HTMLFormElement>(null);
  const suggest = useMutation({
    mutationFn: ({ prompt, shell }: { prompt: string; shell: string }) => {
      setPartial("");
      const context = [
        ...(shell ? [{ role: "system" as const, content: `The command runs in: ${shell}` }] : []),
        ...turns.slice(-MAX_TURNS).flatMap((t) => [
          { role: "user" as const, content: t.prompt },
          { role: "assistant" as const, content: t.suggestion },
        ]),
      ];
      return streamSuggestion({ prompt, ...(context.length ? { context } : {}) }, setPartial);
    },
    onSuccess: (answer: Suggestion, { prompt }) => {
      setTurns((t) => [...t, { prompt, suggestion: answer.suggestion }]);
      setStatus("");
      form.current?.querySelector("textarea")?.select();
    },
  });
  const latest = turns.at(-1);
  const Heading = headingLevel === 2 ? "h2" : "h3";
  return (
    <section aria-labelledby={ids.heading}>
      <form
        ref={form}
        className="stack-form"
        onSubmit={(e) => {
          e.preventDefault();
          const data = new FormData(e.currentTarget);
          suggest.mutate({ prompt: String(data.get("prompt")).trim(), shell: String(data.get("shell") ?? "").trim() });
        }}
      >
        <Heading id={ids.heading} className="section-title">
          Suggest a command
        </Heading>
        <div className="fields">
          <label htmlFor={ids.prompt}>{turns.length ? "Ask a follow-up, or something new" : "What do you want to do?"}</label>
          <textarea
            id={ids.prompt}
            name="prompt"
            required
            maxLength={4000}
            rows={2}
            placeholder="e.g. delete log files older than a week"
            onKeyDown={(e) => {
              // Enter asks, as in a chat; Shift+Enter starts a new line.
              if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
                e.preventDefault();
                e.currentTarget.form?.requestSubmit();
              }
            }}
          />
          <label htmlFor={ids.shell}>Shell and system (optional)</label>
          <input id={ids.shell} name="shell" maxLength={200} autoComplete="off" aria-describedby={ids.shellHelp} placeholder="e.g. bash on Ubuntu 24.04" />
        </div>
        <p id={ids.shellHelp} className="muted small">
          Enter asks, Shift+Enter starts a new line. The request goes to your AI provider with your key.
        </p>
        <div className="actions start">
          <button type="submit" className="primary" disabled={suggest.isPending}>
            {suggest.isPending ? "Asking…" : "Suggest"}
          </button>
          {turns.length ? (
            <button
              type="button"
              disabled={suggest.isPending}
              onClick={() => {
                setTurns([]);
                suggest.reset();
                setStatus("Started over: the next request has no earlier context.");
              }}
            >
              Start over
            </button>
          ) : null}
          <span className="muted small" role="status">
            {status}
          </span>
        </div>
      </form>
      {suggest.isPending ? (
        // biome-ignore lint/a11y/noNoninteractiveTabindex: text that scrolls must be reachable by keyboard to be read
        <pre className="log" role="log" aria-label="The answer so far" aria-live="off" aria-busy="true" tabIndex={0}>
          {partial || "Waiting for the provider…"}
        </pre>
      ) : null}
      <AiError error={suggest.error} />
      {latest && !suggest.isPending ? (
        <section className="notice" aria-label="Suggestion">
          <p className="muted small">For: {latest.prompt}</p>
          <CopyField label="Suggested command" value={latest.suggestion} hint={<p className="muted small">Read it before you run it: it comes from a language model.</p>} />
          {onUse ? (
            <div className="actions start">
              <button type="button" className="primary" onClick={() => onUse(latest.suggestion)}>
                Use this command
              </button>
            </div>
          ) : null}
        </section>
      ) : null}
      {turns.length > 1 ? (
        <details>
          <summary>Earlier in this conversation ({turns.length - 1})</summary>
          <ol>
            {turns.slice(0, -1).map((t, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: turns are only appended, so the index is stable
              <li key={i}>
                {t.prompt} → <code>{t.suggestion}</code>
              </li>
            ))}
          </ol>
        </details>
      ) : null}
    </section>
  );
}

/**
 * A partly typed command → up to five completions in a list under the field (the ARIA
 * combobox pattern): Enter asks; ↓ and ↑ move through the list, Enter takes one, Escape closes it.
 */
export function CompleteCommand({ recent }: { recent?: string[] }) {
  const ids = { field: useId(), list: useId(), heading: useId(), help: useId() };
  const [value, setValue] = useState("");
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  const [status, setStatus] = useState("");
  const complete = useMutation({
    mutationFn: (partial_command: string) =>
      unwrap(api.POST("/ai/complete", { body: { partial_command, ...(recent?.length ? { context: recent.slice(-20) } : {}), model: "claude-3-haiku" } })),
    onSuccess: (answer) => {
      setOpen(true);
      setActive(answer.completions.length ? 0 : -1);
      setStatus(answer.completions.length ? `${answer.completions.length} completion${answer.completions.length === 1 ? "" : "s"}: use ↓ and ↑ to choose, Enter to take one.` : "No completions for this.");
    },
  });
  const options = open ? (complete.data?.completions ?? []) : [];
  const optionId = (i: number) => `${ids.list}-${i}`;
  const take = (completion: string) => {
    setValue(completion);
    setOpen(false);
    setActive(-1);
    setStatus(`Filled in: ${completion}`);
  };
  return (
    <section aria-labelledby={ids.heading}>
      <form
        className="stack-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (value.trim()) complete.mutate(value);
        }}
      >
        <h2 id={ids.heading} className="section-title">
          Complete a command
        </h2>
        <div className="fields">
          <label htmlFor={ids.field}>Partly typed command</label>
          <div className="combobox">
            <input
              id={ids.field}
              name="partial_command"
              required
              maxLength={2000}
              className="code"
              autoComplete="off"
              spellCheck={false}
              placeholder="e.g. git st"
              role="combobox"
              aria-autocomplete="list"
              aria-expanded={options.length > 0}
              aria-controls={ids.list}
              aria-activedescendant={options.length && active >= 0 ? optionId(active) : undefined}
              aria-describedby={ids.help}
              value={value}
              onChange={(e) => {
                setValue(e.target.value);
                setOpen(false);
              }}
              onKeyDown={(e) => {
                if (!options.length) return;
                if (e.key === "ArrowDown" || e.key === "ArrowUp") {
                  e.preventDefault();
                  const step = e.key === "ArrowDown" ? 1 : -1;
                  setActive((a) => (a + step + options.length) % options.length);
                } else if (e.key === "Enter" && active >= 0) {
                  e.preventDefault();
                  take(options[active]!);
                } else if (e.key === "Escape") {
                  e.preventDefault();
                  setOpen(false);
                  setStatus("Closed the completions.");
                }
              }}
            />
            <div id={ids.list} role="listbox" aria-label="Completions" className="completions" hidden={!options.length}>
              {options.map((c, i) => (
                // Chosen by keyboard through the field (aria-activedescendant), so focus stays in it; tabIndex -1 lets a click focus it.
                // biome-ignore lint/a11y/useKeyWithClickEvents: the field above handles the keys for the whole list
                <div key={c} id={optionId(i)} role="option" tabIndex={-1} aria-selected={i === active} className="code" onClick={() => take(c)}>
                  {c}
                </div>
              ))}
            </div>
          </div>
        </div>
        <p id={ids.help} className="muted small">
          Enter asks your AI provider for completions; then ↓ and ↑ choose one, Enter takes it, Escape closes the list.
        </p>
        <div className="actions start">
          <button type="submit" className="primary" disabled={complete.isPending}>
            {complete.isPending ? "Asking…" : "Complete"}
          </button>
          <CopyButton value={value} />
          <span className="muted small" role="status">
            {status}
          </span>
        </div>
      </form>
      <AiError error={complete.error} />
    </section>
  );
}

function CopyButton({ value }: { value: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      disabled={!value.trim()}
      onClick={() =>
        void navigator.clipboard.writeText(value).then(
          () => setCopied(true),
          () => setCopied(false),
        )
      }
      onBlur={() => setCopied(false)}
    >
      {copied ? "Copied" : "Copy command"}
    </button>
  );
}

/** Why a command failed, and what to try. */
export function ExplainCommand() {
  const ids = { command: useId(), error: useId(), heading: useId() };
  const explain = useMutation({
    mutationFn: (body: { command: string; error: string }) => unwrap(api.POST("/ai/explain", { body: { ...body, model: "claude-3-haiku" } })),
  });
  return (
    <section aria-labelledby={ids.heading}>
      <form
        className="stack-form"
        onSubmit={(e) => {
          e.preventDefault();
          const data = new FormData(e.currentTarget);
          explain.mutate({ command: String(data.get("command")), error: String(data.get("error")) });
        }}
      >
        <h2 id={ids.heading} className="section-title">
          Explain a command
        </h2>
        <div className="fields">
          <label htmlFor={ids.command}>Command</label>
          <input id={ids.command} name="command" required maxLength={2000} className="code" autoComplete="off" spellCheck={false} placeholder="e.g. cd /srv/app" />
          <label htmlFor={ids.error}>What it said</label>
          <textarea id={ids.error} name="error" required maxLength={8000} rows={3} className="code" spellCheck={false} placeholder="e.g. cd: /srv/app: No such file or directory" />
        </div>
        <div>
          <button type="submit" className="primary" disabled={explain.isPending}>
            {explain.isPending ? "Asking…" : "Explain"}
          </button>
        </div>
      </form>
      <AiError error={explain.error} />
      {explain.data ? (
        <section className="notice" aria-label="Explanation" aria-live="polite">
          <p>{explain.data.explanation}</p>
          {explain.data.suggestions.length ? (
            <>
              <p>Try:</p>
              <ul>
                {explain.data.suggestions.map((s) => (
                  <li key={s}>
                    <code>{s}</code>
                  </li>
                ))}
              </ul>
            </>
          ) : null}
        </section>
      ) : null}
    </section>
  );
}
