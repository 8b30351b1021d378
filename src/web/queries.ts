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
