import { mapBounded } from "../core/clock.ts";
import { displayName, groupKindKey, resourceKey, statedId, type ResourceId } from "../core/identity.ts";
import { FORCE_ANNOTATION } from "../core/inventory.ts";
import { isRecord, metadataOf, recordOf, type KubeObject } from "../core/manifest.ts";
import { canonicalJson } from "../core/normalize.ts";
import { podSecurityChanges, podSecurityRefusal, type OwnershipPolicy } from "../core/policy.ts";
import { KubeApiError, type Cluster } from "./kube/cluster.ts";
import { claimOf, mayRecreate, type Claim, type Owner } from "./ownership.ts";

/** One object to apply, with its identity. */
export interface Planned {
  id: ResourceId;
  object: KubeObject;
}

/** What the dry-run says applying an object would do. */
export type Verdict = "create" | "configure" | "unchanged" | "recreate" | "deferred";

/** What writing an object does to who owns it, once the policy allowed it. */
export type Claimed = Exclude<Claim, { action: "refuse" }>["action"];

/** The dry-run's answer for one object: a verdict and what it claims, or why it would be refused. */
export type Preflight = { planned: Planned; verdict: Verdict; claim: Claimed } | { planned: Planned; error: KubeApiError };

/** What a preflight needs besides the objects: who applies, and the agent's policy on taking live objects. */
export interface PreflightOptions extends OwnershipPolicy {
  concurrency: number;
  owner: Owner;
}

/** Live objects by identity key, read once per kind and namespace rather than one by one. */
export async function listLive(cluster: Cluster, objects: readonly Planned[], concurrency: number): Promise<Map<string, KubeObject>> {
  const groups = new Map<string, { apiVersion: string; kind: string; namespace: string }>();
  for (const { id, object } of objects)
    groups.set(`${String(object.apiVersion)}|${id.kind}|${id.namespace}`, {
      apiVersion: String(object.apiVersion),
      kind: id.kind,
      namespace: id.namespace,
    });
  const lists = await mapBounded([...groups.values()], concurrency, (g) => cluster.list(g.apiVersion, g.kind, g.namespace));
  return new Map(lists.flat().map((item) => [resourceKey(statedId(item)), item]));
}

/**
 * What cannot be dry-run before the definitions stage: objects of kinds whose CRD this set brings
 * and the server does not serve yet, and objects in namespaces this set creates. Decided once per
 * kind, from the listing and discovery.
 */
export async function waitsForDefinitions(
  cluster: Cluster,
  objects: readonly Planned[],
  live: ReadonlyMap<string, KubeObject>,
): Promise<(id: ResourceId) => boolean> {
  const newNamespaces = new Set(objects.filter((p) => p.id.kind === "Namespace" && !live.has(resourceKey(p.id))).map((p) => p.id.name));
  const definedHere = new Set(
    objects
      .filter((p) => p.id.kind === "CustomResourceDefinition")
      .map((p) => {
        const spec = recordOf(p.object.spec);
        return `${String(spec.group)}/${String(recordOf(spec.names).kind)}`;
      }),
  );
  const unserved = new Set<string>();
  const checked = new Set<string>();
  for (const { id, object } of objects) {
    const kind = groupKindKey(id.group, id.kind);
    if (!definedHere.has(kind) || checked.has(kind)) continue;
    checked.add(kind);
    if ((await cluster.namespaced(String(object.apiVersion), id.kind)) === undefined) unserved.add(kind);
  }
  return (id) => unserved.has(groupKindKey(id.group, id.kind)) || newNamespaces.has(id.namespace);
}

/**
 * Server-side dry-runs each object and says what applying it would do; writes nothing. `live`
 * holds the listed live objects (read one by one when undefined); objects `deferred` says wait
 * for the definitions stage are not dry-run yet.
 */
export async function preflightAll(
  cluster: Cluster,
  objects: readonly Planned[],
  options: PreflightOptions & { live?: ReadonlyMap<string, KubeObject>; deferred?: (id: ResourceId) => boolean },
): Promise<Preflight[]> {
  return mapBounded(objects, options.concurrency, async (planned): Promise<Preflight> => {
    const { id, object } = planned;
    // Deferred objects are in a namespace this set creates, or of a kind it defines: nothing is there yet.
    if (options.deferred?.(id)) return { planned, verdict: "deferred", claim: "create" };
    const live = options.live ? options.live.get(resourceKey(id)) : await cluster.get(object);
    const claim = claimOf(live, options.owner, options);
    if (claim.action === "refuse") return { planned, error: new KubeApiError(displayName(id), 409, "Ownership", claim.reason) };
    let dry: KubeObject;
    try {
      dry = await cluster.apply(object, { dryRun: true });
    } catch (error) {
      if (!(error instanceof KubeApiError) || error.transient) throw error;
      if (error.immutable && mayRecreate(object)) return { planned, verdict: "recreate", claim: claim.action };
      const hint = error.immutable ? ` (annotate it with ${FORCE_ANNOTATION}: enabled to let Sluice recreate it)` : "";
      return {
        planned,
        error: new KubeApiError(displayName(id), error.status, error.reason, `dry-run failed: ${error.detail}${hint}`),
      };
    }
    const labels = podSecurityRefusal(podSecurityChanges(id, { desired: object, live, applied: dry }), options);
    if (labels) return { planned, error: new KubeApiError(displayName(id), 403, "PodSecurityLabels", labels) };
    return { planned, verdict: !live ? "create" : comparable(dry) === comparable(live) ? "unchanged" : "configure", claim: claim.action };
  });
}

/** What decides whether a write would change anything: the object without server bookkeeping, and who owns which fields. */
function comparable(object: KubeObject): string {
  const metadata = { ...metadataOf(object) };
  const managed = Array.isArray(metadata.managedFields)
    ? (metadata.managedFields as unknown[])
        .filter(isRecord)
        .map((m) => ({ manager: m.manager, operation: m.operation, fieldsV1: m.fieldsV1, subresource: m.subresource }))
    : [];
  delete metadata.managedFields;
  delete metadata.resourceVersion;
  return canonicalJson({ ...object, metadata, managedFields: managed });
}
