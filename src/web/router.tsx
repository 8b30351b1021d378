/**
 * The dashboard's pages, with TanStack Router (typed paths and params, redirects before a
 * page renders). Signed-in pages sit under one layout route that asks the session first.
 */
import type { QueryClient } from "@tanstack/react-query";
import { createRootRouteWithContext, createRoute, createRouter, Outlet, redirect } from "@tanstack/react-router";
import { sessionQuery } from "./auth";
import { AppShell } from "./pages/AppShell";
import { NotFound } from "./pages/NotFound";
import { Projects } from "./pages/Projects";
import { SignIn } from "./pages/SignIn";
import { SignUp } from "./pages/SignUp";
import { orgsQuery } from "./queries";

type Context = { queryClient: QueryClient };

const rootRoute = createRootRouteWithContext<Context>()({
  component: Outlet,
  notFoundComponent: NotFound,
});

/** Signed-out pages send a signed-in person on to their projects. */
async function redirectIfSignedIn({ context }: { context: Context }) {
  const session = await context.queryClient.ensureQueryData(sessionQuery);
  if (session) throw redirect({ to: "/" });
}

const signInRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/sign-in",
  validateSearch: (search: Record<string, unknown>): { redirect?: string } =>
    typeof search.redirect === "string" ? { redirect: search.redirect } : {},
  beforeLoad: redirectIfSignedIn,
  component: function SignInPage() {
    return <SignIn redirect={signInRoute.useSearch().redirect} />;
  },
});

const signUpRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/sign-up",
  beforeLoad: redirectIfSignedIn,
  component: SignUp,
});

const appRoute = createRoute({
  getParentRoute: () => rootRoute,
  id: "app",
  beforeLoad: async ({ context, location }) => {
    const session = await context.queryClient.ensureQueryData(sessionQuery);
    if (!session) throw redirect({ to: "/sign-in", search: location.href === "/" ? {} : { redirect: location.href } });
  },
  component: AppShell,
});

/** `/` is the projects of the org you were last in, else your personal org. */
const homeRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/",
  beforeLoad: async ({ context }) => {
    const orgs = await context.queryClient.ensureQueryData(orgsQuery);
    const last = localStorage.getItem("berth-org");
    const org = orgs.find((o) => o.slug === last) ?? orgs.find((o) => o.personal) ?? orgs[0];
    if (org) throw redirect({ to: "/orgs/$orgSlug/projects", params: { orgSlug: org.slug } });
  },
  component: () => (
    <div className="empty">
      <h1>No organization yet</h1>
      <p>You are not a member of any organization. Ask an owner to invite you, then open the link in the invitation.</p>
    </div>
  ),
});

const orgRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/orgs/$orgSlug",
  beforeLoad: ({ params }) => {
    localStorage.setItem("berth-org", params.orgSlug);
  },
});

const orgHomeRoute = createRoute({
  getParentRoute: () => orgRoute,
  path: "/",
  beforeLoad: ({ params }) => {
    throw redirect({ to: "/orgs/$orgSlug/projects", params });
  },
});

const projectsRoute = createRoute({
  getParentRoute: () => orgRoute,
  path: "/projects",
  loader: ({ context }) => {
    // Start the request before the page renders; the page shows its own error if it fails.
    void context.queryClient.prefetchQuery(orgsQuery);
  },
  component: function ProjectsPage() {
    const { orgSlug } = projectsRoute.useParams();
    return <Projects orgSlug={orgSlug} />;
  },
});

const routeTree = rootRoute.addChildren([signInRoute, signUpRoute, appRoute.addChildren([homeRoute, orgRoute.addChildren([orgHomeRoute, projectsRoute])])]);

export function makeRouter(queryClient: QueryClient) {
  return createRouter({ routeTree, context: { queryClient }, defaultPreload: "intent", scrollRestoration: true });
}

declare module "@tanstack/react-router" {
  interface Register {
    router: ReturnType<typeof makeRouter>;
  }
}
