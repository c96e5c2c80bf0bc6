import type { RedisClient } from "../../redis/connection.ts";
import { fullName, type RepositoryRef, shortSha } from "../../core/git-ref.ts";
import { PREVIEW_MARKER, previewCheck, publicationOf, type PreviewPublication } from "../../core/preview-comment.ts";
import type { GitHubClient, RepoName } from "../github/client.ts";
import { publishedSetKey, pullRequestKeys } from "../state/redis-keys.ts";
import type { PullRequestState } from "../state/pr-state.ts";
import { SealedJson, type RedisMac } from "../state/redis-mac.ts";
import { mergeGroupText, type MergeGroupLink } from "./merge-group-previews.ts";

/** How long a published preview is kept for late live answers. */
const TTL_SECONDS = 24 * 3600;

/** A pull request's newest published preview, and what it needs to be published again. */
export interface PublishedPreview extends PreviewPublication {
  repository: RepositoryRef;
  installationId: number;
  pullRequest: number;
  seq: number;
  checkRunId: number;
  /** Set for a merge group's preview: the pull request the queue tests. It gets no comment; its check run's text says it all. */
  mergeGroup?: MergeGroupLink;
  /** Live answers or drift were folded in since the comment and check run were last written: when (ms) a write was asked for. */
  unwritten?: number;
}

/**
 * The newest preview of each pull request, kept (sealed: RedisClient is not trusted) so that a live
 * answer that arrives after the comment was written can redo the comment and the check run.
 */
export class PublishedPreviews {
  readonly #redis: RedisClient;
  readonly #store: SealedJson;

  constructor(redis: RedisClient, mac: RedisMac) {
    this.#redis = redis;
    this.#store = new SealedJson(redis, mac);
  }

  async save(preview: PublishedPreview): Promise<void> {
    await this.#store.set(pullRequestKeys(preview.repository.id, preview.pullRequest).published, preview, TTL_SECONDS, { gzip: true });
    const set = publishedSetKey(preview.repository.id);
    await this.#redis.sadd(set, String(preview.pullRequest));
    await this.#redis.expire(set, TTL_SECONDS);
  }

  /** The pull requests of a repository that have a published preview (a hint: each one is loaded and verified). */
  async pullRequests(repositoryId: number): Promise<number[]> {
    return (await this.#redis.smembers(publishedSetKey(repositoryId))).map(Number).filter((n) => Number.isInteger(n) && n > 0);
  }

  /** The newest published preview, or undefined when there is none or it does not verify. */
  async load(repositoryId: number, pullRequest: number): Promise<PublishedPreview | undefined> {
    // Sealed by this app, so its shape is the one it wrote.
    return (await this.#store.get(pullRequestKeys(repositoryId, pullRequest).published, { gzip: true })) as PublishedPreview | undefined;
  }
}

/**
 * Creates the sticky comment, or edits it in place when its body changed; writes only once `ready`
 * (what it links to) has settled. Returns the comment's id.
 */
export async function upsertComment(
  gh: GitHubClient,
  repository: RepoName,
  pullRequest: number,
  body: string,
  ready?: Promise<void>,
): Promise<number> {
  const existing = await gh.findComment(repository, pullRequest, PREVIEW_MARKER);
  await ready;
  if (!existing) return gh.createComment(repository, pullRequest, body);
  if (existing.body !== body) await gh.updateComment(repository, existing.id, body);
  return existing.id;
}

/**
 * Writes a preview's comment and completes its check run, under the pull request's lock and only
 * while nothing newer was published. Returns whether it was written.
 */
export async function publishPreview(gh: GitHubClient, prState: PullRequestState, preview: PublishedPreview): Promise<boolean> {
  return prState.publish({ repositoryId: preview.repository.id, number: preview.pullRequest }, preview.seq, () =>
    writePreview(gh, preview),
  );
}

/**
 * Writes a preview's comment and check run (in progress while a live answer is awaited; a merge
 * group's preview has no comment, its check run's text holds what the comment would); the
 * caller holds the pull request's lock. With `pageStored`, the diff page they link to is still
 * being stored, and nothing is written before it is.
 */
export async function writePreview(gh: GitHubClient, preview: PublishedPreview, pageStored?: Promise<void>): Promise<void> {
  const { comment, check } = publicationOf(preview);
  const { mergeGroup } = preview;
  if (mergeGroup) await pageStored;
  else await upsertComment(gh, preview.repository, preview.pullRequest, comment, pageStored);
  const output = mergeGroup ? { ...check.output, text: mergeGroupText(mergeGroup, comment) } : check.output;
  await gh.updateCheckRun(preview.repository, preview.checkRunId, { ...check, output, detailsUrl: preview.fullDiffUrl });
}

/**
 * The preview as it is saved before it is written: with the conclusion its check run is about to
 * get, so that a later answer never turns a check that passed into a failure.
 */
export function withConclusion(preview: PublishedPreview): PublishedPreview {
  const check = previewCheck(preview);
  return check.status === "completed" ? { ...preview, concluded: check.conclusion } : preview;
}

/** Whether a published preview's check run still waits for a live answer. */
export function waitingForLive(preview: PublishedPreview): boolean {
  return previewCheck(preview).status === "in_progress";
}

/** The full diff page's title and subtitle for a pull request's preview (a merge group's names the queued pull request). */
export function pageTitles(
  preview: Pick<PublishedPreview, "repository" | "pullRequest" | "baseSha" | "headSha" | "mergeGroup">,
  webUrl: string,
): {
  title: string;
  subtitle: string;
  link: string;
} {
  const repository = fullName(preview.repository);
  const number = preview.mergeGroup?.pullRequest ?? preview.pullRequest;
  return {
    title: `${repository}#${number}${preview.mergeGroup ? " in the merge queue" : ""}`,
    subtitle: `${shortSha(preview.baseSha)}…${shortSha(preview.headSha)}`,
    link: `${webUrl}/${repository}/pull/${number}`,
  };
}
