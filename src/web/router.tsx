/**
 * The dashboard's pages, with TanStack Router (typed paths and params, redirects before a
 * page renders). Signed-in pages sit under one layout route that asks the session first.
 * Pages past the first visit (sign-in, sign-up, projects) load when first opened.
 */
import type { QueryClient } from "@tanstack/react-query";
import { createRootRouteWithContext, createRoute, createRouter, Outlet, redirect } from "@tanstack/react-router";
import { sessionQuery } from "./auth";
import { AppShell } from "./pages/AppShell";
import { type AuditSearch, parseAuditSearch } from "./pages/audit-search";
import { type CommandSearch, parseCommandSearch } from "./pages/command-search";
import { NotFound } from "./pages/NotFound";
import { Projects } from "./pages/Projects";
import { SignIn } from "./pages/SignIn";
import { SignUp } from "./pages/SignUp";
import { orgsQuery } from "./queries";
import { lazyPage } from "./ui/lazy";

const ForgotPassword = lazyPage(() => import("./pages/ForgotPassword").then((m) => m.ForgotPassword));
const ResetPassword = lazyPage(() => import("./pages/ResetPassword").then((m) => m.ResetPassword));
const AcceptInvitation = lazyPage(() => import("./pages/AcceptInvitation").then((m) => m.AcceptInvitation));
const Members = lazyPage(() => import("./pages/Members").then((m) => m.Members));
const OrgApiKeys = lazyPage(() => import("./pages/ApiKeys").then((m) => m.OrgApiKeys));
const PersonalApiKeys = lazyPage(() => import("./pages/ApiKeys").then((m) => m.PersonalApiKeys));
const Audit = lazyPage(() => import("./pages/Audit").then((m) => m.Audit));
const Hosts = lazyPage(() => import("./pages/Hosts").then((m) => m.Hosts));
const Instances = lazyPage(() => import("./pages/Instances").then((m) => m.Instances));
const Apps = lazyPage(() => import("./pages/Apps").then((m) => m.Apps));
const AppDetail = lazyPage(() => import("./pages/AppDetail").then((m) => m.AppDetail));
const AppTerminal = lazyPage(() => import("./pages/AppTerminal").then((m) => m.AppTerminal));
const Jobs = lazyPage(() => import("./pages/Jobs").then((m) => m.Jobs));
const Webhooks = lazyPage(() => import("./pages/Webhooks").then((m) => m.Webhooks));
const Notifications = lazyPage(() => import("./pages/Notifications").then((m) => m.Notifications));
const SshProfiles = lazyPage(() => import("./pages/SshProfiles").then((m) => m.SshProfiles));
const Commands = lazyPage(() => import("./pages/Commands").then((m) => m.Commands));
const CommandDetail = lazyPage(() => import("./pages/Commands").then((m) => m.CommandDetail));
const AiSettings = lazyPage(() => import("./pages/AiSettings").then((m) => m.AiSettings));
const AiAssistant = lazyPage(() => import("./pages/AiAssistant").then((m) => m.AiAssistant));
const Devices = lazyPage(() => import("./pages/Devices").then((m) => m.Devices));
const GitAccounts = lazyPage(() => import("./pages/GitAccounts").then((m) => m.GitAccounts));
const Security = lazyPage(() => import("./pages/Security").then((m) => m.Security));

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

const redirectSearch = (search: Record<string, unknown>): { redirect?: string } => (typeof search.redirect === "string" ? { redirect: search.redirect } : {});
const tokenSearch = (search: Record<string, unknown>): { token?: string } =>
  typeof search.token === "string" && search.token.length <= 200 ? { token: search.token } : {};

const signInRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/sign-in",
  validateSearch: (search: Record<string, unknown>): { redirect?: string; reset?: boolean } => ({
    ...redirectSearch(search),
    ...(search.reset === true || search.reset === "true" ? { reset: true } : {}),
  }),
  beforeLoad: redirectIfSignedIn,
  component: function SignInPage() {
    const { redirect, reset } = signInRoute.useSearch();
    return <SignIn redirect={redirect} reset={reset} />;
  },
});

const signUpRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/sign-up",
  validateSearch: redirectSearch,
  beforeLoad: redirectIfSignedIn,
  component: function SignUpPage() {
    return <SignUp redirect={signUpRoute.useSearch().redirect} />;
  },
});

const forgotPasswordRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/forgot-password",
  component: ForgotPassword,
});

/** The mailed reset link; open whether or not someone is signed in on this browser. */
const resetPasswordRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/reset-password",
  validateSearch: tokenSearch,
  component: function ResetPasswordPage() {
    return <ResetPassword token={resetPasswordRoute.useSearch().token} />;
  },
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

/** The mailed invitation link: signed out, you sign in (or up) first and come back here. */
const acceptInvitationRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/invitations/accept",
  validateSearch: tokenSearch,
  component: function AcceptInvitationPage() {
    return <AcceptInvitation token={acceptInvitationRoute.useSearch().token} />;
  },
});

const personalKeysRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/account/api-keys",
  component: PersonalApiKeys,
});

/** DevPocket's pages that are the person's own, in no org: their AI key, their devices and sync. */
const aiSettingsRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/account/ai",
  component: AiSettings,
});

const gitAccountsRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/account/git",
  component: GitAccounts,
});

const aiAssistantRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/account/assistant",
  component: AiAssistant,
});

const devicesRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/account/devices",
  component: Devices,
});

/** The person's sign-in security: two-factor sign-in. */
const securityRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/account/security",
  component: Security,
});

const orgRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/orgs/$orgSlug",
  beforeLoad: ({ params }) => {
    localStorage.setItem("berth-org", params.orgSlug);
  },
  loader: ({ context }) => {
    // Start the request before the page renders; the page shows its own error if it fails.
    void context.queryClient.prefetchQuery(orgsQuery);
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
  component: function ProjectsPage() {
    return <Projects orgSlug={projectsRoute.useParams().orgSlug} />;
  },
});

const instancesRoute = createRoute({
  getParentRoute: () => orgRoute,
  path: "/projects/$projectId/instances",
  component: function InstancesPage() {
    const { orgSlug, projectId } = instancesRoute.useParams();
    return <Instances orgSlug={orgSlug} projectId={projectId} />;
  },
});

const appsRoute = createRoute({
  getParentRoute: () => orgRoute,
  path: "/projects/$projectId/apps",
  component: function AppsPage() {
    const { orgSlug, projectId } = appsRoute.useParams();
    return <Apps orgSlug={orgSlug} projectId={projectId} />;
  },
});

const appDetailRoute = createRoute({
  getParentRoute: () => orgRoute,
  path: "/projects/$projectId/apps/$appId",
  component: function AppDetailPage() {
    const { orgSlug, projectId, appId } = appDetailRoute.useParams();
    // A new app id is a new page: nothing of the last app's logs or job carries over.
    return <AppDetail key={appId} orgSlug={orgSlug} projectId={projectId} appId={appId} />;
  },
});

/** `?session=` joins a running session (its opener resumes it, anyone else watches); `&view=1` watches read-only. */
const appTerminalRoute = createRoute({
  getParentRoute: () => orgRoute,
  path: "/projects/$projectId/apps/$appId/terminal",
  validateSearch: (search: Record<string, unknown>): { session?: string; view?: boolean } => ({
    ...(typeof search.session === "string" && /^trm_[0-9a-f]{32}$/.test(search.session) ? { session: search.session } : {}),
    ...(search.view === true || search.view === "1" || search.view === 1 ? { view: true } : {}),
  }),
  component: function AppTerminalPage() {
    const { orgSlug, projectId, appId } = appTerminalRoute.useParams();
    const { session, view } = appTerminalRoute.useSearch();
    return <AppTerminal key={appId} orgSlug={orgSlug} projectId={projectId} appId={appId} session={session} view={view} />;
  },
});

const jobsRoute = createRoute({
  getParentRoute: () => orgRoute,
  path: "/projects/$projectId/jobs",
  component: function JobsPage() {
    const { orgSlug, projectId } = jobsRoute.useParams();
    return <Jobs orgSlug={orgSlug} projectId={projectId} />;
  },
});

const membersRoute = createRoute({
  getParentRoute: () => orgRoute,
  path: "/members",
  component: function MembersPage() {
    return <Members orgSlug={membersRoute.useParams().orgSlug} />;
  },
});

const orgKeysRoute = createRoute({
  getParentRoute: () => orgRoute,
  path: "/api-keys",
  component: function OrgApiKeysPage() {
    return <OrgApiKeys orgSlug={orgKeysRoute.useParams().orgSlug} />;
  },
});

const hostsRoute = createRoute({
  getParentRoute: () => orgRoute,
  path: "/hosts",
  component: function HostsPage() {
    return <Hosts orgSlug={hostsRoute.useParams().orgSlug} />;
  },
});

const auditRoute = createRoute({
  getParentRoute: () => orgRoute,
  path: "/audit",
  validateSearch: (search: Record<string, unknown>): AuditSearch => parseAuditSearch(search),
  component: function AuditPage() {
    return <Audit orgSlug={auditRoute.useParams().orgSlug} search={auditRoute.useSearch()} />;
  },
});

const webhooksRoute = createRoute({
  getParentRoute: () => orgRoute,
  path: "/webhooks",
  component: function WebhooksPage() {
    return <Webhooks orgSlug={webhooksRoute.useParams().orgSlug} />;
  },
});

const notificationsRoute = createRoute({
  getParentRoute: () => orgRoute,
  path: "/notifications",
  component: function NotificationsPage() {
    return <Notifications orgSlug={notificationsRoute.useParams().orgSlug} />;
  },
});

/** Your own SSH profiles and commands within one org (DevPocket). */
const sshProfilesRoute = createRoute({
  getParentRoute: () => orgRoute,
  path: "/ssh",
  component: function SshProfilesPage() {
    return <SshProfiles orgSlug={sshProfilesRoute.useParams().orgSlug} />;
  },
});

const commandsRoute = createRoute({
  getParentRoute: () => orgRoute,
  path: "/commands",
  validateSearch: (search: Record<string, unknown>): CommandSearch => parseCommandSearch(search),
  component: function CommandsPage() {
    return <Commands orgSlug={commandsRoute.useParams().orgSlug} search={commandsRoute.useSearch()} />;
  },
});

const commandDetailRoute = createRoute({
  getParentRoute: () => orgRoute,
  path: "/commands/$commandId",
  component: function CommandDetailPage() {
    const { orgSlug, commandId } = commandDetailRoute.useParams();
    return <CommandDetail key={commandId} orgSlug={orgSlug} commandId={commandId} />;
  },
});

const routeTree = rootRoute.addChildren([
  signInRoute,
  signUpRoute,
  forgotPasswordRoute,
  resetPasswordRoute,
  appRoute.addChildren([
    homeRoute,
    acceptInvitationRoute,
    personalKeysRoute,
    aiSettingsRoute,
    aiAssistantRoute,
    devicesRoute,
    securityRoute,
    gitAccountsRoute,
    orgRoute.addChildren([
      orgHomeRoute,
      projectsRoute,
      instancesRoute,
      appsRoute,
      appDetailRoute,
      appTerminalRoute,
      jobsRoute,
      membersRoute,
      orgKeysRoute,
      hostsRoute,
      auditRoute,
      sshProfilesRoute,
      commandsRoute,
      commandDetailRoute,
      webhooksRoute,
      notificationsRoute,
    ]),
  ]),
]);

export function makeRouter(queryClient: QueryClient) {
  return createRouter({
    routeTree,
    context: { queryClient },
    defaultPreload: "intent",
    scrollRestoration: true,
    // Also the Suspense fallback of every page while a lazily loaded one arrives.
    defaultPendingComponent: () => <p aria-busy="true">Loading…</p>,
  });
}

declare module "@tanstack/react-router" {
  interface Register {
    router: ReturnType<typeof makeRouter>;
  }
}
