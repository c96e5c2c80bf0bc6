import { displayName, resourceKey, type ResourceId } from "../core/identity.ts";
import { OWNER_ENVIRONMENT_LABEL, OWNER_REPOSITORY_LABEL, PRUNE_ANNOTATION, labelValue, pruneCandidates } from "../core/inventory.ts";
import { metadataOf, recordOf, type KubeObject } from "../core/manifest.ts";
import type { ObjectResult } from "../core/agent-protocol.ts";
import { asError, entry, type StageResult } from "./change-set.ts";
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
 * `sluice.dev/prune: disabled`, and never everything at once unless allowed (a PermanentDeployError,
 * nothing touched). An object Sluice adopted is someone else's: it is released (Sluice's labels
 * removed), not deleted. An error part-way comes back with what was already pruned.
 */
export async function prune(
  cluster: Cluster,
  previous: readonly ResourceId[],
  next: readonly ResourceId[],
  options: PruneOptions,
): Promise<StageResult> {
  const candidates = pruneCandidates(previous, next);
  if (!options.enabled || candidates.length === 0) return { changes: [] };
  if (next.length === 0 && previous.length > 0 && !options.allowEmpty) {
    // The same revision would be refused again: permanent, so it does not burn retries.
    const message = `refusing to prune all ${previous.length} objects of ${options.environment}: the new revision has none; set allowEmpty: true to allow it`;
    return { changes: [], error: new PermanentDeployError(message) };
  }
  const adopted = new Set(options.adopted.map(resourceKey));
  const changes: ObjectResult[] = [];
  try {
    for (const id of candidates) {
      const result = await pruneOne(cluster, id, adopted.has(resourceKey(id)), options);
      if (result) changes.push(result);
    }
    return { changes };
  } catch (error) {
    return { changes, error: asError(error) };
  }
}

/** Prunes one candidate when it is this environment's to prune, and says what was done; nothing when it is gone already. */
async function pruneOne(cluster: Cluster, id: ResourceId, adopted: boolean, options: PruneOptions): Promise<ObjectResult | undefined> {
  const started = options.now();
  const live = await cluster.get(objectFor(id));
  if (!live) return undefined;
  const metadata = metadataOf(live);
  const labels = recordOf(metadata.labels);
  const annotations = recordOf(metadata.annotations);
  if (
    labels[OWNER_REPOSITORY_LABEL] !== String(options.repositoryId) ||
    labels[OWNER_ENVIRONMENT_LABEL] !== labelValue(options.environment)
  )
    return entry(id, "skipped", "unknown", options.now() - started, `${displayName(id)} is not owned by this environment; not pruned`);
  if (annotations[PRUNE_ANNOTATION] === "disabled")
    return entry(id, "skipped", "unknown", options.now() - started, `${PRUNE_ANNOTATION}: disabled; not pruned`);
  if (adopted) {
    await cluster.mergePatch(objectFor(id), releasePatch());
    const note = `${displayName(id)} was adopted, not created by Sluice: released (Sluice's labels removed), not deleted`;
    return entry(id, "skipped", "unknown", options.now() - started, note);
  }
  await cluster.delete(objectFor(id));
  return entry(id, "pruned", "current", options.now() - started);
}
