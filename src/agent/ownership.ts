import {
  FORCE_ANNOTATION,
  labelValue,
  MANAGED_BY,
  OWNER_ENVIRONMENT_LABEL,
  OWNER_REPOSITORY_LABEL,
  ownerOf,
  ownershipLabels,
  REPOSITORY_ANNOTATION,
} from "../core/inventory.ts";
import { metadataOf, recordOf, type KubeObject } from "../core/manifest.ts";
import type { OwnershipPolicy } from "../core/policy.ts";
import { fullName } from "../core/git-ref.ts";

/** Who applies: a repository (by id) and one of its environments. */
export interface Owner {
  repositoryId: number;
  environment: string;
}

/** Adds Sluice's ownership labels (by repository id) and the repository's name as an annotation, to a copy. */
export function withOwnership(
  object: KubeObject,
  repository: { id: number; owner: string; name: string },
  environment: string,
): KubeObject {
  const metadata = metadataOf(object);
  return {
    ...object,
    metadata: {
      ...metadata,
      labels: { ...recordOf(metadata.labels), ...ownershipLabels(repository.id, environment) },
      annotations: { ...recordOf(metadata.annotations), [REPOSITORY_ANNOTATION]: fullName(repository) },
    },
  };
}

/**
 * What applying over a live object does to who owns it: `create` (nothing is there), `keep` (it is
 * this repository environment's), `adopt` (it has no Sluice labels: someone else made it),
 * `take-over` (another repository or environment owns it), or `refuse` with the rule that forbids it.
 */
export type Claim = { action: "create" | "keep" | "adopt" | "take-over" } | { action: "refuse"; reason: string };

/**
 * Whether the policy lets this repository environment apply over a live object. An object without
 * Sluice's labels is someone else's (the platform team's quota, a hand-made RoleBinding, the
 * Namespace itself): it is adopted only when the policy says so.
 */
export function claimOf(
  live: KubeObject | undefined,
  owner: Owner,
  policy: Pick<OwnershipPolicy, "allowAdoption" | "adoptUnmanaged">,
): Claim {
  if (!live) return { action: "create" };
  const found = ownerOf(recordOf(metadataOf(live).labels));
  if (!found) {
    if (policy.adoptUnmanaged) return { action: "adopt" };
    return {
      action: "refuse",
      reason:
        "exists without Sluice's ownership labels (it was made outside Sluice); the agent does not adopt unmanaged objects unless SLUICE_AGENT_ADOPT_UNMANAGED is true",
    };
  }
  if (found.repositoryId === String(owner.repositoryId) && found.environment === labelValue(owner.environment)) return { action: "keep" };
  if (policy.allowAdoption) return { action: "take-over" };
  const named = annotationOf(live, REPOSITORY_ANNOTATION);
  const name = named === undefined ? `repository id ${found.repositoryId}` : `${named} (id ${found.repositoryId})`;
  return {
    action: "refuse",
    reason: `owned by ${name}, environment ${found.environment}; the agent does not take objects over unless SLUICE_AGENT_ALLOW_ADOPTION is true`,
  };
}

/**
 * The JSON merge patch that hands an adopted object back: Sluice's ownership labels and annotation
 * removed, every other field left as it is.
 */
export function releasePatch(): Record<string, unknown> {
  return {
    metadata: {
      labels: { [MANAGED_BY]: null, [OWNER_REPOSITORY_LABEL]: null, [OWNER_ENVIRONMENT_LABEL]: null },
      annotations: { [REPOSITORY_ANNOTATION]: null },
    },
  };
}

/** Whether the object asks to be deleted and created again when a field it changes is immutable. */
export function mayRecreate(object: KubeObject): boolean {
  return annotationOf(object, FORCE_ANNOTATION) === "enabled";
}

function annotationOf(object: KubeObject | undefined, key: string): string | undefined {
  const value = recordOf(metadataOf(object).annotations)[key];
  return typeof value === "string" ? value : undefined;
}
