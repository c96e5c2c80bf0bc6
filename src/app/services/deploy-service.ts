import { gzipSync } from "node:zlib";
import type { KeyObject } from "node:crypto";
import type { Redis } from "ioredis";
import { z } from "zod";
import { agentReportSchema, blobKey, objectsDigest, type AgentJob, type AgentReport } from "../../core/agent-protocol.ts";
import type { Config } from "../../core/config.ts";
import { deployCheckName, deployCheckOutput } from "../../core/deploy-status.ts";
import { deployJobId, deployReasonSchema, repositoryRefSchema, type DeployRequest, type RepositoryRef } from "../../core/deploy-requests.ts";
import type { KubeObject } from "../../core/manifest.ts";
import { parseJson } from "../../core/json.ts";
import { previewAnnotations, previewCheckOutput } from "../../core/preview-comment.ts";
import type { ReportProblem } from "../../core/diff-report.ts";
import { open, seal, SignatureError } from "../../core/signing.ts";
import type { RenderPool } from "../../render/render-pool.ts";
import type { GitHubClient, RepoCoordinates } from "../github/client.ts";
import type { AppQueues } from "../queue/queues.ts";
import type { CheckoutCache } from "./checkout-cache.ts";
import { UnsafeArchiveError } from "./unpack-tarball.ts";
import type { Logger } from "./logger.ts";
import { discoverFromCheckout, reviewedConfig } from "./repository-config.ts";

/** Jobs whose objects are larger than this travel as a compressed blob in Redis. */
const INLINE_LIMIT = 256 * 1024;
const RECORD_TTL = 30 * 24 * 3600;

/** What a deploy looks like on GitHub: its check run, Deployment and where it came from. */
const deployRecordSchema = z.strictObject({
  checkRunId: z.number().int().positive(),
  deploymentId: z.number().int().nonnegative(),
  repository: repositoryRefSchema,
  installationId: z.number().int().positive(),
  environment: z.string(),
  sha: z.string(),
  reason: deployReasonSchema,
  pullRequest: z.number().int().positive().optional(),
  /** Set by the first final report; later reports (a replayed job's refusal) change nothing on GitHub. */
  completed: z.boolean().default(false),
});
type DeployRecord = z.infer<typeof deployRecordSchema>;

/** What the deploy service needs. */
export interface DeployDeps {
  redis: Redis;
  queues: AppQueues;
  github: (installationId: number) => Promise<GitHubClient>;
  checkouts: CheckoutCache;
  renderer: RenderPool;
  signingKey: KeyObject;
  /** The agents' public keys, each with the environments it may report on (all when undefined). */
  agentKeys: readonly { key: KeyObject; environments?: readonly string[] }[];
  /** How long a signed job stays valid. */
  jobTtlMs: number;
  webUrl: string;
  now: () => number;
  log: Logger;
}

/** A push as the deploy pipeline sees it. */
export interface PushEvent {
  repository: RepositoryRef;
  installationId: number;
  branch: string;
  sha: string;
  pusher: string;
}

/**
 * The app's half of the deploy pipeline: turns deploy requests into rendered, signed agent jobs
 * with a check run and a GitHub Deployment each, and turns the agents' signed reports into
 * check-run updates, deployment statuses and a comment on the pull request. What deploys where,
 * and how, always comes from the default branch's configuration: a push never chooses it.
 */
export class DeployService {
  readonly #deps: DeployDeps;

  constructor(deps: DeployDeps) {
    this.#deps = deps;
  }

  /** Queues a deploy for every environment that the reviewed configuration tracks on `branch` and deploys automatically. */
  async requestFromPush(gh: GitHubClient, push: PushEvent): Promise<string[]> {
    const repo = { owner: push.repository.owner, repo: push.repository.name };
    const config = await reviewedConfig(gh, repo, discoverFromCheckout(this.#deps.checkouts, gh, repo, push.repository.id));
    if (!config.ok) {
      this.#deps.log.warn({ repository: push.repository.id, sha: push.sha }, "push not deployed: the default branch's configuration is invalid");
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
        trigger: "push",
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
    const config = await reviewedConfig(gh, repo, discoverFromCheckout(deps.checkouts, gh, repo, request.repository.id));
    const env = config.ok ? config.config.environments.find((e) => e.name === request.environment) : undefined;
    if (!config.ok || !env) {
      const errors = config.ok ? [{ file: ".github/sluice.yml", line: 1, message: `environment ${request.environment} is not in the default branch's configuration` }] : config.errors;
      await this.#failBeforeQueue(gh, repo, request, jobId, "Invalid configuration", errors);
      return;
    }
    const objects = await this.#render(gh, repo, request, jobId, env);
    if (!objects) return;
    const digest = objectsDigest(objects);
    const body = JSON.stringify(objects);
    let payload: AgentJob["objects"] = { inline: objects };
    if (body.length > INLINE_LIMIT) {
      const key = blobKey(env.name, digest);
      await deps.redis.set(key, gzipSync(body), "EX", RECORD_TTL);
      payload = { blob: key };
    }
    const checkRunId = await gh.createCheckRun(repo, deployCheckName(env.name), request.sha, {
      externalId: jobId,
      status: "queued",
      output: { title: "Queued", summary: `${objects.length} objects of \`${request.sha.slice(0, 7)}\` queued for the agent (${request.reason}, requested by ${request.requestedBy}).` },
    });
    // Saved before anything else can refer to this deploy (a superseded report links its check run).
    const record: DeployRecord = { checkRunId, deploymentId: 0, repository: request.repository, installationId: request.installationId, environment: env.name, sha: request.sha, reason: request.reason, completed: false, ...(request.pullRequest ? { pullRequest: request.pullRequest } : {}) };
    await this.#saveRecord(jobId, record);
    record.deploymentId = await gh.createDeployment(repo, { sha: request.sha, environment: env.name, description: `Sluice ${request.reason} by ${request.requestedBy}`, payload: { jobId } });
    await gh.deploymentStatus(repo, record.deploymentId, { state: "queued", description: "Queued for the agent", logUrl: this.#checkRunUrl(request.repository, checkRunId) });
    await this.#saveRecord(jobId, record);
    const signedAt = deps.now();
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
      sequence: request.sequence,
      signedAt: new Date(signedAt).toISOString(),
      expiresAt: new Date(signedAt + deps.jobTtlMs).toISOString(),
      digest,
      objects: payload,
    };
    await deps.queues.addAgentJob(env.name, jobId, seal("job", job, deps.signingKey));
    deps.log.info({ job: jobId, objects: objects.length }, "deploy job queued");
  }

  /** Renders the request's commit in a render process; undefined (after a failed check run) when it cannot be deployed. */
  async #render(gh: GitHubClient, repo: RepoCoordinates, request: DeployRequest, jobId: string, env: Config["environments"][number]): Promise<KubeObject[] | undefined> {
    const deps = this.#deps;
    let lease;
    try {
      lease = await deps.checkouts.acquire(`${request.repository.id}-${request.sha}`, () => gh.tarball(repo, request.sha));
    } catch (error) {
      if (!(error instanceof UnsafeArchiveError)) throw error;
      await this.#failBeforeQueue(gh, repo, request, jobId, "The commit cannot be checked out safely", [{ file: ".", line: 1, message: error.message }]);
      return undefined;
    }
    let side;
    try {
      [side] = await deps.renderer.render(env, [lease.dir], { requireInputs: true });
    } finally {
      lease.release();
    }
    if (!side) throw new Error(`rendering ${env.name} returned nothing`);
    if (side.problems.length > 0) {
      // A transient failure (a timeout, a render process that died) is retried by the queue.
      if (side.transient) throw new Error(`rendering ${env.name} at ${request.sha.slice(0, 7)} failed and may succeed on retry: ${side.problems[0]?.message ?? ""}`);
      await this.#failBeforeQueue(gh, repo, request, jobId, "Render failed", side.problems.map((p) => ({ ...p, environment: env.name })));
      return undefined;
    }
    return [...side.resources.values()].map((r) => parseJson(r.json) as KubeObject);
  }

  async #failBeforeQueue(gh: GitHubClient, repo: RepoCoordinates, request: DeployRequest, jobId: string, title: string, errors: ReportProblem[]): Promise<void> {
    await gh.createCheckRun(repo, deployCheckName(request.environment), request.sha, {
      externalId: jobId,
      status: "completed",
      conclusion: "failure",
      output: { title, summary: previewCheckOutput({ environments: [], errors }).summary, annotations: previewAnnotations(errors) },
    });
  }

  /** Applies one signed report to GitHub. Reports that do not verify, and reports about a deploy already finished, are dropped. */
  async consume(envelope: unknown): Promise<void> {
    const deps = this.#deps;
    const report = this.#verify(envelope);
    if (!report) return;
    const record = await this.#loadRecord(report.jobId);
    if (!record) {
      deps.log.warn({ job: report.jobId }, "report for an unknown deploy dropped");
      return;
    }
    if (record.completed) {
      deps.log.warn({ job: report.jobId, phase: report.phase }, "report for a finished deploy dropped");
      return;
    }
    const gh = await deps.github(record.installationId);
    const repo = { owner: record.repository.owner, repo: record.repository.name };
    const logUrl = this.#checkRunUrl(record.repository, record.checkRunId);
    let output = deployCheckOutput(report);
    if (report.phase === "superseded" && report.supersededBy) {
      const newer = await this.#loadRecord(report.supersededBy);
      if (newer) output = { ...output, summary: `Superseded by [\`${newer.sha.slice(0, 7)}\`](${this.#checkRunUrl(newer.repository, newer.checkRunId)}), which was queued after this deploy and runs instead.` };
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
    if (done) await this.#saveRecord(report.jobId, { ...record, completed: true });
  }

  async #comment(gh: GitHubClient, repo: RepoCoordinates, record: DeployRecord, report: AgentReport, logUrl: string): Promise<void> {
    const pulls = record.pullRequest ? [record.pullRequest] : record.reason === "merge" ? await gh.mergedPullsFor(repo, record.sha) : [];
    const seconds = Math.round((report.durationMs ?? 0) / 1000);
    const text = report.phase === "succeeded"
      ? `🚀 Deployed \`${record.sha.slice(0, 7)}\` to **${record.environment}** in ${seconds} s. [Details](${logUrl})`
      : `❌ Deploying \`${record.sha.slice(0, 7)}\` to **${record.environment}** failed after ${seconds} s. [Details](${logUrl})`;
    for (const pull of pulls.slice(0, 1)) await gh.createComment(repo, pull, text);
  }

  #verify(envelope: unknown): AgentReport | undefined {
    for (const { key, environments } of this.#deps.agentKeys) {
      try {
        const report = agentReportSchema.parse(open("report", envelope, key));
        if (environments && !environments.includes(report.environment)) {
          this.#deps.log.warn({ job: report.jobId, environment: report.environment }, "agent report signed by a key not bound to its environment dropped");
          return undefined;
        }
        return report;
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

  async #loadRecord(jobId: string): Promise<DeployRecord | undefined> {
    const raw = await this.#deps.redis.get(deployRecordKey(jobId));
    if (!raw) return undefined;
    const parsed = deployRecordSchema.safeParse(JSON.parse(raw));
    if (!parsed.success) {
      this.#deps.log.warn({ job: jobId }, "corrupt deploy record ignored");
      return undefined;
    }
    return parsed.data;
  }

  async #saveRecord(jobId: string, record: DeployRecord): Promise<void> {
    await this.#deps.redis.set(deployRecordKey(jobId), JSON.stringify(record), "EX", RECORD_TTL);
  }

  #checkRunUrl(repository: RepositoryRef, checkRunId: number): string {
    return `${this.#deps.webUrl}/${repository.owner}/${repository.name}/runs/${checkRunId}`;
  }
}

/** The Redis key of a deploy's record. */
function deployRecordKey(jobId: string): string {
  return `sluice:deploy:${jobId}`;
}
