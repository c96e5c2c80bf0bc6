import type { DriftIgnore } from "./config.ts";
import type { ResourceId } from "./identity.ts";
import { parseJson } from "./json.ts";
import { isRecord, metadataOf, recordOf, type KubeObject } from "./manifest.ts";

/**
 * Field managers whose fields are never drift: the cluster's own controllers (an HPA's replicas,
 * a Deployment's revision annotation).
 */
export const DEFAULT_IGNORED_MANAGERS = ["kube-controller-manager"];

/** A field path, as object keys from the top. */
export type FieldPath = readonly string[];

/** Whether an ignore rule selects an object (an unset selector matches all). */
export function selects(rule: DriftIgnore, id: ResourceId): boolean {
  return (
    (rule.kind === undefined || rule.kind === id.kind) &&
    (rule.name === undefined || rule.name === id.name) &&
    (rule.namespace === undefined || rule.namespace === id.namespace)
  );
}

/** Parses a JSON pointer (RFC 6901) into keys. */
export function pointerPath(pointer: string): FieldPath {
  return pointer
    .split("/")
    .slice(1)
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/**
 * The fields a live object's managers own, from `metadata.managedFields` (fieldsV1). A list item
 * owned by key (`k:…`) or value (`v:…`) counts as the whole list: coarser than the server's
 * view, so such rules may hide more than the one item, never less.
 */
export function managedPaths(live: KubeObject, managers: readonly string[]): FieldPath[] {
  const entries = Array.isArray(metadataOf(live).managedFields) ? (metadataOf(live).managedFields as unknown[]) : [];
  const paths: FieldPath[] = [];
  for (const entry of entries.map(recordOf)) {
    if (typeof entry.manager !== "string" || !managers.includes(entry.manager)) continue;
    collectFields(recordOf(entry.fieldsV1), [], paths);
  }
  return paths;
}

function collectFields(fields: Record<string, unknown>, at: string[], into: FieldPath[]): void {
  const keys = Object.keys(fields).filter((key) => key !== ".");
  if (keys.length === 0 && at.length > 0) {
    into.push(at);
    return;
  }
  for (const key of keys) {
    if (key.startsWith("f:")) collectFields(recordOf(fields[key]), [...at, key.slice(2)], into);
    else if (at.length > 0) {
      // k:, v: or i: name a list item: take the whole list.
      into.push(at);
      return;
    }
  }
}

/**
 * Whether a live object may have drifted, from its managedFields alone: an update that changes a
 * field moves the field to the updater, so an object whose fields are all owned by Sluice's
 * manager and by managers whose fields are not drift cannot differ from what Sluice applied. Only
 * the suspects need a dry-run.
 */
export function mayHaveDrifted(live: KubeObject, ownManager: string, rules: readonly DriftIgnore[], id: ResourceId): boolean {
  const entries = Array.isArray(metadataOf(live).managedFields) ? (metadataOf(live).managedFields as unknown[]).map(recordOf) : [];
  const ignored = new Set([
    ownManager,
    ...DEFAULT_IGNORED_MANAGERS,
    ...rules.filter((rule) => selects(rule, id)).flatMap((rule) => rule.managers),
  ]);
  const ours = entries.some((entry) => entry.manager === ownManager && entry.operation === "Apply");
  return !ours || entries.some((entry) => typeof entry.manager !== "string" || !ignored.has(entry.manager));
}

/** The paths an object's drift leaves out: its rules' pointers, and the fields their managers (and the cluster's controllers) own live. */
export function ignoredPaths(rules: readonly DriftIgnore[], id: ResourceId, live: KubeObject): FieldPath[] {
  const selected = rules.filter((rule) => selects(rule, id));
  const managers = [...DEFAULT_IGNORED_MANAGERS, ...selected.flatMap((rule) => rule.managers)];
  return [...selected.flatMap((rule) => rule.jsonPointers.map(pointerPath)), ...managedPaths(live, managers)];
}

/** A copy of `object` without the fields at `paths` (paths that are not there change nothing). */
export function withoutPaths(object: KubeObject, paths: readonly FieldPath[]): KubeObject {
  if (paths.length === 0) return object;
  // Through JSON, which keeps 64-bit integers exact (structuredClone would not).
  const copy = parseJson(JSON.stringify(object)) as KubeObject;
  for (const path of paths) {
    const parent = path
      .slice(0, -1)
      .reduce<unknown>(
        (node, key) => (isRecord(node) ? node[key] : Array.isArray(node) ? (node as unknown[])[Number(key)] : undefined),
        copy,
      );
    const last = path.at(-1);
    if (last === undefined) continue;
    if (isRecord(parent)) Reflect.deleteProperty(parent, last);
    else if (Array.isArray(parent)) parent.splice(Number(last), 1);
  }
  return copy;
}
