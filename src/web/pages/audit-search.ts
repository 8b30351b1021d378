/** The audit log's address: the filters the audit route takes (routes/audit.ts: action, from, to) and the page. */
export const AUDIT_PAGE_SIZE = 25;

export type AuditSearch = { action?: string; from?: string; to?: string; page?: number };

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** The page's address, checked: anything malformed is dropped rather than sent on. */
export function parseAuditSearch(search: Record<string, unknown>): AuditSearch {
  const out: AuditSearch = {};
  if (typeof search.action === "string" && /^[a-z_.]{1,80}$/.test(search.action)) out.action = search.action;
  if (typeof search.from === "string" && DAY.test(search.from)) out.from = search.from;
  if (typeof search.to === "string" && DAY.test(search.to)) out.to = search.to;
  const page = Number(search.page);
  if (Number.isInteger(page) && page > 1 && page <= 4000) out.page = page;
  return out;
}
