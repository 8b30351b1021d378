/**
 * A project's input rules, written once: the fields every family takes (name, environment),
 * each family's create and update shapes derived from them, and one mapper from any of them
 * to what the projects service stores. Suble and Dockup (`/projects`) take one-character
 * names and a `null` name in a PATCH (left as it is); backlex (`/org/{slug}/projects`)
 * wants two characters, as its document says.
 */
import { z } from "@hono/zod-openapi";
import { SLUG_PATTERN } from "../../lib/slug";
import { name, REGIONS, slugParam } from "../schemas";

export const PROJECT_ENVIRONMENTS = ["production", "staging", "development"] as const;

const fields = (minName: number) => z.object({ name: name(60, minName), environment: z.enum(PROJECT_ENVIRONMENTS).optional() });
const ProjectFields = fields(1);
const OrgProjectFields = fields(2);

export const ProjectParams = z.object({ project: slugParam("project").openapi({ description: "Project id (prj_…)" }) });

/** Suble's and Dockup's `POST /projects`. */
export const CreateProjectInput = ProjectFields.extend({
  slug: z.string().regex(SLUG_PATTERN, "lowercase letters, digits and hyphens").max(48).optional(),
  category: z.string().max(40).optional(),
  org: z.string().max(100).optional().openapi({ description: "Org slug or id; defaults to the caller's personal org (or the key's org)." }),
}).openapi("CreateProjectInput");

/** Suble's `PATCH /projects/{project}`: every field optional, a `null` name leaves the name. */
export const UpdateProjectInput = ProjectFields.partial().extend({ name: ProjectFields.shape.name.nullable().optional() });

/** backlex's `POST /org/{slug}/projects`. */
export const CreateOrgProjectInput = OrgProjectFields.extend({
  region: z.enum(REGIONS).optional(),
  dbType: z.enum(["d1"]).optional(),
  template: z.string().max(40).optional(),
}).openapi("CreateOrgProjectInput");

/** backlex's `PATCH /org/{slug}/projects/{projectSlug}`. */
export const UpdateOrgProjectInput = OrgProjectFields.partial().openapi("UpdateProjectInput");

type AnyCreate = z.infer<typeof CreateProjectInput> | z.infer<typeof CreateOrgProjectInput>;
type AnyUpdate = z.infer<typeof UpdateProjectInput> | z.infer<typeof UpdateOrgProjectInput>;

/** What the service stores for a new project, from either family's input; the org's region unless one is named. */
export function newProjectSettings(input: AnyCreate, org: { id: string; defaultRegion: string }, createdBy: string | null) {
  return {
    orgId: org.id,
    name: input.name,
    slug: "slug" in input ? input.slug : undefined,
    category: "category" in input ? input.category : undefined,
    environment: input.environment,
    region: ("region" in input ? input.region : undefined) ?? org.defaultRegion,
    createdBy,
  };
}

/** The fields an update changes: what was sent, less what was left out or `null`. */
export function projectPatch(input: AnyUpdate): { name?: string; environment?: (typeof PROJECT_ENVIRONMENTS)[number] } {
  return { ...(input.name ? { name: input.name } : {}), ...(input.environment ? { environment: input.environment } : {}) };
}
