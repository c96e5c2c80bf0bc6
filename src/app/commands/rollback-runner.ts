import { replies } from "../../core/commands.ts";
import type { Environment } from "../../core/config.ts";
import { type RepositoryRef } from "../../core/git-ref.ts";
import type { Hold } from "../../core/inventory.ts";
import { changedFiles, planRollback, WORKFLOWS_DIR, type RevertOutcome, type RevertPlan, type RollbackAsk } from "../../core/rollback.ts";
import { WorkflowsPermissionError, type GitHubClient } from "../github/client.ts";
import { clusterRefusal, type Asker, type CommandDeploys } from "./command-deploys.ts";
import type { EnvironmentStates } from "../deploy/environment-states.ts";
import type { Logger } from "../log-context.ts";

/** What running a rollback needs. */
export interface RollbackRunnerDeps {
  deploys: CommandDeploys;
  environments: EnvironmentStates;
  now: () => number;
  log: Logger;
}

/**
 * Runs the rollbacks `core/rollback.ts` plans: queues each environment's deploy, holds it, and
 * opens (or moves) one revert pull request per branch and target through the Git Data API, so
 * Git says what runs.
 */
export class RollbackRunner {
  readonly #deps: RollbackRunnerDeps;

  constructor(deps: RollbackRunnerDeps) {
    this.#deps = deps;
  }

  /** The environments whose history, as their agents reported it, has a deploy of `sha`. */
  async deployedEnvironments(repository: RepositoryRef, envs: readonly Environment[], sha: string): Promise<Environment[]> {
    const states = await Promise.all(envs.map((env) => this.#deps.environments.load(repository.id, env.name)));
    return envs.filter((_, i) => states[i]?.history?.revisions.some((r) => r.sha === sha));
  }

  /**
   * Queues a rollback of each environment to a revision from the agent's own history, holds the
   * environment, and opens (or moves) the revert pull requests; the reply's lines. A rollback of
   * one cluster of a fleet (`asker.cluster`) deploys that cluster alone and holds it alone, in its
   * agent's record: the branch, and the other clusters, keep what they run, so no revert pull
   * request is opened and the environment is not held.
   */
  async run(gh: GitHubClient, asker: Asker, envs: readonly Environment[], ask: RollbackAsk): Promise<string[]> {
    const { cluster } = asker;
    if (cluster !== undefined) {
      const refusals = envs.map((env) => clusterRefusal(env, cluster));
      const lines = refusals.filter((line) => line !== undefined);
      const ours = envs.filter((_, i) => refusals[i] === undefined);
      return ours.length === 0 ? lines : [...lines, ...(await this.#rollBack(gh, asker, ours, ask, cluster))];
    }
    return this.#rollBack(gh, asker, envs, ask, undefined);
  }

  async #rollBack(
    gh: GitHubClient,
    asker: Asker,
    envs: readonly Environment[],
    ask: RollbackAsk,
    cluster: string | undefined,
  ): Promise<string[]> {
    const states = await Promise.all(envs.map((env) => this.#deps.environments.load(asker.repository.id, env.name)));
    const plan = planRollback(
      envs.map((env, i) => ({ name: env.name, branch: env.branch, history: states[i]?.history })),
      ask,
    );
    const lines: string[] = [];
    const holds = new Map<string, Hold>();
    for (const step of plan.steps) {
      if (!step.ok) {
        lines.push(replies.cannotRollBack(step.environment, step.reason));
        continue;
      }
      const { target, from } = step;
      const queued = await this.#deps.deploys.queue(gh, asker, {
        environment: step.environment,
        sha: target.sha,
        reason: "rollback",
        from: from.sha,
      });
      const rollback = { target: target.sha, from: from.sha, link: queued.link };
      if (cluster !== undefined) {
        lines.push(replies.clusterRollbackLine(step.environment, cluster, queued.added, rollback));
        continue;
      }
      lines.push(replies.rollbackLine(step.environment, queued.added, rollback));
      holds.set(step.environment, { by: asker.author, at: new Date(this.#deps.now()).toISOString(), jobId: queued.jobId, sha: target.sha });
    }
    for (const revert of cluster === undefined ? plan.reverts : []) {
      const outcome = await this.#revertPull(gh, asker, revert);
      const pull = outcome.kind === "opened" ? outcome.pull : undefined;
      // Held at once, so the next merge's check run says so; merging the revert pull request releases it.
      for (const name of revert.environments) {
        const hold = holds.get(name);
        if (hold) await this.#deps.environments.held(asker.repository.id, name, hold, pull?.number);
      }
      lines.push(replies.revertLine(revert.environments, revert.branch, revert.target, outcome));
    }
    return lines;
  }

  /**
   * Opens the revert pull request of a rollback (Git Data API): a commit whose tree is the
   * target's on top of the branch head, on `sluice/revert-<merge>`. A second rollback of the same
   * merge moves that branch and keeps its pull request. Writes nothing when the branch already
   * has the target's tree, or when the revert would change a workflow file, which GitHub lets
   * only an app with the `workflows` permission write (#24): Sluice does not ask for it, and
   * says so rather than fail. GitHub's own refusal, should the branch move under the check, gets
   * the same answer.
   */
  async #revertPull(gh: GitHubClient, asker: Asker, revert: RevertPlan): Promise<RevertOutcome> {
    const head = await gh.branchSha(asker.repository, revert.branch);
    const [headTree, targetTree] = await Promise.all([
      gh.commitTree(asker.repository, head),
      gh.commitTree(asker.repository, revert.target),
    ]);
    if (headTree === targetTree) return { kind: "unchanged" };
    const workflows = await workflowChanges(gh, asker.repository, headTree, targetTree);
    const refused = (files: readonly string[]): RevertOutcome => {
      this.#deps.log.info(
        { repository: asker.repository.id, branch: revert.branch, target: revert.target, files },
        "revert pull request not opened: it would change workflow files",
      );
      return { kind: "workflows", files };
    };
    if (workflows.length > 0) return refused(workflows);
    const text = {
      author: asker.author,
      environments: revert.environments,
      from: revert.from,
      target: revert.target,
      branch: revert.branch,
    };
    try {
      const commit = await gh.createCommit(asker.repository, {
        message: replies.revertCommitMessage(text),
        tree: targetTree,
        parents: [head],
      });
      await gh.setBranch(asker.repository, revert.head, commit);
    } catch (error) {
      if (error instanceof WorkflowsPermissionError) return refused(error.files);
      throw error;
    }
    const pull =
      (await gh.openPullFrom(asker.repository, revert.head, revert.branch)) ??
      (await gh.createPull(asker.repository, {
        title: replies.revertTitle(revert.branch, revert.target),
        head: revert.head,
        base: revert.branch,
        body: replies.revertBody({ ...text, ...(asker.pullRequest ? { pullRequest: asker.pullRequest } : {}) }),
      }));
    return { kind: "opened", pull };
  }
}

/**
 * The workflow files (under {@link WORKFLOWS_DIR}) that differ between two trees. Reads each
 * tree's way down to the directory, and lists the directories only when they differ.
 */
async function workflowChanges(gh: GitHubClient, repository: RepositoryRef, before: string, after: string): Promise<string[]> {
  const [from, to] = await Promise.all([gh.subtree(repository, before, WORKFLOWS_DIR), gh.subtree(repository, after, WORKFLOWS_DIR)]);
  if (from === to) return [];
  const [old, next] = await Promise.all([from ? gh.treeFiles(repository, from) : [], to ? gh.treeFiles(repository, to) : []]);
  return changedFiles(old, next).map((path) => `${WORKFLOWS_DIR}/${path}`);
}
