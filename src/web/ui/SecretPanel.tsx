import { useEffect, useRef } from "react";
import { CopyField } from "./CopyField";

/**
 * A secret the API shows once (a key, a join command, a password), until the person says
 * they have it. Its heading takes focus when it appears, so screen readers read it first.
 */
export function SecretPanel(props: {
  id: string;
  title: React.ReactNode;
  /** Why to copy it now. */
  children: React.ReactNode;
  copy: { label: string; value: string; hint?: React.ReactNode };
  doneLabel: string;
  onDone: () => void;
  primary?: boolean;
  busy?: boolean;
  error?: React.ReactNode;
}) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  return (
    <section className="secret-panel" aria-labelledby={props.id}>
      <h2 id={props.id} ref={heading} tabIndex={-1}>
        {props.title}
      </h2>
      {props.children}
      <CopyField label={props.copy.label} value={props.copy.value} hint={props.copy.hint} />
      <div className="actions start">
        <button type="button" className={props.primary ? "primary" : undefined} onClick={props.onDone} disabled={props.busy}>
          {props.doneLabel}
        </button>
      </div>
      {props.error}
    </section>
  );
}
