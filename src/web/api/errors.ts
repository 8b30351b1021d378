/**
 * Failures as people read them. The API answers every failure with one envelope,
 * `{error: {code, message, details, request_id}}` (backlex's routes say the code in
 * upper case); better-auth's own routes answer `{code, message}`. Both become an
 * `ApiError`, and `describeError` turns any failure into a sentence and, where there
 * is one, the request id to quote when asking for help.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    /** Lower case, whichever dialect the route speaks. */
    readonly code: string,
    message: string,
    readonly requestId?: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

type Envelope = { error?: { code?: unknown; message?: unknown; request_id?: unknown; details?: unknown } };

/** An ApiError from what a route answered (the envelope, or better-auth's `{code, message}`). */
export function toApiError(status: number, body: unknown): ApiError {
  const inner = (body as Envelope | undefined)?.error ?? (body as Envelope["error"]);
  const code = typeof inner?.code === "string" ? inner.code.toLowerCase() : `http_${status}`;
  const message = typeof inner?.message === "string" ? inner.message : "";
  const requestId = typeof inner?.request_id === "string" ? inner.request_id : undefined;
  return new ApiError(status, code, message, requestId, inner?.details);
}

/** What happened, in words, for codes whose own message is not the whole story. */
const WORDS: Record<string, string> = {
  unauthorized: "Your session has ended. Sign in again to continue.",
  forbidden: "Your role in this organization does not allow this. An owner or admin can do it, or change your role.",
  not_found: "This does not exist, or you do not have access to it.",
  project_not_found: "This project does not exist, or you do not have access to it.",
  rate_limited: "Too many attempts in a short time. Wait a minute, then try again.",
  origin_not_allowed: "The server does not trust the address this page was opened from. Open the dashboard at the server's own address.",
  misconfigured: "This Berth server is not configured yet. Ask whoever runs it to finish its setup.",
  internal_error: "Something went wrong on Berth's side. Try again; if it keeps happening, quote the reference below.",
  invalid_credentials: "The email or the password is wrong.",
  invalid_email_or_password: "The email or the password is wrong.",
  user_already_exists: "An account with this email already exists. Sign in instead.",
  user_already_exists_use_another_email: "An account with this email already exists. Sign in instead.",
  email_taken: "An account with this email already exists. Sign in instead.",
  invalid_token: "This reset link is invalid, already used or expired. Ask for a new one.",
  last_owner: "An organization needs an owner: make someone else owner first.",
  already_member: "That person is already a member of this organization.",
  invitation_not_found: "This invitation is no longer valid: it was revoked, already used or has expired. Ask for a new one.",
  invitation_email_mismatch: "This invitation was sent to another email address. Sign in as that address to accept it.",
  api_key_not_found: "This key does not exist any more; it may have been revoked already.",
  host_not_found: "This host does not exist any more; it may have been deleted already.",
  app_not_found: "This app does not exist, or you do not have access to it. It may have been deleted.",
  slug_taken: "That address name is already taken by another app. Pick another one.",
  no_host_available: "No Docker host of this organization is online to run it. Enrol one on the Hosts page, or start its agent, then try again.",
  not_deployed: "This app has not been deployed yet: press Deploy first.",
  not_running: "The app is not running, so there is no usage to show now.",
  host_unreachable: "The app's host is not connected to Berth right now, so it cannot be asked. Check that its agent is running.",
  job_finished: "That job already ended; there is nothing to cancel.",
  profile_not_found: "This SSH profile does not exist any more, or it is not yours.",
  command_not_found: "This command is not in your history, or it is not yours.",
  host_key_mismatch: "The server's host key is not the one pinned on this profile, so Berth refused to connect: someone may be in the middle. If you know the server's key really changed, forget the pinned key on its SSH profile and test it again.",
  ssh_auth_failed: "The SSH server refused the profile's username, password or key. Check them and save the profile again.",
  ssh_unreachable: "The SSH server could not be reached from the host running the SSH client. Check the address and port, and that the server is up.",
  ssh_timeout: "The SSH server did not answer in time.",
  ai_key_missing: "No AI key is stored yet. Save your own key under AI settings first.",
  ai_key_invalid: "The AI provider refused this key. Check that you copied all of it, or make a new one at the provider.",
  ai_quota_exceeded: "The AI provider says this key has no credits left. Top it up at the provider, then try again.",
  ai_rate_limited: "The AI provider is limiting this key right now. Wait a minute, then try again.",
  ai_provider_unavailable: "The AI provider could not be reached. Try again in a moment.",
  ai_provider_timeout: "The AI provider did not answer in time. Try again in a moment.",
  ai_key_unreadable: "Your stored AI key can no longer be read on this server. Save it again.",
  conflict_not_found: "This conflict does not exist any more, or it is not yours.",
  conflict_resolved: "This conflict was already resolved, perhaps from another device.",
};

/** Codes whose message from the API adds what only it knows (the two host keys, the server's own words). */
const WITH_MESSAGE = new Set(["host_key_mismatch", "ssh_auth_failed", "ssh_unreachable"]);

type Issue = { path?: string; message?: string };

/** One sentence a person understands, for any failure. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.code === "invalid_request" || error.code === "validation") {
      const issues = ((error.details as { issues?: Issue[] } | undefined)?.issues ?? []).filter((i) => i.message);
      if (issues.length) return `Please check the form: ${issues.map((i) => (i.path ? `${i.path} ${i.message}` : i.message)).join("; ")}.`;
      return error.message || "Please check the form and try again.";
    }
    const words = WORDS[error.code];
    if (words && WITH_MESSAGE.has(error.code) && error.message) return `${words} (${error.message.replace(/\.$/, "")}.)`;
    if (words) return words;
    if (error.message) return error.message.endsWith(".") ? error.message : `${error.message}.`;
    return `The server answered ${error.status}. Try again in a moment.`;
  }
  if (error instanceof TypeError) return "Berth could not be reached. Check your connection, then try again.";
  return error instanceof Error && error.message ? error.message : "Something went wrong. Try again.";
}
