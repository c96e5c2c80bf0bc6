import { displayName, resourceKey, type ResourceId } from "../core/identity.ts";
import { OWNER_ENVIRONMENT_LABEL, OWNER_REPOSITORY_LABEL, PRUNE_ANNOTATION, labelValue, pruneCandidates } from "../core/inventory.ts";
import { metadataOf, recordOf, type KubeObject } from "../core/manifest.ts";
import type { ObjectResult } from "../core/agent-protocol.ts";
import { entry } from "./change-set.ts";
import { PermanentDeployError } from "./errors.ts";
import type { Cluster } from "./kube/cluster.ts";
import { releasePatch } from "./ownership.ts";

/** What pruning may do. */
export interface PruneOptions {
  repositoryId: number;
  environment: string;
  /** Prune at all (the environment's `prune` setting). */
  enabled: boolean;
  /** Allow deleting every object of the environment at once. */
  allowEmpty: boolean;
  /** Objects Sluice adopted rather than created (the inventory's record): released, never deleted. */
  adopted: readonly ResourceId[];
  now: () => number;
}

function objectFor(id: ResourceId): KubeObject {
  return {
    apiVersion: id.group ? `${id.group}/${id.version}` : id.version,
    kind: id.kind,
    metadata: { name: id.name, ...(id.namespace ? { namespace: id.namespace } : {}) },
  };
}

/**
 * Deletes what the previous inventory had and the new set lacks, but only objects that carry
 * Sluice's ownership labels for this repository and environment, never one annotated
 * `sluice.dev/prune: disabled`, and never everything at once unless allowed. An object Sluice
 * adopted is someone else's: it is released (Sluice's labels removed), not deleted.
 */
export async function prune(
  cluster: Cluster,
  previous: readonly ResourceId[],
  next: readonly ResourceId[],
  options: PruneOptions,
): Promise<ObjectResult[]> {
  const candidates = pruneCandidates(previous, next);
  if (!options.enabled || candidates.length === 0) return [];
  if (next.length === 0 && previous.length > 0 && !options.allowEmpty) {
    // The same revision would be refused again: permanent, so it does not burn retries.
    throw new PermanentDeployError(
      `refusing to prune all ${previous.length} objects of ${options.environment}: the new revision has none; set allowEmpty: true to allow it`,
    );
  }
  const adopted = new Set(options.adopted.map(resourceKey));
  const results: ObjectResult[] = [];
  for (const id of candidates) {
    const started = options.now();
    const live = await cluster.get(objectFor(id));
    if (!live) continue;
    const metadata = metadataOf(live);
    const labels = recordOf(metadata.labels);
    const annotations = recordOf(metadata.annotations);
    if (
      labels[OWNER_REPOSITORY_LABEL] !== String(options.repositoryId) ||
      labels[OWNER_ENVIRONMENT_LABEL] !== labelValue(options.environment)
    ) {
      results.push(
        entry(id, "skipped", "unknown", options.now() - started, `${displayName(id)} is not owned by this environment; not pruned`),
      );
      continue;
    }
    if (annotations[PRUNE_ANNOTATION] === "disabled") {
      results.push(entry(id, "skipped", "unknown", options.now() - started, `${PRUNE_ANNOTATION}: disabled; not pruned`));
      continue;
    }
    if (adopted.has(resourceKey(id))) {
      await cluster.mergePatch(objectFor(id), releasePatch());
      const note = `${displayName(id)} was adopted, not created by Sluice: released (Sluice's labels removed), not deleted`;
      results.push(entry(id, "skipped", "unknown", options.now() - started, note));
      continue;
    }
    await cluster.delete(objectFor(id));
    results.push(entry(id, "pruned", "current", options.now() - started));
  }
  return results;
}
