/**
 * Every Redis key and queue prefix the app makes up, in one place. The keys the app shares with
 * the agents (agent queues, the newest job, job blobs, the report queue) are part of the protocol
 * and live in `core/agent-protocol.ts`.
 */

/** Prefix of the app's own queues (a hash tag, so each queue's keys share a Redis Cluster slot). */
export const QUEUE_PREFIX = "{sluice}";

/** The last deploy sequence of a repository environment. */
export function sequenceKey(repositoryId: number, environment: string): string {
  return `${QUEUE_PREFIX}:sequence:${repositoryId}:${environment}`;
}

/** A deploy's record: its check run, Deployment and whether it is finished. */
export function deployRecordKey(jobId: string): string {
  return `sluice:deploy:${jobId}`;
}

/** A fleet deploy's unsigned job, kept to sign each wave's jobs from when the wave starts. */
export function deployJobTemplateKey(jobId: string): string {
  return `${deployRecordKey(jobId)}:job`;
}

/** The newest wait shown of a deploy that waits at an approval or a freeze (a token per showing). */
export function deployWaitingKey(jobId: string): string {
  return `sluice:deploy:${jobId}:waiting`;
}

/**
 * The keys of one pull request's preview state and command rate limits (`diff`, `invalid`); they
 * share a hash tag, so scripts over them work on Redis Cluster.
 */
export function pullRequestKeys(
  repositoryId: number,
  number: number,
): { seq: string; posted: string; lock: string; starting: string; diff: string; invalid: string; published: string } {
  const tag = `{sluice:pr:${repositoryId}:${number}}`;
  return {
    seq: `${tag}:seq`,
    posted: `${tag}:posted`,
    lock: `${tag}:lock`,
    /** Held while a preview takes its sequence number and creates its check run, so runs are created in sequence order. */
    starting: `${tag}:starting`,
    diff: `${tag}:diff`,
    invalid: `${tag}:invalid`,
    published: `${tag}:published`,
  };
}

/** Prefix of the render cache's entries (`<prefix>:<key>`) and its LRU index (`<prefix>:index`). */
export const RENDER_CACHE_PREFIX = "sluice:render";

/** A sealed diff page. */
export function diffPageKey(id: string): string {
  return `sluice:diff-page:${id}`;
}

/** A webhook delivery's deduplication claim. */
export function deliveryKey(deliveryId: string): string {
  return `sluice:delivery:${deliveryId}`;
}

/** What the app last heard of a repository environment's drift (its check run, a summary for comments). */
export function driftKey(repositoryId: number, environment: string): string {
  return `sluice:drift:${repositoryId}:${environment}`;
}

/** The drift of a fleet's clusters at one commit: a hash of each cluster's newest report (`:check` its check run, `:lock` its writer). */
export function fleetDriftKey(commit: { repositoryId: number; environment: string; sha: string }): string {
  return `sluice:fleet-drift:${commit.repositoryId}:${commit.environment}:${commit.sha}`;
}

/** The pull requests of a repository with a published preview, for updating their comments when drift changes. */
export function publishedSetKey(repositoryId: number): string {
  return `sluice:published:${repositoryId}`;
}

/** What the app knows of a repository environment's history, hold and held deploys. */
export function environmentStateKey(repositoryId: number, environment: string): string {
  return `sluice:environment:${repositoryId}:${environment}`;
}

/**
 * The repositories that have asked to deploy to an environment (a hash: repository id → sealed
 * repository and installation), so an agent that comes online in an empty cluster is converged to
 * each one's branch head.
 */
export function environmentRepositoriesKey(environment: string): string {
  return `sluice:environment-repositories:${environment}`;
}

/** The clusters whose agents announced themselves for an environment (a hash: cluster → time, MAC'd per field). */
export function fleetClustersKey(environment: string): string {
  return `sluice:fleet-clusters:${environment}`;
}

/** Set while the app's own deploy of a branch head to a repository environment is in flight: it is asked for once. */
export function convergenceKey(repositoryId: number, environment: string, sha: string): string {
  return `sluice:converge:${repositoryId}:${environment}:${sha}`;
}

/** How many deploys the app queued by itself for an environment in the current minute. */
export function convergenceRateKey(environment: string): string {
  return `sluice:converge-rate:${environment}`;
}

/** Set once the app asked GitHub to redeliver a failed webhook delivery (by its GUID): it asks once. */
export function redeliveryKey(guid: string): string {
  return `sluice:redelivery:${guid}`;
}

/** When the newest webhook delivery the app looked at for failures was delivered (ISO time). */
export const DELIVERIES_CHECKED_KEY = "sluice:deliveries:checked";

/** What promotion, approvals and freezes keep of a repository environment (its outcomes, its waiting deploy). */
export function gateKey(repositoryId: number, environment: string): string {
  return `sluice:gate:${repositoryId}:${environment}`;
}

/** The commits pushed to a repository's branch, in push order, for promotion. */
export function lineKey(repositoryId: number, branch: string): string {
  return `sluice:line:${repositoryId}:${encodeURIComponent(branch)}`;
}

/** Held while one replica decides a repository's promotions: two replicas never promote twice. */
export function promotionLockKey(repositoryId: number): string {
  return `sluice:promotion-lock:${repositoryId}`;
}

/** The pipeline comment of a commit: the merged pull request it is on, its id, and what it shows. */
export function pipelineCommentKey(repositoryId: number, sha: string): string {
  return `sluice:pipeline-comment:${repositoryId}:${sha}`;
}

/** Held while one replica writes a repository's pipeline comments: a comment is made once, and each edit is the newest. */
export function pipelineCommentLockKey(repositoryId: number): string {
  return `sluice:pipeline-comment-lock:${repositoryId}`;
}
