import type { Context } from "probot";
import { z } from "zod";
import { commitShaSchema } from "../../core/git-ref.ts";
import { branchName, queuedPullRequest } from "../../core/merge-queue.ts";
import type { GitHubClient } from "../github/client.ts";
import type { AppQueues } from "../queue/queues.ts";
import type { PullRequestState } from "../state/pr-state.ts";
import { requestMergeGroupPreview } from "../preview/preview-requests.ts";
import { repositoryRef } from "./payloads.ts";

/** The slice of a `merge_group` webhook Sluice reads, with the queued pull request its branch names. */
const mergeGroupEventSchema = z.object({
  action: z.string(),
  installation: z.object({ id: z.number() }),
  repository: z.object({ id: z.number(), name: z.string(), owner: z.object({ login: z.string() }) }),
  merge_group: z
    .object({ head_sha: commitShaSchema, head_ref: z.string(), base_sha: commitShaSchema, base_ref: z.string().min(1) })
    .transform((group, context) => {
      const pullRequest = queuedPullRequest(group.head_ref);
      if (pullRequest !== undefined) return { ...group, pullRequest };
      context.addIssue({
        code: "custom",
        path: ["head_ref"],
        input: group.head_ref,
        message: `merge_group.head_ref is not a merge queue branch (gh-readonly-queue/<base>/pr-<number>-<sha>): ${group.head_ref}`,
      });
      return z.NEVER;
    }),
});

/**
 * Handles `merge_group`: on `checks_requested`, previews the queue's commit against its parent as
 * a pull request's head is previewed (`sluice/preview` on the commit, live answers included), so
 * a branch that requires the check can use the merge queue. `destroyed` needs nothing: the
 * group's check run stays on its commit, and deploys follow the push to the branch.
 */
export function mergeGroupHandler(deps: {
  github: (installationId: number) => Promise<GitHubClient>;
  queues: AppQueues;
  prState: PullRequestState;
}) {
  return async (context: Context<"merge_group">): Promise<void> => {
    if (context.payload.action !== "checks_requested") return;
    const event = mergeGroupEventSchema.parse(context.payload);
    const group = event.merge_group;
    const number = group.pullRequest;
    const gh = await deps.github(event.installation.id);
    const repository = repositoryRef(event.repository);
    // Who may send the group's content to a cluster is decided as for the pull request itself.
    const pull = await gh.pullRequest(repository, number);
    const queued = await requestMergeGroupPreview(gh, deps, {
      repository,
      installationId: event.installation.id,
      group: {
        headSha: group.head_sha,
        baseSha: group.base_sha,
        baseRef: branchName(group.base_ref),
        headRef: branchName(group.head_ref),
        pull: { number, author: pull.author, fromFork: pull.fromFork },
      },
    });
    context.log.info({ repository: repository.id, pullRequest: number, sha: group.head_sha, queued }, "merge group preview requested");
  };
}
