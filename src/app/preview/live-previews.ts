import type { KeyObject } from "node:crypto";
import { clusterField, planWaves, targetName } from "../../core/fleet.ts";
import type { FleetClusters } from "../deploy/fleet-clusters.ts";
import type { RedisClient } from "../../redis/connection.ts";
import { agentHeartbeatKey, liveReportSchema, type LivePreviewRequest, type LiveReport } from "../../core/agent-protocol.ts";
import { fleetOf, type Config, type LiveTimeoutConclusion } from "../../core/config.ts";
import type { DiffReport } from "../../core/diff-report.ts";
import { parseJson } from "../../core/json.ts";
import type { DriftSummary, LiveEnvironment } from "../../core/live-preview.ts";
import type { KubeObject } from "../../core/manifest.ts";
import { seal, type Envelope } from "../../core/signing.ts";
import type { RenderedSide } from "../../render/compare.ts";
import { errorMessage } from "../../core/errors.ts";
import { permits, type GitHubClient, type Permission } from "../github/client.ts";
import type { AppQueues, LiveTimeout, PreviewJob } from "../queue/queues.ts";
import { compareWithSealed, unknownToApp, type AgentKeys, type Verdict } from "../agents/agent-keys.ts";
import type { CheckoutCache } from "../checkouts/checkout-cache.ts";
import type { Logger } from "../log-context.ts";
import { objectsPayload } from "../deploy/object-payloads.ts";
import type { PullRequestState } from "../state/pr-state.ts";
import type { DiffPages } from "./diff-pages.ts";
import type { DriftChange, DriftSummaries } from "../drift/drift-summaries.ts";
import { pageTitles, withConclusion, writePreview, type PublishedPreview, type PublishedPreviews } from "./published-previews.ts";
import { discoverFromCheckout, reviewedConfig, type ConfigAt } from "../github/repository-config.ts";
import { mergeGroupPullRequest } from "./merge-group-previews.ts";

/** What live previews need. */
export interface LivePreviewDeps {
  redis: RedisClient;
  queues: AppQueues;
  prState: PullRequestState;
  published: PublishedPreviews;
  checkouts: CheckoutCache;
  github: (installationId: number) => Promise<GitHubClient>;
  signingKey: KeyObject;
  agentKeys: AgentKeys;
  /** GitHub's web URL, for links back to pull requests. */
  webUrl: string;
  /** How long a signed request stays valid. */
  requestTtlMs: number;
  /** How long the comment waits for an agent before it says none answered. */
  timeoutMs: number;
  diffPages: DiffPages;
  /** What each environment's agent last found drifted. */
  drift: DriftSummaries;
  /** The clusters whose agents announced themselves for a fleet: what its globs match. */
  clusters: FleetClusters;
  now: () => number;
  log: Logger;
}

/** What `plan` decided: each environment's live status, and how to send the requests. */
export interface Planned {
  live: LiveEnvironment[];
  /** Queues the signed requests and the end of the wait. */
  send: () => Promise<void>;
  /** How the check run concludes if the wait ends before an answer; absent when nothing was asked. */
  liveTimeout?: LiveTimeoutConclusion;
}

/**
 * Live previews: asks each previewed environment's agent to dry-run the head's objects against
 * the live cluster, and folds the signed answers into the published comment and check run (at
 * once, or late, after the wait ended). Only same-repository pull requests whose author has the
 * commands permission of the default branch's configuration send anything to a cluster.
 */
export class LivePreviews {
  readonly #deps: LivePreviewDeps;

  constructor(deps: LivePreviewDeps) {
    this.#deps = deps;
  }

  /**
   * Decides, per compared environment, whether to ask for a live preview, and signs the requests.
   * Returns each environment's status for the comment, the conclusion the default branch gives a
   * wait that ends without an answer, and `send`, which the caller runs once the preview that the
   * answers will update is saved: it queues the requests and the end of the wait.
   */
  async plan(
    gh: GitHubClient,
    job: PreviewJob,
    report: DiffReport,
    heads: (environment: string) => Promise<RenderedSide | undefined>,
  ): Promise<Planned> {
    const planned = await this.#plan(gh, job, report, heads);
    // Each entry shows what its agent last found drifted: an environment's, or one cluster's of a fleet.
    const live = await Promise.all(
      planned.live.map(async (entry) => {
        const found = await this.#deps.drift.summary(job.repository.id, targetName(entry.environment, entry.cluster));
        return found && found.objects.length > 0 ? { ...entry, drift: shownDrift(found) } : entry;
      }),
    );
    return { ...planned, live };
  }

  async #plan(
    gh: GitHubClient,
    job: PreviewJob,
    report: DiffReport,
    heads: (environment: string) => Promise<RenderedSide | undefined>,
  ): Promise<Planned> {
    const names = report.environments.map((e) => e.name);
    const none = (): Promise<void> => Promise.resolve();
    const all = (reason: string) => ({
      live: names.map((environment): LiveEnvironment => ({ environment, status: { state: "unavailable", reason } })),
      send: none,
    });
    if (names.length === 0) return { live: [], send: none };
    if (job.fromFork) return all("pull requests from forks never send their content to a cluster");
    const heldByOthers = await this.#heldByOthers(gh, job);
    if (heldByOthers !== undefined) return all(heldByOthers);
    // Who may ask a cluster anything, and with which settings, is the default branch's word. The
    // git preview does not depend on it: when it cannot be read, only the live part is missing.
    let reviewed: ConfigAt;
    let actual: Permission;
    try {
      reviewed = await reviewedConfig(gh, job.repository, discoverFromCheckout(this.#deps.checkouts, gh, job.repository));
      actual = job.author ? await gh.permission(job.repository, job.author) : "none";
    } catch (error) {
      this.#deps.log.warn(
        { repository: job.repository.id, error: errorMessage(error) },
        "live preview not asked: the default branch or the author's permission could not be read",
      );
      return all(`the default branch's configuration or the author's permission could not be read (${errorMessage(error)})`);
    }
    if (!reviewed.ok) return all("the default branch's configuration is invalid");
    const required = reviewed.config.commands.permission;
    if (!permits(actual, required))
      return all(
        `the author (@${job.author || "unknown"}) has ${actual === "none" ? "no" : actual} permission and live previews need ${required}`,
      );
    const live: LiveEnvironment[] = [];
    const requests: Request[] = [];
    for (const env of report.environments) {
      for (const asked of await this.#ask(job, env.name, env.skipped, await heads(env.name), reviewed.config)) {
        live.push(asked.entry);
        if (asked.request) requests.push(asked.request);
      }
    }
    const send = async (): Promise<void> => {
      if (requests.length === 0) return;
      for (const r of requests) await this.#deps.queues.addLivePreview(r.target, r.id, r.envelope);
      const timeout: LiveTimeout = {
        repositoryId: job.repository.id,
        pullRequest: job.pullRequest,
        seq: job.seq,
        seconds: Math.round(this.#deps.timeoutMs / 1000),
      };
      await this.#deps.queues.addLiveTimeout(timeout, this.#deps.timeoutMs);
    };
    return { live, send, liveTimeout: reviewed.config.previews.liveTimeout };
  }

  /**
   * Why a merge group's commit is not sent to a cluster, or undefined when it may be (and for a
   * pull request's own preview). A group built on an earlier group's commit, not on the branch's
   * head, also holds the pull requests queued ahead of it, whose authors and forks this preview
   * did not check; a group whose parent is the branch's head holds only its own pull request.
   */
  async #heldByOthers(gh: GitHubClient, job: PreviewJob): Promise<string | undefined> {
    const queued = mergeGroupPullRequest(job.pullRequest);
    if (queued === undefined) return undefined;
    try {
      if ((await gh.branchSha(job.repository, job.baseRef)) === job.baseSha) return undefined;
    } catch (error) {
      return `the head of ${job.baseRef} could not be read (${errorMessage(error)})`;
    }
    return `the merge queue's commit also holds the pull requests queued ahead of #${queued}; only a group built on the head of ${job.baseRef} is sent to a cluster`;
  }

  /**
   * The live entries of one previewed environment, with the signed request for each that is asked:
   * one entry on one cluster, or one per cluster of a fleet (each cluster's agent dry-runs the same
   * objects against its own cluster, and the comment groups the clusters that answer alike).
   */
  async #ask(
    job: PreviewJob,
    environment: string,
    skipped: string | undefined,
    head: RenderedSide | undefined,
    reviewed: Config,
  ): Promise<Asked[]> {
    const deps = this.#deps;
    const unavailable = (reason: string): Asked[] => [{ entry: { environment, status: { state: "unavailable", reason } } }];
    if (skipped !== undefined) return unavailable(`not rendered (${skipped})`);
    if (!head || head.problems.length > 0) return unavailable("the head did not render cleanly");
    const env = reviewed.environments.find((e) => e.name === environment);
    if (!env) return unavailable("it is not an environment of the default branch's configuration");
    const fleet = fleetOf(env);
    const clusters: (string | undefined)[] = fleet
      ? planWaves(fleet, await deps.clusters.known(environment, deps.now(), job.repository.id)).waves.flat()
      : [undefined];
    if (clusters.length === 0) return unavailable("none of its clusters' agents has announced itself yet");
    const online = await Promise.all(
      clusters.map(async (cluster) => (await deps.redis.exists(agentHeartbeatKey(targetName(environment, cluster)))) > 0),
    );
    if (!online.some(Boolean))
      return clusters.map((cluster) => ({ entry: { environment, ...clusterField(cluster), status: { state: "offline" } } }));
    const objects = [...head.resources.values()].map((r) => parseJson(r.json) as KubeObject);
    // Stored once under the environment's own tag, where each of its clusters' agents reads it.
    const payload = await objectsPayload(deps.redis, environment, objects);
    const signedAt = deps.now();
    return clusters.map((cluster, i): Asked => {
      const entry = { environment, ...clusterField(cluster) };
      if (!online[i]) return { entry: { ...entry, status: { state: "offline" } } };
      const target = targetName(environment, cluster);
      const request: LivePreviewRequest = {
        version: 1,
        id: livePreviewRequestId(job.repository.id, job.pullRequest, job.seq, target),
        repository: job.repository,
        installationId: job.installationId,
        environment,
        ...clusterField(cluster),
        pullRequest: job.pullRequest,
        headSha: job.headSha,
        seq: job.seq,
        settings: { namespace: env.namespace, prune: env.prune },
        signedAt: new Date(signedAt).toISOString(),
        expiresAt: new Date(signedAt + deps.requestTtlMs).toISOString(),
        digest: payload.digest,
        objects: payload.objects,
      };
      return {
        entry: { ...entry, status: { state: "pending" } },
        request: { target, id: request.id, envelope: seal("preview", request, deps.signingKey) },
      };
    });
  }

  /**
   * Folds an agent's signed answer into the published preview it answers; answers for older
   * previews are dropped, and so are answers that do not match the request the app sent (its id,
   * environment, repository, installation and head).
   */
  async consume(envelope: unknown): Promise<void> {
    const deps = this.#deps;
    await deps.agentKeys.consume("live", envelope, { schema: liveReportSchema, log: deps.log, use: (answer) => this.#fold(answer) });
  }

  async #fold(answer: LiveReport): Promise<Verdict> {
    const { environment, cluster } = answer;
    const target = targetName(environment, cluster);
    const about = { request: answer.requestId, repository: answer.repository.id, pullRequest: answer.pullRequest, environment: target };
    const answers = entryOf(environment, cluster);
    // An answer for a preview that is no longer the newest changes nothing, matching or not.
    let verdict: Verdict = { accepted: true };
    await this.#update(answer.repository.id, answer.pullRequest, answer.seq, "soon", (live, preview) => {
      // The preview is what the app sealed when it sent its requests: one went to each environment
      // it shows as pending (or answered, or timed out), none to an unavailable or offline one.
      const asked = live.some((e) => answers(e) && ["pending", "answered", "timed-out"].includes(e.status.state));
      const reported = {
        id: answer.requestId,
        environment,
        repositoryId: answer.repository.id,
        installationId: answer.installationId,
        sha: answer.headSha,
      };
      const sent = {
        id: livePreviewRequestId(preview.repository.id, preview.pullRequest, preview.seq, target),
        environment,
        repositoryId: preview.repository.id,
        installationId: preview.installationId,
        sha: preview.headSha,
      };
      verdict = asked ? compareWithSealed(reported, sent, about) : unknownToApp(about);
      if (!verdict.accepted) return [...live];
      return live.map((e) => (answers(e) ? { ...e, status: { state: "answered", report: answer } } : e));
    });
    return verdict;
  }

  /** Shows an environment's new drift on the comments of the repository's open pull requests that preview it. */
  async driftChanged(change: DriftChange): Promise<void> {
    const { repositoryId, environment, cluster } = change;
    const drift = shownDrift(change.summary);
    const shows = entryOf(environment, cluster);
    for (const pullRequest of await this.#deps.published.pullRequests(repositoryId)) {
      const preview = await this.#deps.published.load(repositoryId, pullRequest);
      if (!preview?.live?.some(shows)) continue;
      await this.#update(repositoryId, pullRequest, preview.seq, "soon", (live) =>
        live.map((e) => {
          if (!shows(e)) return e;
          const rest: LiveEnvironment = { environment: e.environment, ...clusterField(e.cluster), status: e.status };
          return drift.objects.length > 0 ? { ...rest, drift } : rest;
        }),
      );
    }
  }

  /**
   * Ends the wait: environments still pending say that no agent answered in time. A timeout with
   * `write` ends nothing: it writes the answers and drift folded in since the preview's last write.
   */
  async timeOut(timeout: LiveTimeout): Promise<void> {
    if (timeout.write) {
      await this.#update(timeout.repositoryId, timeout.pullRequest, timeout.seq, "now", (live) => [...live]);
      return;
    }
    await this.#update(timeout.repositoryId, timeout.pullRequest, timeout.seq, "now", (live) =>
      live.map((e) => (e.status.state === "pending" ? { ...e, status: { state: "timed-out", seconds: timeout.seconds } } : e)),
    );
  }

  /**
   * Changes the live part of the newest published preview under the pull request's lock, and
   * writes it (`now`), or keeps it marked unwritten and asks for one write a moment later (`soon`):
   * a hundred clusters answering within a second cost a write or two, not a hundred, and an answer
   * never waits behind another's write in GitHub's pacing. What is written is always the newest
   * preview as saved, under the lock, so a write never puts back an older state.
   */
  async #update(
    repositoryId: number,
    pullRequest: number,
    seq: number,
    when: "now" | "soon",
    change: (live: readonly LiveEnvironment[], preview: PublishedPreview) => LiveEnvironment[],
  ): Promise<void> {
    const deps = this.#deps;
    const written = await deps.prState.publish({ repositoryId, number: pullRequest }, seq, async () => {
      const preview = await deps.published.load(repositoryId, pullRequest);
      if (!preview || preview.seq !== seq || !preview.live) return;
      const live = change(preview.live, preview);
      const changed = JSON.stringify(live) !== JSON.stringify(preview.live);
      if (when === "soon") {
        if (!changed) return;
        // The write is asked for before the preview says it is: a failure between the two leaves a
        // write with nothing to do. One asked for long ago that never wrote (its tries all failed)
        // is asked for again, so an update is never left unwritten.
        let asked = preview.unwritten;
        if (asked === undefined || deps.now() - asked > WRITE_AGAIN_MS) {
          await deps.queues.addLiveTimeout({ repositoryId, pullRequest, seq, seconds: 1, write: true }, WRITE_DELAY_MS);
          asked = deps.now();
        }
        await deps.published.save({ ...preview, live, unwritten: asked });
        return;
      }
      if (!changed && preview.unwritten === undefined) return;
      // The full diff page gets the live tab: a new page, and the comment and check run link it.
      const fullDiffUrl = await deps.diffPages.store({ ...pageTitles(preview, deps.webUrl), report: preview.report, live }, deps.now());
      // Saved still marked unwritten until GitHub has it: a replica that dies mid-write leaves it for the retry.
      const updated = withConclusion({ ...preview, live, fullDiffUrl, unwritten: preview.unwritten ?? deps.now() });
      await deps.published.save(updated);
      await writePreview(await deps.github(preview.installationId), updated);
      const done: PublishedPreview = { ...updated };
      delete done.unwritten;
      await deps.published.save(done);
    });
    if (!written)
      deps.log.info(
        { repository: repositoryId, pullRequest, seq },
        "live preview update for a preview that is no longer the newest dropped",
      );
  }
}

/**
 * The part of a drift summary the comment shows: the drifted objects, not the health a fleet's
 * agent also reports (a bake reads it), so a message that changes with every check ("3 of 5
 * available", then "4 of 5") never rewrites a comment that would look the same.
 */
function shownDrift(summary: DriftSummary): DriftSummary {
  return { sha: summary.sha, objects: summary.objects, healing: summary.healing };
}

/** Whether a live entry is the one of `environment` (on `cluster`, for a fleet). */
function entryOf(environment: string, cluster: string | undefined): (entry: LiveEnvironment) => boolean {
  return (entry) => entry.environment === environment && entry.cluster === cluster;
}

/** Live answers folded into a preview are written this long after the first of them. */
const WRITE_DELAY_MS = 1_000;
/** A write asked for this long ago that has not written yet is asked for again. */
const WRITE_AGAIN_MS = 60_000;

/** One entry of the live section, and the signed request that asks its agent, when one is asked. */
interface Asked {
  entry: LiveEnvironment;
  request?: Request;
}

/** A signed live-preview request and the agents' queue it goes to (`env`, or `env@cluster`). */
interface Request {
  target: string;
  id: string;
  envelope: Envelope;
}

/** The id of the live-preview request for one environment (or one cluster of a fleet, `env@cluster`) of one preview: the answer names it. */
function livePreviewRequestId(repositoryId: number, pullRequest: number, seq: number, target: string): string {
  return `live-${repositoryId}-${pullRequest}-${seq}-${target}`;
}
