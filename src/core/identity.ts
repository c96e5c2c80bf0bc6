import { isRecord, type KubeObject } from "./manifest.ts";

/** Identifies a resource: group, version, kind, namespace (`""` when cluster-scoped) and name. */
export interface ResourceId {
  group: string;
  version: string;
  kind: string;
  namespace: string;
  name: string;
}

/** Kinds that live outside namespaces, by `group/kind` (the core group is empty). */
const BUILT_IN_CLUSTER_SCOPED = new Set([
  "/Namespace", "/Node", "/PersistentVolume", "/ComponentStatus",
  "rbac.authorization.k8s.io/ClusterRole", "rbac.authorization.k8s.io/ClusterRoleBinding",
  "apiextensions.k8s.io/CustomResourceDefinition",
  "apiregistration.k8s.io/APIService",
  "admissionregistration.k8s.io/ValidatingWebhookConfiguration",
  "admissionregistration.k8s.io/MutatingWebhookConfiguration",
  "admissionregistration.k8s.io/ValidatingAdmissionPolicy",
  "admissionregistration.k8s.io/ValidatingAdmissionPolicyBinding",
  "admissionregistration.k8s.io/MutatingAdmissionPolicy",
  "admissionregistration.k8s.io/MutatingAdmissionPolicyBinding",
  "storage.k8s.io/StorageClass", "storage.k8s.io/CSIDriver", "storage.k8s.io/CSINode",
  "storage.k8s.io/VolumeAttachment", "storage.k8s.io/VolumeAttributesClass",
  "scheduling.k8s.io/PriorityClass",
  "node.k8s.io/RuntimeClass",
  "networking.k8s.io/IngressClass", "networking.k8s.io/IPAddress", "networking.k8s.io/ServiceCIDR",
  "certificates.k8s.io/CertificateSigningRequest", "certificates.k8s.io/ClusterTrustBundle",
  "flowcontrol.apiserver.k8s.io/FlowSchema", "flowcontrol.apiserver.k8s.io/PriorityLevelConfiguration",
  "resource.k8s.io/DeviceClass", "resource.k8s.io/ResourceSlice",
  "internal.apiserver.k8s.io/StorageVersion", "storagemigration.k8s.io/StorageVersionMigration",
  "authentication.k8s.io/TokenReview", "authentication.k8s.io/SelfSubjectReview",
  "authorization.k8s.io/SubjectAccessReview", "authorization.k8s.io/SelfSubjectAccessReview",
  "authorization.k8s.io/SelfSubjectRulesReview",
]);

/** Splits an apiVersion into group and version (`v1` → core group). */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.lastIndexOf("/");
  return slash < 0 ? { group: "", version: apiVersion } : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** Decides whether a kind is cluster-scoped: the built-in kinds plus CRDs defined in the same set. */
export class ScopeResolver {
  readonly #clusterScoped: Set<string>;
  readonly #namespaced = new Set<string>();

  /** Learns the scope of every CRD among `objects`. */
  constructor(objects: Iterable<KubeObject>) {
    this.#clusterScoped = new Set(BUILT_IN_CLUSTER_SCOPED);
    for (const object of objects) {
      if (object.kind !== "CustomResourceDefinition" || !isRecord(object.spec)) continue;
      const { group, names, scope } = object.spec;
      if (typeof group !== "string" || !isRecord(names) || typeof names.kind !== "string") continue;
      (scope === "Cluster" ? this.#clusterScoped : this.#namespaced).add(`${group}/${names.kind}`);
    }
  }

  /** Whether objects of this group and kind have no namespace. */
  isClusterScoped(group: string, kind: string): boolean {
    const key = `${group}/${kind}`;
    return !this.#namespaced.has(key) && this.#clusterScoped.has(key);
  }
}

/** The identity of an object; a namespaced object without a namespace takes `defaultNamespace`. */
export function identify(object: KubeObject, defaultNamespace: string, scopes: ScopeResolver): ResourceId {
  const { group, version } = splitApiVersion(String(object.apiVersion));
  const kind = String(object.kind);
  const metadata = isRecord(object.metadata) ? object.metadata : {};
  const name = String(metadata.name);
  if (scopes.isClusterScoped(group, kind)) return { group, version, kind, namespace: "", name };
  const namespace = typeof metadata.namespace === "string" && metadata.namespace !== "" ? metadata.namespace : defaultNamespace;
  return { group, version, kind, namespace, name };
}

/** A string key unique per identity, usable in maps. */
export function resourceKey(id: ResourceId): string {
  return `${id.group}/${id.version}/${id.kind}/${id.namespace}/${id.name}`;
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
