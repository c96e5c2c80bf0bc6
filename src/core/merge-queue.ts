/**
 * GitHub's merge queue, as its `merge_group` webhooks name things. The queue tests each entry on
 * a temporary branch `gh-readonly-queue/<base>/pr-<number>-<sha>`: the pull request's number is in
 * the branch's name and nowhere else in the payload.
 */

/** The branch of a merge group: `refs/heads/gh-readonly-queue/<base>/pr-<number>-<head SHA of the pull request>`. */
const QUEUE_BRANCH = /^(?:refs\/heads\/)?gh-readonly-queue\/.+\/pr-([1-9]\d*)-[0-9a-f]{40}$/;

/** The pull request a merge group's branch (`merge_group.head_ref`) tests, or undefined when the name is not one GitHub gives. */
export function queuedPullRequest(headRef: string): number | undefined {
  const number = QUEUE_BRANCH.exec(headRef)?.[1];
  return number === undefined ? undefined : Number(number);
}

/** A branch's short name: `refs/heads/main` → `main`. */
export function branchName(ref: string): string {
  return ref.startsWith("refs/heads/") ? ref.slice("refs/heads/".length) : ref;
}
