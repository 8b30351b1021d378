import { ApiError, describeError } from "../api/errors";

/** A failure in words, announced to screen readers, with the reference to quote when asking for help (and, as children, what to do about it). */
export function ErrorMessage({ error, id, children }: { error: unknown; id?: string; children?: React.ReactNode }) {
  if (!error) return null;
  const requestId = error instanceof ApiError ? error.requestId : undefined;
  return (
    <div className="error" role="alert" id={id}>
      <p>{describeError(error)}</p>
      {children}
      {requestId ? <p className="muted small">Reference: {requestId}</p> : null}
    </div>
  );
}
