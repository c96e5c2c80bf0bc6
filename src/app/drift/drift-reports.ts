import { createHash } from "node:crypto";
import { clusterField, targetName } from "../../core/fleet.ts";
import type { RedisClient } from "../../redis/connection.ts";
import { driftReportSchema, type DriftReport } from "../../core/agent-protocol.ts";
import { driftCheckName } from "../../core/check-names.ts";
import { driftCheckOutput } from "../../core/deploy-status.ts";
import { displayName } from "../../core/identity.ts";
import type { DriftSummary } from "../../core/live-preview.ts";
import type { GitHubClient } from "../github/client.ts";
import type { FleetDrift } from "./fleet-drift.ts";
import { unhealthyLine } from "../../core/fleet-drift.ts";
import { compareWithSealed, deploySubject, unknownToApp, type AgentKeys, type Verdict } from "../agents/agent-keys.ts";
import { DeployRecords } from "../deploy/deploy-records.ts";
import type { DriftChange, DriftSummaries, MeasuredDeploy } from "./drift-summaries.ts";
import type { Logger } from "../log-context.ts";
import type { RedisMac } from "../state/redis-mac.ts";

/** What consuming drift reports needs. */
export interface DriftReportDeps {
  redis: RedisClient;
  mac: RedisMac;
  github: (installationId: number) => Promise<GitHubClient>;
  agentKeys: AgentKeys;
  /** Where each environment's drift is kept; the preview comments read it too. */
  summaries: DriftSummaries;
  /** Where a fleet's clusters' drift goes: one check run per deploy, not one per cluster. */
  fleet: FleetDrift;
  log: Logger;
}

/**
 * Turns the agents' signed drift reports into a `sluice/drift (<env>)` check run on the commit
 * last deployed (success when in sync, neutral with a masked per-object table when drifted) and
 * keeps a summary for the preview comments. GitHub is written only when the drift changed.
 */
export class DriftReports {
  readonly #deps: DriftReportDeps;
  /** Read to check a drift report against the deploy it names. */
  readonly #records: DeployRecords;

  constructor(deps: DriftReportDeps) {
    this.#deps = deps;
    this.#records = new DeployRecords(deps.redis, deps.mac, deps.log);
  }

  /**
   * Applies one signed drift report. Reports that do not verify, or that do not match the deploy
   * they say the drift is measured against (its environment, repository, commit and installation),
   * are dropped. Returns the environment's new drift when it changed (undefined otherwise), for
   * the caller to show on the comments.
   */
  async consume(envelope: unknown): Promise<DriftChange | undefined> {
    const deps = this.#deps;
    let change: DriftChange | undefined;
    await deps.agentKeys.consume("drift", envelope, {
      schema: driftReportSchema,
      log: deps.log,
      use: async (report) => {
        const applied = await this.#apply(report);
        change = applied.change;
        return applied.verdict;
      },
    });
    return change;
  }

  async #apply(report: DriftReport): Promise<{ verdict: Verdict; change?: DriftChange }> {
    const deps = this.#deps;
    const about = { job: report.jobId, repository: report.repository.id, environment: report.environment };
    // Each cluster of a fleet has a drift of its own, kept and shown apart.
    const target = targetName(report.environment, report.cluster);
    const previous = await deps.summaries.state(report.repository.id, target);
    const deploy = previous?.deploy?.jobId === report.jobId ? previous.deploy : await this.#deployOf(report.jobId, report.cluster);
    if (!deploy) return { verdict: unknownToApp(about) };
    const verdict = compareWithSealed(deploySubject(report.jobId, report), deploySubject(deploy.jobId, deploy), about);
    if (!verdict.accepted) return { verdict };
    const fingerprint = fingerprintOf(report);
    if (previous?.sha === report.sha && previous.fingerprint === fingerprint) {
      // Nothing to write to GitHub; saved again all the same, so the deploy it is measured against
      // outlives its record for as long as the agent keeps reporting.
      await deps.summaries.save(report.repository.id, target, { ...previous, deploy });
      if (report.cluster !== undefined) await deps.fleet.keep(deploy);
      return { verdict };
    }
    const unhealthy = (report.unhealthy ?? []).slice(0, 20).map(unhealthyLine);
    const summary: DriftSummary = {
      sha: report.sha,
      objects: report.drifted.map(displayName),
      healing: report.healed.length > 0,
      ...(unhealthy.length > 0 ? { unhealthy } : {}),
    };
    if (report.cluster === undefined) {
      const checkRunId = await this.#writeCheckRun(report, deploy, previous?.sha === report.sha ? previous.checkRunId : undefined);
      await deps.summaries.save(report.repository.id, target, { deploy, sha: report.sha, checkRunId, fingerprint, summary });
    } else {
      // A cluster of a fleet is a row of its commit's one drift check run; kept there first, so a
      // failure half way is retried rather than taken for drift already shown.
      await deps.fleet.record(deploy, report.cluster, report);
      await deps.summaries.save(report.repository.id, target, { deploy, sha: report.sha, fingerprint, summary });
    }
    return {
      verdict,
      change: {
        repositoryId: report.repository.id,
        environment: report.environment,
        ...clusterField(report.cluster),
        summary,
        deploy: { repository: deploy.repository, installationId: deploy.installationId },
      },
    };
  }

  /** Writes an environment's drift check run: a new one on a commit it has none on, else its own again. */
  async #writeCheckRun(report: DriftReport, deploy: MeasuredDeploy, checkRunId: number | undefined): Promise<number> {
    const gh = await this.#deps.github(deploy.installationId);
    const fields = {
      status: "completed",
      conclusion: report.drifted.length === 0 ? "success" : "neutral",
      output: driftCheckOutput(report),
    } as const;
    if (checkRunId === undefined) return gh.createCheckRun(deploy.repository, driftCheckName(report.environment), report.sha, fields);
    await gh.updateCheckRun(deploy.repository, checkRunId, fields);
    return checkRunId;
  }

  /**
   * The deploy a drift report names, from its sealed record; undefined when the app has none, or
   * when the report's cluster is not one the deploy reached (or it has one, and the deploy none).
   */
  async #deployOf(jobId: string, cluster: string | undefined): Promise<MeasuredDeploy | undefined> {
    const record = await this.#records.load(jobId);
    if (!record) return undefined;
    const clusters = record.rollout?.waves.flat();
    if (clusters ? cluster === undefined || !clusters.includes(cluster) : cluster !== undefined) return undefined;
    return {
      jobId,
      environment: record.environment,
      repository: record.repository,
      installationId: record.installationId,
      sha: record.sha,
    };
  }
}

/** What makes two reports the same drift: the objects and how they differ, and what self-heal did. */
function fingerprintOf(report: DriftReport): string {
  return createHash("sha256")
    .update(JSON.stringify([report.drifted, report.healed, report.gaveUp, report.unhealthy ?? []]))
    .digest("hex");
}
