import type { RedisClient } from "../redis/connection.ts";
import { appliedJobKey, appliedSetKey, type AgentJob, type DriftedObject, type DriftReport } from "../core/agent-protocol.ts";
import { mapBounded } from "../core/clock.ts";
import { computeHealth } from "../core/health.ts";
import { prefixWithin } from "../core/markdown.ts";
import type { DriftIgnore } from "../core/config.ts";
import { ignoredPaths, mayHaveDrifted, withoutPaths } from "../core/drift.ts";
import { withHeal } from "../core/inventory.ts";
import { errorMessage } from "../core/errors.ts";
import { resourceKey, statedId, type ResourceId } from "../core/identity.ts";
import type { KubeObject } from "../core/manifest.ts";
import { canonicalJson } from "../core/normalize.ts";
import type { Envelope } from "../core/signing.ts";
import { loadObjects, resolveScopes, verifyJob, type DeployerDeps } from "./deployer.ts";
import { appliedGenerationKey } from "./drift-lease.ts";
import { clusterField, targetName } from "../core/fleet.ts";
import type { InventoryStore } from "./inventory-store.ts";
import { KubeApiError, type Cluster } from "./kube/cluster.ts";
import { withOwnership } from "./ownership.ts";
import { idFields, liveDiff } from "./live-diff.ts";
import { listLive, preflightAll, type Planned } from "./preflight.ts";

/** Self-heal stops healing an object changed back this many times within the window. */
const HEAL_LIMIT = 3;
const HEAL_WINDOW_MS = 30 * 60 * 1000;

/** What drift checks need. */
export interface DriftDeps {
  redis: RedisClient;
  cluster: Cluster;
  inventories: InventoryStore;
  appKey: DeployerDeps["appKey"];
  policy: DeployerDeps["policy"];
  concurrency: number;
  now: () => number;
}

/**
 * Compares what Sluice last applied to each repository environment with the live cluster, and
 * heals where the environment asks for it. What was applied is the app's signed job, believed
 * only when it is the one the agent's own inventory in the cluster records; drift is only what
 * Sluice owns and the live object no longer matches (the cluster's controllers' fields, and the
 * environment's ignore rules, are not).
 */
export class DriftChecker {
  readonly #deps: DriftDeps;
  /** Heal times per object, for the back-off. */
  readonly #heals = new Map<string, number[]>();

  constructor(deps: DriftDeps) {
    this.#deps = deps;
  }

  /** Where the agent keeps an environment's keys in Redis: the environment, or its cluster of a fleet (`core/fleet.ts`'s `targetName`). */
  target(environment: string): string {
    return targetName(environment, this.#deps.policy.cluster);
  }

  /** Keeps the job just applied, for later drift checks. */
  async remember(job: AgentJob, envelope: Envelope): Promise<void> {
    const target = this.target(job.environment);
    await this.#deps.redis.set(appliedJobKey(target, job.repository.id), JSON.stringify(envelope));
    await this.#deps.redis.sadd(appliedSetKey(target), String(job.repository.id));
    await this.#deps.redis.incr(appliedGenerationKey(target));
  }

  /** The objects the inventories of every repository applied to `environment` record, for the drift watches. */
  async inventoried(environment: string): Promise<ResourceId[]> {
    const ids = await this.#deps.redis.smembers(appliedSetKey(this.target(environment)));
    const inventories = await Promise.all(ids.map((id) => this.#deps.inventories.read(Number(id), environment)));
    return inventories.flatMap((inventory) => inventory?.objects ?? []);
  }

  /**
   * Checks every repository applied to `environment`; one report per repository that could be
   * checked. `stillHeld` is asked before each repository (renewing the drift lease, see
   * `DriftLease`): once it says no, another replica checks and the rest is left to it.
   */
  async checkEnvironment(environment: string, options: { stillHeld?: () => Promise<boolean> } = {}): Promise<Omit<DriftReport, "at">[]> {
    const ids = await this.#deps.redis.smembers(appliedSetKey(this.target(environment)));
    const reports: Omit<DriftReport, "at">[] = [];
    for (const id of ids) {
      if (options.stillHeld && !(await options.stillHeld())) break;
      const report = await this.check(environment, Number(id));
      if (report) reports.push(report);
    }
    return reports;
  }

  /**
   * Checks one repository environment; undefined when there is nothing trustworthy to check
   * against (no applied job, a bad signature, or one the cluster's inventory does not record).
   */
  async check(environment: string, repositoryId: number): Promise<Omit<DriftReport, "at"> | undefined> {
    const deps = this.#deps;
    const job = await this.#applied(environment, repositoryId);
    if (!job) return undefined;
    const objects = await loadObjects(deps.redis, job.objects, job.digest);
    const scoped = await resolveScopes(deps.cluster, objects, job.settings.namespace);
    const planned: Planned[] = scoped.objects.map(({ id, object }) => ({
      id,
      object: withOwnership(object, job.repository, job.environment),
    }));
    // Only a fleet's rollouts read health (a wave bakes healthy): other agents do not work it out.
    const fleet = job.cluster !== undefined;
    const { drifted, unhealthy } = await inspect(deps.cluster, planned, job.settings.driftIgnore, deps.concurrency, fleet);
    const healed: ResourceId[] = [];
    const gaveUp: ResourceId[] = [];
    // Heal only while this is still the newest revision: a deploy that landed meanwhile wins.
    if (job.settings.selfHeal && drifted.length > 0 && (await this.#applied(environment, repositoryId))?.id === job.id) {
      for (const object of drifted) {
        const target = planned.find((p) => resourceKey(p.id) === resourceKey(object));
        if (!target) continue;
        if (!(await this.#healable(target, job))) continue;
        if (!this.#mayHeal(resourceKey(object))) {
          gaveUp.push(idFields(object));
          continue;
        }
        await deps.cluster.apply(target.object);
        healed.push(idFields(object));
      }
      // Every heal is part of the environment's history, beside its revisions.
      const inventory = healed.length > 0 ? await deps.inventories.read(repositoryId, environment) : undefined;
      if (inventory)
        await deps.inventories.write(withHeal(inventory, { at: new Date(deps.now()).toISOString(), jobId: job.id, objects: healed }));
    }
    return {
      version: 1,
      repository: job.repository,
      installationId: job.installationId,
      environment,
      ...clusterField(job.cluster),
      sha: job.sha,
      jobId: job.id,
      checked: planned.length,
      drifted,
      healed,
      gaveUp,
      ...(fleet ? { unhealthy } : {}),
    };
  }

  /** The objects last applied to a repository environment, as canonical JSON by identity key; undefined when not known and trusted. */
  async appliedObjects(environment: string, repositoryId: number): Promise<Map<string, string> | undefined> {
    const job = await this.#applied(environment, repositoryId).catch(() => undefined);
    if (!job) return undefined;
    const objects = await loadObjects(this.#deps.redis, job.objects, job.digest);
    return new Map(objects.map((o) => [resourceKey(statedId(o)), canonicalJson(o)]));
  }

  /** The applied job, if its signature verifies and the inventory in the cluster records it as the newest revision. */
  async #applied(environment: string, repositoryId: number): Promise<AgentJob | undefined> {
    const deps = this.#deps;
    const text = await deps.redis.get(appliedJobKey(this.target(environment), repositoryId));
    if (!text) return undefined;
    let job: AgentJob;
    try {
      job = verifyJob(JSON.parse(text), deps);
    } catch (error) {
      throw new Error(`the applied job kept for repository ${repositoryId} in ${environment} does not verify: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    const inventory = await deps.inventories.read(repositoryId, environment);
    const latest = inventory?.revisions[0];
    if (!latest || latest.jobId !== job.id || latest.digest !== job.digest || job.repository.id !== repositoryId) return undefined;
    return job;
  }

  /**
   * Whether healing may write the object: only what is still this environment's (or gone), and
   * never a Pod Security label change the policy keeps from repositories. Adopting happens at
   * deploys, where it is recorded; an object that lost Sluice's labels since stays drifted.
   */
  async #healable(target: Planned, job: AgentJob): Promise<boolean> {
    const owner = { repositoryId: job.repository.id, environment: job.environment };
    const [preflight] = await preflightAll(this.#deps.cluster, [target], { ...this.#deps.policy, concurrency: 1, owner });
    return preflight !== undefined && "claim" in preflight && (preflight.claim === "keep" || preflight.claim === "create");
  }

  /** Whether an object may be healed now: fewer than the limit of heals in the window. */
  #mayHeal(key: string): boolean {
    const now = this.#deps.now();
    const recent = (this.#heals.get(key) ?? []).filter((at) => now - at < HEAL_WINDOW_MS);
    if (recent.length >= HEAL_LIMIT) {
      this.#heals.set(key, recent);
      return false;
    }
    this.#heals.set(key, [...recent, now]);
    return true;
  }
}

/**
 * The objects that drifted from what was applied. The live objects are listed once per kind and
 * namespace; only those whose managedFields show another hand (see `mayHaveDrifted`) are dry-run
 * and compared, at most `concurrency` at once.
 */
export async function findDrift(
  cluster: Cluster,
  planned: readonly Planned[],
  rules: readonly DriftIgnore[],
  concurrency: number,
): Promise<DriftedObject[]> {
  return (await inspect(cluster, planned, rules, concurrency, false)).drifted;
}

/** An object whose live status is not current, and why. */
type Unhealthy = NonNullable<DriftReport["unhealthy"]>[number];

/** {@link findDrift}, and with `withHealth` the live objects that are not healthy (kstatus), from the same listing. */
async function inspect(
  cluster: Cluster,
  planned: readonly Planned[],
  rules: readonly DriftIgnore[],
  concurrency: number,
  withHealth: boolean,
): Promise<{ drifted: DriftedObject[]; unhealthy: Unhealthy[] }> {
  const live = await listLive(cluster, planned, concurrency);
  const unhealthy: Unhealthy[] = [];
  for (const p of withHealth ? planned : []) {
    const found = live.get(resourceKey(p.id));
    const health = found ? computeHealth(found) : undefined;
    if (health && health.status !== "current")
      unhealthy.push({ ...idFields(p.id), health: health.status, message: prefixWithin(health.message, 1_000) });
  }
  const results = await mapBounded(planned, concurrency, async (p): Promise<DriftedObject | undefined> => {
    const found = live.get(resourceKey(p.id));
    if (!found) return { ...idFields(p.id), action: "missing" };
    return mayHaveDrifted(found, cluster.fieldManager, rules, p.id) ? driftOf(cluster, p, found, rules) : undefined;
  });
  return { drifted: results.filter((r): r is DriftedObject => r !== undefined), unhealthy };
}

/** How one object drifted from what was applied, or undefined when it did not. */
async function driftOf(
  cluster: Cluster,
  planned: Planned,
  live: KubeObject,
  rules: readonly DriftIgnore[],
): Promise<DriftedObject | undefined> {
  const { id, object } = planned;
  // What applying the same object again would make of it: the live object as Sluice left it.
  let applied: KubeObject;
  try {
    applied = await cluster.apply(object, { dryRun: true });
  } catch (error) {
    // Changed so far by hand that applying it again is refused: drift, with the server's reason.
    if (!(error instanceof KubeApiError) || error.transient) throw error;
    return { ...idFields(id), action: "modified", message: `applying it again would be refused: ${error.detail}` };
  }
  const paths = ignoredPaths(rules, id, live);
  const diff = liveDiff(id, withoutPaths(applied, paths), withoutPaths(live, paths));
  return diff === undefined ? undefined : { ...idFields(id), action: "modified", diff };
}
