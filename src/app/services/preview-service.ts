import { CONFIG_PATH, defaultConfig, validateConfig, type Config, type Environment } from "../../core/config.ts";
import { errorMessage } from "../../core/errors.ts";
import {
  closedComment,
  failureComment,
  PREVIEW_MARKER,
  previewAnnotations,
  previewCheckOutput,
  previewComment,
  previewConclusion,
} from "../../core/preview-comment.ts";
import type { DiffReport, ReportProblem, Side } from "../../core/report.ts";
import { compareCheckouts, renderSide, type RenderedSide } from "../../render/compare.ts";
import type { RendererContext } from "../../render/context.ts";
import { environmentInputs, type EnvironmentInputs } from "../../render/inputs.ts";
import type { RenderLimits } from "../../render/render-environment.ts";
import type { RenderTools } from "../../render/tools.ts";
import type { GitHubClient, RepoCoordinates } from "../github/client.ts";
import type { PreviewJob } from "../queue/queues.ts";
import { openCheckout, type CheckoutCache, type OpenCheckout } from "./checkout-cache.ts";
import type { DiffPages } from "./diff-pages.ts";
import type { Logger } from "./logger.ts";
import type { PullRequestState } from "./pr-state.ts";
import { RenderCache } from "./render-cache.ts";

/** The name of the preview check run. */
export const PREVIEW_CHECK = "sluice/preview";

/** What the preview service needs. */
export interface PreviewDeps {
  github: (installationId: number) => Promise<GitHubClient>;
  checkouts: CheckoutCache;
  renderCache: RenderCache;
  prState: PullRequestState;
  diffPages: DiffPages;
  tools: RenderTools;
  limits: RenderLimits;
  /** The GitHub web host, for compare links. */
  webUrl: string;
  now: () => number;
  log: Logger;
}

/** Reads the configuration at a commit: the file if present (validated), the default otherwise. */
export async function configAt(gh: GitHubClient, repo: RepoCoordinates, sha: string): Promise<{ ok: true; config: Config } | { ok: false; errors: ReportProblem[] }> {
  const text = await gh.fileAt(repo, CONFIG_PATH, sha);
  if (text === undefined) return { ok: true, config: defaultConfig() };
  const result = validateConfig(text, CONFIG_PATH);
  return result.ok ? result : { ok: false, errors: result.errors.map((e) => ({ file: e.file, line: e.line, message: e.detail, side: "base" as const })) };
}

/** Renders, diffs and publishes pull-request previews. */
export class PreviewService {
  readonly #deps: PreviewDeps;

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
    const gh = await deps.github(job.installationId);
    const repo = { owner: job.repository.owner, repo: job.repository.name };
    const pr = { repositoryId: job.repository.id, number: job.pullRequest };
    if (!(await deps.prState.isLatest(pr, job.seq))) {
      await this.#supersede(gh, repo, job);
      return;
    }
    const config = await configAt(gh, repo, job.baseSha);
    if (!config.ok) {
      await this.#publishFailure(gh, repo, job, config.errors, `${CONFIG_PATH} on the base branch is invalid`);
      return;
    }
    if (job.draft && !config.config.previews.drafts) {
      await gh.updateCheckRun(repo, job.checkRunId, {
        status: "completed",
        conclusion: "neutral",
        output: { title: "Draft not previewed", summary: "This repository's configuration does not preview draft pull requests (`previews.drafts: false`)." },
      });
      return;
    }
    const pendingWrites: Promise<unknown>[] = [];
    const report = await this.#compare(gh, repo, job, config.config, pendingWrites);
    const fullDiffUrl = await deps.diffPages.store(
      { title: `${job.repository.owner}/${job.repository.name}#${job.pullRequest}`, subtitle: `${job.baseSha.slice(0, 7)}…${job.headSha.slice(0, 7)}`, report },
      deps.now(),
    );
    const body = previewComment({
      report,
      baseSha: job.baseSha,
      headSha: job.headSha,
      compareUrl: `${deps.webUrl}/${job.repository.owner}/${job.repository.name}/compare/${job.baseSha}...${job.headSha}`,
      fullDiffUrl,
    });
    const published = await deps.prState.publish(pr, job.seq, async () => {
      await upsertComment(gh, repo, job.pullRequest, body);
      await gh.updateCheckRun(repo, job.checkRunId, {
        status: "completed",
        conclusion: previewConclusion(report),
        detailsUrl: fullDiffUrl,
        output: { ...previewCheckOutput(report), annotations: previewAnnotations(report.errors) },
      });
    });
    if (!published) await this.#supersede(gh, repo, job);
    // Cache writes finish after the comment is out, but before the job is done.
    await Promise.all(pendingWrites);
    deps.log.info({ repository: job.repository.id, pullRequest: job.pullRequest, head: job.headSha, published }, "preview finished");
  }

  /** Marks the sticky comment of a closed or merged pull request. */
  async markClosed(gh: GitHubClient, repo: RepoCoordinates, pullRequest: number, merged: boolean): Promise<void> {
    const existing = await gh.findComment(repo, pullRequest, PREVIEW_MARKER);
    if (!existing) return;
    const body = closedComment(existing.body, merged ? "merged" : "closed");
    if (body !== existing.body) await gh.updateComment(repo, existing.id, body);
  }

  async #compare(gh: GitHubClient, repo: RepoCoordinates, job: PreviewJob, config: Config, pendingWrites: Promise<unknown>[]): Promise<DiffReport> {
    const deps = this.#deps;
    const opened: OpenCheckout[] = [];
    try {
      const open = async (sha: string): Promise<OpenCheckout> => {
        const checkout = await openCheckout(deps.checkouts, `${job.repository.id}-${sha}`, () => gh.tarball(repo, sha), deps.tools, deps.limits);
        opened.push(checkout);
        return checkout;
      };
      const [base, head] = await Promise.all([open(job.baseSha), open(job.headSha)]);
      const inputs = new Map<string, Record<Side, EnvironmentInputs>>();
      return await compareCheckouts({
        base,
        head,
        config,
        skip: async (env) => {
          const [baseInputs, headInputs] = await Promise.all([environmentInputs(base.checkoutRoot, env), environmentInputs(head.checkoutRoot, env)]);
          inputs.set(env.name, { base: baseInputs, head: headInputs });
          return baseInputs.digest === headInputs.digest ? "inputs unchanged" : undefined;
        },
        render: (context, env, side) => {
          const digests = inputs.get(env.name);
          if (!digests) throw new Error(`inputs of ${env.name} were not read`);
          return this.#render(context, env, digests[side], pendingWrites);
        },
      });
    } finally {
      await Promise.all(opened.map((c) => c.close()));
    }
  }

  /** Renders one side through the shared cache. */
  async #render(context: RendererContext, env: Environment, inputs: EnvironmentInputs, pendingWrites: Promise<unknown>[]): Promise<RenderedSide> {
    const deps = this.#deps;
    const key = RenderCache.key(inputs.digest, { env, tools: deps.tools, limits: deps.limits });
    const cached = await deps.renderCache.get(key, deps.now());
    if (cached) return { resources: new Map(cached.resources.map((r) => [r.key, r])), problems: cached.problems };
    const rendered = await renderSide(context, env);
    // A render that timed out may succeed next time; everything else is a function of the inputs.
    if (!rendered.problems.some((p) => /did not finish within/.test(p.message))) {
      pendingWrites.push(deps.renderCache.set(key, { resources: [...rendered.resources.values()], problems: rendered.problems }, deps.now()).catch((error: unknown) => {
        deps.log.warn({ error: String(error) }, "render cache write failed");
      }));
    }
    return rendered;
  }

  async #publishFailure(gh: GitHubClient, repo: RepoCoordinates, job: PreviewJob, errors: ReportProblem[], title: string): Promise<void> {
    const pr = { repositoryId: job.repository.id, number: job.pullRequest };
    const report: DiffReport = { environments: [], errors };
    await this.#deps.prState.publish(pr, job.seq, async () => {
      await upsertComment(gh, repo, job.pullRequest, failureComment(`${title}: ${errors.map((e) => `\`${e.file}:${e.line}\` ${e.message}`).join("; ")}`, job.headSha));
      await gh.updateCheckRun(repo, job.checkRunId, {
        status: "completed",
        conclusion: "failure",
        output: { title, summary: previewCheckOutput(report).summary, annotations: previewAnnotations(errors) },
      });
    });
  }

  async #supersede(gh: GitHubClient, repo: RepoCoordinates, job: PreviewJob): Promise<void> {
    await gh.updateCheckRun(repo, job.checkRunId, {
      status: "completed",
      conclusion: "skipped",
      output: { title: "Superseded", summary: "A newer push or `/diff` replaced this preview." },
    });
  }

  /** Completes a check run as failed when a preview job gives up, so it does not spin forever. */
  async fail(job: PreviewJob, error: unknown): Promise<void> {
    const gh = await this.#deps.github(job.installationId);
    const repo = { owner: job.repository.owner, repo: job.repository.name };
    await gh.updateCheckRun(repo, job.checkRunId, {
      status: "completed",
      conclusion: "failure",
      output: { title: "Preview failed", summary: `The preview could not be produced: ${errorMessage(error).slice(0, 1_000)}` },
    });
  }
}

/** Creates the sticky comment, or edits it in place when its body changed. */
export async function upsertComment(gh: GitHubClient, repo: RepoCoordinates, pullRequest: number, body: string): Promise<void> {
  const existing = await gh.findComment(repo, pullRequest, PREVIEW_MARKER);
  if (!existing) await gh.createComment(repo, pullRequest, body);
  else if (existing.body !== body) await gh.updateComment(repo, existing.id, body);
}
