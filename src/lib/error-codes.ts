/**
 * Every error code Berth answers with, its HTTP status and what it means: the one list
 * the code throws from (ApiError takes a code, the status comes from here), the OpenAPI
 * document describes (errorResponses), and the README lists. Codes follow the seeds'.
 */
export const ERROR_CODES = {
  // request shape
  invalid_request: { status: 400, means: "The request fails validation; `details.issues` lists each problem" },
  invalid_json: { status: 400, means: "The body is not JSON" },
  invalid_token: { status: 400, means: "A reset token is invalid, used or expired" },
  invalid_name: { status: 400, means: "The name is missing, blank or not allowed (Suble's projects)" },
  invalid_email: { status: 400, means: "The email is missing or not an address (Suble's project members)" },
  invalid_key: { status: 400, means: "Not a single-line OpenSSH public key" },
  plan_too_small: { status: 400, means: "The plan is below what the image needs, or would shrink the instance's disk (disks only grow)" },
  source_not_supported: { status: 400, means: "Instances can be created from an OS image only for now; templates and one-click apps come later" },
  backup_not_supported: { status: 400, means: "Berth takes no VM backups yet: ask with backup (or final_backup) false" },
  payload_too_large: { status: 413, means: "The body is too large" },
  upgrade_required: { status: 426, means: "A WebSocket endpoint was called without an upgrade" },
  // who is calling
  unauthorized: { status: 401, means: "No valid credential" },
  invalid_credentials: { status: 401, means: "Email, username or password is wrong" },
  invalid_refresh: { status: 401, means: "The refresh token is invalid, used or expired" },
  invalid_join_token: { status: 401, means: "The join token is unknown or already used" },
  join_token_expired: { status: 401, means: "The join token expired" },
  invalid_host_credential: { status: 401, means: "The host credential is not valid (host deleted or re-joined)" },
  forbidden: { status: 403, means: "The credential may not do this" },
  origin_not_allowed: { status: 403, means: "A cookie-authenticated request from an untrusted origin" },
  invitation_email_mismatch: { status: 403, means: "The invitation was sent to another address" },
  rate_limited: { status: 429, means: "Too many attempts; wait a minute" },
  // what it is about
  not_found: { status: 404, means: "Not found, or not visible to this credential" },
  project_not_found: { status: 404, means: "No such project, or not visible to this credential" },
  user_not_found: { status: 404, means: "No such user" },
  invitation_not_found: { status: 404, means: "No pending invitation for that token" },
  api_key_not_found: { status: 404, means: "No such live API key" },
  host_not_found: { status: 404, means: "No such host" },
  job_not_found: { status: 404, means: "No such job" },
  app_not_found: { status: 404, means: "No such app" },
  volume_not_found: { status: 404, means: "No volume is attached to the app at that mount path" },
  registry_not_found: { status: 404, means: "No such registry" },
  instance_not_found: { status: 404, means: "No live instance with this id in the project" },
  plan_not_found: { status: 404, means: "No active plan with this code" },
  image_not_found: { status: 404, means: "No active OS image with this id" },
  profile_not_found: { status: 404, means: "No such SSH profile of yours" },
  command_not_found: { status: 404, means: "No such command in your history" },
  // state
  slug_taken: { status: 409, means: "The slug is in use" },
  volume_exists: { status: 409, means: "A volume is already attached to the app at that mount path" },
  email_taken: { status: 409, means: "An account with this email exists" },
  username_taken: { status: 409, means: "The username is taken" },
  already_member: { status: 409, means: "Already a member" },
  last_owner: { status: 409, means: "The last owner can be neither demoted nor removed" },
  personal_org: { status: 409, means: "A personal org cannot be deleted or left" },
  registry_exists: { status: 409, means: "Credentials for that registry exist" },
  job_finished: { status: 409, means: "The job already ended" },
  lease_stale: { status: 409, means: "The lease is no longer valid: drop the work" },
  no_host_available: { status: 409, means: "No online host of the org can take the work" },
  not_deployed: { status: 409, means: "The app has no deployment yet" },
  not_running: { status: 409, means: "The app has no running container" },
  name_taken: { status: 409, means: "A live instance of the project has this name" },
  project_not_empty: { status: 409, means: "The project still has instances that are not deleted" },
  invalid_state: { status: 409, means: "The instance's status does not allow this action now" },
  operation_in_progress: { status: 409, means: "The instance is busy with another job, or not running or stopped" },
  host_key_mismatch: { status: 409, means: "The SSH server's host key is not the one pinned on the profile: refused (reset the pin if the server's key really changed)" },
  target_required: { status: 400, means: "Commands run over SSH: name a profile (profile_id); a host only picks where the SSH client runs" },
  env_vars_unreadable: { status: 409, means: "Stored env vars cannot be decrypted with the current key" },
  // the other side
  agent_error: { status: 502, means: "The host's agent could not answer" },
  ssh_auth_failed: { status: 502, means: "The SSH server refused the profile's credentials" },
  ssh_unreachable: { status: 502, means: "The SSH server could not be reached from the host" },
  ssh_failed: { status: 502, means: "The SSH connection failed (see the message)" },
  ssh_timeout: { status: 504, means: "No answer from the host within the wait; the work goes on as a job" },
  host_unreachable: { status: 503, means: "The host's agent is not connected" },
  not_started: { status: 503, means: "The job has not started under this lease yet" },
  misconfigured: { status: 503, means: "The deployment is missing secrets or settings" },
  internal_error: { status: 500, means: "Something went wrong on Berth's side" },
} as const satisfies Record<string, { status: number; means: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export const statusOf = (code: ErrorCode) => ERROR_CODES[code].status;
