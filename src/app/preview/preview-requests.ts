import { type RepositoryRef, shortSha } from "../../core/git-ref.ts";
import { type GitHubClient } from "../github/client.ts";
import { type PullRequestInfo } from "../github/schemas.ts";
import type { AppQueues, PreviewJob } from "../queue/queues.ts";
import type { PullRequestState } from "../state/pr-state.ts";
import { PREVIEW_CHECK, previewExternalId } from "./preview-service.ts";
import { mergeGroupExternalId, mergeGroupPreviewNumber, mergeGroupRendering } from "./merge-group-previews.ts";

/** What starting a preview needs. */
interface PreviewRequestDeps {
  queues: AppQueues;
  prState: PullRequestState;
}

/**
 * Starts a preview: takes the pull request's next sequence number, puts the `sluice/preview`
 * check run in progress at once, and queues the render. Fast enough for a webhook.
 */
export async function requestPreview(
  gh: GitHubClient,
  deps: PreviewRequestDeps,
  target: { repository: RepositoryRef; installationId: number; pull: PullRequestInfo },
): Promise<void> {
  const { repository, installationId, pull } = target;
  await startPreview(gh, deps, {
    repository,
    installationId,
    number: pull.number,
    externalId: (seq) => previewExternalId(pull.number, seq),
    output: { title: "Rendering", summary: `Rendering \`${shortSha(pull.baseSha)}\` and \`${shortSha(pull.headSha)}\`.` },
    job: {
      baseSha: pull.baseSha,
      headSha: pull.headSha,
      baseRef: pull.baseRef,
      draft: pull.draft,
      author: pull.author,
      fromFork: pull.fromFork,
    },
  });
}

/** A merge queue's group as a preview compares it: its commit against its parent, on the base branch. */
export interface MergeGroupTarget {
  headSha: string;
  baseSha: string;
  /** The branch the group merges into (short name). */
  baseRef: string;
  /** The group's temporary branch, `gh-readonly-queue/<base>/pr-<n>-<sha>`. */
  headRef: string;
  /** The queued pull request: its number, and its author and fork, which decide the live preview as for its own. */
  pull: Pick<PullRequestInfo, "number" | "author" | "fromFork">;
}

/**
 * Starts the preview of a merge group's commit, as {@link requestPreview} does a pull request's,
 * under a number of its own (`mergeGroupPreviewNumber`): the queued pull request's own preview is
 * left as it is. A group whose commit already has its check run (GitHub asked twice) gets no
 * second one. Returns whether a preview was queued.
 */
export async function requestMergeGroupPreview(
  gh: GitHubClient,
  deps: PreviewRequestDeps,
  target: { repository: RepositoryRef; installationId: number; group: MergeGroupTarget },
): Promise<boolean> {
  const { repository, installationId, group } = target;
  const externalId = mergeGroupExternalId(group.pull.number);
  if ((await gh.findCheckRun(repository, group.headSha, PREVIEW_CHECK, externalId)) !== undefined) return false;
  await startPreview(gh, deps, {
    repository,
    installationId,
    number: mergeGroupPreviewNumber(group.pull.number),
    externalId: () => externalId,
    output: mergeGroupRendering(group),
    job: {
      baseSha: group.baseSha,
      headSha: group.headSha,
      baseRef: group.baseRef,
      draft: false,
      author: group.pull.author,
      fromFork: group.pull.fromFork,
    },
  });
  return true;
}

/**
 * Takes the preview's next sequence number and creates its check run, in progress, under the
 * number's start lock (so check runs are created in sequence order), then queues the render.
 */
async function startPreview(
  gh: GitHubClient,
  deps: PreviewRequestDeps,
  preview: {
    repository: RepositoryRef;
    installationId: number;
    /** The pull request's number, or a merge group's preview number. */
    number: number;
    externalId: (seq: number) => string;
    output: { title: string; summary: string };
    job: Pick<PreviewJob, "baseSha" | "headSha" | "baseRef" | "draft" | "author" | "fromFork">;
  },
): Promise<void> {
  const { repository, installationId, number, job } = preview;
  const { seq, checkRunId } = await deps.prState.start({ repositoryId: repository.id, number }, async (seq) => ({
    seq,
    checkRunId: await gh.createCheckRun(repository, PREVIEW_CHECK, job.headSha, {
      status: "in_progress",
      externalId: preview.externalId(seq),
      output: preview.output,
    }),
  }));
  await deps.queues.addPreview({ repository, installationId, pullRequest: number, ...job, seq, checkRunId });
}
