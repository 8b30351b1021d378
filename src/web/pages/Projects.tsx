import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useRef, useState } from "react";
import { Link } from "@tanstack/react-router";
import { api, type Project, unwrap } from "../api/client";
import { can } from "../permissions";
import { orgsQuery, projectsQuery } from "../queries";
import { ConfirmMutation } from "../ui/ConfirmMutation";
import { ErrorMessage } from "../ui/ErrorMessage";
import { CardList, Empty } from "../ui/ListState";
import { Page } from "../ui/Page";
import { usePageTitle } from "../ui/title";


export function Projects({ orgSlug }: { orgSlug: string }) {
  usePageTitle("Projects");
  const queryClient = useQueryClient();
  const orgs = useQuery(orgsQuery);
  const projects = useQuery(projectsQuery(orgSlug));
  const org = orgs.data?.find((o) => o.slug === orgSlug);
  const canWrite = !org || can(org.role, "project:create");
  const [status, setStatus] = useState("");
  /**
   * After a change, the list as the server has it now. A first load still in flight may
   * have been read before the change, and a refetch would only join it: cancel it first.
   */
  const refresh = async () => {
    const { queryKey } = projectsQuery(orgSlug);
    await queryClient.cancelQueries({ queryKey });
    await queryClient.invalidateQueries({ queryKey });
  };

  const nameInput = useRef<HTMLInputElement>(null);
  const createId = useId();
  const create = useMutation({
    mutationFn: (name: string) => unwrap(api.POST("/org/{slug}/projects", { params: { path: { slug: orgSlug } }, body: { name } })),
    onSuccess: async ({ project }, _name) => {
      if (nameInput.current) nameInput.current.value = "";
      setStatus(`Created project ${project.name}.`);
      await refresh();
    },
  });

  return (
    <Page id="projects-heading" title="Projects" subtitle={org ? `in ${org.name}` : null} status={status}>

      {canWrite ? (
        <form
          className="inline-form"
          aria-label="Create a project"
          onSubmit={(e) => {
            e.preventDefault();
            create.mutate(String(new FormData(e.currentTarget).get("name")).trim());
          }}
        >
          <label htmlFor={createId}>New project name</label>
          <input id={createId} ref={nameInput} name="name" required maxLength={60} placeholder="e.g. Billing API" />
          <button type="submit" className="primary" disabled={create.isPending}>
            {create.isPending ? "Creating…" : "Create project"}
          </button>
        </form>
      ) : null}
      <ErrorMessage error={create.error} />

      <CardList
        query={projects}
        loading="Loading projects…"
        label="Projects"
        empty={
          <Empty title="No projects yet">
            {canWrite
              ? "A project groups the apps and instances of one product. Name your first one above and press Create project."
              : "No project here is shared with you yet. Ask an owner or admin of this organization to create one or give you access."}
          </Empty>
        }
      >
        {(p) => (
          <ProjectRow
            key={p.id}
            orgSlug={orgSlug}
            project={p}
            canRename={can(p.role ?? org?.role, "project:update")}
            canDelete={can(p.role ?? org?.role, "project:delete")}
            canPause={can(p.role ?? org?.role, "project:lifecycle")}
            onChanged={async (message) => {
              setStatus(message);
              await refresh();
            }}
          />
        )}
      </CardList>
    </Page>
  );
}

function ProjectRow(props: { orgSlug: string; project: Project; canRename: boolean; canDelete: boolean; canPause: boolean; onChanged: (message: string) => Promise<void> }) {
  const { project, orgSlug } = props;
  const [renaming, setRenaming] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const renameId = useId();
  const params = { path: { slug: orgSlug, projectSlug: project.slug } };

  const rename = useMutation({
    mutationFn: (name: string) => unwrap(api.PATCH("/org/{slug}/projects/{projectSlug}", { params, body: { name } })),
    onSuccess: async ({ project: updated }) => {
      setRenaming(false);
      await props.onChanged(`Renamed ${project.name} to ${updated.name}.`);
    },
  });
  const paused = project.status === "paused";
  const lifecycle = useMutation({
    mutationFn: () =>
      paused ? unwrap(api.POST("/org/{slug}/projects/{projectSlug}/resume", { params })) : unwrap(api.POST("/org/{slug}/projects/{projectSlug}/pause", { params })),
    onSuccess: ({ project: updated }) => props.onChanged(`${updated.name} is ${updated.status === "paused" ? "paused" : "active again"}.`),
  });
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE("/org/{slug}/projects/{projectSlug}", { params })),
    onSuccess: async () => {
      setConfirming(false);
      await props.onChanged(`Deleted project ${project.name}.`);
    },
  });

  return (
    <li className="card">
      {renaming ? (
        <form
          className="inline-form"
          aria-label={`Rename ${project.name}`}
          onSubmit={(e) => {
            e.preventDefault();
            rename.mutate(String(new FormData(e.currentTarget).get("name")).trim());
          }}
        >
          <label htmlFor={renameId}>New name for {project.name}</label>
          {/* biome-ignore lint/a11y/noAutofocus: the field the person just asked to edit */}
          <input id={renameId} name="name" defaultValue={project.name} required maxLength={60} autoFocus />
          <button type="submit" className="primary" disabled={rename.isPending}>
            Save
          </button>
          <button
            type="button"
            onClick={() => {
              setRenaming(false);
              rename.reset();
            }}
          >
            Cancel
          </button>
          <ErrorMessage error={rename.error} />
        </form>
      ) : (
        <>
          <div>
            <h2 className="card-title">{project.name}</h2>
            <p className="muted small">
              {project.slug} · {project.environment} · {project.status === "paused" ? "paused" : "active"}
              {project.region ? ` · ${project.region}` : ""}
            </p>
          </div>
          <div className="actions">
            <Link to="/orgs/$orgSlug/projects/$projectId/instances" params={{ orgSlug: props.orgSlug, projectId: project.id }} className="button" aria-label={`Instances of ${project.name}`}>
              Instances
            </Link>
            <Link to="/orgs/$orgSlug/projects/$projectId/apps" params={{ orgSlug: props.orgSlug, projectId: project.id }} className="button" aria-label={`Apps of ${project.name}`}>
              Apps
            </Link>
            <Link to="/orgs/$orgSlug/projects/$projectId/jobs" params={{ orgSlug: props.orgSlug, projectId: project.id }} className="button" aria-label={`Jobs of ${project.name}`}>
              Jobs
            </Link>
            {props.canPause ? (
              <button type="button" onClick={() => lifecycle.mutate()} disabled={lifecycle.isPending} aria-label={`${paused ? "Resume" : "Pause"} ${project.name}`}>
                {paused ? "Resume" : "Pause"}
              </button>
            ) : null}
            {props.canRename ? (
              <button type="button" onClick={() => setRenaming(true)} aria-label={`Rename ${project.name}`}>
                Rename
              </button>
            ) : null}
            {props.canDelete ? (
              <button type="button" className="danger-outline" onClick={() => setConfirming(true)} aria-label={`Delete ${project.name}`}>
                Delete
              </button>
            ) : null}
          </div>
        </>
      )}
      <ErrorMessage error={lifecycle.error} />
      <ConfirmMutation open={confirming} onClose={() => setConfirming(false)} mutation={remove} title={`Delete ${project.name}?`} confirmLabel="Delete project">
        <p>
          <strong>{project.name}</strong> leaves this organization for everyone in it, and its slug ({project.slug}) becomes free for a new project. This cannot be undone from the dashboard.
        </p>
      </ConfirmMutation>
    </li>
  );
}
