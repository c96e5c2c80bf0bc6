import { dump, DUMP_SCHEMA, intCoreTag, intYaml11Tag, NOT_RESOLVED } from "js-yaml";
import { isSecret, type ResourceId } from "./identity.ts";
import { isRawJson } from "./json.ts";
import { isRecord, metadataOf, setOwn, type KubeObject } from "./manifest.ts";
import { writeBlockYaml } from "./yaml-writer.ts";

/** Server-populated metadata fields that say nothing about intent. */
const DROPPED_METADATA = ["managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"];
/** Annotations that are bookkeeping, not intent. */
const DROPPED_ANNOTATIONS = ["kubectl.kubernetes.io/last-applied-configuration"];
/** Top-level fields shown first, in this order; the rest follow sorted. */
const LEADING_FIELDS = ["apiVersion", "kind", "metadata"];

/**
 * Returns the object as it should be compared: server-populated fields dropped, the namespace made
 * explicit (or removed for cluster-scoped kinds), and a Secret's `stringData` folded into `data`.
 * Key order is left as it was: {@link canonicalJson} and {@link canonicalYaml} sort. The input is
 * not changed.
 */
export function normalize(object: KubeObject, id: ResourceId): KubeObject {
  const out: KubeObject = { ...object };
  delete out.status;
  const metadata = withoutKeys(metadataOf(object), DROPPED_METADATA);
  if (isRecord(metadata.annotations)) {
    const annotations = withoutKeys(metadata.annotations, DROPPED_ANNOTATIONS);
    if (Object.keys(annotations).length === 0) delete metadata.annotations;
    else metadata.annotations = annotations;
  }
  if (id.namespace) metadata.namespace = id.namespace;
  else delete metadata.namespace;
  out.metadata = metadata;
  if (isSecret(id)) foldStringData(out);
  return out;
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
    setOwn(data, key, Buffer.from(String(value), "utf8").toString("base64"));
  }
  secret.data = data;
  delete secret.stringData;
}

/** A deep copy with every map's keys sorted (by `compare`, default code-point order). Lists keep their order. */
export function sortKeys(value: unknown, compare?: (a: string, b: string) => number): unknown {
  if (Array.isArray(value)) return value.map((item) => sortKeys(item, compare));
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort(compare)) setOwn(out, key, sortKeys(value[key], compare));
  return out;
}

/** Key order for display: apiVersion, kind, metadata first (at any depth, as in pod templates), then sorted. */
export function compareKeys(a: string, b: string): number {
  return leadingRank(a) - leadingRank(b) || (a < b ? -1 : a > b ? 1 : 0);
}

function leadingRank(key: string): number {
  const index = LEADING_FIELDS.indexOf(key);
  return index < 0 ? LEADING_FIELDS.length : index;
}

/** A string equal for two objects exactly when they are equal, whatever their key order. */
export function canonicalJson(object: KubeObject): string {
  return JSON.stringify(sortKeys(object));
}

/** Whether two normalized objects are equal, ignoring key order. */
export function sameObject(a: KubeObject, b: KubeObject): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** The dump schema's own `!!int`, taught to write exact big integers (raw JSON numbers) as the plain integers they are. */
const EXACT_INTEGER = {
  ...intYaml11Tag,
  resolve: (source: string, isExplicit: boolean, tagName: string) => {
    const result = intYaml11Tag.resolve(source, isExplicit, tagName);
    return result === NOT_RESOLVED ? intCoreTag.resolve(source, isExplicit, tagName) : result;
  },
  identify: (value: unknown) => isRawJson(value) || intYaml11Tag.identify(value),
  represent: (value: unknown) => (isRawJson(value) ? (value as { rawJSON: string }).rawJSON : intYaml11Tag.represent(value)),
};
/** The schema diffs are written with: js-yaml's dump schema, exact big integers included. */
export const DISPLAY_SCHEMA = DUMP_SCHEMA.withTags(EXACT_INTEGER);

/** A normalized object as YAML for diffs: block style, no line folding, keys in display order. */
export function canonicalYaml(object: KubeObject): string {
  // The writer gives dump's text for the common shapes without dump's cost, and leaves the rest to it.
  return (
    writeBlockYaml(object, { compare: compareKeys, schema: DISPLAY_SCHEMA }) ??
    dump(sortKeys(object, compareKeys), { lineWidth: -1, noRefs: true, schema: DISPLAY_SCHEMA })
  );
}
