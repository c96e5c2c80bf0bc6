import type { SourceProblem } from "./errors.ts";
import { displayName, identify, resourceKey, ScopeResolver, type ResourceId } from "./identity.ts";
import type { KubeObject, ManifestObject, SourceLocation } from "./manifest.ts";
import { canonicalJson, normalize } from "./normalize.ts";

/** An object with its identity, normalized form and origin. */
export interface Resource {
  id: ResourceId;
  key: string;
  /** The normalized object: what is compared and shown. */
  object: KubeObject;
  /** The canonical JSON of `object`, for equality. */
  canonical: string;
  source: SourceLocation;
}

/** The resources of one render, by identity key, plus the problems found while indexing. */
export interface ResourceSet {
  resources: Map<string, Resource>;
  problems: SourceProblem[];
}

/**
 * Identifies and normalizes rendered objects. Two objects with one identity are an error that
 * names both places; the first one is kept so the rest of the set can still be compared.
 */
export function buildResourceSet(objects: readonly ManifestObject[], defaultNamespace: string): ResourceSet {
  const scopes = new ScopeResolver(objects.map((o) => o.object));
  const resources = new Map<string, Resource>();
  const problems: SourceProblem[] = [];
  for (const { object, source } of objects) {
    const id = identify(object, defaultNamespace, scopes);
    const key = resourceKey(id);
    const existing = resources.get(key);
    if (existing) {
      problems.push({
        ...source,
        message: `duplicate ${displayName(id)} (${id.group || "core"}/${id.version}): also defined at ${existing.source.file}:${existing.source.line}`,
      });
      continue;
    }
    const normalized = normalize(object, id);
    resources.set(key, { id, key, object: normalized, canonical: canonicalJson(normalized), source });
  }
  return { resources, problems };
}
