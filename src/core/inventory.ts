import { createHash } from "node:crypto";
import { z } from "zod";
import { resourceKey, type ResourceId } from "./identity.ts";

const idSchema = z.strictObject({ group: z.string(), version: z.string(), kind: z.string(), namespace: z.string(), name: z.string() });

/** One deployed revision of an environment. */
export const revisionSchema = z.strictObject({
  sha: z.string(),
  jobId: z.string(),
  digest: z.string(),
  appliedAt: z.iso.datetime(),
});

/** What Sluice applied to an environment last, and the revisions before. */
export const inventorySchema = z.strictObject({
  version: z.literal(1),
  repository: z.string(),
  environment: z.string(),
  objects: z.array(idSchema),
  revisions: z.array(revisionSchema),
});
/** What Sluice applied to an environment last. */
export type Inventory = z.infer<typeof inventorySchema>;
/** One deployed revision. */
export type Revision = z.infer<typeof revisionSchema>;

/** Objects in the previous inventory that the new set lacks: the prune candidates. */
export function pruneCandidates(previous: readonly ResourceId[], next: readonly ResourceId[]): ResourceId[] {
  // Versions change without the object changing; compare without them.
  const key = (id: ResourceId) => resourceKey({ ...id, version: "" });
  const keep = new Set(next.map(key));
  return previous.filter((id) => !keep.has(key(id)));
}

/** The next inventory: the new objects, and the revision prepended to at most `keep` revisions. */
export function nextInventory(previous: Inventory | undefined, base: Omit<Inventory, "revisions" | "version">, revision: Revision, keep = 10): Inventory {
  return { version: 1, ...base, revisions: [revision, ...(previous?.revisions ?? [])].slice(0, keep) };
}

/** Labels Sluice puts on every object it applies. */
export const MANAGED_BY = "app.kubernetes.io/managed-by";
/** The ownership labels' names. */
export const OWNER_REPOSITORY_LABEL = "sluice.dev/repository";
/** The ownership labels' names. */
export const OWNER_ENVIRONMENT_LABEL = "sluice.dev/environment";

/**
 * A label value of at most 63 characters: `owner/name` becomes `owner.name` (owners cannot
 * contain dots, so this stays unique); anything else that does not fit gets a readable prefix
 * and a hash.
 */
export function labelValue(value: string): string {
  const dotted = value.replace("/", ".");
  if (/^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(dotted) && dotted.length <= 63) return dotted;
  const clean = dotted.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "");
  const hash = createHash("sha256").update(value).digest("hex").slice(0, 10);
  return `${clean.slice(0, 52).replace(/[^A-Za-z0-9]+$/, "")}-${hash}`;
}

/** The ownership labels for a repository's environment. */
export function ownershipLabels(repository: string, environment: string): Record<string, string> {
  return { [MANAGED_BY]: "sluice", [OWNER_REPOSITORY_LABEL]: labelValue(repository), [OWNER_ENVIRONMENT_LABEL]: labelValue(environment) };
}

/** The annotation that keeps an object from being pruned. */
export const PRUNE_ANNOTATION = "sluice.dev/prune";
/** The annotation that lets Sluice recreate an object whose immutable fields changed. */
export const FORCE_ANNOTATION = "sluice.dev/force";
