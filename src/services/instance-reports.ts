/**
 * The agent's sweep of its Proxmox node becomes the instances' power state: a VM stopped
 * or started outside Berth shows so, and an instance whose VM is gone from the node is
 * marked `error` (`vm_missing`) until it is seen again. Only instances at rest are touched:
 * one with a job working on it, or changed after the node's list was read, is left to that
 * job's outcome, so a sweep can never undo what a job just did.
 */
import { and, eq, inArray, isNotNull, isNull } from "drizzle-orm";
import type { Database } from "../db/client";
import { instance, instanceEvent, type InstanceStatus, type PowerState } from "../db/schema";
import { newId } from "../lib/ids";
import type { InstanceReport } from "../protocol/agent";
import { restingStatus } from "./instances";

/** Statuses a sweep may change; the others belong to a job (queued, provisioning, resizing, …) or are final. */
const AT_REST: InstanceStatus[] = ["running", "stopped", "installing", "error"];
/** Room for the clocks of the Worker and D1 around the moment the node's list was read. */
const MARGIN_MS = 1_000;

export const MISSING_CODE = "vm_missing";

export async function applyInstanceReport(db: Database, hostId: string, report: InstanceReport, now = Date.now()): Promise<{ applied: number; missing: number }> {
  const observedAt = now - report.observed_ms_ago - MARGIN_MS;
  const rows = await db
    .select({ id: instance.id, vmid: instance.vmid, node: instance.node, status: instance.status, powerState: instance.powerState, errorCode: instance.errorCode, updatedAt: instance.updatedAt })
    .from(instance)
    .where(and(eq(instance.hostId, hostId), isNull(instance.deletedAt), isNull(instance.activeJobId), isNotNull(instance.vmid), inArray(instance.status, AT_REST)));
  const byVmid = new Map(report.vms.map((vm) => [vm.vmid, vm]));
  const writes = [];
  let applied = 0;
  let missing = 0;
  for (const row of rows) {
    if (row.updatedAt.getTime() > observedAt) continue;
    const vm = byVmid.get(row.vmid as number);
    // Another VM under the same id (the instance's was destroyed and the id reused) is not this instance's.
    const present = vm?.tags.includes(`berth-${row.id.toLowerCase()}`) ?? false;
    const set = present ? seen(row, vm!.status === "running" ? "running" : "stopped") : gone(row);
    if (!set) continue;
    if (!present) missing++;
    applied++;
    writes.push(db.update(instance).set({ ...set.changes, updatedAt: new Date(now) }).where(and(eq(instance.id, row.id), isNull(instance.activeJobId), eq(instance.status, row.status))));
    writes.push(db.insert(instanceEvent).values({ id: newId("iev"), instanceId: row.id, type: set.event, message: set.message, meta: { vmid: row.vmid, node: row.node, source: "sweep" }, userId: null }));
  }
  if (writes.length) await db.batch(writes as [(typeof writes)[0], ...typeof writes]);
  return { applied, missing };
}

type Row = { vmid: number | null; node: string | null; status: InstanceStatus; powerState: PowerState; errorCode: string | null };
type Change = { changes: Partial<typeof instance.$inferInsert>; event: string; message: string };

function seen(row: Row, power: "running" | "stopped"): Change | null {
  if (row.status === "error" && row.errorCode === MISSING_CODE) {
    return { changes: { status: restingStatus(power), powerState: power, errorCode: null, errorMessage: null }, event: "vm.found", message: `The VM (${row.vmid} on ${row.node}) is there again, ${power}` };
  }
  if (row.powerState === power) return null;
  // An instance in error for another reason keeps its error; only its power state follows the node.
  const status = row.status === "error" || (row.status === "installing" && power === "running") ? row.status : restingStatus(power);
  return { changes: { status, powerState: power }, event: `power.${power === "running" ? "started" : "stopped"}`, message: `The VM was ${power === "running" ? "started" : "stopped"} outside Berth: it is ${power}` };
}

function gone(row: Row): Change | null {
  if (row.status === "error" && row.errorCode === MISSING_CODE) return null;
  return {
    changes: { status: "error", powerState: "unknown", errorCode: MISSING_CODE, errorMessage: `The VM (${row.vmid}) is gone from node ${row.node}: it was destroyed outside Berth. Delete the instance, or restore the VM with its Berth tags` },
    event: "vm.missing",
    message: `The VM (${row.vmid}) is gone from node ${row.node}`,
  };
}
