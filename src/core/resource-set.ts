import type { SourceProblem } from "./errors.ts";
import { displayName, identify, resourceKey, ScopeResolver, type ResourceId } from "./identity.ts";
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
    resources.set(key, { id, key, json: JSON.stringify(normalize(object, id)), source });
  }
  return { resources, problems };
}
