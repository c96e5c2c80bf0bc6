import { CHECK_RUN_TEXT_LIMIT, code, fitWithin } from "../../core/markdown.ts";
import { fullName, type RepositoryRef, shortSha } from "../../core/git-ref.ts";

/**
 * A merge group's previews are numbered apart from pull requests': from 2^31 on. GitHub numbers
 * pull requests with a 32-bit signed integer (GraphQL's `Int`), so no pull request's number is
 * ever this high. The preview state, the published preview, the live requests and their answers
 * then key a merge group's preview like a pull request's, and never touch the queued pull
 * request's own preview: its sequence, its published preview and its comment stay its own.
 */
const MERGE_GROUP_NUMBERS = 2 ** 31;

/** The number a merge group's preview is kept under, for the pull request the group tests. */
export function mergeGroupPreviewNumber(pullRequest: number): number {
  return MERGE_GROUP_NUMBERS + pullRequest;
}

/** The pull request a preview number is a merge group's preview for; undefined for a pull request's own preview. */
export function mergeGroupPullRequest(previewNumber: number): number | undefined {
  return previewNumber > MERGE_GROUP_NUMBERS ? previewNumber - MERGE_GROUP_NUMBERS : undefined;
}

/**
 * The external id of a merge group's preview check run: one per group commit (the run is found
 * by it on that commit, so a second `checks_requested` makes no second run). It is not a pull
 * request's (`preview-<n>-<seq>`), so Re-run leaves it alone: the merge queue re-tests by
 * queueing again.
 */
export function mergeGroupExternalId(pullRequest: number): string {
  return `merge-group-pr-${pullRequest}`;
}

/** Where a merge group's check run points back to: the queued pull request. */
export interface MergeGroupLink {
  pullRequest: number;
  /** The pull request's page on GitHub. */
  url: string;
}

/** The link of the pull request a merge group tests. */
export function mergeGroupLink(repository: RepositoryRef, pullRequest: number, webUrl: string): MergeGroupLink {
  return { pullRequest, url: `${webUrl}/${fullName(repository)}/pull/${pullRequest}` };
}

/** The first line of a merge group's check-run text: which pull request the queue tests. */
function queuedLine(link: MergeGroupLink): string {
  return `Merge queue: this commit tests [pull request #${link.pullRequest}](${link.url}) merged onto its base.`;
}

/**
 * A merge group's check-run text. No comment is written for a merge group, so the text holds
 * what a pull request's comment would (the summary, the diffs, the live cluster), after a line
 * that links the queued pull request, within GitHub's limit.
 */
export function mergeGroupText(link: MergeGroupLink, preview: string): string {
  return fitWithin(`${queuedLine(link)}\n\n${preview}`, CHECK_RUN_TEXT_LIMIT);
}

/** The output of a merge group's preview check run while it renders. */
export function mergeGroupRendering(group: { baseSha: string; headSha: string; headRef: string }): { title: string; summary: string } {
  return {
    title: "Rendering",
    summary: `Rendering the merge queue's \`${shortSha(group.headSha)}\` (${code(group.headRef)}) against \`${shortSha(group.baseSha)}\`.`,
  };
}
