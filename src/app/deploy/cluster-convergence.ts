import { latestJobKey, type AgentStatus, type AppliedRevision } from "../../core/agent-protocol.ts";
import { fleetOf } from "../../core/config.ts";
import { errorMessage } from "../../core/errors.ts";
import { listsCluster, targetName } from "../../core/fleet.ts";
import { fullName, type RepositoryRef } from "../../core/git-ref.ts";
import { lastDeployed } from "../../core/promotion.ts";
import type { CheckoutCache } from "../checkouts/checkout-cache.ts";
import type { GitHubClient } from "../github/client.ts";
import { discoverFromCheckout, reviewedConfig } from "../github/repository-config.ts";
import type { Logger } from "../log-context.ts";
import type { GateStates } from "../promotion/gate-states.ts";
import { queueConvergence, type ConvergenceRequestDeps } from "./convergence-requests.ts";
import type { DeployRecords } from "./deploy-records.ts";
import type { EnvironmentStates } from "./environment-states.ts";

/** What converging one cluster of a fleet needs, besides queueing the deploy. */
export interface ClusterConvergenceDeps extends ConvergenceRequestDeps {
  github: (installationId: number) => Promise<GitHubClient>;
  checkouts: CheckoutCache;
  environments: EnvironmentStates;
  records: DeployRecords;
  /** The environment's sealed outcomes: the commit its newest rollout deployed to every wave. */
  gates: Pick<GateStates, "load">;
  log: Logger;
}

/** Why a cluster was or was not converged, for logs and tests. */
export type ClusterDecision =
  "deploy" | "held" | "not-configured" | "not-listed" | "nothing-deployed" | "converged" | "has-a-revision" | "in-flight" | "rate-limited";

/**
 * Converges one cluster of a fleet from its agent's status: a cluster that runs nothing of a
 * repository (it joined, or was rebuilt) gets the commit the environment's newest rollout deployed
 * to every wave (a sealed outcome), never the branch's head, which would skip the waves or a
 * rollout that stopped. A cluster that runs a revision is left to the rollouts: one a stopped
 * rollout reached runs a newer commit than the last that reached every wave, and converging it
 * would roll it back unasked. Nothing is done while a rollout is under way (it reaches the
 * cluster in its wave) or a hold is set.
 */
export class ClusterConvergence {
  readonly #deps: ClusterConvergenceDeps;

  constructor(deps: ClusterConvergenceDeps) {
    this.#deps = deps;
  }

  /** Decides for each repository that deploys to the status's environment; the decisions by repository id. */
  async reconcile(
    status: AgentStatus & { cluster: string },
    targets: readonly { repository: RepositoryRef; installationId: number }[],
  ): Promise<Map<number, ClusterDecision>> {
    const applied = new Map(status.repositories.map((r) => [r.repository.id, r]));
    const decisions = new Map<number, ClusterDecision>();
    for (const target of targets) {
      const about = { environment: status.environment, cluster: status.cluster, repository: fullName(target.repository) };
      try {
        const decision = await this.#decide(status, target, applied.get(target.repository.id));
        decisions.set(target.repository.id, decision);
        if (decision === "deploy") this.#deps.log.info(about, "cluster behind its environment's rollouts: deploy queued");
      } catch (error) {
        this.#deps.log.warn({ ...about, error: errorMessage(error) }, "cluster not converged");
      }
    }
    return decisions;
  }

  async #decide(
    status: AgentStatus & { cluster: string },
    target: { repository: RepositoryRef; installationId: number },
    applied: AppliedRevision | undefined,
  ): Promise<ClusterDecision> {
    const deps = this.#deps;
    const { environment, cluster } = status;
    const { repository } = target;
    if (applied?.held || (await deps.environments.load(repository.id, environment)).hold) return "held";
    const gh = await deps.github(target.installationId);
    const config = await reviewedConfig(gh, repository, discoverFromCheckout(deps.checkouts, gh, repository));
    const env = config.ok ? config.config.environments.find((e) => e.name === environment) : undefined;
    const fleet = env ? fleetOf(env) : undefined;
    if (!env || !fleet || !env.autoDeploy) return "not-configured";
    if (!listsCluster(fleet, cluster)) return "not-listed";
    const sha = lastDeployed((await deps.gates.load(repository.id, environment)).events);
    if (sha === undefined) return "nothing-deployed";
    if (applied) return applied.sha === sha ? "converged" : "has-a-revision";
    const clusterTarget = targetName(environment, cluster);
    if (
      (await this.#inFlight(latestJobKey(environment, repository.id))) ||
      (await this.#inFlight(latestJobKey(clusterTarget, repository.id)))
    )
      return "in-flight";
    return queueConvergence(deps, {
      repository,
      installationId: target.installationId,
      environment,
      cluster,
      sha,
      convergence: { event: status.event, branch: env.branch },
    });
  }

  /** Whether the deploy a newest-job mark names is not finished (a rollout under way, or a cluster's own deploy). */
  async #inFlight(key: string): Promise<boolean> {
    const jobId = await this.#deps.redis.get(key);
    if (!jobId) return false;
    const record = await this.#deps.records.load(jobId);
    return record !== undefined && !record.completed;
  }
}
