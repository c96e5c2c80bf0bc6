import type { Convergence as ConvergenceFacts, DeployRequest } from "../../core/deploy-requests.ts";
import { deployRequest } from "../../core/deploy-requests.ts";
import { clusterField, targetName } from "../../core/fleet.ts";
import type { RepositoryRef } from "../../core/git-ref.ts";
import type { RedisClient } from "../../redis/connection.ts";
import type { AppQueues } from "../queue/queues.ts";
import { convergenceKey, convergenceRateKey } from "../state/redis-keys.ts";

/** What queueing the app's own deploys needs. */
export interface ConvergenceRequestDeps {
  redis: RedisClient;
  queues: AppQueues;
  /** How long a signed job stays valid: a deploy requested longer ago than this can no longer be applied. */
  jobTtlMs: number;
  now: () => number;
  /** Deploys queued by the app itself per environment and minute. */
  perMinute: number;
}

/** A deploy the app asks for by itself: of `sha` to an environment, or to one cluster of a fleet. */
export interface ConvergenceAsk {
  repository: RepositoryRef;
  installationId: number;
  environment: string;
  cluster?: string;
  sha: string;
  convergence: ConvergenceFacts;
}

/**
 * Queues a deploy the app asks for by itself (an agent's status showed its environment or cluster
 * behind), within the environment's limit per minute, and once per commit and target while its
 * deploy may still be applied: after that, a status still behind asks again.
 */
export async function queueConvergence(
  deps: ConvergenceRequestDeps,
  ask: ConvergenceAsk,
): Promise<"deploy" | "rate-limited" | "in-flight"> {
  const rate = convergenceRateKey(ask.environment);
  const count = await deps.redis.incr(rate);
  if (count === 1) await deps.redis.expire(rate, 60);
  if (count > deps.perMinute) return "rate-limited";
  const marked = await deps.redis.set(
    convergenceKey(ask.repository.id, targetName(ask.environment, ask.cluster), ask.sha),
    "1",
    "PX",
    deps.jobTtlMs,
    "NX",
  );
  if (marked !== "OK") return "in-flight";
  const now = deps.now();
  const trigger: DeployRequest["trigger"] = `converge-${now}`;
  await deps.queues.addDeployRequest(
    deployRequest(
      {
        repository: ask.repository,
        installationId: ask.installationId,
        environment: ask.environment,
        sha: ask.sha,
        reason: "merge",
        requestedBy: "sluice",
        trigger,
        convergence: ask.convergence,
        ...clusterField(ask.cluster),
      },
      now,
    ),
  );
  return "deploy";
}
