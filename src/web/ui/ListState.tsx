import { ErrorMessage } from "./ErrorMessage";

/** What the pages read of a query: whether it is loading, its failure, its list. */
type ListQuery<T> = { isPending: boolean; error: unknown; data: readonly T[] | undefined };

/** A query's loading line and failure, each shown only while it applies. */
export function QueryState({ query, loading }: { query: Pick<ListQuery<unknown>, "isPending" | "error">; loading: string }) {
  return (
    <>
      {query.isPending ? <p aria-busy="true">{loading}</p> : null}
      <ErrorMessage error={query.error} />
    </>
  );
}

/** The box that stands where a list has nothing yet (or may not be shown): an optional heading and a line of what to do. */
export function Empty({ title, children }: { title?: string; children: React.ReactNode }) {
  return (
    <div className="empty">
      {title ? <h2>{title}</h2> : null}
      <p>{children}</p>
    </div>
  );
}

/** Items as cards in a labelled list; with `empty`, that instead when there are none. */
export function Cards<T>(props: { label: string; items: readonly T[]; empty?: React.ReactNode; children: (item: T) => React.ReactNode }) {
  if (props.items.length === 0 && props.empty !== undefined) return props.empty;
  return (
    <ul className="cards" aria-label={props.label}>
      {props.items.map(props.children)}
    </ul>
  );
}

/** A query's list in all its states: loading, failed, empty (`empty`), and its items as cards. */
export function CardList<T>(props: { query: ListQuery<T>; loading: string; label: string; empty: React.ReactNode; children: (item: T) => React.ReactNode }) {
  return (
    <>
      <QueryState query={props.query} loading={props.loading} />
      {props.query.data ? (
        <Cards label={props.label} items={props.query.data} empty={props.empty}>
          {props.children}
        </Cards>
      ) : null}
    </>
  );
}
