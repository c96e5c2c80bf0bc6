import { examplePayload } from "./app-harness.ts";

/** Which repository and installation a payload is about. */
export interface PayloadTarget {
  owner: string;
  repo: string;
  repoId: number;
  installation: number;
}

function withRepository(payload: Record<string, unknown>, target: PayloadTarget): Record<string, unknown> {
  const repository = payload.repository as Record<string, unknown>;
  Object.assign(repository, {
    id: target.repoId,
    name: target.repo,
    full_name: `${target.owner}/${target.repo}`,
    default_branch: "main",
    owner: { ...(repository.owner as object), login: target.owner, name: target.owner },
  });
  payload.installation = { id: target.installation, node_id: "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNzc3" };
  return repository;
}

/** A `pull_request` payload from @octokit/webhooks-examples, pointed at `target`. */
export function pullRequestPayload(
  target: PayloadTarget,
  action: string,
  number: number,
  base: string,
  head: string,
  extra: { fork?: boolean; draft?: boolean; merged?: boolean; author?: string } = {},
): Record<string, unknown> {
  const payload = examplePayload("pull_request", action);
  const repository = withRepository(payload, target);
  const pull = payload.pull_request as Record<string, Record<string, unknown>>;
  Object.assign(pull, {
    number,
    state: action === "closed" ? "closed" : "open",
    draft: extra.draft ?? false,
    merged: extra.merged ?? false,
  });
  if (extra.author) pull.user = { ...pull.user, login: extra.author };
  pull.base = { ...pull.base, sha: base, ref: "main", repo: repository };
  pull.head = {
    ...pull.head,
    sha: head,
    ref: "feature",
    repo: extra.fork ? { ...repository, id: 9999, full_name: `someone/${target.repo}`, owner: { login: "someone" } } : repository,
  };
  payload.number = number;
  return payload;
}

/** An `issue_comment.created` payload on pull request `number`. */
export function commentPayload(
  target: PayloadTarget,
  number: number,
  commentId: number,
  body: string,
  user = "octocat",
  type = "User",
): Record<string, unknown> {
  const payload = examplePayload("issue_comment", "created");
  withRepository(payload, target);
  const issue = payload.issue as Record<string, unknown>;
  Object.assign(issue, { number, pull_request: { url: `https://api.github.com/repos/${target.owner}/${target.repo}/pulls/${number}` } });
  const comment = payload.comment as Record<string, unknown>;
  Object.assign(comment, { id: commentId, body, user: { ...(comment.user as object), login: user, type } });
  return payload;
}

/** A `push` payload: `ref` moved to `after`. */
export function pushPayload(target: PayloadTarget, after: string, ref = "refs/heads/main"): Record<string, unknown> {
  const payload = examplePayload("push");
  withRepository(payload, target);
  Object.assign(payload, { ref, after, deleted: false });
  return payload;
}

/** A `check_run.requested_action` payload: `sender` pressed the button `identifier` on a check run of app `appId`. */
export function checkRunActionPayload(
  target: PayloadTarget,
  run: { id: number; name: string; head_sha: string; output?: { title?: string; summary?: string } },
  appId: number,
  identifier: string,
  sender: string,
  type = "User",
): Record<string, unknown> {
  const payload = examplePayload("check_run", "requested_action");
  withRepository(payload, target);
  const checkRun = payload.check_run as Record<string, unknown>;
  Object.assign(checkRun, {
    id: run.id,
    name: run.name,
    head_sha: run.head_sha,
    output: { ...(checkRun.output as object), title: run.output?.title ?? null, summary: run.output?.summary ?? null },
    app: { ...(checkRun.app as object), id: appId },
  });
  payload.requested_action = { identifier };
  payload.sender = { ...(payload.sender as object), login: sender, type };
  return payload;
}
