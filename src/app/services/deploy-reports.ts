import { agentReportSchema, type AgentReport } from "../../core/agent-protocol.ts";
import { checkRunState, deployCheckOutput, deployComment, deploymentState, isFinal, supersededSummary } from "../../core/deploy-status.ts";
import { checkRunUrl, type GitHubClient } from "../github/client.ts";
import { openAgentMessage, type AgentKey } from "./agent-keys.ts";
import type { DeployRecord, DeployRecords } from "./deploy-records.ts";
import type { Logger } from "./logger.ts";

/** What consuming reports needs. */
export interface DeployReportDeps {
  github: (installationId: number) => Promise<GitHubClient>;
  records: DeployRecords;
  agentKeys: readonly AgentKey[];
  webUrl: string;
  log: Logger;
}

/**
 * Turns the agents' signed reports into check-run updates, Deployment statuses and a comment on
 * the pull request. What a phase means on GitHub is decided in `core/deploy-status.ts`; this
 * only verifies, looks up the deploy's record and writes.
 */
export class DeployReports {
  readonly #deps: DeployReportDeps;

  constructor(deps: DeployReportDeps) {
    this.#deps = deps;
  }

  /** Applies one signed report. Reports that do not verify, and reports about a deploy already finished, are dropped. */
  async consume(envelope: unknown): Promise<void> {
    const deps = this.#deps;
    const report = openAgentMessage("report", agentReportSchema, envelope, deps.agentKeys, deps.log);
    if (!report) return;
    const record = await deps.records.load(report.jobId);
    if (!record) {
      deps.log.warn({ job: report.jobId }, "report for an unknown deploy dropped");
      return;
    }
    if (record.completed) {
      deps.log.warn({ job: report.jobId, phase: report.phase }, "report for a finished deploy dropped");
      return;
    }
    const gh = await deps.github(record.installationId);
    const logUrl = checkRunUrl(deps.webUrl, record.repository, record.checkRunId);
    const output = { ...deployCheckOutput(report), ...(await this.#supersededBy(report)) };
    await gh.updateCheckRun(record.repository, record.checkRunId, { ...checkRunState(report.phase), output });
    const state = deploymentState(report.phase);
    if (state && record.deploymentId > 0)
      await gh.deploymentStatus(record.repository, record.deploymentId, { state, description: output.title, logUrl });
    const comment = deployComment(record, report, logUrl);
    if (comment) await commentOnPull(gh, record, comment);
    if (isFinal(report.phase)) await deps.records.save(report.jobId, { ...record, completed: true });
  }

  /** For a superseded deploy, a summary that links the newer deploy's check run. */
  async #supersededBy(report: AgentReport): Promise<{ summary: string } | undefined> {
    if (report.phase !== "superseded" || !report.supersededBy) return undefined;
    const newer = await this.#deps.records.load(report.supersededBy);
    return newer
      ? { summary: supersededSummary(newer.sha, checkRunUrl(this.#deps.webUrl, newer.repository, newer.checkRunId)) }
      : undefined;
  }
}

/** Comments on the pull request a deploy came from: the command's, or the merged one for a merge. */
async function commentOnPull(gh: GitHubClient, record: DeployRecord, text: string): Promise<void> {
  const pulls = record.pullRequest
    ? [record.pullRequest]
    : record.reason === "merge"
      ? await gh.mergedPullsFor(record.repository, record.sha)
      : [];
  const [first] = pulls;
  if (first !== undefined) await gh.createComment(record.repository, first, text);
}
