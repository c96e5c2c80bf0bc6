import { z } from "zod";
import { commitShaSchema } from "../../core/git-ref.ts";

/** What Sluice needs to know of a pull request. */
export interface PullRequestInfo {
  number: number;
  baseSha: string;
  headSha: string;
  baseRef: string;
  draft: boolean;
  state: "open" | "closed";
  merged: boolean;
  /** The commit its merge put on the base branch, once merged. */
  mergeCommitSha?: string;
  /** Who opened it (empty when GitHub does not say). */
  author: string;
  /** Its head is in another repository (or one GitHub no longer shows). */
  fromFork: boolean;
}

/** The part of a pull request Sluice reads, as both the REST API and webhooks send it. */
export const pullRequestSliceSchema = z.object({
  number: z.number(),
  state: z.enum(["open", "closed"]),
  draft: z.boolean().optional(),
  merged: z.boolean().nullable().optional(),
  merge_commit_sha: z.string().nullable().optional(),
  base: z.object({ sha: commitShaSchema, ref: z.string() }),
  head: z.object({ sha: commitShaSchema, repo: z.object({ id: z.number() }).nullable().optional() }),
  user: z.object({ login: z.string() }).nullable().optional(),
});

/**
 * What Sluice needs of a pull request, from the REST or webhook shape. A head repository that is
 * not the base repository (or that GitHub no longer shows) makes it a fork's pull request.
 */
export function pullRequestInfo(pull: z.infer<typeof pullRequestSliceSchema>, repositoryId: number): PullRequestInfo {
  return {
    number: pull.number,
    baseSha: pull.base.sha,
    headSha: pull.head.sha,
    baseRef: pull.base.ref,
    draft: pull.draft ?? false,
    state: pull.state,
    merged: pull.merged ?? false,
    // Before the merge this is GitHub's test merge; only a merged pull request's is on the branch.
    ...(pull.merged && pull.merge_commit_sha ? { mergeCommitSha: pull.merge_commit_sha } : {}),
    author: pull.user?.login ?? "",
    fromFork: pull.head.repo?.id !== repositoryId,
  };
}
