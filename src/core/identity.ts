import { z } from "zod";
import { metadataOf, type KubeObject } from "./manifest.ts";

/** Whether a kind is namespaced, as far as is known (`core/scopes.ts`'s `ScopeResolver` answers it). */
export interface ScopeLookup {
  scopeOf(group: string, kind: string): "cluster" | "namespaced" | "unknown";
}

/** Identifies a resource: group, version, kind, namespace (`""` when cluster-scoped) and name. */
export interface ResourceId {
  group: string;
  version: string;
  kind: string;
  namespace: string;
  name: string;
}

/** The fields of a `ResourceId`, for schemas of messages that name objects. */
export const resourceIdShape = { group: z.string(), version: z.string(), kind: z.string(), namespace: z.string(), name: z.string() };

/** Splits an apiVersion into group and version (`v1` → core group). */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.lastIndexOf("/");
  return slash < 0 ? { group: "", version: apiVersion } : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** The identity of an object; a namespaced object without a namespace takes `defaultNamespace`. */
export function identify(object: KubeObject, defaultNamespace: string, scopes: ScopeLookup): ResourceId {
  const { group, version } = splitApiVersion(String(object.apiVersion));
  const kind = String(object.kind);
  const metadata = metadataOf(object);
  const name = String(metadata.name);
  const declared = typeof metadata.namespace === "string" && metadata.namespace !== "" ? metadata.namespace : undefined;
  switch (scopes.scopeOf(group, kind)) {
    case "cluster":
      return { group, version, kind, namespace: "", name };
    case "namespaced":
      return { group, version, kind, namespace: declared ?? defaultNamespace, name };
    case "unknown":
      // A namespace the manifest gives is believed; none is never invented.
      return { group, version, kind, namespace: declared ?? "", name };
  }
}

/**
 * The identity an object states for itself, its namespace taken as written (empty when it has
 * none): for objects whose scope is already resolved, as the agent receives them and the API
 * server returns them.
 */
export function statedId(object: KubeObject): ResourceId {
  const { group, version } = splitApiVersion(String(object.apiVersion));
  const metadata = metadataOf(object);
  return {
    group,
    version,
    kind: String(object.kind),
    namespace: typeof metadata.namespace === "string" ? metadata.namespace : "",
    name: String(metadata.name),
  };
}

/** How messages name an object that states its own identity: `Deployment prod/web`. */
export function objectName(object: KubeObject): string {
  return displayName(statedId(object));
}

/**
 * A string key unique per identity, usable in maps. Identity is group, kind, namespace and name,
 * as the API server and Argo CD and Flux key objects: the version is content, so
 * `autoscaling/v2beta2` to `autoscaling/v2` is one object, modified.
 */
export function resourceKey(id: Pick<ResourceId, "group" | "kind" | "namespace" | "name">): string {
  return `${id.group}/${id.kind}/${id.namespace}/${id.name}`;
}

/** A key for a kind within its group (`apps/Deployment`, `/ConfigMap`), for maps of kinds. */
export function groupKindKey(group: string, kind: string): string {
  return `${group}/${kind}`;
}

/** A kind as kubectl names it across groups: `Kind` in the core group, `Kind.group` otherwise. */
export function kindName(id: Pick<ResourceId, "group" | "kind">): string {
  return id.group ? `${id.kind}.${id.group}` : id.kind;
}

/** A short human name: `Deployment prod/web`, or `Namespace prod` when cluster-scoped. */
export function displayName(id: ResourceId): string {
  return id.namespace ? `${id.kind} ${id.namespace}/${id.name}` : `${id.kind} ${id.name}`;
}

/** A file-like name for a resource in diffs: `apps/v1/Deployment/prod/web`. */
export function diffPath(id: ResourceId): string {
  const group = id.group ? `${id.group}/` : "";
  return id.namespace ? `${group}${id.version}/${id.kind}/${id.namespace}/${id.name}` : `${group}${id.version}/${id.kind}/${id.name}`;
}

/** Whether the identity is a core Secret. */
export function isSecret(id: Pick<ResourceId, "group" | "kind">): boolean {
  return id.group === "" && id.kind === "Secret";
}
