import type { RedisClient } from "../redis/connection.ts";
import { livePreviewRequestSchema, type LiveChange, type LivePreviewRequest, type LiveReport } from "../core/agent-protocol.ts";
import { mapBounded } from "../core/clock.ts";
import { errorMessage } from "../core/errors.ts";
import { mayHaveDrifted } from "../core/drift.ts";
import { resourceKey, statedId, type ResourceId } from "../core/identity.ts";
import { pruneCandidates } from "../core/inventory.ts";
import type { KubeObject } from "../core/manifest.ts";
import { canonicalJson } from "../core/normalize.ts";
import { namespacesFor, podSecurityChanges, podSecurityRefusal, policyViolations, type OwnershipPolicy } from "../core/policy.ts";
import { open, SignatureError, type VerificationKeys } from "../core/signing.ts";
import { admitJob, loadObjects, requireCluster, resolveScopes, type DeployerDeps } from "./deployer.ts";
import { clusterField } from "../core/fleet.ts";
import { RejectedJobError } from "./errors.ts";
import type { InventoryStore } from "./inventory-store.ts";
import { KubeApiError, type Cluster } from "./kube/cluster.ts";
import { idFields, liveDiff } from "./live-diff.ts";
import { claimOf, withOwnership, type Owner } from "./ownership.ts";
import { listLive } from "./preflight.ts";
import { fullName } from "../core/git-ref.ts";

/** What a live preview needs: the same cluster, policy and keys as deploys. */
export interface LivePreviewDeps {
  redis: RedisClient;
  cluster: Cluster;
  inventories: InventoryStore;
  /** The app's public keys: several while a key rotation overlaps. */
  appKey: VerificationKeys;
  policy: DeployerDeps["policy"];
  concurrency: number;
  now: () => number;
  /** The objects the last deploy applied, as canonical JSON by identity key (verified), when known. */
  baseline?: (environment: string, repositoryId: number) => Promise<Map<string, string> | undefined>;
}

/**
 * Verifies a live-preview request: signature (of the preview kind: a deploy job does not pass),
 * schema, served environment, allowed repository, freshness.
 * @throws RejectedJobError saying why it is refused
 */
export function verifyPreviewRequest(envelope: unknown, deps: Pick<LivePreviewDeps, "appKey" | "policy" | "now">): LivePreviewRequest {
  let payload: unknown;
  try {
    payload = open("preview", envelope, deps.appKey);
  } catch (error) {
    throw new RejectedJobError(error instanceof SignatureError ? error.message : `preview request cannot be read: ${errorMessage(error)}`);
  }
  const parsed = livePreviewRequestSchema.safeParse(payload);
  if (!parsed.success)
    throw new RejectedJobError(`signed preview request does not match its schema: ${parsed.error.issues[0]?.message ?? ""}`);
  const request = parsed.data;
  if (!deps.policy.environments.includes(request.environment))
    throw new RejectedJobError(`environment ${request.environment} is not served by this agent`);
  requireCluster(`preview request ${request.id}`, request.cluster, deps.policy);
  admitJob(request, deps.policy, deps.now());
  return request;
}

/**
 * Answers a live-preview request without writing anything: every object the pull request
 * declares is server-side dry-run against the live cluster (through the whole admission chain) as
 * a deploy would apply it, and compared with the live object. Returns what would change (diffs
 * normalized as the git diff is, Secret values masked here, before anything leaves the cluster),
 * what the API server or the agent's policy would refuse, and what merging would prune.
 */
export async function previewLive(deps: LivePreviewDeps, request: LivePreviewRequest): Promise<Omit<LiveReport, "at">> {
  const objects = await loadObjects(deps.redis, request.objects, request.digest);
  const repository = fullName(request.repository);
  const scoped = await resolveScopes(deps.cluster, objects, request.settings.namespace);
  const changes: LiveChange[] = scoped.unknown.map(({ id, message }) => ({ ...id, action: "refused", refusedBy: "policy", message }));
  const allowed = namespacesFor(deps.policy, repository) ?? [];
  const checked = scoped.objects.filter(({ id }) => {
    const [violation] = policyViolations([id], allowed, deps.policy.clusterKinds);
    if (violation) changes.push({ ...id, action: "refused", refusedBy: "policy", message: violation });
    return violation === undefined;
  });
  const owner = { repositoryId: request.repository.id, environment: request.environment };
  // Live objects listed once per kind and namespace; an object the head leaves as the last deploy
  // applied it, and that nobody else touched since, is unchanged without a dry-run.
  const live = await listLive(deps.cluster, checked, deps.concurrency);
  const baseline = (await deps.baseline?.(request.environment, request.repository.id)) ?? new Map<string, string>();
  const asSent = new Map(objects.map((o) => [resourceKey(statedId(o)), canonicalJson(o)]));
  const results = await mapBounded(checked, deps.concurrency, async ({ id, object }) => {
    const key = resourceKey(id);
    const found = live.get(key);
    const same = found !== undefined && baseline.get(key) !== undefined && baseline.get(key) === asSent.get(key);
    if (same && !mayHaveDrifted(found, deps.cluster.fieldManager, [], id)) return "unchanged" as const;
    return dryRunOne(
      deps.cluster,
      { id, object: withOwnership(object, request.repository, request.environment), live: found },
      {
        owner,
        policy: deps.policy,
      },
    );
  });
  let unchanged = 0;
  for (const result of results) {
    if (result === "unchanged") unchanged += 1;
    else changes.push(result);
  }
  const inventory = await deps.inventories.read(request.repository.id, request.environment);
  // Adopted objects leave Git by being released, not deleted: they are not listed as prunes.
  const adopted = new Set((inventory?.adopted ?? []).map(resourceKey));
  const prune = request.settings.prune
    ? pruneCandidates(
        inventory?.objects ?? [],
        scoped.objects.map((o) => o.id),
      ).filter((id) => !adopted.has(resourceKey(id)))
    : [];
  changes.sort((a, b) => resourceKey(a).localeCompare(resourceKey(b)));
  return {
    ...liveAnswerHeader(request),
    changes,
    unchanged,
    prune: prune.map(idFields),
  };
}

/**
 * One object's dry-run: unchanged, or what would change, or why it would be refused (by the
 * agent's policy on whose the live object is and on Pod Security labels, or by the API server).
 */
async function dryRunOne(
  cluster: Cluster,
  target: { id: ResourceId; object: KubeObject; live: KubeObject | undefined },
  options: { owner: Owner; policy: OwnershipPolicy },
): Promise<LiveChange | "unchanged"> {
  const { id, object, live } = target;
  const claim = claimOf(live, options.owner, options.policy);
  if (claim.action === "refuse") return { ...id, action: "refused", refusedBy: "policy", message: claim.reason };
  let applied: KubeObject;
  try {
    applied = await cluster.apply(object, { dryRun: true });
  } catch (error) {
    if (!(error instanceof KubeApiError) || error.transient) throw error;
    return { ...id, action: "refused", refusedBy: "api-server", message: error.detail };
  }
  const labels = podSecurityRefusal(podSecurityChanges(id, { desired: object, live, applied }), options.policy);
  if (labels) return { ...id, action: "refused", refusedBy: "policy", message: labels };
  const diff = liveDiff(id, live, applied);
  return diff === undefined ? "unchanged" : { ...id, action: live ? "configure" : "create", diff };
}

/** The fields of a live answer that come from the request it answers. */
export function liveAnswerHeader(
  request: LivePreviewRequest,
): Pick<
  LiveReport,
  "version" | "requestId" | "repository" | "installationId" | "environment" | "cluster" | "pullRequest" | "headSha" | "seq"
> {
  return {
    version: 1,
    requestId: request.id,
    repository: request.repository,
    installationId: request.installationId,
    environment: request.environment,
    ...clusterField(request.cluster),
    pullRequest: request.pullRequest,
    headSha: request.headSha,
    seq: request.seq,
  };
}
