import { type RepositoryRef, shortSha } from "../../core/git-ref.ts";
import { type GitHubClient } from "../github/client.ts";
import { type PullRequestInfo } from "../github/schemas.ts";
import type { AppQueues } from "../queue/queues.ts";
import type { PullRequestState } from "../state/pr-state.ts";
import { PREVIEW_CHECK, previewExternalId } from "./preview-service.ts";

/**
 * Starts a preview: takes the pull request's next sequence number, puts the `sluice/preview`
 * check run in progress at once, and queues the render. Fast enough for a webhook.
 */
export async function requestPreview(
  gh: GitHubClient,
  deps: { queues: AppQueues; prState: PullRequestState },
  target: { repository: RepositoryRef; installationId: number; pull: PullRequestInfo },
): Promise<void> {
  const { repository, installationId, pull } = target;
  const { seq, checkRunId } = await deps.prState.start({ repositoryId: repository.id, number: pull.number }, async (seq) => ({
    seq,
    checkRunId: await gh.createCheckRun(repository, PREVIEW_CHECK, pull.headSha, {
      status: "in_progress",
      externalId: previewExternalId(pull.number, seq),
      output: { title: "Rendering", summary: `Rendering \`${shortSha(pull.baseSha)}\` and \`${shortSha(pull.headSha)}\`.` },
    }),
  }));
  await deps.queues.addPreview({
    repository,
    installationId,
    pullRequest: pull.number,
    baseSha: pull.baseSha,
    headSha: pull.headSha,
    baseRef: pull.baseRef,
    draft: pull.draft,
    author: pull.author,
    fromFork: pull.fromFork,
    seq,
    checkRunId,
  });
}
