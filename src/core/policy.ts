import { displayName, kindName, type ResourceId } from "./identity.ts";
import { metadataOf, recordOf, type KubeObject } from "./manifest.ts";

/** Which repositories an agent serves, and the namespaces each may write to. */
export interface RepositoryRule {
  /** An `owner/name` glob (`*` matches any run of characters), such as `acme/team-a-*`. */
  repositories: string;
  /** Namespace globs these repositories may write to, such as `team-a-*`. */
  namespaces: readonly string[];
}

/** What an agent may touch: per repository, namespaces by glob; cluster-scoped kinds by group and kind. */
export interface AgentPolicy {
  rules: readonly RepositoryRule[];
  /**
   * Cluster-scoped kinds the agent may apply: `Kind` for the core group (`Namespace`), or
   * `Kind.group` (`ClusterRole.rbac.authorization.k8s.io`), as kubectl names them.
   */
  clusterKinds: readonly string[];
  /** Apply over objects that another repository or environment owns (taking them over). */
  allowAdoption: boolean;
  /**
   * Apply over live objects without Sluice's ownership labels (made by hand, by another tool, by
   * the platform team), adopting them. Adopted objects are released, never deleted, when they
   * leave Git.
   */
  adoptUnmanaged: boolean;
  /** Let a repository set, change or remove a Namespace's `pod-security.kubernetes.io/*` labels. */
  allowPodSecurityLabels: boolean;
}

/** The parts of the policy that decide whether the agent may write over a live object. */
export type OwnershipPolicy = Pick<AgentPolicy, "allowAdoption" | "adoptUnmanaged" | "allowPodSecurityLabels">;

/** The prefix of Pod Security admission's labels on a Namespace (`enforce`, `audit`, `warn` and their versions). */
export const POD_SECURITY_PREFIX = "pod-security.kubernetes.io/";

/**
 * How applying a Namespace would change its Pod Security labels: each one the manifest sets to a
 * value the live Namespace does not have, and each live one the applied result (the server-side
 * dry-run's answer) no longer has. Empty for other kinds, and when nothing changes.
 */
export function podSecurityChanges(
  id: ResourceId,
  sides: { desired: KubeObject; live: KubeObject | undefined; applied: KubeObject },
): string[] {
  if (id.group !== "" || id.kind !== "Namespace") return [];
  const desired = podSecurityLabels(sides.desired);
  const live = podSecurityLabels(sides.live);
  const applied = podSecurityLabels(sides.applied);
  const changes: string[] = [];
  for (const [label, value] of Object.entries(desired)) {
    if (live[label] === value) continue;
    changes.push(`sets ${label} to "${value}" (live: ${live[label] === undefined ? "not set" : `"${live[label]}"`})`);
  }
  for (const [label, value] of Object.entries(live)) if (applied[label] === undefined) changes.push(`removes ${label} (live: "${value}")`);
  return changes;
}

/** Why the policy refuses a Namespace's Pod Security label changes, or undefined when it allows them (or there are none). */
export function podSecurityRefusal(changes: readonly string[], policy: Pick<AgentPolicy, "allowPodSecurityLabels">): string | undefined {
  if (changes.length === 0 || policy.allowPodSecurityLabels) return undefined;
  return `the repository ${changes.join(" and ")}; a repository may not change a Namespace's ${POD_SECURITY_PREFIX}* labels unless SLUICE_AGENT_ALLOW_POD_SECURITY_LABELS is true`;
}

function podSecurityLabels(object: KubeObject | undefined): Record<string, string> {
  const labels = recordOf(metadataOf(object).labels);
  return Object.fromEntries(
    Object.entries(labels).filter(
      (entry): entry is [string, string] => entry[0].startsWith(POD_SECURITY_PREFIX) && typeof entry[1] === "string",
    ),
  );
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(
    `^${glob
      .split("*")
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`,
  );
}

/** Whether a name matches any of the globs. */
export function globAllowed(name: string, globs: readonly string[]): boolean {
  return globs.some((glob) => globToRegExp(glob).test(name));
}

/**
 * The namespace globs a repository may write to: the union of every rule that matches it, or
 * undefined when no rule does (the agent does not serve it).
 */
export function namespacesFor(policy: Pick<AgentPolicy, "rules">, repository: string): string[] | undefined {
  const matching = policy.rules.filter((rule) => globAllowed(repository, [rule.repositories]));
  return matching.length === 0 ? undefined : [...new Set(matching.flatMap((rule) => rule.namespaces))];
}

/** Whether a cluster-scoped kind of a group is allowed (`Kind` names the core group only). */
export function clusterKindAllowed(clusterKinds: readonly string[], group: string, kind: string): boolean {
  return clusterKinds.includes(kindName({ group, kind }));
}

/**
 * Every object outside the policy, with why; empty means the whole set may be applied. Each id's
 * namespace must already be resolved from the API server's discovery (empty when cluster-scoped),
 * never taken from what the manifest claims.
 */
export function policyViolations(ids: readonly ResourceId[], namespaces: readonly string[], clusterKinds: readonly string[]): string[] {
  const violations: string[] = [];
  for (const id of ids) {
    if (id.namespace === "") {
      if (!clusterKindAllowed(clusterKinds, id.group, id.kind))
        violations.push(
          `${displayName(id)}: cluster-scoped kind ${kindName(id)} is not allowed (allowed: ${clusterKinds.join(", ") || "none"})`,
        );
      // A Namespace object is itself a namespace the agent will own.
      if (id.group === "" && id.kind === "Namespace" && !globAllowed(id.name, namespaces))
        violations.push(`${displayName(id)}: namespace ${id.name} is not allowed for this repository (allowed: ${namespaces.join(", ")})`);
    } else if (!globAllowed(id.namespace, namespaces)) {
      violations.push(
        `${displayName(id)}: namespace ${id.namespace} is not allowed for this repository (allowed: ${namespaces.join(", ")})`,
      );
    }
  }
  return violations;
}

/**
 * Reads the agent's repository rules: comma-separated `owner/name` globs, each optionally
 * followed by `=` and `|`-separated namespace globs (`acme/team-a-*=team-a-*|shared`). A rule
 * without namespaces gets `defaultNamespaces`.
 * @throws Error naming a rule that is not of that form
 */
export function parseRepositoryRules(text: string, defaultNamespaces: readonly string[]): RepositoryRule[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const [repositories = "", namespaces] = entry.split("=", 2);
      if (!/^[^/\s]+\/[^/\s]+$/.test(repositories)) throw new Error(`repository rule "${entry}" must start with an owner/name glob`);
      const globs =
        namespaces === undefined
          ? [...defaultNamespaces]
          : namespaces
              .split("|")
              .map((n) => n.trim())
              .filter(Boolean);
      if (globs.length === 0)
        throw new Error(`repository rule "${entry}" names no namespace (give them after '=', or set SLUICE_AGENT_NAMESPACES)`);
      return { repositories, namespaces: globs };
    });
}
