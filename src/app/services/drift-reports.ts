import { createHash } from "node:crypto";
import type { RedisClient } from "../../redis/connection.ts";
import { driftReportSchema, type DriftReport } from "../../core/agent-protocol.ts";
import { driftCheckName, driftCheckOutput } from "../../core/deploy-status.ts";
import { displayName } from "../../core/identity.ts";
import type { DriftSummary } from "../../core/live-preview.ts";
import type { GitHubClient } from "../github/client.ts";
import { driftKey } from "../redis-keys.ts";
import type { AgentKeys } from "./agent-keys.ts";
import type { Logger } from "./logger.ts";
import { SealedJson, type RedisMac } from "./redis-mac.ts";

const STATE_TTL_SECONDS = 30 * 24 * 3600;

/** What the app keeps of an environment's drift: the summary for comments, and its check run. */
interface DriftState {
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

  constructor(deps: DriftReportDeps) {
    this.#deps = deps;
    this.#store = new SealedJson(deps.redis, deps.mac);
  }

  async consume(envelope: unknown): Promise<void> {
    const deps = this.#deps;
    const report = deps.agentKeys.open("drift", driftReportSchema, envelope, deps.log);
    if (!report) return;
    const previous = await this.state(report.repository.id, report.environment);
    const fingerprint = fingerprintOf(report);
    if (previous?.sha === report.sha && previous.fingerprint === fingerprint) return;
    const gh = await deps.github(report.installationId);
    const output = driftCheckOutput(report);
    const conclusion = report.drifted.length === 0 ? "success" : "neutral";
    let checkRunId: number;
    if (previous?.sha === report.sha) {
      checkRunId = previous.checkRunId;
      await gh.updateCheckRun(report.repository, checkRunId, { status: "completed", conclusion, output });
    } else {
      checkRunId = await gh.createCheckRun(report.repository, driftCheckName(report.environment), report.sha, {
        status: "completed",
        conclusion,
        output,
      });
    }
    const summary: DriftSummary = { sha: report.sha, objects: report.drifted.map(displayName), healing: report.healed.length > 0 };
    await this.#save(report.repository.id, report.environment, { sha: report.sha, checkRunId, fingerprint, summary });
    await deps.changed(report.repository.id, report.environment, summary);
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
