import { createHash } from "node:crypto";
import type { RedisClient } from "../../redis/connection.ts";
import { driftReportSchema, type DriftReport } from "../../core/agent-protocol.ts";
import type { RepositoryRef } from "../../core/deploy-requests.ts";
import { driftCheckName, driftCheckOutput } from "../../core/deploy-status.ts";
import { displayName } from "../../core/identity.ts";
import type { DriftSummary } from "../../core/live-preview.ts";
import type { GitHubClient } from "../github/client.ts";
import { driftKey } from "../redis-keys.ts";
import { compareWithSealed, deploySubject, unknownToApp, type AgentKeys, type Verdict } from "./agent-keys.ts";
import { DeployRecords } from "./deploy-records.ts";
import type { Logger } from "./logger.ts";
import { SealedJson, type RedisMac } from "./redis-mac.ts";

const STATE_TTL_SECONDS = 30 * 24 * 3600;

/**
 * The deploy an environment's drift is measured against, as the app sealed it in the deploy's
 * record: drift reports are checked against it, and their check runs written with its repository
 * and installation. Kept here too, because the record expires and drift is reported for as long
 * as the deploy stays the newest.
 */
interface MeasuredDeploy {
  jobId: string;
  environment: string;
  repository: RepositoryRef;
  installationId: number;
  sha: string;
}

/** What the app keeps of an environment's drift: the deploy it is measured against, the summary for comments, and its check run. */
interface DriftState {
  /** Absent in states written before drift reports were checked against the deploy. */
  deploy?: MeasuredDeploy;
  sha: string;
  checkRunId: number;
  fingerprint: string;
  summary: DriftSummary;
}

/** What consuming drift reports needs. */
export interface DriftReportDeps {
  redis: RedisClient;
  mac: RedisMac;
  github: (installationId: number) => Promise<GitHubClient>;
  agentKeys: AgentKeys;
  /** Told when an environment's drift changed, to update the open pull requests' comments. */
  changed: (repositoryId: number, environment: string, summary: DriftSummary) => Promise<void>;
  log: Logger;
}

/**
 * Turns the agents' signed drift reports into a `sluice/drift (<env>)` check run on the commit
 * last deployed (success when in sync, neutral with a masked per-object table when drifted) and
 * keeps a summary for the preview comments. GitHub is written only when the drift changed.
 */
export class DriftReports {
  readonly #deps: DriftReportDeps;
  readonly #store: SealedJson;
  /** Read to check a drift report against the deploy it names. */
  readonly #records: DeployRecords;

  constructor(deps: DriftReportDeps) {
    this.#deps = deps;
    this.#store = new SealedJson(deps.redis, deps.mac);
    this.#records = new DeployRecords(deps.redis, deps.mac, deps.log);
  }

  /**
   * Applies one signed drift report. Reports that do not verify, or that do not match the deploy
   * they say the drift is measured against (its environment, repository, commit and installation),
   * are dropped.
   */
  async consume(envelope: unknown): Promise<void> {
    const deps = this.#deps;
    await deps.agentKeys.consume("drift", envelope, { schema: driftReportSchema, log: deps.log, use: (report) => this.#apply(report) });
  }

  async #apply(report: DriftReport): Promise<Verdict> {
    const deps = this.#deps;
    const about = { job: report.jobId, repository: report.repository.id, environment: report.environment };
    const previous = await this.state(report.repository.id, report.environment);
    const deploy = previous?.deploy?.jobId === report.jobId ? previous.deploy : await this.#deployOf(report.jobId);
    if (!deploy) return unknownToApp(about);
    const verdict = compareWithSealed(deploySubject(report.jobId, report), deploySubject(deploy.jobId, deploy), about);
    if (!verdict.accepted) return verdict;
    const fingerprint = fingerprintOf(report);
    if (previous?.sha === report.sha && previous.fingerprint === fingerprint) {
      // Nothing to write to GitHub; saved again all the same, so the deploy it is measured against
      // outlives its record for as long as the agent keeps reporting.
      await this.#save(report.repository.id, report.environment, { ...previous, deploy });
      return verdict;
    }
    const gh = await deps.github(deploy.installationId);
    const output = driftCheckOutput(report);
    const conclusion = report.drifted.length === 0 ? "success" : "neutral";
    let checkRunId: number;
    if (previous?.sha === report.sha) {
      checkRunId = previous.checkRunId;
      await gh.updateCheckRun(deploy.repository, checkRunId, { status: "completed", conclusion, output });
    } else {
      checkRunId = await gh.createCheckRun(deploy.repository, driftCheckName(report.environment), report.sha, {
        status: "completed",
        conclusion,
        output,
      });
    }
    const summary: DriftSummary = { sha: report.sha, objects: report.drifted.map(displayName), healing: report.healed.length > 0 };
    await this.#save(report.repository.id, report.environment, { deploy, sha: report.sha, checkRunId, fingerprint, summary });
    await deps.changed(report.repository.id, report.environment, summary);
    return verdict;
  }

  /** The deploy a drift report names, from its sealed record; undefined when the app has none. */
  async #deployOf(jobId: string): Promise<MeasuredDeploy | undefined> {
    const record = await this.#records.load(jobId);
    if (!record) return undefined;
    return {
      jobId,
      environment: record.environment,
      repository: record.repository,
      installationId: record.installationId,
      sha: record.sha,
    };
  }

  /** What the app last heard of an environment's drift, or undefined (none yet, or it does not verify). */
  async state(repositoryId: number, environment: string): Promise<DriftState | undefined> {
    // Sealed by this app, so its shape is the one it wrote.
    return (await this.#store.get(driftKey(repositoryId, environment))) as DriftState | undefined;
  }

  async #save(repositoryId: number, environment: string, state: DriftState): Promise<void> {
    await this.#store.set(driftKey(repositoryId, environment), state, STATE_TTL_SECONDS);
  }
}

/** What makes two reports the same drift: the objects and how they differ, and what self-heal did. */
function fingerprintOf(report: DriftReport): string {
  return createHash("sha256")
    .update(JSON.stringify([report.drifted, report.healed, report.gaveUp]))
    .digest("hex");
}
