/**
 * A page of the dashboard: a section named by its h1, with a subtitle beside the heading
 * and, when the page reports what it did, a polite live region for screen readers.
 */
export function Page(props: { id: string; title: string; subtitle?: React.ReactNode; status?: string; children: React.ReactNode }) {
  return (
    <section aria-labelledby={props.id}>
      <div className="page-head">
        <h1 id={props.id}>{props.title}</h1>
        {props.subtitle ? <p className="muted">{props.subtitle}</p> : null}
      </div>
      {props.status === undefined ? null : <Status>{props.status}</Status>}
      {props.children}
    </section>
  );
}

/** What just happened, said to screen readers only (e.g. "Deleted host web-1."). */
export function Status({ children }: { children: string }) {
  return (
    <p className="sr-only" role="status" aria-live="polite">
      {children}
    </p>
  );
}
