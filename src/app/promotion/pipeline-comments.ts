import { z } from "zod";
import { errorMessage } from "../../core/errors.ts";
import { PIPELINE_MARKER, pipelineComment, pipelineDone, type PipelineStep } from "../../core/pipeline-comment.ts";
import type { RepositoryRef } from "../../core/git-ref.ts";
import { promotedBranches, type LineCommit } from "../../core/promotion.ts";
import type { CheckoutCache } from "../checkouts/checkout-cache.ts";
import { isNotFound, type GitHubClient } from "../github/client.ts";
import { discoverFromCheckout, reviewedConfig } from "../github/repository-config.ts";
import type { Logger } from "../log-context.ts";
import type { AppQueues, PromotionCheck } from "../queue/queues.ts";
import type { RedisClient } from "../../redis/connection.ts";
import { pipelineCommentKey, pipelineCommentLockKey } from "../state/redis-keys.ts";
import { SealedJson, type RedisMac } from "../state/redis-mac.ts";
import { LockTimeoutError, withRedisLock } from "../state/redis-lock.ts";
import type { GateStates } from "./gate-states.ts";
import { pipelineSteps } from "./pipeline-steps.ts";

/** The newest commits of a branch whose comments are kept up to date; older ones have moved on or been passed over. */
const RECENT_COMMITS = 10;
const TTL_SECONDS = 90 * 24 * 3600;
/** How long after its push a commit's pull request is looked for (GitHub ties a merge commit to its pull request within moments). */
const PULL_LINK_WAIT_MS = 60_000;
/** How soon a job that found another replica writing the repository's comments asks again. */
const BUSY_RETRY_MS = 2_000;

/** A commit's pipeline comment: the merged pull request it is on (0: none), its id once made, and the body it shows. */
const commentStateSchema = z.strictObject({
  pull: z.number().int().nonnegative(),
  commentId: z.number().int().positive().optional(),
  body: z.string().optional(),
  /** Deployed everywhere: never written again. */
  done: z.boolean(),
});
type CommentState = z.infer<typeof commentStateSchema>;

/** What pipeline comments need. */
export interface PipelineCommentDeps {
  redis: RedisClient;
  mac: RedisMac;
  gates: GateStates;
  queues: AppQueues;
  github: (installationId: number) => Promise<GitHubClient>;
  checkouts: CheckoutCache;
  now: () => number;
  log: Logger;
}

/**
 * The merged pull request's one comment that shows where its commit is in the promotion pipeline
 * ("`dev` ✓ deployed 12:03 UTC · `staging` soaking in dev: ends 12:18 UTC · `production` waiting
 * for staging"), made once and edited as the commit moves. Asked for by whatever moves a commit (a
 * promotion check, a deploy's end, a deploy that starts to wait); each ask is a queue job, and the
 * jobs of one repository run one at a time from the newest state, so two replicas never make a
 * comment twice and an older body never lands after a newer one.
 */
export class PipelineComments {
  readonly #deps: PipelineCommentDeps;
  readonly #store: SealedJson;

  constructor(deps: PipelineCommentDeps) {
    this.#deps = deps;
    this.#store = new SealedJson(deps.redis, deps.mac);
  }

  /** Asks for the repository's pipeline comments to be brought up to date (`delayMs` from now). */
  async changed(check: PromotionCheck, delayMs = 0): Promise<void> {
    await this.#deps.queues.addPipelineComments(check, delayMs);
  }

  /**
   * Brings the pipeline comments of the repository's newest promoted commits up to date (the
   * queue job). While another replica's job holds the repository, this one asks again a moment
   * later rather than wait in a worker's place: that job may have read the state before this ask.
   * A commit whose comment fails to write does not hold up the others; the job fails after them,
   * and its retry writes what is still behind.
   */
  async refresh(check: PromotionCheck): Promise<void> {
    const deps = this.#deps;
    const repositoryId = check.repository.id;
    try {
      await withRedisLock(deps.redis, pipelineCommentLockKey(repositoryId), { ttlMs: 60_000, waitMs: 0, pollMs: 100 }, () =>
        this.#refresh(check),
      );
    } catch (error) {
      if (!(error instanceof LockTimeoutError)) throw error;
      await this.changed(check, BUSY_RETRY_MS);
    }
  }

  async #refresh(check: PromotionCheck): Promise<void> {
    const deps = this.#deps;
    const repositoryId = check.repository.id;
    const gh = await deps.github(check.installationId);
    const config = await reviewedConfig(gh, check.repository, discoverFromCheckout(deps.checkouts, gh, check.repository));
    if (!config.ok) return;
    const failures: unknown[] = [];
    for (const branch of promotedBranches(config.config)) {
      const line = await deps.gates.line(repositoryId, branch);
      const steps = await pipelineSteps(deps.gates, repositoryId, config.config, branch, line);
      for (const commit of line.slice(-RECENT_COMMITS))
        await this.#show(gh, check.repository, commit, steps(commit.sha)).catch((error: unknown) => {
          deps.log.warn({ sha: commit.sha, error: errorMessage(error) }, "pipeline comment not written");
          failures.push(error);
        });
    }
    if (failures.length > 0) throw new Error(`${String(failures.length)} pipeline comments not written: ${errorMessage(failures[0])}`);
  }

  /** Makes or edits one commit's comment when what it shows changed. */
  async #show(gh: GitHubClient, repository: RepositoryRef, commit: LineCommit, steps: PipelineStep[]): Promise<void> {
    const { sha } = commit;
    const key = pipelineCommentKey(repository.id, sha);
    const state = commentStateSchema.safeParse(await this.#store.get(key)).data;
    if (state?.done) return;
    const body = pipelineComment(sha, steps);
    if (state?.body === body) return;
    const done = pipelineDone(steps);
    // GitHub may not have tied a just-merged commit to its pull request yet: asked again for a
    // minute after the push. A commit pushed without one shows its pipeline on its check runs only.
    const pull = state?.pull ?? (await gh.mergedPullsFor(repository, sha))[0];
    if (pull === undefined || pull === 0) {
      if (done || this.#deps.now() - commit.at > PULL_LINK_WAIT_MS) await this.#save(key, { pull: 0, done: true });
      return;
    }
    const commentId = await this.#write(gh, repository, pull, state?.commentId, body);
    await this.#save(key, { pull, commentId, body, done });
  }

  /**
   * Edits the comment, or makes it: a comment someone deleted is made again, and one made before
   * its id was kept (a write whose answer was lost) is found by its marker rather than made twice.
   */
  async #write(gh: GitHubClient, repository: RepositoryRef, pull: number, commentId: number | undefined, body: string): Promise<number> {
    const id = commentId ?? (await gh.findComment(repository, pull, PIPELINE_MARKER))?.id;
    if (id !== undefined) {
      try {
        await gh.updateComment(repository, id, body);
        return id;
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }
    return gh.createComment(repository, pull, body);
  }

  async #save(key: string, state: CommentState): Promise<void> {
    await this.#store.set(key, state, TTL_SECONDS);
  }
}
