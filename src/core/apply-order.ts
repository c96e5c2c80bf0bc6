import type { ResourceId } from "./identity.ts";

/** Kinds applied first and waited for, so the rest can use them. */
const FIRST_STAGE = new Set(["CustomResourceDefinition", "Namespace"]);

/** Apply order within the second stage, after Flux's: what others refer to comes first. */
const KIND_ORDER = [
  "ResourceQuota",
  "LimitRange",
  "PodSecurityPolicy",
  "PodDisruptionBudget",
  "ServiceAccount",
  "Secret",
  "SecretList",
  "ConfigMap",
  "ClusterRole",
  "ClusterRoleList",
  "ClusterRoleBinding",
  "ClusterRoleBindingList",
  "Role",
  "RoleList",
  "RoleBinding",
  "RoleBindingList",
  "PersistentVolume",
  "PersistentVolumeClaim",
  "Service",
  "DaemonSet",
  "Pod",
  "ReplicationController",
  "ReplicaSet",
  "Deployment",
  "HorizontalPodAutoscaler",
  "StatefulSet",
  "Job",
  "CronJob",
  "Ingress",
  "APIService",
];
/** Applied last: they may call services applied before them. */
const LAST = new Set([
  "MutatingWebhookConfiguration",
  "ValidatingWebhookConfiguration",
  "ValidatingAdmissionPolicy",
  "ValidatingAdmissionPolicyBinding",
]);

/** Which stage an object is applied in. */
export type Stage = "definitions" | "resources";

/** Whether a kind belongs to the first stage: CRDs, Namespaces and every `*Class` kind. */
export function stageOf(id: Pick<ResourceId, "kind">): Stage {
  return FIRST_STAGE.has(id.kind) || id.kind.endsWith("Class") ? "definitions" : "resources";
}

function rank(kind: string): number {
  if (LAST.has(kind)) return KIND_ORDER.length + 2;
  const index = KIND_ORDER.indexOf(kind);
  return index < 0 ? KIND_ORDER.length + 1 : index;
}

/** Sorts objects into a stable apply order: by stage, kind rank, kind, namespace, name. */
export function applyOrder<T extends { id: ResourceId }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => {
    const stage = Number(stageOf(a.id) === "resources") - Number(stageOf(b.id) === "resources");
    return (
      stage ||
      rank(a.id.kind) - rank(b.id.kind) ||
      a.id.kind.localeCompare(b.id.kind) ||
      a.id.namespace.localeCompare(b.id.namespace) ||
      a.id.name.localeCompare(b.id.name)
    );
  });
}
