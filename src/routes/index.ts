/** Mounts every route family under /api/v1 and serves the OpenAPI document and its reference page. */
import { Scalar } from "@scalar/hono-api-reference";
import { createRouter } from "../app";
import { APP_VERSION } from "../env";
import account from "./account";
import agent from "./agent";
import apiKeys from "./api-keys";
import appRuntime from "./app-runtime";
import apps from "./apps/index";
import appAutoscale from "./apps/autoscale";
import appVolumes from "./apps/volumes";
import audit from "./audit";
import auth from "./auth";
import catalog from "./catalog";
import commands from "./commands";
import deploy from "./deploy";
import git from "./git";
import gitRepos from "./git-repos";
import devpocketAdmin from "./devpocket/admin";
import devpocketAi from "./devpocket/ai";
import devpocketSync from "./devpocket/sync";
import devpocketUser from "./devpocket/user";
import hosts from "./hosts";
import instances from "./instances/index";
import jobs from "./jobs";
import members from "./members";
import orgProjects from "./projects/org";
import orgs from "./orgs";
import projectMembers from "./project-members";
import projects from "./projects";
import registries from "./registries";
import webhooks from "./webhooks";
import system from "./system";
import systemOverview from "./system-overview";
import ssh from "./ssh";
import terminals from "./terminals";
import wsTerminal from "./ws-terminal";

export function apiV1() {
  const api = createRouter();
  api.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "A session token (from a sign-in), a `pak_` org key or a `dkp_` personal key.",
  });
  api.openAPIRegistry.registerComponent("securitySchemes", "session", {
    type: "apiKey",
    in: "cookie",
    name: "better-auth.session_token",
    description: "The browser session cookie set by sign-in.",
  });
  api.openAPIRegistry.registerComponent("securitySchemes", "agent", {
    type: "http",
    scheme: "bearer",
    description: "A host credential (`bha_…`) from `POST /agent/join`; good for that host's agent routes only.",
  });
  for (const family of [system, systemOverview, auth, account, orgs, members, orgProjects, projects, projectMembers, apps, appVolumes, appAutoscale, appRuntime, terminals, apiKeys, audit, hosts, jobs, agent, deploy, git, gitRepos, registries, webhooks, catalog, instances, ssh, commands, devpocketAi, devpocketSync, devpocketUser, devpocketAdmin, wsTerminal]) {
    api.route("/", family);
  }

  api.doc31("/openapi.json", (c) => ({
    openapi: "3.1.0",
    info: {
      title: "Berth API",
      version: APP_VERSION,
      description: "Control plane for Docker and Proxmox hosts. Serves the Dockup, Suble, backlex and DevPocket APIs under one base.",
    },
    servers: [{ url: `${new URL(c.req.url).origin}/api/v1` }],
    security: [{ bearer: [] }, { session: [] }] as Array<Record<string, string[]>>,
  }));
  api.get("/docs", Scalar({ url: "/api/v1/openapi.json", pageTitle: "Berth API" }));
  return api;
}
