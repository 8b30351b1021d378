/** A terminal session as its TerminalDO holds it: what runs where, for whom. */
import type { Actor } from "../../services/audit";

export interface Session {
  id: string;
  kind: "app" | "ssh" | "host";
  appId: string;
  hostId: string;
  orgId: string;
  projectId: string;
  opener: Actor;
  cmd: string[];
  startedAt: number;
  cols: number;
  rows: number;
  /** An SSH session: where to, with which profile (an unlisted one for inline credentials, deleted once used). */
  ssh?: { profileId: string; adhoc: boolean; host: string; port: number; username: string; fingerprint: string | null; pinned: boolean };
}

export type Phase = "starting" | "running" | "ended";
