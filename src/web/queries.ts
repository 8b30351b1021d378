/** Server state the pages share, as TanStack Query options: one key per thing, typed by the generated client. */
import { queryOptions, useQuery } from "@tanstack/react-query";
import { api, unwrap } from "./api/client";

export const orgsQuery = queryOptions({
  queryKey: ["orgs"],
  queryFn: ({ signal }) => unwrap(api.GET("/orgs", { signal })).then((d) => d.orgs),
});

export const projectsQuery = (orgSlug: string) =>
  queryOptions({
    queryKey: ["orgs", orgSlug, "projects"],
    queryFn: ({ signal }) => unwrap(api.GET("/org/{slug}/projects", { params: { path: { slug: orgSlug } }, signal })).then((d) => d.projects),
  });

/** The org of the page and the caller's role in it (undefined until the list arrives, or when not a member). */
export function useOrg(orgSlug: string) {
  const orgs = useQuery(orgsQuery);
  const org = orgs.data?.find((o) => o.slug === orgSlug);
  return { org, role: org?.role, orgs };
}

export const membersQuery = (orgSlug: string) =>
  queryOptions({
    queryKey: ["orgs", orgSlug, "members"],
    queryFn: ({ signal }) => unwrap(api.GET("/org/{slug}/members", { params: { path: { slug: orgSlug } }, signal })).then((d) => d.members),
  });

export const orgKeysQuery = (orgSlug: string) =>
  queryOptions({
    queryKey: ["orgs", orgSlug, "api-keys"],
    queryFn: ({ signal }) => unwrap(api.GET("/org/{slug}/api-keys", { params: { path: { slug: orgSlug } }, signal })).then((d) => d.keys),
  });

/** The person's notifications in one org, with the unread count the navigation shows. */
export const notificationsQuery = (orgSlug: string) =>
  queryOptions({
    queryKey: ["orgs", orgSlug, "notifications"],
    queryFn: ({ signal }) => unwrap(api.GET("/org/{slug}/notifications", { params: { path: { slug: orgSlug }, query: { limit: 100 } }, signal })),
  });

export const personalKeysQuery = queryOptions({
  queryKey: ["api-keys"],
  queryFn: ({ signal }) => unwrap(api.GET("/api-keys", { signal })),
});

export type AuditFilter = { action?: string; from?: string; to?: string; offset: number; limit: number };

export const auditQuery = (orgSlug: string, filter: AuditFilter) =>
  queryOptions({
    queryKey: ["orgs", orgSlug, "audit", filter],
    queryFn: ({ signal }) => unwrap(api.GET("/org/{slug}/audit", { params: { path: { slug: orgSlug }, query: filter }, signal })).then((d) => d.events),
  });

export const hostsQuery = (orgSlug: string) =>
  queryOptions({
    queryKey: ["orgs", orgSlug, "hosts"],
    queryFn: ({ signal }) => unwrap(api.GET("/org/{slug}/hosts", { params: { path: { slug: orgSlug } }, signal })).then((d) => d.hosts),
  });

export const instancesQuery = (projectId: string) =>
  queryOptions({
    queryKey: ["projects", projectId, "instances"],
    queryFn: ({ signal }) => unwrap(api.GET("/projects/{project}/instances", { params: { path: { project: projectId } }, signal })).then((d) => d.instances),
  });

/** The catalog changes only with a migration: fetched once a session. */
export const plansQuery = queryOptions({
  queryKey: ["plans"],
  queryFn: ({ signal }) => unwrap(api.GET("/plans", { signal })).then((d) => d.plans),
  staleTime: Number.POSITIVE_INFINITY,
});

export const imagesQuery = queryOptions({
  queryKey: ["images"],
  queryFn: ({ signal }) => unwrap(api.GET("/images", { signal })).then((d) => d.images),
  staleTime: Number.POSITIVE_INFINITY,
});

/*
 * A project's live things sit under ["projects", projectId, …], so one event from the
 * project's socket (live.ts) can refresh them all at once.
 */
export const appsQuery = (projectId: string) =>
  queryOptions({
    queryKey: ["projects", projectId, "apps"],
    queryFn: ({ signal }) => unwrap(api.GET("/projects/{projectId}/apps", { params: { path: { projectId } }, signal })),
  });

export const appQuery = (projectId: string, appId: string) =>
  queryOptions({
    queryKey: ["projects", projectId, "apps", appId],
    queryFn: ({ signal }) => unwrap(api.GET("/apps/{appId}", { params: { path: { appId } }, signal })),
  });

export const deploymentsQuery = (projectId: string, appId: string) =>
  queryOptions({
    queryKey: ["projects", projectId, "apps", appId, "deployments"],
    queryFn: ({ signal }) => unwrap(api.GET("/apps/{appId}/deployments", { params: { path: { appId }, query: { limit: 20 } }, signal })),
  });

/** Samples of the container now and over the last `minutes`: not job state, so asked on a timer rather than on events. */
export const statsQuery = (projectId: string, appId: string) =>
  queryOptions({
    queryKey: ["projects", projectId, "apps", appId, "stats", "now"],
    queryFn: ({ signal }) => unwrap(api.GET("/apps/{appId}/stats", { params: { path: { appId } }, signal })),
  });

export const statsHistoryQuery = (projectId: string, appId: string, minutes: number) =>
  queryOptions({
    queryKey: ["projects", projectId, "apps", appId, "stats", "history", minutes],
    queryFn: ({ signal }) => unwrap(api.GET("/apps/{appId}/stats/history", { params: { path: { appId }, query: { minutes } }, signal })),
  });

/** The project's 50 newest jobs, or only those about one app or instance. */
export const jobsQuery = (projectId: string, subject?: string) =>
  queryOptions({
    queryKey: ["projects", projectId, "jobs", { subject: subject ?? null }],
    queryFn: ({ signal }) =>
      unwrap(api.GET("/projects/{project}/jobs", { params: { path: { project: projectId }, query: subject ? { instance: subject } : {} }, signal })).then((d) => d.jobs),
  });

export const jobLogsQuery = (projectId: string, jobId: string) =>
  queryOptions({
    queryKey: ["projects", projectId, "job-logs", jobId],
    queryFn: ({ signal }) => unwrap(api.GET("/projects/{project}/jobs/{job}/logs", { params: { path: { project: projectId, job: jobId } }, signal })).then((d) => d.logs),
  });

/*
 * DevPocket: a person's own SSH profiles and command history (within one org), AI key,
 * devices and sync. Everything under ["devpocket", …] is the signed-in person's alone.
 */
export const sshProfilesQuery = (orgSlug: string) =>
  queryOptions({
    queryKey: ["devpocket", "ssh-profiles", orgSlug],
    queryFn: ({ signal }) => unwrap(api.GET("/ssh/profiles", { params: { query: { org: orgSlug } }, signal })),
  });

export type CommandFilter = { search?: string; status?: "pending" | "running" | "success" | "error"; profile_id?: string; offset: number; limit: number };

export const commandHistoryQuery = (orgSlug: string, filter: CommandFilter) =>
  queryOptions({
    queryKey: ["devpocket", "commands", orgSlug, filter],
    queryFn: ({ signal }) => unwrap(api.GET("/commands/history", { params: { query: { org: orgSlug, ...filter } }, signal })),
  });

export const commandQuery = (commandId: string) =>
  queryOptions({
    queryKey: ["devpocket", "commands", "one", commandId],
    queryFn: ({ signal }) => unwrap(api.GET("/commands/{command_id}", { params: { path: { command_id: commandId } }, signal })),
  });

export const aiKeyQuery = queryOptions({
  queryKey: ["devpocket", "ai-key"],
  queryFn: ({ signal }) => unwrap(api.GET("/ai/key", { signal })),
});

export const devicesQuery = queryOptions({
  queryKey: ["devpocket", "devices"],
  queryFn: ({ signal }) => unwrap(api.GET("/user/devices", { signal })),
});

export const syncStatsQuery = queryOptions({
  queryKey: ["devpocket", "sync-stats"],
  queryFn: ({ signal }) => unwrap(api.GET("/sync/stats", { signal })),
});

/** The person's linked OAuth accounts (GitHub), and the repositories and branches read with it. */
export const oauthAccountsQuery = queryOptions({
  queryKey: ["account", "oauth-accounts"],
  queryFn: ({ signal }) => unwrap(api.GET("/auth/oauth/accounts", { signal })),
});

export const gitReposQuery = queryOptions({
  queryKey: ["git", "repos"],
  queryFn: ({ signal }) => unwrap(api.GET("/git/repos", { params: { query: { provider: "github" } }, signal })),
  staleTime: 60_000,
});

export const gitBranchesQuery = (fullName: string) =>
  queryOptions({
    queryKey: ["git", "branches", fullName],
    queryFn: ({ signal }) => {
      const [owner = "", repo = ""] = fullName.split("/");
      return unwrap(api.GET("/git/repos/{owner}/{repo}/branches", { params: { path: { owner, repo }, query: { provider: "github" } }, signal }));
    },
    staleTime: 60_000,
  });
