/** Server state the pages share, as TanStack Query options: one key per thing, typed by the generated client. */
import { queryOptions } from "@tanstack/react-query";
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
