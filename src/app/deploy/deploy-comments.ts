import type { GitHubClient } from "../github/client.ts";
import type { DeployRecord } from "./deploy-records.ts";

/** Comments on the pull request a deploy came from: the command's, or the merged one for a merge. */
export async function commentOnPull(gh: GitHubClient, record: DeployRecord, text: string): Promise<void> {
  const pulls = record.pullRequest
    ? [record.pullRequest]
    : record.reason === "merge"
      ? await gh.mergedPullsFor(record.repository, record.sha)
      : [];
  const [first] = pulls;
  if (first !== undefined) await gh.createComment(record.repository, first, text);
}
