import { z } from "zod";
import type { FleetClusters } from "./fleet-clusters.ts";
import { ClusterConvergence, type ClusterConvergenceDeps } from "./cluster-convergence.ts";
import { queueConvergence } from "./convergence-requests.ts";
import { targetName } from "../../core/fleet.ts";
import { agentStatusSchema, latestJobKey, type AgentStatus, type AppliedRevision } from "../../core/agent-protocol.ts";
import type { DeployRequest } from "../../core/deploy-requests.ts";
import { fullName, type RepositoryRef, repositoryRefSchema } from "../../core/git-ref.ts";
import { errorMessage } from "../../core/errors.ts";
import { canonicalJson } from "../../core/normalize.ts";
import { isNotFound, type GitHubClient } from "../github/client.ts";
import { environmentRepositoriesKey, sequenceKey } from "../state/redis-keys.ts";
import type { AgentKeys, Verdict } from "../agents/agent-keys.ts";
import type { RedisMac } from "../state/redis-mac.ts";
import { discoverFromCheckout, reviewedConfig } from "../github/repository-config.ts";

/** How long the app remembers that a repository deploys to an environment without hearing of it again. */
const REMEMBERED_TTL_SECONDS = 365 * 24 * 3600;
/** Deploys the app queues by itself per environment and minute, at most: the rest wait for the agent's next status. */
const DEFAULT_PER_MINUTE = 20;

/** A repository that deploys to an environment, and the installation that serves it. */
const targetSchema = z.strictObject({ repository: repositoryRefSchema, installationId: z.number().int().positive() });
/** A repository that deploys to an environment. */
export type ConvergenceTarget = z.infer<typeof targetSchema>;

/** A remembered target as it is stored: the target and its MAC, bound to the environment and repository. */
const storedSchema = z.strictObject({ target: targetSchema, mac: z.string() });

/**
 * What the app decided for one repository environment on an agent's status: queue a deploy of the
 * tracked branch's head, or leave it, and why.
 */
export type ConvergenceDecision =
  | { action: "deploy"; sha: string; branch: string }
  | {
      action: "skip";
      reason:
        "converged" | "held" | "not-configured" | "manual" | "promoted" | "no-branch" | "invalid-config" | "in-flight" | "rate-limited";
    };

/** What converging environments to Git needs. */
export interface ConvergenceDeps extends Omit<ClusterConvergenceDeps, "perMinute"> {
  mac: RedisMac;
  /** A client authenticated as the app itself, to find the installation of a repository the app forgot (a Redis flush). */
  appGitHub: () => Promise<GitHubClient>;
  agentKeys: AgentKeys;
  /** Where the clusters of fleets are learned, from the statuses of agents that name one. */
  clusters: FleetClusters;
  /** Deploys queued by the app itself per environment and minute; 20 unless a test says otherwise. */
  perMinute?: number;
}

/**
 * Converges environments to Git by itself: when an agent's signed status shows an environment
 * behind the head of a repository's tracked branch (a new cluster, an agent that was down longer
 * than a job lives, a queue Redis lost), and nothing holds the environment, it queues a deploy of
 * that head, as a merge would have. Which repositories deploy to an environment it learns from
 * their deploy requests, and from the agent's status (its inventories) after a Redis flush.
 */
export class Convergence {
  readonly #deps: ConvergenceDeps;
  /** The reconciliation running per environment: a status that arrives meanwhile is not queued behind it. */
  readonly #running = new Map<string, Promise<void>>();
  #closed = false;
  readonly #clusters: ClusterConvergence;

  constructor(deps: ConvergenceDeps) {
    this.#deps = deps;
    this.#clusters = new ClusterConvergence({ ...deps, perMinute: deps.perMinute ?? DEFAULT_PER_MINUTE });
  }

  /** Remembers that a repository deploys to an environment (called with every verified deploy request). */
  async remember(request: Pick<DeployRequest, "repository" | "installationId" | "environment">): Promise<void> {
    const target: ConvergenceTarget = { repository: request.repository, installationId: request.installationId };
    const key = environmentRepositoriesKey(request.environment);
    const field = String(target.repository.id);
    const stored = { target, mac: this.#deps.mac.sign(`${key}:${field}`, canonicalJson(target)) };
    await this.#deps.redis.hset(key, field, JSON.stringify(stored));
    await this.#deps.redis.expire(key, REMEMBERED_TTL_SECONDS);
  }

  /** The repositories remembered for an environment; entries whose MAC does not verify are left out. */
  async targets(environment: string): Promise<ConvergenceTarget[]> {
    const key = environmentRepositoriesKey(environment);
    const all = await this.#deps.redis.hgetall(key);
    const targets: ConvergenceTarget[] = [];
    for (const [field, text] of Object.entries(all)) {
      let parsed;
      try {
        parsed = storedSchema.safeParse(JSON.parse(text));
      } catch {
        continue;
      }
      if (!parsed.success || String(parsed.data.target.repository.id) !== field) continue;
      if (this.#deps.mac.verify(`${key}:${field}`, canonicalJson(parsed.data.target), parsed.data.mac)) targets.push(parsed.data.target);
    }
    return targets;
  }

  /**
   * Consumes an agent's signed status: once its signature and key binding hold, the environment is
   * reconciled in the background (so deploy reports on the same queue do not wait for GitHub), at
   * most once at a time per environment.
   */
  async consume(envelope: unknown): Promise<void> {
    const deps = this.#deps;
    await deps.agentKeys.consume("status", envelope, {
      schema: agentStatusSchema,
      log: deps.log,
      use: async (status, binding): Promise<Verdict> => {
        const cluster = status.cluster;
        // An agent of one cluster of a fleet: the environment's globs now match its cluster, and the cluster alone converges.
        if (cluster !== undefined) {
          const at = Math.min(Date.parse(status.at), deps.now());
          await deps.clusters.announced(status.environment, cluster, at, binding.repositories);
        }
        const key = targetName(status.environment, cluster);
        if (!this.#closed && !this.#running.has(key)) {
          // A key bound to some repositories speaks for those alone, whatever else deploys there.
          const work =
            cluster === undefined
              ? this.reconcile(status, binding.repositories)
              : this.#reconcileCluster({ ...status, cluster }, binding.repositories);
          const run = work
            .then(() => undefined)
            .catch((error: unknown) => {
              deps.log.error({ environment: status.environment, cluster, error: errorMessage(error) }, "environment not converged");
            })
            .finally(() => this.#running.delete(key));
          this.#running.set(key, run);
        }
        return { accepted: true };
      },
    });
  }

  /** Converges one cluster of a fleet to its environment's newest rollout (`ClusterConvergence`), for the repositories its key may speak for. */
  async #reconcileCluster(status: AgentStatus & { cluster: string }, only?: readonly number[]): Promise<void> {
    const targets = (await this.targets(status.environment)).filter((t) => !only || only.includes(t.repository.id));
    await this.#clusters.reconcile(status, targets);
  }

  /**
   * Starts no more reconciliations (at shutdown). Those in progress are not waited for: GitHub or
   * Redis may hang, and the next status, to any replica, decides again.
   */
  close(): void {
    this.#closed = true;
  }

  /**
   * Reconciles one environment with an agent's status: for every repository that deploys there
   * (of `only`, when the status's key is bound to repositories), decides and, when the
   * environment is behind the head, queues the deploy. Returns the
   * decisions by repository id.
   */
  async reconcile(status: AgentStatus, only?: readonly number[]): Promise<Map<number, ConvergenceDecision>> {
    const deps = this.#deps;
    const applied = new Map(status.repositories.map((r) => [r.repository.id, r]));
    const targets = new Map(
      (await this.targets(status.environment)).filter((t) => !only || only.includes(t.repository.id)).map((t) => [t.repository.id, t]),
    );
    for (const revision of status.repositories) {
      if (targets.has(revision.repository.id)) continue;
      const found = await this.#find(revision).catch((error: unknown) => {
        deps.log.warn(
          { repository: revision.repository.fullName, error: errorMessage(error) },
          "repository of an agent's inventory not found",
        );
        return undefined;
      });
      if (!found) continue;
      targets.set(found.repository.id, found);
      await this.remember({ ...found, environment: status.environment });
    }
    const decisions = new Map<number, ConvergenceDecision>();
    for (const target of targets.values()) {
      const about = { environment: status.environment, repository: fullName(target.repository) };
      try {
        const decision = await this.#decide(status, target, applied.get(target.repository.id));
        decisions.set(target.repository.id, decision);
        if (decision.action === "deploy")
          deps.log.info({ ...about, sha: decision.sha, event: status.event }, "environment behind its branch: deploy queued");
        else if (decision.reason !== "converged") deps.log.info({ ...about, reason: decision.reason }, "environment not converged");
      } catch (error) {
        deps.log.warn({ ...about, error: errorMessage(error) }, "environment not converged");
      }
    }
    return decisions;
  }

  /**
   * A repository an agent's inventory names that the app does not remember (its Redis was
   * flushed): found by name through the app's installation, and only when its id is the one the
   * inventory records (a repository renamed since, or a new one with the old name, is not it).
   */
  async #find(revision: AppliedRevision): Promise<ConvergenceTarget | undefined> {
    const [owner = "", name = ""] = revision.repository.fullName.split("/");
    const installationId = await (await this.#deps.appGitHub()).repositoryInstallation({ owner, name });
    if (installationId === undefined) return undefined;
    const id = await (await this.#deps.github(installationId)).repositoryId({ owner, name });
    if (id !== revision.repository.id) return undefined;
    return { repository: { owner, name, id }, installationId };
  }

  async #decide(status: AgentStatus, target: ConvergenceTarget, applied: AppliedRevision | undefined): Promise<ConvergenceDecision> {
    const deps = this.#deps;
    const { environment } = status;
    const repository: RepositoryRef = target.repository;
    // The agent's record holds the environment, and the app's mirror of it too (set by /rollback at once).
    if (applied?.held || (await deps.environments.load(repository.id, environment)).hold) return { action: "skip", reason: "held" };
    const gh = await deps.github(target.installationId);
    const config = await reviewedConfig(gh, repository, discoverFromCheckout(deps.checkouts, gh, repository));
    if (!config.ok) return { action: "skip", reason: "invalid-config" };
    const env = config.config.environments.find((e) => e.name === environment);
    if (!env) {
      // The repository no longer deploys here.
      await deps.redis.hdel(environmentRepositoriesKey(environment), String(repository.id));
      return { action: "skip", reason: "not-configured" };
    }
    if (!env.autoDeploy) return { action: "skip", reason: "manual" };
    // An environment promoted from another is behind its branch on purpose: promotion moves it.
    if (env.promotion) return { action: "skip", reason: "promoted" };
    let head: string;
    try {
      head = await gh.branchSha(repository, env.branch);
    } catch (error) {
      if (isNotFound(error)) return { action: "skip", reason: "no-branch" };
      throw error;
    }
    if (applied?.sha === head) return { action: "skip", reason: "converged" };
    if (await this.#inFlight(repository.id, environment)) return { action: "skip", reason: "in-flight" };
    const queued = await queueConvergence(
      { ...deps, perMinute: deps.perMinute ?? DEFAULT_PER_MINUTE },
      {
        repository,
        installationId: target.installationId,
        environment,
        sha: head,
        convergence: { event: status.event, branch: env.branch, ...(applied ? { applied: applied.sha } : {}) },
      },
    );
    return queued === "deploy" ? { action: "deploy", sha: head, branch: env.branch } : { action: "skip", reason: queued };
  }

  /**
   * Whether the repository environment's newest deploy (a merge's, a command's, or the app's own)
   * may still be applied: requested less than a job's lifetime ago and not finished. Its sequence
   * is at least the time it was requested; a request older than that cannot be applied any more
   * (the agent refuses the expired job), so a newer one is due.
   */
  async #inFlight(repositoryId: number, environment: string): Promise<boolean> {
    const deps = this.#deps;
    const [jobId, sequence] = await Promise.all([
      deps.redis.get(latestJobKey(environment, repositoryId)),
      deps.redis.get(sequenceKey(repositoryId, environment)),
    ]);
    if (!jobId || !sequence) return false;
    if (deps.now() - Number(sequence) >= deps.jobTtlMs) return false;
    const record = await deps.records.load(jobId);
    return !record?.completed;
  }
}
