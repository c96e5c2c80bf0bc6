import { deployRequest } from "../../core/deploy-requests.ts";
import { type RepositoryRef } from "../../core/git-ref.ts";
import type { GitHubClient } from "../github/client.ts";
import type { AppQueues } from "../queue/queues.ts";
import type { CheckoutCache } from "../checkouts/checkout-cache.ts";
import type { Logger } from "../log-context.ts";
import { discoverFromCheckout, reviewedConfig } from "../github/repository-config.ts";
import type { Promotions } from "../promotion/promotions.ts";

/** A push as the deploy pipeline sees it. */
export interface PushEvent {
  repository: RepositoryRef;
  installationId: number;
  branch: string;
  sha: string;
  pusher: string;
  /** Pushed with force: the commit need not contain the branch's earlier ones. */
  forced: boolean;
}

/**
 * Queues a deploy request for every environment that the reviewed configuration (the default
 * branch's) tracks on the pushed branch and deploys automatically: a push never chooses what it
 * deploys. An environment promoted from another is not deployed by the push: the commit joins the
 * branch's line and waits for its promotion. Returns the environments queued or waiting.
 */
export async function requestPushDeploys(
  gh: GitHubClient,
  deps: { queues: AppQueues; checkouts: CheckoutCache; now: () => number; log: Logger; promotions?: Promotions | undefined },
  push: PushEvent,
): Promise<string[]> {
  const config = await reviewedConfig(gh, push.repository, discoverFromCheckout(deps.checkouts, gh, push.repository));
  if (!config.ok) {
    deps.log.warn({ repository: push.repository.id, sha: push.sha }, "push not deployed: the default branch's configuration is invalid");
    return [];
  }
  const queued = deps.promotions ? await deps.promotions.pushed(gh, push, config.config) : [];
  for (const env of config.config.environments) {
    if (env.branch !== push.branch || !env.autoDeploy || (deps.promotions && env.promotion)) continue;
    const request = deployRequest(
      {
        repository: push.repository,
        installationId: push.installationId,
        environment: env.name,
        sha: push.sha,
        reason: "merge",
        requestedBy: push.pusher,
        trigger: "push",
      },
      deps.now(),
    );
    await deps.queues.addDeployRequest(request);
    queued.push(env.name);
  }
  return queued;
}
