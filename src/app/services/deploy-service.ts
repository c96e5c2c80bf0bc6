import { gzipSync } from "node:zlib";
import type { KeyObject } from "node:crypto";
import type { Redis } from "ioredis";
import { agentReportSchema, blobKey, objectsDigest, type AgentJob, type AgentReport } from "../../core/agent-protocol.ts";
import { deployCheckName, deployCheckOutput } from "../../core/deploy-report.ts";
import { deployJobId, type DeployRequest, type RepositoryRef } from "../../core/jobs.ts";
import type { KubeObject } from "../../core/manifest.ts";
import { previewAnnotations, previewCheckOutput } from "../../core/preview-comment.ts";
import { open, seal, SignatureError } from "../../core/signing.ts";
import { renderSide } from "../../render/compare.ts";
import type { RenderLimits } from "../../render/render-environment.ts";
import type { RenderTools } from "../../render/tools.ts";
import type { GitHubClient, RepoCoordinates } from "../github/client.ts";
import type { AppQueues } from "../queue/queues.ts";
import { openCheckout, type CheckoutCache } from "./checkout-cache.ts";
import type { Logger } from "./logger.ts";
import { configAt } from "./preview-service.ts";

/** Jobs whose objects are larger than this travel as a compressed blob in Redis. */
const INLINE_LIMIT = 256 * 1024;
const RECORD_TTL = 30 * 24 * 3600;

/** What a deploy looks like on GitHub: its check run, Deployment and where it came from. */
interface DeployRecord {
  checkRunId: number;
  deploymentId: number;
  repository: RepositoryRef;
  installationId: number;
  environment: string;
  sha: string;
  reason: DeployRequest["reason"];
  pullRequest?: number;
}

/** What the deploy service needs. */
export interface DeployDeps {
  redis: Redis;
  queues: AppQueues;
  github: (installationId: number) => Promise<GitHubClient>;
  checkouts: CheckoutCache;
  tools: RenderTools;
  limits: RenderLimits;
  signingKey: KeyObject;
  agentKeys: readonly KeyObject[];
  webUrl: string;
  now: () => number;
  log: Logger;
}

/**
 * The app's half of the deploy pipeline: turns deploy requests into rendered, signed agent jobs
 * with a check run and a GitHub Deployment each, and turns the agents' signed reports into
 * check-run updates, deployment statuses and a comment on the pull request.
 */
export class DeployService {
  readonly #deps: DeployDeps;

  constructor(deps: DeployDeps) {
    this.#deps = deps;
  }

  /** Queues a deploy for every environment that tracks `branch` and deploys automatically. */
  async requestFromPush(gh: GitHubClient, push: { repository: RepositoryRef; installationId: number; branch: string; sha: string; pusher: string }): Promise<string[]> {
    const repo = { owner: push.repository.owner, repo: push.repository.name };
    const config = await configAt(gh, repo, push.sha);
    if (!config.ok) {
      this.#deps.log.warn({ repository: push.repository.id, sha: push.sha }, "push not deployed: invalid configuration");
      return [];
    }
    const queued: string[] = [];
    for (const env of config.config.environments) {
      if (env.branch !== push.branch || !env.autoDeploy) continue;
      await this.#deps.queues.addDeployRequest({
        version: 1,
        repository: push.repository,
        installationId: push.installationId,
        environment: env.name,
        sha: push.sha,
        reason: "merge",
        requestedBy: push.pusher,
        createdAt: new Date(this.#deps.now()).toISOString(),
      });
      queued.push(env.name);
    }
    return queued;
  }

  /** Renders a deploy request's commit and hands the signed job to the environment's agents. */
  async prepare(request: DeployRequest): Promise<void> {
    const deps = this.#deps;
    const gh = await deps.github(request.installationId);
    const repo = { owner: request.repository.owner, repo: request.repository.name };
    const jobId = deployJobId(request);
    const name = deployCheckName(request.environment);
    const config = await configAt(gh, repo, request.sha);
    const env = config.ok ? config.config.environments.find((e) => e.name === request.environment) : undefined;
    if (!config.ok || !env) {
      const errors = config.ok ? [{ file: ".github/sluice.yml", line: 1, message: `environment ${request.environment} is not in the configuration at ${request.sha.slice(0, 7)}` }] : config.errors;
      await gh.createCheckRun(repo, name, request.sha, { externalId: jobId, status: "completed", conclusion: "failure", output: { title: "Invalid configuration", summary: previewCheckOutput({ environments: [], errors }).summary, annotations: previewAnnotations(errors) } });
      return;
    }
    const checkout = await openCheckout(deps.checkouts, `${request.repository.id}-${request.sha}`, () => gh.tarball(repo, request.sha), deps.tools, deps.limits);
    let rendered: Awaited<ReturnType<typeof renderSide>>;
    try {
      rendered = await renderSide(checkout, env);
    } finally {
      await checkout.close();
    }
    if (rendered.problems.length > 0) {
      const errors = rendered.problems.map((p) => ({ ...p, environment: env.name }));
      await gh.createCheckRun(repo, name, request.sha, { externalId: jobId, status: "completed", conclusion: "failure", output: { title: "Render failed", summary: previewCheckOutput({ environments: [], errors }).summary, annotations: previewAnnotations(errors) } });
      return;
    }
    const objects = [...rendered.resources.values()].map((r) => JSON.parse(r.json) as KubeObject);
    const digest = objectsDigest(objects);
    const body = JSON.stringify(objects);
    let payload: AgentJob["objects"] = { inline: objects };
    if (body.length > INLINE_LIMIT) {
      const key = blobKey(env.name, digest);
      await deps.redis.set(key, gzipSync(body), "EX", RECORD_TTL);
      payload = { blob: key };
    }
    const checkRunId = await gh.createCheckRun(repo, name, request.sha, {
      externalId: jobId,
      status: "queued",
      output: { title: "Queued", summary: `${objects.length} objects of \`${request.sha.slice(0, 7)}\` queued for the agent (${request.reason}, requested by ${request.requestedBy}).` },
    });
    // Saved before anything else can refer to this deploy (a superseded report links its check run).
    const record: DeployRecord = { checkRunId, deploymentId: 0, repository: request.repository, installationId: request.installationId, environment: env.name, sha: request.sha, reason: request.reason, ...(request.pullRequest ? { pullRequest: request.pullRequest } : {}) };
    await deps.redis.set(this.#recordKey(jobId), JSON.stringify(record), "EX", RECORD_TTL);
    record.deploymentId = await gh.createDeployment(repo, { sha: request.sha, environment: env.name, description: `Sluice ${request.reason} by ${request.requestedBy}`, payload: { jobId } });
    await gh.deploymentStatus(repo, record.deploymentId, { state: "queued", description: "Queued for the agent", logUrl: this.#checkRunUrl(request.repository, checkRunId) });
    await deps.redis.set(this.#recordKey(jobId), JSON.stringify(record), "EX", RECORD_TTL);
    const job: AgentJob = {
      version: 1,
      id: jobId,
      repository: request.repository,
      installationId: request.installationId,
      environment: env.name,
      sha: request.sha,
      reason: request.reason,
      requestedBy: request.requestedBy,
      createdAt: request.createdAt,
      settings: { namespace: env.namespace, prune: env.prune, allowEmpty: env.allowEmpty },
      digest,
      objects: payload,
    };
    await deps.queues.addAgentJob(env.name, jobId, seal("job", job, deps.signingKey));
    deps.log.info({ job: jobId, objects: objects.length }, "deploy job queued");
  }

  /** Applies one signed report to GitHub. Reports that do not verify are dropped. */
  async consume(envelope: unknown): Promise<void> {
    const deps = this.#deps;
    const report = this.#verify(envelope);
    if (!report) return;
    const raw = await deps.redis.get(this.#recordKey(report.jobId));
    if (!raw) {
      deps.log.warn({ job: report.jobId }, "report for an unknown deploy dropped");
      return;
    }
    const record = JSON.parse(raw) as DeployRecord;
    const gh = await deps.github(record.installationId);
    const repo = { owner: record.repository.owner, repo: record.repository.name };
    const logUrl = this.#checkRunUrl(record.repository, record.checkRunId);
    let output = deployCheckOutput(report);
    if (report.phase === "superseded" && report.supersededBy) {
      const newer = await deps.redis.get(this.#recordKey(report.supersededBy));
      const newerRecord = newer ? (JSON.parse(newer) as DeployRecord) : undefined;
      if (newerRecord) output = { ...output, summary: `Superseded by [\`${newerRecord.sha.slice(0, 7)}\`](${this.#checkRunUrl(newerRecord.repository, newerRecord.checkRunId)}), which was queued after this deploy and runs instead.` };
    }
    const done = report.phase === "succeeded" || report.phase === "failed" || report.phase === "rejected" || report.phase === "superseded";
    await gh.updateCheckRun(repo, record.checkRunId, {
      status: done ? "completed" : "in_progress",
      ...(done ? { conclusion: report.phase === "succeeded" ? "success" : report.phase === "superseded" ? "cancelled" : "failure" } : {}),
      output,
    });
    const state = report.phase === "succeeded" ? "success" : report.phase === "superseded" ? "inactive" : done ? "failure" : "in_progress";
    if ((report.phase === "started" || done) && record.deploymentId > 0) await gh.deploymentStatus(repo, record.deploymentId, { state, description: output.title, logUrl });
    if (report.phase === "succeeded" || report.phase === "failed") await this.#comment(gh, repo, record, report, logUrl);
  }

  async #comment(gh: GitHubClient, repo: RepoCoordinates, record: DeployRecord, report: AgentReport, logUrl: string): Promise<void> {
    const pulls = record.pullRequest ? [record.pullRequest] : record.reason === "merge" ? await gh.mergedPullsFor(repo, record.sha) : [];
    const seconds = Math.round((report.durationMs ?? 0) / 1000);
    const text = report.phase === "succeeded"
      ? `🚀 Deployed \`${record.sha.slice(0, 7)}\` to **${record.environment}** in ${seconds} s. [Details](${logUrl})`
      : `❌ Deploying \`${record.sha.slice(0, 7)}\` to **${record.environment}** failed after ${seconds} s: ${report.message.split("\n")[0] ?? ""} [Details](${logUrl})`;
    for (const pull of pulls.slice(0, 1)) await gh.createComment(repo, pull, text);
  }

  #verify(envelope: unknown): AgentReport | undefined {
    for (const key of this.#deps.agentKeys) {
      try {
        return agentReportSchema.parse(open("report", envelope, key));
      } catch (error) {
        if (!(error instanceof SignatureError)) {
          this.#deps.log.warn({ error: String(error) }, "malformed agent report dropped");
          return undefined;
        }
      }
    }
    this.#deps.log.warn({}, "agent report with an unknown signature dropped");
    return undefined;
  }

  #recordKey(jobId: string): string {
    return `sluice:deploy:${jobId}`;
  }

  #checkRunUrl(repository: RepositoryRef, checkRunId: number): string {
    return `${this.#deps.webUrl}/${repository.owner}/${repository.name}/runs/${checkRunId}`;
  }
}
