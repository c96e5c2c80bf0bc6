import type { SourceProblem } from "./errors.ts";
import { displayName, identify, kindName, resourceKey, type ResourceId } from "./identity.ts";
import { ScopeResolver } from "./scopes.ts";
import type { ManifestObject, SourceLocation } from "./manifest.ts";
import { normalize } from "./normalize.ts";

/**
 * An object with its identity, normalized form and origin. The normalized object is kept as JSON
 * (in its own key order): compact, cheap to pass between threads, and a fast first check of
 * equality; it is parsed again only for the few objects that differ.
 */
export interface Resource {
  id: ResourceId;
  key: string;
  /** The normalized object as JSON. */
  json: string;
  source: SourceLocation;
}

/** The resources of one render, by identity key, plus the problems found while indexing. */
export interface ResourceSet {
  resources: Map<string, Resource>;
  problems: SourceProblem[];
  /** Kinds (`Kind.group`) whose scope could not be told without a cluster, sorted. */
  unknownScopes: string[];
}

/**
 * Normalized JSON by parsed object, shared by the sides of one comparison: a document whose text
 * is the same on both sides is parsed once (the parse cache hands both sides one object), and
 * with this it is also normalized and serialized once.
 */
export type NormalizedMemo = WeakMap<object, { key: string; json: string }>;

/** The largest object the API server stores: etcd's default request limit (`--max-request-bytes`, 1.5 MiB). */
const MAX_OBJECT_BYTES = 1.5 * 1024 * 1024;

/**
 * Identifies and normalizes rendered objects. Two objects with one identity are an error that
 * names both places; the first one is kept so the rest of the set can still be compared.
 */
export function buildResourceSet(objects: readonly ManifestObject[], defaultNamespace: string, memo?: NormalizedMemo): ResourceSet {
  const scopes = new ScopeResolver(objects.map((o) => o.object));
  const resources = new Map<string, Resource>();
  const problems: SourceProblem[] = [];
  const unknown = new Set<string>();
  for (const { object, source } of objects) {
    const id = identify(object, defaultNamespace, scopes);
    if (scopes.scopeOf(id.group, id.kind) === "unknown") unknown.add(kindName(id));
    const key = resourceKey(id);
    const existing = resources.get(key);
    if (existing) {
      const versions =
        existing.id.version === id.version
          ? `${id.group || "core"}/${id.version}`
          : `as ${existing.id.group || "core"}/${existing.id.version} and as ${id.group || "core"}/${id.version}; the version is not part of an object's identity`;
      problems.push({
        ...source,
        message: `duplicate ${displayName(id)} (${versions}): also defined at ${existing.source.file}:${existing.source.line}`,
      });
      continue;
    }
    const json = normalizedJson(object, id, key, memo);
    if (json.length > MAX_OBJECT_BYTES) {
      problems.push({
        ...source,
        message: `${displayName(id)} is ${(json.length / 1024 / 1024).toFixed(1)} MiB as JSON; the API server refuses objects over 1.5 MiB (etcd's request limit), so it cannot be applied`,
      });
      continue;
    }
    resources.set(key, { id, key, json, source });
  }
  return { resources, problems, unknownScopes: [...unknown].sort() };
}

function normalizedJson(object: ManifestObject["object"], id: ResourceId, key: string, memo: NormalizedMemo | undefined): string {
  // Normalization depends on the object and its identity, which can differ for one object (another
  // default namespace, a CRD that changes its scope): the key says whether the memo applies.
  const known = memo?.get(object);
  if (known?.key === key) return known.json;
  const json = JSON.stringify(normalize(object, id));
  memo?.set(object, { key, json });
  return json;
}
