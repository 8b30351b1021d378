import { useId, useState } from "react";

/**
 * A value to copy (a secret, a command): read-only, labelled, wrapped at any width, with a
 * Copy button. Where the clipboard is not allowed, the text is selected for Ctrl+C instead.
 */
export function CopyField({ label, value, hint }: { label: string; value: string; hint?: React.ReactNode }) {
  const id = useId();
  const [status, setStatus] = useState("");
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setStatus("Copied to the clipboard.");
    } catch {
      const field = document.getElementById(id) as HTMLTextAreaElement | null;
      field?.focus();
      field?.select();
      setStatus("Selected: press Ctrl+C (⌘C on a Mac) to copy.");
    }
  };
  return (
    <div className="copy-field">
      <label htmlFor={id}>{label}</label>
      {hint ? <div id={`${id}-hint`}>{hint}</div> : null}
      <textarea
        id={id}
        className="code"
        readOnly
        value={value}
        rows={Math.min(4, Math.ceil(value.length / 60))}
        spellCheck={false}
        aria-describedby={hint ? `${id}-hint` : undefined}
        onFocus={(e) => e.currentTarget.select()}
      />
      <div className="actions start">
        <button type="button" onClick={() => void copy()}>
          Copy
        </button>
        <span className="muted small" role="status">
          {status}
        </span>
      </div>
    </div>
  );
}
