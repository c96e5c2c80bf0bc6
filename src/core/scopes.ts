import { groupKindKey, type ScopeLookup } from "./identity.ts";
import { isRecord, type KubeObject } from "./manifest.ts";

/** Whether a kind's objects live in a namespace, as far as Sluice can tell without a cluster. */
export type Scope = ReturnType<ScopeLookup["scopeOf"]>;

/** Built-in kinds that live outside namespaces, by `group/kind` (the core group is empty). */
const BUILT_IN_CLUSTER_SCOPED = [
  "/Namespace",
  "/Node",
  "/PersistentVolume",
  "/ComponentStatus",
  "rbac.authorization.k8s.io/ClusterRole",
  "rbac.authorization.k8s.io/ClusterRoleBinding",
  "apiextensions.k8s.io/CustomResourceDefinition",
  "apiregistration.k8s.io/APIService",
  "admissionregistration.k8s.io/ValidatingWebhookConfiguration",
  "admissionregistration.k8s.io/MutatingWebhookConfiguration",
  "admissionregistration.k8s.io/ValidatingAdmissionPolicy",
  "admissionregistration.k8s.io/ValidatingAdmissionPolicyBinding",
  "admissionregistration.k8s.io/MutatingAdmissionPolicy",
  "admissionregistration.k8s.io/MutatingAdmissionPolicyBinding",
  "storage.k8s.io/StorageClass",
  "storage.k8s.io/CSIDriver",
  "storage.k8s.io/CSINode",
  "storage.k8s.io/VolumeAttachment",
  "storage.k8s.io/VolumeAttributesClass",
  "scheduling.k8s.io/PriorityClass",
  "node.k8s.io/RuntimeClass",
  "networking.k8s.io/IngressClass",
  "networking.k8s.io/IPAddress",
  "networking.k8s.io/ServiceCIDR",
  "certificates.k8s.io/CertificateSigningRequest",
  "certificates.k8s.io/ClusterTrustBundle",
  "flowcontrol.apiserver.k8s.io/FlowSchema",
  "flowcontrol.apiserver.k8s.io/PriorityLevelConfiguration",
  "resource.k8s.io/DeviceClass",
  "resource.k8s.io/ResourceSlice",
  "internal.apiserver.k8s.io/StorageVersion",
  "storagemigration.k8s.io/StorageVersionMigration",
  "authentication.k8s.io/TokenReview",
  "authentication.k8s.io/SelfSubjectReview",
  "authorization.k8s.io/SubjectAccessReview",
  "authorization.k8s.io/SelfSubjectAccessReview",
  "authorization.k8s.io/SelfSubjectRulesReview",
];

/**
 * Cluster-scoped kinds of widely used projects, for manifests that use them without shipping
 * their CRDs. `group/*` means every kind of the group (Gatekeeper's constraints).
 */
const WELL_KNOWN_CLUSTER_SCOPED = [
  // cert-manager and trust-manager
  "cert-manager.io/ClusterIssuer",
  "trust.cert-manager.io/Bundle",
  // Gateway API
  "gateway.networking.k8s.io/GatewayClass",
  // Kyverno
  "kyverno.io/ClusterPolicy",
  "kyverno.io/ClusterCleanupPolicy",
  "policies.kyverno.io/ValidatingPolicy",
  "policies.kyverno.io/ImageValidatingPolicy",
  "wgpolicyk8s.io/ClusterPolicyReport",
  // Gatekeeper
  "templates.gatekeeper.sh/ConstraintTemplate",
  "constraints.gatekeeper.sh/*",
  "mutations.gatekeeper.sh/Assign",
  "mutations.gatekeeper.sh/AssignMetadata",
  "mutations.gatekeeper.sh/ModifySet",
  "config.gatekeeper.sh/Config",
  // Argo
  "argoproj.io/ClusterWorkflowTemplate",
  "argoproj.io/ClusterAnalysisTemplate",
  // Crossplane
  "pkg.crossplane.io/Provider",
  "pkg.crossplane.io/Function",
  "pkg.crossplane.io/Configuration",
  "pkg.crossplane.io/DeploymentRuntimeConfig",
  "pkg.crossplane.io/ControllerConfig",
  "apiextensions.crossplane.io/CompositeResourceDefinition",
  "apiextensions.crossplane.io/Composition",
  "apiextensions.crossplane.io/CompositionRevision",
  "apiextensions.crossplane.io/EnvironmentConfig",
  // Karpenter
  "karpenter.sh/NodePool",
  "karpenter.sh/NodeClaim",
  "karpenter.k8s.aws/EC2NodeClass",
  "karpenter.azure.com/AKSNodeClass",
  // External Secrets
  "external-secrets.io/ClusterSecretStore",
  "external-secrets.io/ClusterExternalSecret",
  "generators.external-secrets.io/ClusterGenerator",
  // Volume snapshots
  "snapshot.storage.k8s.io/VolumeSnapshotClass",
  "snapshot.storage.k8s.io/VolumeSnapshotContent",
  // Network policy engines
  "crd.projectcalico.org/GlobalNetworkPolicy",
  "crd.projectcalico.org/GlobalNetworkSet",
  "crd.projectcalico.org/IPPool",
  "projectcalico.org/GlobalNetworkPolicy",
  "cilium.io/CiliumClusterwideNetworkPolicy",
  "cilium.io/CiliumLoadBalancerIPPool",
  "cilium.io/CiliumNode",
  "cilium.io/CiliumIdentity",
  // Kueue
  "kueue.x-k8s.io/ClusterQueue",
  "kueue.x-k8s.io/ResourceFlavor",
  "kueue.x-k8s.io/Cohort",
  // KEDA and Knative
  "keda.sh/ClusterTriggerAuthentication",
  "networking.internal.knative.dev/ClusterDomainClaim",
];

/** API groups of Kubernetes itself: a kind of these groups that is not cluster-scoped is namespaced. */
function isBuiltInGroup(group: string): boolean {
  if (group === "" || group === "apps" || group === "batch" || group === "autoscaling" || group === "policy") return true;
  // Add-ons approved under k8s.io (Gateway API, snapshots, SIG projects) ship as CRDs, not built in.
  return (
    group.endsWith(".k8s.io") &&
    !group.startsWith("gateway.networking.") &&
    !group.startsWith("snapshot.storage.") &&
    !group.endsWith(".x-k8s.io") &&
    !group.endsWith(".sigs.k8s.io")
  );
}

/** The scope of every kind a CustomResourceDefinition among `objects` defines, by `group/kind`. */
export function crdScopes(objects: Iterable<KubeObject>): Map<string, "cluster" | "namespaced"> {
  const scopes = new Map<string, "cluster" | "namespaced">();
  for (const object of objects) {
    if (object.kind !== "CustomResourceDefinition" || !isRecord(object.spec)) continue;
    const { group, names, scope } = object.spec;
    if (typeof group === "string" && isRecord(names) && typeof names.kind === "string")
      scopes.set(groupKindKey(group, names.kind), scope === "Cluster" ? "cluster" : "namespaced");
  }
  return scopes;
}

/**
 * Decides a kind's scope without a cluster: Kubernetes' own kinds, CRDs defined in the same set,
 * then a table of well-known projects' cluster-scoped kinds. Anything else is unknown; the agent
 * asks its API server's discovery in every case.
 */
export class ScopeResolver implements ScopeLookup {
  readonly #cluster = new Set([...BUILT_IN_CLUSTER_SCOPED, ...WELL_KNOWN_CLUSTER_SCOPED]);
  readonly #defined: ReadonlyMap<string, Scope>;

  /** Learns the scope of every CRD among `objects`. */
  constructor(objects: Iterable<KubeObject>) {
    this.#defined = crdScopes(objects);
  }

  /** The scope of a group's kind. */
  scopeOf(group: string, kind: string): Scope {
    const defined = this.#defined.get(groupKindKey(group, kind));
    if (defined) return defined;
    if (this.#cluster.has(groupKindKey(group, kind)) || this.#cluster.has(groupKindKey(group, "*"))) return "cluster";
    return isBuiltInGroup(group) ? "namespaced" : "unknown";
  }
}
