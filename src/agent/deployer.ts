import { gunzipSync } from "node:zlib";
import type { RedisClient } from "../redis/connection.ts";
import {
  agentJobSchema,
  latestJobKey,
  objectsDigest,
  type AgentJob,
  type ObjectsPayload,
  type AgentReport,
  type History,
  type ObjectResult,
} from "../core/agent-protocol.ts";
import { nextInventory, replayRefusal, withClaims, type Inventory } from "../core/inventory.ts";
import type { Clock } from "../core/clock.ts";
import { fullName, shortSha } from "../core/git-ref.ts";
import { groupKindKey, splitApiVersion, type ResourceId } from "../core/identity.ts";
import { parseJson } from "../core/json.ts";
import { metadataOf, type KubeObject } from "../core/manifest.ts";
import { namespacesFor, policyViolations, type AgentPolicy } from "../core/policy.ts";
import { crdScopes } from "../core/scopes.ts";
import { open, SignatureError, type VerificationKeys } from "../core/signing.ts";
import { applyAllStaged, type ApplyOptions } from "./apply.ts";
import { ChangeSet } from "./change-set.ts";
import { DeployError, HealthTimeoutError, HeldJobError, PermanentDeployError, RejectedJobError } from "./errors.ts";
import { waitForHealth, withHealth } from "./health-wait.ts";
import type { InventoryStore } from "./inventory-store.ts";
import type { Cluster } from "./kube/cluster.ts";
import { targetName } from "../core/fleet.ts";
import { withOwnership } from "./ownership.ts";
import type { Planned } from "./preflight.ts";
import { prune } from "./prune.ts";
import { errorMessage } from "../core/errors.ts";

/** Sends a report (signed by the caller's reporter). */
export type Report = (
  report: Omit<AgentReport, "version" | "jobId" | "repository" | "installationId" | "environment" | "sha" | "at">,
) => Promise<void>;

/** What the deployer needs. */
export interface DeployerDeps {
  redis: RedisClient;
  cluster: Cluster;
  inventories: InventoryStore;
  /** The app's public keys: several while a key rotation overlaps. */
  appKey: VerificationKeys;
  /** `cluster`: the one cluster of a fleet the agent serves, whose jobs alone it takes. */
  policy: AgentPolicy & { environments: readonly string[]; maxJobAgeMs: number; cluster?: string | undefined };
  concurrency: number;
  healthTimeoutMs: number;
  clock: Clock;
}

/** How far ahead of the agent's clock a job's signing time may be. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

/**
 * Verifies a job envelope: signature, schema and served environment. What fails here names
 * nothing that can be trusted, so it is dropped without a report.
 */
export function verifyJob(envelope: unknown, deps: Pick<DeployerDeps, "appKey" | "policy">): AgentJob {
  let payload: unknown;
  try {
    payload = open("job", envelope, deps.appKey);
  } catch (error) {
    throw new RejectedJobError(error instanceof SignatureError ? error.message : `job cannot be read: ${String(error)}`);
  }
  const parsed = agentJobSchema.safeParse(payload);
  if (!parsed.success) throw new RejectedJobError(`signed job does not match the job schema: ${parsed.error.issues[0]?.message ?? ""}`);
  const job = parsed.data;
  if (!deps.policy.environments.includes(job.environment))
    throw new RejectedJobError(`environment ${job.environment} is not served by this agent`);
  requireCluster(`job ${job.id}`, job.cluster, deps.policy);
  return job;
}

/**
 * Refuses a job or request signed for another cluster of a fleet than the agent's (or for one,
 * when the agent names none, or the other way round): it reaches another cluster's queue only
 * through someone who can write to Redis.
 * @throws RejectedJobError naming both clusters
 */
export function requireCluster(what: string, cluster: string | undefined, policy: Pick<DeployerDeps["policy"], "cluster">): void {
  if (cluster === policy.cluster) return;
  const signedFor = cluster === undefined ? "an environment without clusters" : `cluster ${cluster}`;
  const serves = policy.cluster === undefined ? "no named cluster" : `cluster ${policy.cluster}`;
  throw new RejectedJobError(`${what} is for ${signedFor}; this agent serves ${serves}`);
}

/**
 * Whether a verified job may run at all: its repository is served, and it is fresh (not expired,
 * not signed longer ago than the agent allows, not signed in the future).
 * @throws RejectedJobError saying which
 */
export function admitJob(
  job: Pick<AgentJob, "id" | "repository" | "signedAt" | "expiresAt">,
  policy: DeployerDeps["policy"],
  now: number,
): void {
  const repository = fullName(job.repository);
  if (namespacesFor(policy, repository) === undefined) throw new RejectedJobError(`repository ${repository} is not allowed by this agent`);
  const signedAt = Date.parse(job.signedAt);
  const expiresAt = Date.parse(job.expiresAt);
  const at = new Date(now).toISOString();
  if (now > expiresAt) throw new RejectedJobError(`job ${job.id} expired at ${job.expiresAt} (now ${at}); a stale job is never applied`);
  if (now - signedAt > policy.maxJobAgeMs)
    throw new RejectedJobError(
      `job ${job.id} was signed at ${job.signedAt}, more than the agent's limit of ${policy.maxJobAgeMs / 1000} s ago`,
    );
  if (signedAt - now > CLOCK_SKEW_MS)
    throw new RejectedJobError(`job ${job.id} was signed at ${job.signedAt}, in the future (now ${at}); check the clocks`);
}

/** Runs verified deploy jobs against the cluster. */
export class Deployer {
  readonly #deps: DeployerDeps;

  constructor(deps: DeployerDeps) {
    this.#deps = deps;
  }

  /** The job's objects, checked against the signed digest. */
  async objects(job: AgentJob): Promise<KubeObject[]> {
    return loadObjects(this.#deps.redis, job.objects, job.digest);
  }

  /** Whether a newer job for the same repository environment was queued since this one. */
  async supersededBy(job: AgentJob): Promise<string | undefined> {
    const latest = await this.#deps.redis.get(latestJobKey(targetName(job.environment, job.cluster), job.repository.id));
    return latest && latest !== job.id ? latest : undefined;
  }

  /**
   * Deploys: scope of every object from discovery, policy check (nothing written on refusal),
   * replay check against the cluster's own record, preflight dry-run and staged apply, prune,
   * health wait, new inventory and revision. Reports as it goes. Each stage returns its changes;
   * when one stops on an error, the DeployError thrown carries every change made until then.
   */
  async deploy(job: AgentJob, objects: KubeObject[], report: Report): Promise<{ results: ObjectResult[]; history: History }> {
    const deps = this.#deps;
    const { planned, corrections } = await planDeploy(deps, job, objects);
    const record = { accepted: await acceptJob(deps, job) };
    await report({ phase: "started", message: `applying ${planned.length} objects${corrections}`, applied: 0, total: planned.length });
    const ids = planned.map((p) => p.id);
    const changes = new ChangeSet();
    const applied = await applyAllStaged(deps.cluster, planned, applyOptions(deps, job, record, report));
    changes.append(applied.changes);
    if (applied.error) throw stageFailure(applied.error, changes.entries(ids));
    const pruned = await prune(deps.cluster, record.accepted.objects, ids, {
      repositoryId: job.repository.id,
      environment: job.environment,
      enabled: job.settings.prune,
      allowEmpty: job.settings.allowEmpty,
      adopted: record.accepted.adopted,
      now: deps.clock.now,
    });
    if (pruned.error) throw stageFailure(pruned.error, [...changes.entries(ids), ...pruned.changes]);
    const outcome = await waitForHealth(deps.cluster, planned, {
      timeoutMs: deps.healthTimeoutMs,
      concurrency: deps.concurrency,
      clock: deps.clock,
      waiting: (note) =>
        report({
          phase: "progress",
          message: `${planned.length} of ${planned.length} applied; ${note}`,
          applied: planned.length,
          total: planned.length,
        }),
    });
    const results = withHealth(changes.entries(ids), outcome.health);
    if (outcome.error) throw stageFailure(outcome.error, [...results, ...pruned.changes]);
    if (outcome.ended !== "healthy") throw new HealthTimeoutError(outcome.message, results);
    const next = await recordRevision(deps, job, record.accepted, ids);
    return { results: [...results, ...pruned.changes], history: historyOf(next) };
  }

  /** The environment's revisions and hold as the cluster's record has them, for the app's `/rollback`. */
  async history(job: Pick<AgentJob, "repository" | "environment">): Promise<History> {
    return historyOf(await this.#deps.inventories.read(job.repository.id, job.environment));
  }
}

/** What a report tells the app of an inventory: its revisions and hold. */
function historyOf(inventory: Inventory | undefined): History {
  return { revisions: inventory?.revisions ?? [], ...(inventory?.hold ? { hold: inventory.hold } : {}) };
}

/**
 * The job's objects with their scope from the cluster and Sluice's ownership labels, once the
 * agent's policy allows every one; `corrections` says (as report lines) where the cluster's scope
 * differs from what the manifest said.
 * @throws PermanentDeployError naming every object the policy refuses; nothing is written then
 */
async function planDeploy(
  deps: DeployerDeps,
  job: AgentJob,
  objects: readonly KubeObject[],
): Promise<{ planned: Planned[]; corrections: string }> {
  const scoped = await resolveScopes(deps.cluster, objects, job.settings.namespace);
  const violations = [
    ...scoped.unknown.map((u) => u.message),
    ...policyViolations(
      scoped.objects.map((o) => o.id),
      namespacesFor(deps.policy, fullName(job.repository)) ?? [],
      deps.policy.clusterKinds,
    ),
  ];
  if (violations.length > 0)
    throw new PermanentDeployError(`refused by the agent's policy; nothing was written:\n${violations.map((v) => `- ${v}`).join("\n")}`);
  const planned = scoped.objects.map(({ id, object }) => ({ id, object: withOwnership(object, job.repository, job.environment) }));
  const corrections = scoped.corrections.length > 0 ? `\n${scoped.corrections.map((c) => `- ${c}`).join("\n")}` : "";
  return { planned, corrections };
}

/**
 * Accepts the job into the cluster's record (its sequence, and the hold a rollback sets), after
 * checking against that record, not Redis, that it is newer than the last one accepted and that
 * no rollback holds the environment.
 * @throws RejectedJobError for a replayed or older job; HeldJobError while a rollback holds the environment
 */
async function acceptJob(deps: DeployerDeps, job: AgentJob): Promise<Inventory> {
  const previous = await deps.inventories.read(job.repository.id, job.environment);
  const refusal = replayRefusal(previous, job);
  if (refusal) throw new RejectedJobError(refusal);
  if (previous?.hold && job.hold === "keep")
    throw new HeldJobError(
      `held by /rollback to ${shortSha(previous.hold.sha)} (by ${previous.hold.by} at ${previous.hold.at}); merge the revert pull request or comment /sync to release the environment. Nothing was applied.`,
    );
  // A rollback holds the environment from the moment it is accepted, even if it then fails; a sync releases it once it succeeds.
  const hold =
    job.hold === "set"
      ? { by: job.requestedBy, at: new Date(deps.clock.now()).toISOString(), jobId: job.id, sha: job.sha }
      : previous?.hold;
  const accepted: Inventory = {
    version: 1,
    repositoryId: job.repository.id,
    repository: fullName(job.repository),
    environment: job.environment,
    objects: previous?.objects ?? [],
    revisions: previous?.revisions ?? [],
    sequence: job.sequence,
    sequenceJobId: job.id,
    heals: previous?.heals ?? [],
    adopted: previous?.adopted ?? [],
    ...(hold ? { hold } : {}),
  };
  await deps.inventories.write(accepted);
  return accepted;
}

/** The staged apply's options for `job`: the policy, progress as reports, and claims recorded in `record` before writes. */
function applyOptions(deps: DeployerDeps, job: AgentJob, record: { accepted: Inventory }, report: Report): ApplyOptions {
  return {
    concurrency: deps.concurrency,
    clock: deps.clock,
    owner: { repositoryId: job.repository.id, environment: job.environment },
    allowAdoption: deps.policy.allowAdoption,
    adoptUnmanaged: deps.policy.adoptUnmanaged,
    allowPodSecurityLabels: deps.policy.allowPodSecurityLabels,
    // What Sluice did not make is on record before it is written, so a failed deploy never lets a later prune delete it.
    beforeWrites: async (claims) => {
      const claimed = withClaims(record.accepted, claims);
      if (claimed === record.accepted) return;
      record.accepted = claimed;
      await deps.inventories.write(record.accepted);
    },
    progress: (applied, total, note) => report({ phase: "progress", message: `${applied} of ${total} applied; ${note}`, applied, total }),
  };
}

/** Writes the inventory of a deploy that succeeded: its objects and a new revision; a sync releases the hold. */
async function recordRevision(deps: DeployerDeps, job: AgentJob, accepted: Inventory, ids: readonly ResourceId[]): Promise<Inventory> {
  const next = nextInventory(
    accepted,
    { repositoryId: job.repository.id, repository: fullName(job.repository), environment: job.environment, objects: [...ids] },
    { sha: job.sha, jobId: job.id, digest: job.digest, appliedAt: new Date(deps.clock.now()).toISOString(), reason: job.reason },
  );
  if (job.hold === "release") delete next.hold;
  await deps.inventories.write(next);
  return next;
}

/**
 * The error a deploy ends with when a stage stopped on `error`: a DeployError as it is (it already
 * says whether it is permanent and which objects it is about); anything else is taken as transient
 * and carries `objects`, the changes made until then, so the report does not lose them.
 */
function stageFailure(error: Error, objects: ObjectResult[]): DeployError {
  if (error instanceof DeployError) return error;
  return new DeployError(error.message, { objects, permanent: false, cause: error });
}

/** A decompressed objects blob larger than this is refused: jobs are bounded by what the app renders. */
const MAX_BLOB_BYTES = 512 * 1024 * 1024;

/**
 * The objects of a signed job or preview request, inline or from their blob in Redis, checked
 * against the signed digest: RedisClient cannot change what the agent acts on.
 * @throws RejectedJobError when the blob is gone or unreadable, or the digest does not match
 */
export async function loadObjects(redis: RedisClient, payload: ObjectsPayload, signedDigest: string): Promise<KubeObject[]> {
  let objects: KubeObject[];
  if ("inline" in payload) objects = payload.inline;
  else {
    const blob = await redis.getBuffer(payload.blob);
    if (!blob) throw new RejectedJobError(`the objects blob ${payload.blob} is gone`);
    let text: string;
    try {
      text = gunzipSync(blob, { maxOutputLength: MAX_BLOB_BYTES }).toString("utf8");
    } catch (error) {
      throw new RejectedJobError(`the objects blob ${payload.blob} cannot be read: ${errorMessage(error)}`);
    }
    objects = parseJson(text) as KubeObject[];
  }
  const digest = objectsDigest(objects);
  if (digest !== signedDigest) throw new RejectedJobError(`objects digest ${digest} does not match the signed digest ${signedDigest}`);
  return objects;
}

/**
 * Each object's scope as the API server serves it (discovery), or as a CRD in the same set
 * defines it; never as the manifest claims. Cluster-scoped objects lose any namespace they carry;
 * namespaced ones without one get `defaultNamespace`. Kinds neither the server nor the set knows
 * are listed in `unknown`.
 */
export async function resolveScopes(
  cluster: Cluster,
  objects: readonly KubeObject[],
  defaultNamespace: string,
): Promise<{ objects: Planned[]; unknown: { id: ResourceId; message: string }[]; corrections: string[] }> {
  const definedHere = crdScopes(objects);
  const planned: Planned[] = [];
  const unknown: { id: ResourceId; message: string }[] = [];
  const corrections: string[] = [];
  for (const object of objects) {
    const apiVersion = String(object.apiVersion);
    const { group, version } = splitApiVersion(apiVersion);
    const kind = String(object.kind);
    const metadata = { ...metadataOf(object) };
    const name = String(metadata.name);
    const defined = definedHere.get(groupKindKey(group, kind));
    const namespaced = (await cluster.namespaced(apiVersion, kind)) ?? (defined === undefined ? undefined : defined === "namespaced");
    if (namespaced === undefined) {
      const stated = typeof metadata.namespace === "string" ? metadata.namespace : "";
      unknown.push({
        id: { group, version, kind, namespace: stated, name },
        message: `${kind} ${name} (${apiVersion}): the API server does not serve this kind and no CustomResourceDefinition in this deploy defines it`,
      });
      continue;
    }
    if (namespaced)
      metadata.namespace = typeof metadata.namespace === "string" && metadata.namespace !== "" ? metadata.namespace : defaultNamespace;
    else {
      if (typeof metadata.namespace === "string" && metadata.namespace !== "")
        corrections.push(`${kind} ${name} is cluster-scoped; its metadata.namespace ${metadata.namespace} was ignored`);
      delete metadata.namespace;
    }
    const namespace = namespaced ? String(metadata.namespace) : "";
    planned.push({ id: { group, version, kind, namespace, name }, object: { ...object, metadata } });
  }
  return { objects: planned, unknown, corrections };
}
