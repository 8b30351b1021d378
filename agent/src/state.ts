/**
 * The agent's state directory (`--state-dir`, default ~/.berth-agent): the
 * host credential (mode 0600) and one folder per job it ran, which is its
 * journal: the command's output, its exit status and the recorded result.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Identity {
  url: string;
  host_id: string;
  credential: string;
  joined_at: string;
  /** Which join token made this credential, so the same token is not exchanged twice. */
  join_token_sha256: string | null;
}

export class StateDir {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
    mkdirSync(join(root, "jobs"), { recursive: true, mode: 0o700 });
    chmodSync(root, 0o700);
  }

  private get identityPath() {
    return join(this.root, "identity.json");
  }

  readIdentity(): Identity | null {
    if (!existsSync(this.identityPath)) return null;
    return JSON.parse(readFileSync(this.identityPath, "utf8")) as Identity;
  }

  writeIdentity(identity: Identity) {
    writeFileAtomic(this.identityPath, `${JSON.stringify(identity, null, 2)}\n`, 0o600);
  }

  jobDir(jobId: string): string {
    if (!/^job_[0-9a-z]+$/.test(jobId)) throw new Error(`unexpected job id ${JSON.stringify(jobId)}`);
    return join(this.root, "jobs", jobId);
  }
}

/** Write-then-rename, so a crash never leaves half a file. */
export function writeFileAtomic(path: string, data: string, mode = 0o600) {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
}
