import { deployCheckName } from "../../core/check-names.ts";
import { fleetOf } from "../../core/config.ts";
import { listsCluster, targetName } from "../../core/fleet.ts";
import { replies } from "../../core/commands.ts";
import type { Environment } from "../../core/config.ts";
import { deployJobId, deployRequest, type DeployRequest } from "../../core/deploy-requests.ts";
import { type RepositoryRef } from "../../core/git-ref.ts";
import { checkRunUrl, type GitHubClient } from "../github/client.ts";
import type { AppQueues } from "../queue/queues.ts";
import type { EnvironmentStates } from "../deploy/environment-states.ts";

/** Who asked for a deploy, and from where: a comment on a pull request, or a button on a check run. */
export interface Asker {
  repository: RepositoryRef;
  installationId: number;
  author: string;
  trigger: DeployRequest["trigger"];
  pullRequest?: number;
  /** A `/sync --override-freeze`: who and why, carried on the deploy request. */
  overrideFreeze?: { by: string; reason: string };
  /** A `/sync --cluster` or `/rollback --cluster`: the one cluster of a fleet to deploy. */
  cluster?: string;
}

/** A deploy a command asks for: the environment, the commit, why, and (for a rollback) the commit live when it was asked. */
export interface CommandDeploy {
  environment: string;
  sha: string;
  reason: "sync" | "rollback";
  from?: string;
}

/** A deploy as queued: whether it was new, its check run as a reply links it, and its job. */
export interface QueuedDeploy {
  added: boolean;
  link: string;
  jobId: string;
}

/** What queueing the deploys of commands needs. */
export interface CommandDeploysDeps {
  queues: AppQueues;
  environments: EnvironmentStates;
  now: () => number;
  webUrl: string;
  /** The newest commit promotion asked an environment to deploy: a promoted environment syncs to it, not to the branch head. */
  promotedSha?: ((repositoryId: number, environment: string) => Promise<string | undefined>) | undefined;
}

/** Queues the deploys that `/sync`, `/rollback` and the buttons of deploy check runs ask for. */
export class CommandDeploys {
  readonly #deps: CommandDeploysDeps;

  constructor(deps: CommandDeploysDeps) {
    this.#deps = deps;
  }

  /** Creates the deploy check run (so the reply can link it) and queues the request. */
  async queue(gh: GitHubClient, asker: Asker, what: CommandDeploy): Promise<QueuedDeploy> {
    const fields = {
      repository: asker.repository,
      installationId: asker.installationId,
      environment: what.environment,
      sha: what.sha,
      reason: what.reason,
      requestedBy: asker.author,
      trigger: asker.trigger,
      ...(asker.pullRequest ? { pullRequest: asker.pullRequest } : {}),
      ...(what.from ? { from: what.from } : {}),
      ...(asker.overrideFreeze && what.reason === "sync" ? { overrideFreeze: asker.overrideFreeze } : {}),
      ...(asker.cluster ? { cluster: asker.cluster } : {}),
    };
    const jobId = deployJobId(fields);
    const checkRunId = await gh.createCheckRun(asker.repository, deployCheckName(what.environment), what.sha, {
      externalId: jobId,
      status: "queued",
      output: replies.deployQueuedOutput(what.reason, asker.author, what.sha),
    });
    const added = await this.#deps.queues.addDeployRequest(deployRequest({ ...fields, checkRunId }, this.#deps.now()));
    if (!added)
      await gh.updateCheckRun(asker.repository, checkRunId, {
        status: "completed",
        conclusion: "skipped",
        output: replies.alreadyQueuedOutput(),
      });
    return { added, jobId, link: replies.checkRunLink(checkRunUrl(this.#deps.webUrl, asker.repository, checkRunId)) };
  }

  /** Queues a deploy of each environment's tracked branch head (a sync also releases a hold); the reply's lines. */
  async sync(gh: GitHubClient, asker: Asker, envs: readonly Environment[]): Promise<string[]> {
    const lines: string[] = [];
    for (const env of envs) {
      const promoted = env.promotion && this.#deps.promotedSha ? await this.#deps.promotedSha(asker.repository.id, env.name) : undefined;
      if (env.promotion && !promoted) {
        lines.push(replies.nothingPromotedYet(env.name, env.promotion.after));
        continue;
      }
      const refused = clusterRefusal(env, asker.cluster);
      if (refused) {
        lines.push(refused);
        continue;
      }
      const sha = promoted ?? (await gh.branchSha(asker.repository, env.branch));
      const { hold } = await this.#deps.environments.load(asker.repository.id, env.name);
      const queued = await this.queue(gh, asker, { environment: env.name, sha, reason: "sync" });
      const sync = { branch: env.branch, sha, link: queued.link, ...(hold ? { heldAt: hold.sha } : {}) };
      lines.push(replies.syncLine(targetName(env.name, asker.cluster), queued.added, sync));
    }
    return lines;
  }
}

/**
 * The reply's line when `/sync --cluster` or `/rollback --cluster` cannot deploy `cluster` of
 * `env` (it runs on one cluster, or lists no cluster of that name); undefined when it can, or when
 * no cluster is named.
 */
export function clusterRefusal(env: Environment, cluster: string | undefined): string | undefined {
  if (cluster === undefined) return undefined;
  const fleet = fleetOf(env);
  const why = !fleet ? "single" : listsCluster(fleet, cluster) ? undefined : "unlisted";
  return why ? replies.notAClusterOf(env.name, cluster, why) : undefined;
}
