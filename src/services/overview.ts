/**
 * Dockup's system views, over what the caller can see: the hosts of their
 * orgs and the apps of their projects. An API key sees its org (or its one
 * project); a person sees every org they belong to and every project granted
 * to them.
 */
import { and, inArray, isNull } from "drizzle-orm";
import type { Principal } from "../auth/principal";
import { roleAllows, scopeAllows } from "../auth/permissions";
import type { Database } from "../db/client";
import { app, host } from "../db/schema";
import type { Env } from "../env";
import { presentApp } from "./apps";
import { hostStatus } from "./hosts";
import { listUserOrgs } from "./orgs";
import { listOrgProjects, listUserProjects } from "./projects";

export interface CallerScope {
  projectIds: string[];
  /** Orgs whose hosts the caller may see. */
  hostOrgIds: string[];
  /** Orgs whose hosts the caller may manage (list every container on them). */
  adminOrgIds: string[];
}

export async function callerScope(db: Database, p: Principal): Promise<CallerScope> {
  if (p.type === "api_key" && p.key.kind === "org") {
    const projects = await listOrgProjects(db, p.key.orgId!, p.key.projectId);
    const role = p.key.role;
    const hostsVisible = !p.key.projectId && role !== null && roleAllows(role, "host:read") && scopeAllows(p.key.scope, "host:read");
    return { projectIds: projects.map((r) => r.id), hostOrgIds: hostsVisible ? [p.key.orgId!] : [], adminOrgIds: [] };
  }
  const projects = await listUserProjects(db, p.userId);
  const orgs = await listUserOrgs(db, p.userId);
  const keyAllows = (perm: "host:read" | "host:manage") => p.type !== "api_key" || scopeAllows(p.key.scope, perm);
  return {
    projectIds: projects.map((r) => r.project.id),
    hostOrgIds: orgs.filter((o) => roleAllows(o.role, "host:read") && keyAllows("host:read")).map((o) => o.org.id),
    adminOrgIds: orgs.filter((o) => roleAllows(o.role, "host:manage") && keyAllows("host:manage")).map((o) => o.org.id),
  };
}

export async function visibleHosts(db: Database, orgIds: string[]) {
  if (!orgIds.length) return [];
  return db.select().from(host).where(and(inArray(host.orgId, orgIds), isNull(host.deletedAt)));
}

export async function visibleApps(db: Database, projectIds: string[]) {
  if (!projectIds.length) return [];
  return db.select().from(app).where(and(inArray(app.projectId, projectIds), isNull(app.deletedAt)));
}

export async function resources(db: Database, env: Env, scope: CallerScope, uptimeSeconds: number) {
  const hosts = await visibleHosts(db, scope.hostOrgIds);
  const apps = await visibleApps(db, scope.projectIds);
  const online = hosts.filter((h) => hostStatus(env, h) === "online");
  const fact = (h: (typeof hosts)[number], key: "cpus" | "memory_bytes") => Number((h.facts as Record<string, unknown> | null)?.[key] ?? 0);
  const running = apps.filter((a) => a.status === "running").length;
  return {
    cpu_cores: online.reduce((n, h) => n + fact(h, "cpus"), 0),
    memory: {
      total_mb: Math.round(online.reduce((n, h) => n + fact(h, "memory_bytes"), 0) / (1024 * 1024)),
      allocated_mb: apps.reduce((n, a) => n + a.memoryLimit, 0),
      used_mb: Math.round(apps.reduce((n, a) => n + (a.memoryUsage ?? 0), 0) * 10) / 10,
    },
    containers_running: running,
    containers_stopped: apps.length - running,
    containers_total: apps.length,
    hosts_online: online.length,
    hosts_total: hosts.length,
    uptime: uptimeSeconds,
  };
}

export async function dashboard(db: Database, env: Env, scope: CallerScope, uptimeSeconds: number) {
  const system = await resources(db, env, scope, uptimeSeconds);
  const apps = await visibleApps(db, scope.projectIds);
  return {
    system,
    usage: {
      cpu_allocated: Math.round(apps.reduce((n, a) => n + a.cpuLimit, 0) * 100) / 100,
      memory_allocated_mb: system.memory.allocated_mb,
      cpu_used_percent: Math.round(apps.reduce((n, a) => n + (a.cpuUsage ?? 0), 0) * 100) / 100,
      memory_used_mb: system.memory.used_mb,
      apps_running: system.containers_running,
      apps_stopped: system.containers_stopped,
    },
    tier: "self-hosted",
    apps: apps.map((a) => presentApp(env, a)),
  };
}
