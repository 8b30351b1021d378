/** The commands page's address: the history filters GET /commands/history takes (search, status, profile_id) and the page. */
export const COMMANDS_PAGE_SIZE = 20;

export const COMMAND_STATUSES = ["pending", "running", "success", "error"] as const;
export type CommandStatus = (typeof COMMAND_STATUSES)[number];

export type CommandSearch = { q?: string; status?: CommandStatus; profile?: string; page?: number };

/** The page's address, checked: anything malformed is dropped rather than sent on. */
export function parseCommandSearch(search: Record<string, unknown>): CommandSearch {
  const out: CommandSearch = {};
  if (typeof search.q === "string" && search.q.length > 0 && search.q.length <= 200) out.q = search.q;
  if (typeof search.status === "string" && (COMMAND_STATUSES as readonly string[]).includes(search.status)) out.status = search.status as CommandStatus;
  if (typeof search.profile === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(search.profile)) out.profile = search.profile;
  const page = Number(search.page);
  if (Number.isInteger(page) && page > 1 && page <= 5000) out.page = page;
  return out;
}
