import { displayName, type ResourceId } from "./identity.ts";

/** What an agent may touch: namespaces by glob, cluster-scoped kinds by name. */
export interface AgentPolicy {
  /** Namespace globs (`*` matches any run of characters), such as `team-*`. */
  namespaces: readonly string[];
  /** Cluster-scoped kinds the agent may apply, such as `Namespace` or `ClusterRole`. */
  clusterKinds: readonly string[];
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
}

/** Whether a namespace matches any of the globs. */
export function namespaceAllowed(namespace: string, globs: readonly string[]): boolean {
  return globs.some((glob) => globToRegExp(glob).test(namespace));
}

/** Every object outside the policy, with why. Empty means the whole set may be applied. */
export function policyViolations(ids: readonly ResourceId[], policy: AgentPolicy): string[] {
  const violations: string[] = [];
  for (const id of ids) {
    if (id.namespace === "") {
      if (!policy.clusterKinds.includes(id.kind)) violations.push(`${displayName(id)}: cluster-scoped kind ${id.kind} is not allowed (allowed: ${policy.clusterKinds.join(", ") || "none"})`);
      // A Namespace object is itself a namespace the agent will own.
      if (id.kind === "Namespace" && !namespaceAllowed(id.name, policy.namespaces)) violations.push(`${displayName(id)}: namespace ${id.name} is not allowed (allowed: ${policy.namespaces.join(", ")})`);
    } else if (!namespaceAllowed(id.namespace, policy.namespaces)) {
      violations.push(`${displayName(id)}: namespace ${id.namespace} is not allowed (allowed: ${policy.namespaces.join(", ")})`);
    }
  }
  return violations;
}
