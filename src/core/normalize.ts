import { stringify } from "yaml";
import { isSecret, type ResourceId } from "./identity.ts";
import { isRecord, type KubeObject } from "./manifest.ts";

/** Server-populated metadata fields that say nothing about intent. */
const DROPPED_METADATA = ["managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"];
/** Annotations that are bookkeeping, not intent. */
const DROPPED_ANNOTATIONS = ["kubectl.kubernetes.io/last-applied-configuration"];
/** Top-level fields shown first, in this order; the rest follow sorted. */
const LEADING_FIELDS = ["apiVersion", "kind", "metadata"];

/**
 * Returns the object as it should be compared: server-populated fields dropped, the namespace made
 * explicit (or removed for cluster-scoped kinds), a Secret's `stringData` folded into `data`, and
 * every map's keys sorted so that key order never matters. The input is not changed.
 */
export function normalize(object: KubeObject, id: ResourceId): KubeObject {
  const out: KubeObject = { ...object };
  delete out.status;
  const metadata = withoutKeys(isRecord(object.metadata) ? object.metadata : {}, DROPPED_METADATA);
  if (isRecord(metadata.annotations)) {
    const annotations = withoutKeys(metadata.annotations, DROPPED_ANNOTATIONS);
    if (Object.keys(annotations).length === 0) delete metadata.annotations;
    else metadata.annotations = annotations;
  }
  if (id.namespace) metadata.namespace = id.namespace;
  else delete metadata.namespace;
  out.metadata = metadata;
  if (isSecret(id)) foldStringData(out);
  return sortTopLevel(sortKeys(out) as KubeObject);
}

function withoutKeys(record: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([key]) => !keys.includes(key)));
}

/** Moves `stringData` into `data` as base64, the way the API server stores it; `stringData` wins. */
function foldStringData(secret: KubeObject): void {
  if (!isRecord(secret.stringData)) {
    delete secret.stringData;
    return;
  }
  const data: Record<string, unknown> = isRecord(secret.data) ? { ...secret.data } : {};
  for (const [key, value] of Object.entries(secret.stringData)) {
    data[key] = Buffer.from(String(value), "utf8").toString("base64");
  }
  secret.data = data;
  delete secret.stringData;
}

/** A deep copy with every map's keys sorted. Lists keep their order. */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
  return out;
}

function sortTopLevel(object: KubeObject): KubeObject {
  const out: KubeObject = {};
  for (const key of LEADING_FIELDS) if (key in object) out[key] = object[key];
  for (const key of Object.keys(object)) if (!(key in out)) out[key] = object[key];
  return out;
}

/** A canonical string for equality checks of normalized objects. */
export function canonicalJson(object: KubeObject): string {
  return JSON.stringify(object);
}

/** A normalized object as YAML for diffs: block style, no line folding, keys in their (sorted) order. */
export function canonicalYaml(object: KubeObject): string {
  return stringify(object, { lineWidth: 0, minContentWidth: 0, aliasDuplicateObjects: false, indentSeq: true });
}
