import { createHash } from "node:crypto";
import { z } from "zod";
import { deployReasonSchema } from "./deploy-requests.ts";
import { resourceIdShape, resourceKey, type ResourceId } from "./identity.ts";

const idSchema = z.strictObject(resourceIdShape);

/** One deployed revision of an environment. */
export const revisionSchema = z.strictObject({
  sha: z.string(),
  jobId: z.string(),
  digest: z.string(),
  appliedAt: z.iso.datetime(),
  /** Why it was deployed; inventories written before reasons were kept say merge. */
  reason: deployReasonSchema.default("merge"),
});

/**
 * A hold on an environment, set by a rollback: merges are not applied until a `/sync` (or the
 * merge of the revert pull request) releases it. It lives in the cluster's record, so losing
 * Redis never releases it.
 */
export const holdSchema = z.strictObject({
  /** Who rolled back, and when. */
  by: z.string(),
  at: z.iso.datetime(),
  /** The rollback job and the commit it rolled back to. */
  jobId: z.string(),
  sha: z.string(),
});
/** A hold on an environment. */
export type Hold = z.infer<typeof holdSchema>;

/** What Sluice applied to an environment last, the revisions before, and the newest job it accepted. */
export const inventorySchema = z.strictObject({
  version: z.literal(1),
  /** The repository's numeric id: what owns the objects, through renames. */
  repositoryId: z.number().int().positive(),
  /** `owner/name` when last deployed, for people. */
  repository: z.string(),
  environment: z.string(),
  objects: z.array(idSchema),
  revisions: z.array(revisionSchema),
  /** The sequence of the newest job accepted; older ones are refused as replays. */
  sequence: z.number().int().nonnegative().default(0),
  /** The job that sequence belongs to: a retry of that job is not a replay. */
  sequenceJobId: z.string().default(""),
  /** Self-heals, newest first: when, which objects, and the revision they were healed back to. */
  heals: z.array(z.strictObject({ at: z.iso.datetime(), jobId: z.string(), objects: z.array(idSchema) })).default([]),
  /** Set by a rollback until a sync releases it. */
  hold: holdSchema.optional(),
  /**
   * Objects Sluice did not create: they were live without its labels when it first applied them,
   * and the policy let it adopt them. Pruning releases them instead of deleting them. Recorded
   * before anything is written, and kept until Sluice creates the object itself.
   */
  adopted: z.array(idSchema).default([]),
});
/** What Sluice applied to an environment last. */
export type Inventory = z.infer<typeof inventorySchema>;
/** One deployed revision. */
export type Revision = z.infer<typeof revisionSchema>;

/** Objects in the previous inventory that the new set lacks: the prune candidates. */
export function pruneCandidates(previous: readonly ResourceId[], next: readonly ResourceId[]): ResourceId[] {
  // Identity has no version: a version bump is the same object.
  const keep = new Set(next.map(resourceKey));
  return previous.filter((id) => !keep.has(resourceKey(id)));
}

/** The next inventory: the new objects, and the revision prepended to at most `keep` revisions. */
export function nextInventory(
  previous: Inventory | undefined,
  base: Pick<Inventory, "repositoryId" | "repository" | "environment" | "objects">,
  revision: Revision,
  keep = 10,
): Inventory {
  return {
    version: 1,
    sequence: 0,
    sequenceJobId: "",
    heals: [],
    adopted: [],
    ...previous,
    ...base,
    revisions: [revision, ...(previous?.revisions ?? [])].slice(0, keep),
  };
}

/** What a deploy's preflight found about who made each object it is about to write. */
export interface Claims {
  /** Live objects without Sluice's labels that it adopts. */
  adopted: readonly ResourceId[];
  /** Objects that do not exist yet: Sluice creates them. */
  created: readonly ResourceId[];
}

/**
 * The inventory with what a deploy adopts recorded and what it creates no longer counted as
 * adopted; the same inventory when that changes nothing.
 */
export function withClaims(inventory: Inventory, claims: Claims): Inventory {
  const created = new Set(claims.created.map(resourceKey));
  const kept = inventory.adopted.filter((id) => !created.has(resourceKey(id)));
  const known = new Set(kept.map(resourceKey));
  const added = claims.adopted.filter((id) => !known.has(resourceKey(id)));
  if (kept.length === inventory.adopted.length && added.length === 0) return inventory;
  return { ...inventory, adopted: [...kept, ...added] };
}

/** Self-heals an inventory keeps, newest first. */
export const KEPT_HEALS = 20;

/** The inventory with a self-heal recorded in the environment's history. */
export function withHeal(inventory: Inventory, heal: Inventory["heals"][number]): Inventory {
  return { ...inventory, heals: [heal, ...inventory.heals].slice(0, KEPT_HEALS) };
}

/** Why a job may not run after what the inventory records, or undefined when it may. */
export function replayRefusal(inventory: Inventory | undefined, job: { id: string; sequence: number }): string | undefined {
  if (!inventory) return undefined;
  if (job.sequence > inventory.sequence) return undefined;
  // A retry of the job that was accepted last (after a crash, say) is not a replay.
  if (job.sequence === inventory.sequence && job.id === inventory.sequenceJobId) return undefined;
  return `job ${job.id} has sequence ${job.sequence}, not newer than the last accepted job ${inventory.sequenceJobId} (sequence ${inventory.sequence}); a replayed or out-of-order job is never applied`;
}

/** Labels Sluice puts on every object it applies. */
export const MANAGED_BY = "app.kubernetes.io/managed-by";
/** The label that names the owning repository by its numeric id, which survives renames. */
export const OWNER_REPOSITORY_LABEL = "sluice.dev/repository-id";
/** The annotation that names the owning repository as `owner/name`, for people. */
export const REPOSITORY_ANNOTATION = "sluice.dev/repository";
/** The ownership labels' names. */
export const OWNER_ENVIRONMENT_LABEL = "sluice.dev/environment";

/**
 * A label value of at most 63 characters: anything that does not fit gets a readable prefix and a
 * hash.
 */
export function labelValue(value: string): string {
  const dotted = value.replace("/", ".");
  if (/^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(dotted) && dotted.length <= 63) return dotted;
  const clean = dotted.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "");
  const hash = createHash("sha256").update(value).digest("hex").slice(0, 10);
  return `${clean.slice(0, 52).replace(/[^A-Za-z0-9]+$/, "")}-${hash}`;
}

/** The ownership labels for a repository's environment, keyed by the repository's id. */
export function ownershipLabels(repositoryId: number, environment: string): Record<string, string> {
  return { [MANAGED_BY]: "sluice", [OWNER_REPOSITORY_LABEL]: String(repositoryId), [OWNER_ENVIRONMENT_LABEL]: labelValue(environment) };
}

/** Who owns a live object by its labels, if Sluice does. */
export function ownerOf(labels: Record<string, unknown>): { repositoryId: string; environment: string } | undefined {
  const repositoryId = labels[OWNER_REPOSITORY_LABEL];
  const environment = labels[OWNER_ENVIRONMENT_LABEL];
  return typeof repositoryId === "string" && typeof environment === "string" ? { repositoryId, environment } : undefined;
}

/** The annotation that keeps an object from being pruned. */
export const PRUNE_ANNOTATION = "sluice.dev/prune";
/** The annotation that lets Sluice recreate an object whose immutable fields changed. */
export const FORCE_ANNOTATION = "sluice.dev/force";
