import type { Config } from "../../core/config.ts";
import { CONFIG_PATH } from "../../core/config-path.ts";
import { errorMessage } from "../../core/errors.ts";
import {
  closedComment,
  failureComment,
  PREVIEW_MARKER,
  previewAnnotations,
  previewCheckOutput,
  previewFailedOutput,
} from "../../core/preview-comment.ts";
import type { DiffReport, ReportProblem } from "../../core/diff-report.ts";
import { fullName } from "../../core/git-ref.ts";
import { progressComment, streamsNow } from "../../core/preview-progress.ts";
import type { RenderedSide } from "../../render/compare.ts";
import type { RenderPool } from "../../render/render-pool.ts";
import type { GitHubClient, RepoName } from "../github/client.ts";
import { WRITE_GAP_MS } from "../github/pacing.ts";
import type { PreviewJob } from "../queue/queues.ts";
import { CachedComparer } from "./cached-comparer.ts";
import { CoalescedWriter } from "./coalesced-writer.ts";
import { InputDigests } from "./input-digests.ts";
import type { LivePreviews } from "./live-previews.ts";
import {
  pageTitles,
  upsertComment,
  waitingForLive,
  withConclusion,
  writePreview,
  type PublishedPreview,
  type PublishedPreviews,
} from "./published-previews.ts";
import type { CheckoutCache, Lease } from "../checkouts/checkout-cache.ts";
import { UnsafeArchiveError } from "../checkouts/unpack-tarball.ts";
import type { DiffPages } from "./diff-pages.ts";
import type { Logger } from "../log-context.ts";
import type { PullRequestState } from "../state/pr-state.ts";
import type { RenderEntryStore } from "./render-entry-store.ts";
import { comparePreview, type CompareProgress, type PreviewComparison } from "./preview-comparison.ts";
import { configAt, type ConfigAt } from "../github/repository-config.ts";
import { mergeGroupLink, mergeGroupPullRequest, type MergeGroupLink } from "./merge-group-previews.ts";
import { discoverBoth } from "../../render/discover.ts";

/** The name of the preview check run. */
export const PREVIEW_CHECK = "sluice/preview";

/** The external id of a pull request's preview check run: the Re-run button finds the pull request by it (GitHub lists none for a fork's head). */
export function previewExternalId(pullRequest: number, seq: number): string {
  return `preview-${pullRequest}-${seq}`;
}

/** The pull request a preview check run's external id names, or undefined when it is not one. */
export function previewPullRequest(externalId: string | null | undefined): number | undefined {
  const number = /^preview-(\d+)-\d+$/.exec(externalId ?? "")?.[1];
  return number === undefined ? undefined : Number(number);
}

/** What the preview service needs. */
export interface PreviewDeps {
  github: (installationId: number) => Promise<GitHubClient>;
  checkouts: CheckoutCache;
  renderCache: RenderEntryStore;
  prState: PullRequestState;
  diffPages: DiffPages;
  renderer: RenderPool;
  /** The GitHub web host, for compare links. */
  webUrl: string;
  /** Live previews, when this app deploys (it has a job signing key, so agents to ask). */
  live?: LivePreviews;
  published: PublishedPreviews;
  now: () => number;
  log: Logger;
}

/** A preview's comparison, with the head side of each environment compared for a live preview to read. */
interface ComparedPreview extends PreviewComparison {
  head: (environment: string) => Promise<RenderedSide | undefined>;
}

/** Renders, diffs and publishes pull-request previews. */
export class PreviewService {
  readonly #deps: PreviewDeps;
  readonly #digests = new InputDigests();

  constructor(deps: PreviewDeps) {
    this.#deps = deps;
  }

  /**
   * Runs one preview job: reads the configuration from the base commit, fetches both commits,
   * renders the environments whose inputs changed (from cache where it can), diffs them, and
   * publishes the sticky comment and the check run unless a newer preview got there first.
   */
  async run(job: PreviewJob): Promise<void> {
    const deps = this.#deps;
    const started = deps.now();
    const gh = await deps.github(job.installationId);
    const pr = { repositoryId: job.repository.id, number: job.pullRequest };
    if (!(await deps.prState.isLatest(pr, job.seq))) {
      await this.#supersede(gh, job);
      return;
    }
    // Both commits are fetched while the configuration is read: one round trip to GitHub less
    // before the renders start. Released when the job ends, whichever way.
    const checkouts = this.#fetchCheckouts(gh, job);
    try {
      const [config, groupConfig] = await Promise.all([configAt(gh, job.repository, job.baseSha), this.#groupConfig(gh, job)]);
      if (!config.ok) {
        await this.#publishFailure(gh, job, config.errors, `${CONFIG_PATH} on the base branch is invalid`);
        return;
      }
      if (groupConfig && !groupConfig.ok) {
        const errors = groupConfig.errors.map((e) => ({ ...e, side: "head" as const }));
        await this.#publishFailure(gh, job, errors, `${CONFIG_PATH} in the merge queue's commit is invalid`);
        return;
      }
      if (job.draft && !config.config.previews.drafts) {
        await this.#skipDraft(gh, job);
        return;
      }
      let compared: ComparedPreview;
      const stream = this.#stream(gh, job, started);
      try {
        compared = await this.#compare(job, config.fromFile ? config.config : undefined, stream.progress, checkouts.both);
      } catch (error) {
        await stream.close();
        if (!(error instanceof UnsafeArchiveError)) throw error;
        // A tarball that tries to escape its checkout is the pull request's fault, not a transient one.
        await this.#publishFailure(gh, job, [{ file: ".", line: 1, message: error.message }], "The commit cannot be checked out safely");
        return;
      }
      // The final comment comes after every progress write, never before one.
      await stream.close();
      await this.#publish(gh, job, compared);
    } finally {
      checkouts.release();
    }
  }

  /**
   * Publishes a preview's comparison: the full diff page, the sticky comment and the check run
   * (and asks the agents for a live preview), unless a newer preview got there first.
   */
  async #publish(gh: GitHubClient, job: PreviewJob, compared: ComparedPreview): Promise<void> {
    const deps = this.#deps;
    const pr = { repositoryId: job.repository.id, number: job.pullRequest };
    // The render processes make the new cache entries while the comment is written; they are
    // stored as they come (a failed write is logged, never fatal), and the job ends after them.
    const { report, entries, head } = compared;
    const mergeGroup = this.#mergeGroup(job);
    // The page is stored while the comment is prepared; the comment is posted once it is.
    const page = deps.diffPages.prepare(
      {
        ...pageTitles(
          {
            repository: job.repository,
            pullRequest: job.pullRequest,
            baseSha: job.baseSha,
            headSha: job.headSha,
            ...(mergeGroup ? { mergeGroup } : {}),
          },
          deps.webUrl,
        ),
        report,
      },
      deps.now(),
    );
    // Awaited where the comment is written (or below); meanwhile a failure is not unhandled.
    page.stored.catch(() => undefined);
    const live = deps.live ? await deps.live.plan(gh, job, report, head) : undefined;
    const preview: PublishedPreview = {
      repository: job.repository,
      installationId: job.installationId,
      pullRequest: job.pullRequest,
      seq: job.seq,
      checkRunId: job.checkRunId,
      report,
      baseSha: job.baseSha,
      headSha: job.headSha,
      compareUrl: this.#compareUrl(job),
      fullDiffUrl: page.url,
      ...(live ? { live: live.live } : {}),
      ...(live?.liveTimeout ? { liveTimeout: live.liveTimeout } : {}),
      ...(mergeGroup ? { mergeGroup } : {}),
    };
    const published = await deps.prState.publish(pr, job.seq, async () => {
      await this.#endWaiting(gh, job);
      // Saved first: a live answer can only update a preview that is already here.
      if (live) await deps.published.save(withConclusion(preview));
      await writePreview(gh, preview, page.stored);
    });
    await page.stored;
    if (!published) await this.#supersede(gh, job);
    else await live?.send();
    await entries;
    deps.log.info({ repository: job.repository.id, pullRequest: job.pullRequest, head: job.headSha, published }, "preview finished");
  }

  /**
   * Starts fetching both commits' checkouts. `both` rejects as the first fetch does (and is never
   * left unhandled); `release` lets go of every lease taken, now or once a fetch still under way ends.
   */
  #fetchCheckouts(gh: GitHubClient, job: PreviewJob): { both: Promise<[Lease, Lease]>; release: () => void } {
    const deps = this.#deps;
    const leases: Lease[] = [];
    let released = false;
    const acquire = async (sha: string): Promise<Lease> => {
      const lease = await deps.checkouts.acquire(`${job.repository.id}-${sha}`, () => gh.tarball(job.repository, sha));
      if (released) lease.release();
      else leases.push(lease);
      return lease;
    };
    const both = Promise.all([acquire(job.baseSha), acquire(job.headSha)]);
    both.catch(() => undefined);
    return {
      both,
      release: () => {
        released = true;
        for (const lease of leases.splice(0)) lease.release();
      },
    };
  }

  /** Marks the sticky comment of a closed or merged pull request. */
  async markClosed(gh: GitHubClient, repository: RepoName, pullRequest: number, merged: boolean): Promise<void> {
    const existing = await gh.findComment(repository, pullRequest, PREVIEW_MARKER);
    if (!existing) return;
    const body = closedComment(existing.body, merged ? "merged" : "closed");
    if (body !== existing.body) await gh.updateComment(repository, existing.id, body);
  }

  /** Compares base and head; without a configuration file, the environments are discovered in both. */
  async #compare(
    job: PreviewJob,
    configured: Config | undefined,
    progress: (progress: CompareProgress) => void,
    checkouts: Promise<[Lease, Lease]>,
  ): Promise<ComparedPreview> {
    const deps = this.#deps;
    const [base, head] = await checkouts;
    const config = configured ?? (await discoverBoth(base.dir, head.dir, job.baseRef));
    const comparer = new CachedComparer(
      { pool: deps.renderer, cache: deps.renderCache, now: deps.now, log: deps.log, digests: this.#digests },
      { base: base.dir, head: head.dir },
    );
    // Twice the render processes: the next environments' cache entries are fetched while the pool is busy.
    const compared = await comparePreview({ config, comparer, concurrency: deps.renderer.size * 2, progress });
    return {
      ...compared,
      head: async (name) => {
        const location = compared.heads.get(name);
        return location ? comparer.head(location) : undefined;
      },
    };
  }

  /** Completes the check run of a draft that the configuration does not preview. */
  async #skipDraft(gh: GitHubClient, job: PreviewJob): Promise<void> {
    await gh.updateCheckRun(job.repository, job.checkRunId, {
      status: "completed",
      conclusion: "neutral",
      output: {
        title: "Draft not previewed",
        summary: "This repository's configuration does not preview draft pull requests (`previews.drafts: false`).",
      },
    });
  }

  /**
   * The configuration in a merge group's commit, which is what the base branch gets once the
   * queue merges it: one that does not validate there would stop the branch's deploys and
   * commands, which read it from then on. Undefined for a pull request's own preview, which the
   * base's configuration alone governs.
   */
  async #groupConfig(gh: GitHubClient, job: PreviewJob): Promise<ConfigAt | undefined> {
    return this.#mergeGroup(job) ? configAt(gh, job.repository, job.headSha) : undefined;
  }

  /** The pull request a merge group's preview tests, with its link; undefined for a pull request's own preview. */
  #mergeGroup(job: PreviewJob): MergeGroupLink | undefined {
    const queued = mergeGroupPullRequest(job.pullRequest);
    return queued === undefined ? undefined : mergeGroupLink(job.repository, queued, this.#deps.webUrl);
  }

  /** The GitHub page comparing the job's base and head. */
  #compareUrl(job: PreviewJob): string {
    return `${this.#deps.webUrl}/${fullName(job.repository)}/compare/${job.baseSha}...${job.headSha}`;
  }

  /**
   * The progress comment of a preview still rendering: once `streamsNow` says so (it has rendered
   * for a second with more than two rounds of renders left), the summary is posted, then refilled
   * as environments finish. Writes go one at a time, each under the pull request's lock and only
   * while no newer preview was published; a body not yet written when a newer one comes is
   * dropped, so GitHub's write pacing sees one edit at a time, never a queue. The check run is
   * left in progress. A merge group's preview has no comment, so nothing streams.
   */
  #stream(
    gh: GitHubClient,
    job: PreviewJob,
    started: number,
  ): { progress: (progress: CompareProgress) => void; close: () => Promise<void> } {
    const deps = this.#deps;
    if (this.#mergeGroup(job)) return { progress: () => undefined, close: () => Promise.resolve() };
    const pr = { repositoryId: job.repository.id, number: job.pullRequest };
    let commentId: number | undefined;
    let superseded = false;
    const writer = new CoalescedWriter<string>(
      async (body) => {
        if (superseded) return;
        const written = await deps.prState.publish(pr, job.seq, async () => {
          if (commentId !== undefined) return gh.updateComment(job.repository, commentId, body);
          await this.#endWaiting(gh, job);
          commentId = await upsertComment(gh, job.repository, job.pullRequest, body);
        });
        superseded = !written;
      },
      (error) => {
        deps.log.warn({ error: errorMessage(error), pullRequest: job.pullRequest }, "preview progress comment not written");
      },
    );
    const compareUrl = this.#compareUrl(job);
    // Nothing to stream when all is done (the final comment says it) or soon will be; nor once the
    // renders left are expected to end before a progress write and the write after it could go
    // (a comment edit is a write, paced a second apart): the final comment would wait behind it.
    // Decided as progress comes and again when the write's turn comes, on the newest progress.
    let firstDoneMs: number | undefined;
    const streams = (progress: CompareProgress) =>
      streamsNow(progress, deps.now() - started, deps.renderer.size, {
        writeGapMs: WRITE_GAP_MS,
        ...(firstDoneMs === undefined ? {} : { firstDoneMs }),
      });
    let latest: CompareProgress | undefined;
    return {
      progress: (progress) => {
        latest = progress;
        if (firstDoneMs === undefined && progress.done.length > 0) firstDoneMs = deps.now() - started;
        if (!streams(progress)) return;
        writer.update(() => {
          const newest = latest ?? progress;
          if (!streams(newest)) return undefined;
          return progressComment({
            baseSha: job.baseSha,
            headSha: job.headSha,
            compareUrl,
            total: newest.total,
            classified: newest.classified,
            rendering: newest.rendering,
            skipped: newest.skipped.length,
            done: newest.done,
          });
        });
      },
      close: () => writer.close(),
    };
  }

  async #publishFailure(gh: GitHubClient, job: PreviewJob, errors: ReportProblem[], title: string): Promise<void> {
    const pr = { repositoryId: job.repository.id, number: job.pullRequest };
    const report: DiffReport = { environments: [], errors };
    await this.#deps.prState.publish(pr, job.seq, async () => {
      await this.#endWaiting(gh, job);
      if (!this.#mergeGroup(job))
        await upsertComment(
          gh,
          job.repository,
          job.pullRequest,
          failureComment(`${title}: ${errors.map((e) => `\`${e.file}:${e.line}\` ${e.message}`).join("; ")}`, job.headSha),
        );
      await gh.updateCheckRun(job.repository, job.checkRunId, {
        status: "completed",
        conclusion: "failure",
        output: { title, summary: previewCheckOutput(report).summary, annotations: previewAnnotations(errors) },
      });
    });
  }

  /**
   * Completes the check run of an older preview of the pull request that still waits for a live
   * answer: once this newer one is published, that answer is dropped, so nothing else would.
   * The caller holds the pull request's lock.
   */
  async #endWaiting(gh: GitHubClient, job: PreviewJob): Promise<void> {
    if (!this.#deps.live) return;
    const previous = await this.#deps.published.load(job.repository.id, job.pullRequest);
    if (previous && previous.seq < job.seq && waitingForLive(previous))
      await this.#supersede(gh, { repository: previous.repository, checkRunId: previous.checkRunId });
  }

  async #supersede(gh: GitHubClient, job: Pick<PreviewJob, "repository" | "checkRunId">): Promise<void> {
    await gh.updateCheckRun(job.repository, job.checkRunId, {
      status: "completed",
      conclusion: "skipped",
      output: { title: "Superseded", summary: "A newer push or `/diff` replaced this preview." },
    });
  }

  /** Completes a check run as failed when a preview job gives up, so it does not spin forever. */
  async fail(job: PreviewJob, error: unknown): Promise<void> {
    const gh = await this.#deps.github(job.installationId);
    await gh.updateCheckRun(job.repository, job.checkRunId, {
      status: "completed",
      conclusion: "failure",
      output: previewFailedOutput(errorMessage(error)),
    });
  }
}
