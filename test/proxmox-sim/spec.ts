/**
 * The reference OpenAPI document as a request checker: finds the operation for
 * a method and path and verifies parameters the way PVE::JSONSchema does,
 * with its messages, so a request the real API would refuse is refused here.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export type Params = Record<string, string | string[]>;
export interface Operation {
  template: string;
  method: string;
  params: Map<string, { in: string; required: boolean; schema: Schema }>;
}
interface Schema {
  type?: string;
  format?: unknown;
  minimum?: number | string;
  maximum?: number | string;
  maxLength?: number | string;
  enum?: string[];
  pattern?: string;
}

const DEFAULT_SPEC = fileURLToPath(new URL("../../../shared/reference/proxmox-ve-openapi.json", import.meta.url));

export class Spec {
  private readonly byLength = new Map<number, { segs: string[]; literals: number; ops: Map<string, Operation> }[]>();

  constructor(file = process.env.BERTH_PROXMOX_SPEC ?? DEFAULT_SPEC) {
    const doc = JSON.parse(readFileSync(file, "utf8")) as { paths: Record<string, Record<string, { parameters?: { name: string; in: string; required?: boolean; schema?: Schema }[] }>> };
    for (const [template, methods] of Object.entries(doc.paths)) {
      const segs = template.split("/").filter(Boolean);
      const ops = new Map<string, Operation>();
      for (const [m, op] of Object.entries(methods)) {
        const params = new Map<string, { in: string; required: boolean; schema: Schema }>();
        for (const p of op.parameters ?? []) params.set(p.name, { in: p.in, required: p.required === true, schema: p.schema ?? {} });
        ops.set(m.toUpperCase(), { template, method: m.toUpperCase(), params });
      }
      const entry = { segs, literals: segs.filter((s) => !s.startsWith("{")).length, ops };
      const list = this.byLength.get(segs.length) ?? [];
      list.push(entry);
      this.byLength.set(segs.length, list);
    }
    // A literal segment beats a parameter, as in PVE's handler lookup.
    for (const list of this.byLength.values()) list.sort((a, b) => b.literals - a.literals);
  }

  /** The operation and its path parameters, or null when the API has no such method. */
  find(method: string, path: string): { op: Operation; pathParams: Record<string, string> } | null {
    const parts = path.split("/").filter(Boolean).map((s) => decodeURIComponent(s));
    for (const entry of this.byLength.get(parts.length) ?? []) {
      const pathParams: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length && ok; i++) {
        const seg = entry.segs[i] as string;
        if (seg.startsWith("{")) pathParams[seg.slice(1, -1)] = parts[i] as string;
        else ok = seg === parts[i];
      }
      if (!ok) continue;
      const op = entry.ops.get(method);
      // PVE looks the path up first; a known path with another method is still "not implemented".
      return op ? { op, pathParams } : null;
    }
    return null;
  }

  /** PVE::JSONSchema's per-parameter errors; an empty object means the request is valid. */
  check(op: Operation, params: Params): Record<string, string> {
    const errors: Record<string, string> = {};
    for (const [name, value] of Object.entries(params)) {
      const def = op.params.get(name) ?? indexed(op, name);
      if (!def) {
        errors[name] = "property is not defined in schema and the schema does not allow additional properties";
        continue;
      }
      const msg = checkValue(def.schema, value);
      if (msg) errors[name] = msg;
    }
    for (const [name, def] of op.params) {
      if (def.required && !(name in params)) errors[name] = "property is missing and it is not optional";
    }
    return errors;
  }
}

/**
 * How many of each numbered key ("net[n]" in the document) PVE accepts; the document
 * does not say, so these are qemu-server's and pve-container's limits.
 */
const INDEX_LIMIT: Record<string, number> = {
  ide: 4, sata: 6, scsi: 31, virtio: 16, net: 32, ipconfig: 32, unused: 256, serial: 4, parallel: 3,
  usb: 14, hostpci: 16, numa: 8, mp: 256, dev: 256, link: 8, acmedomain: 5, virtiofs: 10,
};

function indexed(op: Operation, name: string) {
  const m = /^([a-z]+)(\d+)$/.exec(name);
  if (!m) return undefined;
  const def = op.params.get(`${m[1]}[n]`);
  return def && Number(m[2]) < (INDEX_LIMIT[m[1] as string] ?? 32) && !/^0\d/.test(m[2] as string) ? def : undefined;
}

const BOOL = /^(1|on|yes|true|0|off|no|false)$/i;

export function parseBool(v: string | string[] | undefined, dflt = false): boolean {
  if (v === undefined) return dflt;
  return /^(1|on|yes|true)$/i.test(String(Array.isArray(v) ? v[0] : v));
}

function checkValue(schema: Schema, raw: string | string[]): string | null {
  if (schema.type === "array") return null; // PVE accepts one value or several for a list.
  if (Array.isArray(raw)) return "duplicate parameter (not an array)";
  const v = raw;
  switch (schema.type) {
    case "integer":
      if (!/^[+-]?\d+$/.test(v)) return `type check ('integer') failed - got '${v}'`;
      break;
    case "number":
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v)) return `type check ('number') failed - got '${v}'`;
      break;
    case "boolean":
      if (!BOOL.test(v)) return `type check ('boolean') failed - got '${v}'`;
      break;
  }
  if (schema.type === "integer" || schema.type === "number") {
    const n = Number(v);
    if (schema.minimum !== undefined && n < Number(schema.minimum)) return `value must have a minimum value of ${schema.minimum}`;
    if (schema.maximum !== undefined && n > Number(schema.maximum)) return `value must have a maximum value of ${schema.maximum}`;
  }
  if (schema.type === "string" || schema.type === undefined) {
    if (schema.maxLength !== undefined && v.length > Number(schema.maxLength)) return `value may only be ${schema.maxLength} characters long`;
    if (schema.enum && !schema.enum.includes(v)) return `value '${v}' does not have a value in the enumeration '${schema.enum.join(", ")}'`;
    // The document carries Perl's regexes; `(?^i:…)` (a group with default flags plus i) is `(?i:…)` in JavaScript.
    if (schema.pattern && !new RegExp(`^(${schema.pattern.replace(/\(\?\^/g, "(?")})$`).test(v)) return "value does not match the regex pattern";
  }
  return typeof schema.format === "string" ? checkFormat(schema.format, v) : checkPropertyString(schema.format, v);
}

/** The named formats the driver's calls meet; others are accepted as plain strings. */
function checkFormat(format: string, v: string): string | null {
  switch (format) {
    case "pve-node":
      return /^(?=.{1,63}$)[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/.test(v) ? null : "value does not look like a valid node name";
    case "pve-vmid":
      return /^[1-9]\d{2,8}$/.test(v) ? null : "value does not look like a valid VM ID";
    case "pve-storage-id":
      return /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(v) ? null : `storage ID '${v}' contains illegal characters`;
    case "pve-configid":
      return /^[a-z][a-z0-9_-]+$/i.test(v) ? null : `invalid configuration ID '${v}'`;
    case "pve-configid-list":
      for (const id of v.split(/[,;\s]+/).filter(Boolean)) if (!/^[a-z][a-z0-9_-]+$/i.test(id)) return `invalid configuration ID '${id}'`;
      return null;
    case "dns-name":
      return /^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/.test(v) ? null : `value '${v}' does not look like a valid DNS name`;
    case "pve-tag-list":
      for (const t of v.split(/[;, ]+/).filter(Boolean)) if (!/^[a-z0-9_][a-z0-9_\-+.]*$/i.test(t)) return `invalid tag '${t}'`;
      return null;
    case "urlencoded":
      return /^[-%a-zA-Z0-9_.!~*'()]*$/.test(v) ? null : `invalid urlencoded string: ${v}`;
    default:
      return null;
  }
}

/** A property-string format ({key: schema}): every key must be known, as PVE's parse_property_string demands. */
function checkPropertyString(format: unknown, v: string): string | null {
  if (!format || typeof format !== "object") return null;
  const keys = format as Record<string, { default_key?: number; type?: string; minimum?: number; alias?: string }>;
  const defaultKey = Object.entries(keys).find(([, d]) => d.default_key)?.[0];
  for (const part of v.split(",")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const [k, val] = eq < 0 ? [defaultKey, part] : [part.slice(0, eq), part.slice(eq + 1)];
    if (!k) return `value without key, but schema does not define a default key`;
    const d = keys[k];
    if (!d) return `invalid format - invalid key in comma-separated list property: ${k}`;
    if (d.type === "integer" && !/^[+-]?\d+$/.test(val)) return `invalid format - ${k}: type check ('integer') failed - got '${val}'`;
    if (d.type === "integer" && d.minimum !== undefined && Number(val) < Number(d.minimum)) return `invalid format - ${k}: value must have a minimum value of ${d.minimum}`;
  }
  return null;
}
