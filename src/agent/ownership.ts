import { FORCE_ANNOTATION, labelValue, ownerOf, ownershipLabels, REPOSITORY_ANNOTATION } from "../core/inventory.ts";
import { metadataOf, recordOf, type KubeObject } from "../core/manifest.ts";

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
      annotations: { ...recordOf(metadata.annotations), [REPOSITORY_ANNOTATION]: `${repository.owner}/${repository.name}` },
    },
  };
}

/** Why applying over a live object would take it from another owner, or undefined when it would not. */
export function ownedElsewhere(live: KubeObject | undefined, owner: Owner): string | undefined {
  const metadata = metadataOf(live);
  const found = ownerOf(recordOf(metadata.labels));
  if (!found || (found.repositoryId === String(owner.repositoryId) && found.environment === labelValue(owner.environment)))
    return undefined;
  const named = annotationOf(live, REPOSITORY_ANNOTATION);
  const name = named === undefined ? `repository id ${found.repositoryId}` : `${named} (id ${found.repositoryId})`;
  return `owned by ${name}, environment ${found.environment}; the agent does not take objects over unless SLUICE_AGENT_ALLOW_ADOPTION is true`;
}

/** Whether the object asks to be deleted and created again when a field it changes is immutable. */
export function mayRecreate(object: KubeObject): boolean {
  return annotationOf(object, FORCE_ANNOTATION) === "enabled";
}

function annotationOf(object: KubeObject | undefined, key: string): string | undefined {
  const value = recordOf(metadataOf(object).annotations)[key];
  return typeof value === "string" ? value : undefined;
}
