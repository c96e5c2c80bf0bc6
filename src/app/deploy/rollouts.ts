import type { KeyObject } from "node:crypto";
import type { RedisClient } from "../../redis/connection.ts";
import { agentJobSchema, latestJobKey, type AgentJob, type AgentReport } from "../../core/agent-protocol.ts";
import type { Environment } from "../../core/config.ts";
import { isFinal, isNewer, phaseRow } from "../../core/deploy-phases.ts";
import {
  CLUSTER_MESSAGE_LIMIT,
  nextStep,
  planWaves,
  rolloutComment,
  rolloutEnded,
  rolloutStates,
  rolloutSummary,
  rolloutTitle,
  startRollout,
  targetName,
  toWave,
  withClusterReport,
  type BakeFindings,
  type FleetSettings,
  type Rollout,
} from "../../core/fleet.ts";
import { seal } from "../../core/signing.ts";
import { DEPLOY_ACTIONS } from "../../core/deploy-status.ts";
import { checkRunUrl, writeInBackground, type GitHubClient } from "../github/client.ts";
import type { AppQueues } from "../queue/queues.ts";
import type { DriftSummaries } from "../drift/drift-summaries.ts";
import type { Logger } from "../log-context.ts";
import { SealedJson, type RedisMac } from "../state/redis-mac.ts";
import { deployJobTemplateKey } from "../state/redis-keys.ts";
import type { DeployRecord, DeployRecords } from "./deploy-records.ts";
import type { FleetClusters } from "./fleet-clusters.ts";
import { commentOnPull } from "./deploy-comments.ts";

const TEMPLATE_TTL_SECONDS = 30 * 24 * 3600;

/** What rolling a deploy out over an environment's clusters needs. */
export interface RolloutDeps {
  redis: RedisClient;
  mac: RedisMac;
  queues: AppQueues;
  records: DeployRecords;
  clusters: FleetClusters;
  /** Each cluster's drift, which a wave's bake reads. */
  drift: DriftSummaries;
  github: (installationId: number) => Promise<GitHubClient>;
  signingKey: KeyObject;
  jobTtlMs: number;
  webUrl: string;
  now: () => number;
  log: Logger;
  /** Told the rollout's end (every wave deployed, or stopped by a failure), for promotion. */
  observe?: (deploy: DeployRecord, outcome: "deployed" | "failed", at: number) => Promise<void>;
}

/**
 * Deploys of an environment that runs on several clusters (a fleet): one signed job per cluster,
 * queued wave by wave to each cluster's own agents, and one check run and one Deployment for the
 * whole environment. The rollout's progress is sealed in the deploy's record, and every change to
 * it is made under the deploy's lock: a cluster's report, and the delayed check that ends a bake or
 * holds a wave whose cluster never answered.
 */
export class Rollouts {
  readonly #deps: RolloutDeps;
  readonly #templates: SealedJson;

  constructor(deps: RolloutDeps) {
    this.#deps = deps;
    this.#templates = new SealedJson(deps.redis, deps.mac);
  }

  /** A new rollout of `env` for a repository: its clusters (globs matched against those whose agents announced themselves for it) in waves. */
  async plan(env: Environment, fleet: FleetSettings, repositoryId: number): Promise<Rollout> {
    const { clusters, now } = this.#deps;
    return startRollout(planWaves(fleet, await clusters.known(env.name, now(), repositoryId)), fleet, now());
  }

  /**
   * Keeps the deploy's job (signed again, for each cluster, when its wave starts: a later wave may
   * start hours after the first, past a job's lifetime) and queues the rollout's current wave.
   * Called under the deploy's lock.
   */
  async begin(jobId: string, record: DeployRecord, job: AgentJob): Promise<void> {
    await this.#templates.set(deployJobTemplateKey(jobId), job, TEMPLATE_TTL_SECONDS);
    await this.#queueWave(jobId, record);
  }

  /**
   * Applies the report of `cluster`, one the rollout reaches (`DeployReports` checked it), under the
   * deploy's lock: a report older than the cluster's newest changes nothing.
   */
  async report(report: AgentReport, cluster: string, record: DeployRecord & { rollout: Rollout }): Promise<void> {
    const last = record.rollout.clusters[cluster];
    if (last && (isFinal(last.phase) || !isNewer(report, last))) {
      this.#deps.log.info({ job: report.jobId, cluster, phase: report.phase }, "cluster report older than one already applied dropped");
      return;
    }
    const rollout = withClusterReport(record.rollout, cluster, {
      at: report.at,
      phase: report.phase,
      applied: report.applied ?? 0,
      ...(report.total === undefined ? {} : { total: report.total }),
      receivedAt: this.#deps.now(),
      message: report.message.slice(0, CLUSTER_MESSAGE_LIMIT),
    });
    await this.#settle(report.jobId, { ...record, rollout });
  }

  /** The delayed check of a rollout: a bake that ended, or a wave whose timeout passed. */
  async check(jobId: string): Promise<void> {
    await this.#deps.records.exclusive(jobId, 60_000, async () => {
      const record = await this.#deps.records.load(jobId);
      if (!record?.rollout || record.completed) return;
      // Its replica died before the check run was made: the queue tries again once the takeover made it.
      if (!record.checkRunId) throw new Error(`deploy ${jobId} has no check run yet; its rollout check is retried`);
      await this.#settle(jobId, { ...record, rollout: record.rollout });
    });
  }

  /**
   * Decides what the rollout does next and does it: starts the next wave, or schedules the check
   * at the end of a bake or a wave's timeout; then writes the check run and, when it changed, the
   * Deployment's state. The rollout's end is awaited on GitHub before the deploy counts as done.
   */
  async #settle(jobId: string, record: DeployRecord & { rollout: Rollout }): Promise<void> {
    const deps = this.#deps;
    const now = deps.now();
    let current = record;
    let step = nextStep(current.rollout, now);
    // Drift is read only once a wave has baked, not at every report of its clusters.
    if (step.kind === "next") step = nextStep(current.rollout, now, await this.#baked(jobId, current));
    if (step.kind === "next" && (await this.#overtaken(jobId, current))) step = { kind: "stopped", reason: "superseded", clusters: [] };
    if (step.kind === "next") {
      current = { ...current, rollout: toWave(current.rollout, step.wave, now) };
      // Queued before the record says so: a failure part-way leaves the record at the wave before, and the retry queues the wave again (BullMQ keeps one job per id).
      await this.#queueWave(jobId, current);
      await deps.records.save(jobId, current);
      step = nextStep(current.rollout, now);
    } else if (step.kind === "baking") {
      await deps.queues.addRolloutCheck({ jobId }, step.until);
    } else if (step.kind === "working" || step.kind === "held") {
      current = await this.#keepFresh(jobId, current, step.kind === "working" ? step.until : undefined);
    } else if (step.kind === "stopped" && !current.rollout.stopped) {
      current = { ...current, rollout: { ...current.rollout, stopped: { reason: step.reason, clusters: step.clusters, at: now } } };
    }
    const ended = rolloutEnded(step);
    current = { ...current, rollout: { ...current.rollout, revision: current.rollout.revision + 1 } };
    const revision = current.rollout.revision;
    const states = rolloutStates(step);
    const gh = await deps.github(current.installationId);
    const output = { title: rolloutTitle(current.rollout, step), summary: rolloutSummary(current.rollout, step) };
    const actions = ended ? { actions: DEPLOY_ACTIONS } : {};
    const logUrl = checkRunUrl(deps.webUrl, current.repository, current.checkRunId);
    // A state before the end goes out only while the rollout is still where it was: another replica may apply the next report meanwhile.
    const options = ended
      ? { coalesce: true }
      : { coalesce: true, guard: deps.records.guard(jobId, (r) => !r.completed && r.rollout?.revision === revision) };
    const writes = [gh.updateCheckRun(current.repository, current.checkRunId, { ...states.checkRun, output, ...actions }, options)];
    const deployment = current.deploymentId > 0 && states.deployment !== current.deploymentState ? states.deployment : undefined;
    if (deployment)
      writes.push(
        gh.deploymentStatus(current.repository, current.deploymentId, { state: deployment, description: output.title, logUrl }, options),
      );
    // A merge's outcome in a promoted branch is on the merged pull request's pipeline comment instead.
    const folded = current.pipeline === true && current.reason === "merge" && !current.pullRequest;
    const comment = ended && !folded ? rolloutComment(current, current.rollout, step, logUrl) : undefined;
    if (comment) writes.push(commentOnPull(gh, current, comment));
    const saved: DeployRecord = { ...current, completed: ended, ...(deployment ? { deploymentState: deployment } : {}) };
    if (!ended) {
      for (const write of writes) writeInBackground(write, deps.log, { job: jobId }, "rollout state not written to GitHub");
      await deps.records.save(jobId, saved);
      return;
    }
    const outcome = step.kind === "succeeded" ? "deployed" : step.kind === "stopped" && step.reason !== "superseded" ? "failed" : undefined;
    // One cluster's deploy alone says nothing of the environment: promotion reads whole rollouts.
    if (outcome && deps.observe && current.rollout.only === undefined) await deps.observe(current, outcome, now);
    await Promise.all(writes);
    await deps.records.save(jobId, saved);
    deps.log.info({ job: jobId, step: step.kind }, "rollout ended");
  }

  /** Signs the kept job for each cluster of the rollout's current wave that has not ended it, queues each, and the wave's timeout check. */
  async #queueWave(jobId: string, record: DeployRecord & { rollout?: Rollout | undefined }): Promise<void> {
    const deps = this.#deps;
    const rollout = record.rollout;
    if (!rollout) return;
    const template = await this.#template(jobId);
    const wave = rollout.waves[rollout.wave] ?? [];
    const signedAt = deps.now();
    const due = wave.filter((cluster) => !(rollout.clusters[cluster] && phaseRow(rollout.clusters[cluster].phase).endsJob));
    await Promise.all(
      due.map(async (cluster) => {
        const target = targetName(record.environment, cluster);
        await deps.redis.set(latestJobKey(target, record.repository.id), jobId, "EX", 30 * 24 * 3600);
        await deps.queues.addAgentJob(target, jobId, seal("job", this.#signedFor(template, cluster, signedAt), deps.signingKey));
      }),
    );
    await deps.queues.addRolloutCheck({ jobId }, rollout.waveAt + rollout.clusterTimeoutMs);
    deps.log.info({ job: jobId, wave: rollout.wave + 1, clusters: wave }, "rollout wave queued");
  }

  /**
   * Keeps the jobs of a wave's clusters that have not taken theirs valid while the wave waits for
   * them: an agent down past a job's lifetime would refuse the job it finds when it comes back, and
   * its refusal would stop the rollout. Every half lifetime the waiting jobs are signed again and
   * replace the queued ones; a check is queued for the next time (or the wave's timeout, if sooner).
   */
  async #keepFresh(
    jobId: string,
    record: DeployRecord & { rollout: Rollout },
    timeout: number | undefined,
  ): Promise<DeployRecord & { rollout: Rollout }> {
    const deps = this.#deps;
    const now = deps.now();
    const half = Math.floor(deps.jobTtlMs / 2);
    let current = record;
    const signedAt = current.rollout.signedAt ?? current.rollout.waveAt;
    if (now - signedAt >= half) {
      const waiting = (current.rollout.waves[current.rollout.wave] ?? []).filter((cluster) => !current.rollout.clusters[cluster]);
      const template = await this.#template(jobId);
      for (const cluster of waiting)
        await deps.queues.replaceAgentJob(
          targetName(current.environment, cluster),
          jobId,
          seal("job", this.#signedFor(template, cluster, now), deps.signingKey),
        );
      current = { ...current, rollout: { ...current.rollout, signedAt: now } };
      deps.log.info({ job: jobId, clusters: waiting }, "waiting jobs of a rollout's wave signed again");
    }
    const next = (current.rollout.signedAt ?? current.rollout.waveAt) + half;
    await deps.queues.addRolloutCheck({ jobId }, timeout === undefined ? next : Math.min(next, timeout));
    return current;
  }

  /** The deploy's kept job, which each wave's jobs are signed from. */
  async #template(jobId: string): Promise<AgentJob> {
    const parsed = agentJobSchema.safeParse(await this.#templates.get(deployJobTemplateKey(jobId)));
    if (!parsed.success) throw new Error(`deploy ${jobId} lost its job (it does not verify); comment /sync to deploy again`);
    return parsed.data;
  }

  /** The kept job for one cluster, signed at `signedAt`. */
  #signedFor(template: AgentJob, cluster: string, signedAt: number): AgentJob {
    return {
      ...template,
      cluster,
      signedAt: new Date(signedAt).toISOString(),
      expiresAt: new Date(signedAt + this.#deps.jobTtlMs).toISOString(),
    };
  }

  /**
   * What the newest drift reports of the rollout's current wave, for this deploy, found: the
   * clusters that drifted, and those with objects not healthy.
   */
  async #baked(jobId: string, record: DeployRecord & { rollout: Rollout }): Promise<BakeFindings> {
    const wave = record.rollout.waves[record.rollout.wave] ?? [];
    const states = await Promise.all(
      wave.map((cluster) => this.#deps.drift.state(record.repository.id, targetName(record.environment, cluster))),
    );
    // Of this deploy only: a `/sync` of the same commit is measured afresh.
    const ours = (i: number) => (states[i]?.deploy?.jobId === jobId ? states[i] : undefined);
    return {
      drifted: new Set(wave.filter((_, i) => (ours(i)?.summary.objects.length ?? 0) > 0)),
      unhealthy: new Set(wave.filter((_, i) => (ours(i)?.summary.unhealthy?.length ?? 0) > 0)),
    };
  }

  /**
   * Whether a newer deploy of the environment was asked for since (its request took a later
   * sequence): an older rollout starts no more waves, which would put the older commit on
   * clusters the newer one has not reached yet.
   */
  async #overtaken(jobId: string, record: DeployRecord): Promise<boolean> {
    const latest = await this.#deps.redis.get(latestJobKey(record.environment, record.repository.id));
    return latest !== null && latest !== jobId;
  }
}
