import { ApiError, describeError } from "../api/errors";

/** A failure in words, announced to screen readers, with the reference to quote when asking for help. */
export function ErrorMessage({ error, id }: { error: unknown; id?: string }) {
  if (!error) return null;
  const requestId = error instanceof ApiError ? error.requestId : undefined;
  return (
    <div className="error" role="alert" id={id}>
      <p>{describeError(error)}</p>
      {requestId ? <p className="muted small">Reference: {requestId}</p> : null}
    </div>
  );
}
