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

/**
 * The keys of one pull request's preview state and command rate limits (`diff`, `invalid`); they
 * share a hash tag, so scripts over them work on Redis Cluster.
 */
export function pullRequestKeys(
  repositoryId: number,
  number: number,
): { seq: string; posted: string; lock: string; diff: string; invalid: string; published: string } {
  const tag = `{sluice:pr:${repositoryId}:${number}}`;
  return {
    seq: `${tag}:seq`,
    posted: `${tag}:posted`,
    lock: `${tag}:lock`,
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

/** The pull requests of a repository with a published preview, for updating their comments when drift changes. */
export function publishedSetKey(repositoryId: number): string {
  return `sluice:published:${repositoryId}`;
}

/** What the app knows of a repository environment's history, hold and held deploys. */
export function environmentStateKey(repositoryId: number, environment: string): string {
  return `sluice:environment:${repositoryId}:${environment}`;
}
