import { agentReportSchema, type AgentReport } from "../../core/agent-protocol.ts";
import { checkRunState, deploymentState, isFinal, isNewer, phaseRow, type DeploymentState } from "../../core/deploy-phases.ts";
import { DEPLOY_ACTIONS, deployCheckOutput, deployComment, releasedState, supersededSummary } from "../../core/deploy-status.ts";
import { checkRunUrl, writeInBackground, type GitHubClient } from "../github/client.ts";
import { compareWithSealed, deploySubject, unknownToApp, type AgentKeys, type Verdict } from "../agents/agent-keys.ts";
import type { DeployRecord, DeployRecords } from "./deploy-records.ts";
import type { EnvironmentStates } from "./environment-states.ts";
import type { Logger } from "../log-context.ts";
import { historyCluster, waveOf } from "../../core/fleet.ts";
import type { Revision } from "../../core/inventory.ts";
import type { Rollouts } from "./rollouts.ts";
import { commentOnPull } from "./deploy-comments.ts";

/** What consuming reports needs. */
export interface DeployReportDeps {
  github: (installationId: number) => Promise<GitHubClient>;
  records: DeployRecords;
  environments: EnvironmentStates;
  agentKeys: AgentKeys;
  /** Deploys to an environment on several clusters: a cluster's report goes to its rollout. */
  rollouts?: Rollouts;
  webUrl: string;
  log: Logger;
  now: () => number;
  /** Told each deploy's end (healthy or failed), for promotion: a healthy deploy starts its commit's soak. */
  observe?: (deploy: DeployRecord, outcome: "deployed" | "failed", at: number) => Promise<void>;
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

  /**
   * Applies one signed report, under its deploy's lock. Reports that do not verify or do not match
   * the deploy's record, reports about a deploy already finished, and reports older than one
   * already applied are dropped. A report that arrives before its check run exists (the replica
   * writing it died) is retried by the queue.
   */
  async consume(envelope: unknown): Promise<void> {
    const deps = this.#deps;
    await deps.agentKeys.consume("report", envelope, {
      schema: agentReportSchema,
      log: deps.log,
      // A short wait: the queue retries later, and other deploys' reports are not held up meanwhile.
      use: (report) => deps.records.exclusive(report.jobId, 10_000, () => this.#apply(report)),
    });
  }

  async #apply(report: AgentReport): Promise<Verdict> {
    const deps = this.#deps;
    const about = { job: report.jobId, phase: report.phase };
    const record = await deps.records.load(report.jobId);
    if (!record) return unknownToApp(about);
    // The record is what the app sealed when it signed the job: a report about another
    // environment, repository, commit or installation (another agent's key, say) is not this deploy's.
    const verdict = compareWithSealed(deploySubject(report.jobId, report), deploySubject(report.jobId, record), about);
    if (!verdict.accepted) return verdict;
    if (record.rollout || report.cluster !== undefined) return this.#applyToRollout(report, record, about);
    if (record.completed) {
      deps.log.warn(about, "report for a finished deploy dropped");
      return verdict;
    }
    if (!record.checkRunId) throw new Error(`deploy ${report.jobId} has no check run yet; its ${report.phase} report is retried`);
    if (record.reported && !isFinal(report.phase) && !isNewer(report, record.reported)) {
      deps.log.info(about, "report older than one already applied dropped");
      return verdict;
    }
    const logUrl = checkRunUrl(deps.webUrl, record.repository, record.checkRunId);
    // The cluster's record first: a `/rollback` right after this deploy must see it.
    if (report.history) {
      const released = record.hold === "release" || (record.hold === "set" && !report.history.hold);
      const held = await deps.environments.observe(record.repository.id, record.environment, {
        history: report.history,
        at: report.at,
        released: released && phaseRow(report.phase).releasesHold,
      });
      for (const jobId of held) await deps.records.exclusive(jobId, 60_000, () => this.#release(jobId, record, logUrl));
    }
    const { writes, deployment } = await this.#write(report, record, logUrl);
    const final = isFinal(report.phase);
    if (phaseRow(report.phase).waitsForHold) await deps.environments.heldJob(record.repository.id, record.environment, report.jobId);
    const applied: DeployRecord = {
      ...record,
      ...(deployment ? { deploymentState: deployment } : {}),
      completed: final,
      reported: { at: report.at, phase: report.phase, applied: report.applied ?? 0 },
    };
    if (final) {
      // A final state is on GitHub before the deploy counts as finished: if a write fails, the
      // report is retried (and applied again), never dropped as a report for a finished deploy.
      // Promotion learns of the outcome now, not after the paced writes: a soak starts when the deploy ended.
      const outcome = phaseRow(report.phase).outcome;
      if (outcome && deps.observe) await deps.observe(record, outcome, Date.parse(report.at));
      await Promise.all(writes);
      await deps.records.save(report.jobId, applied);
      return verdict;
    }
    // The next report can be taken while these wait for their turn, and replace them: a state that
    // fails to go out is logged, and the deploy's final state, written whole, covers it.
    for (const write of writes) writeInBackground(write, deps.log, about, "deploy state not written to GitHub");
    await deps.records.save(report.jobId, applied);
    return verdict;
  }

  /**
   * A cluster's report about a deploy to an environment on several clusters: the rollout decides
   * what it does, and the history of the cluster that stands for the environment is kept, also once
   * the rollout ended (another cluster's failure ends it while this one still reports). A report with a cluster about a
   * deploy without one, or the reverse, or from a cluster the rollout does not reach, is not this
   * deploy's.
   */
  async #applyToRollout(report: AgentReport, record: DeployRecord, about: Record<string, unknown>): Promise<Verdict> {
    const deps = this.#deps;
    const rollout = record.rollout;
    const cluster = report.cluster;
    if (!rollout || cluster === undefined || !deps.rollouts || waveOf(rollout, cluster) === undefined)
      return {
        accepted: false,
        reason: "mismatch",
        details: { ...about, cluster: cluster ?? null, rollout: rollout?.waves.flat() ?? null },
      };
    if (!record.completed) {
      if (!record.checkRunId) throw new Error(`deploy ${report.jobId} has no check run yet; its ${report.phase} report is retried`);
      await deps.rollouts.report(report, cluster, { ...record, rollout });
    }
    // The first cluster of the first wave sees every rollout first: its history is what `/rollback` chooses from, and its hold the environment's.
    if (!report.history || cluster !== historyCluster(rollout)) return { accepted: true };
    const history = { ...report.history, revisions: await this.#sealedRevisions(record, report.history.revisions) };
    // By the app's clock at most: an agent that dates its report in the future would keep its history newest for good.
    const at = new Date(Math.min(Date.parse(report.at), deps.now())).toISOString();
    const released = record.hold === "release" || (record.hold === "set" && !report.history.hold);
    await deps.environments.observe(record.repository.id, record.environment, {
      history,
      at,
      released: released && phaseRow(report.phase).releasesHold,
    });
    return { accepted: true };
  }

  /**
   * The revisions of a cluster's history that are deploys the app itself made of this repository
   * environment, at the commit each says: one cluster's agent speaks for every cluster's
   * `/rollback`, so it must not be able to name a commit the app never deployed there.
   */
  async #sealedRevisions(record: DeployRecord, revisions: readonly Revision[]): Promise<Revision[]> {
    const sealed = await Promise.all(revisions.map((revision) => this.#deps.records.load(revision.jobId)));
    return revisions.filter((revision, i) => {
      const deploy = sealed[i];
      return deploy?.repository.id === record.repository.id && deploy.environment === record.environment && deploy.sha === revision.sha;
    });
  }

  /**
   * Starts the report's writes to GitHub: the check run's state, the Deployment's status when it
   * changes, and a comment on the pull request when the phase makes one. Each write replaces the
   * same object's older state still waiting for its turn (issue 28): a burst of reports costs one
   * check-run update, and a deploy that ends quickly skips straight from the check run's first
   * state to its last. A final state is written under the deploy's lock; an earlier one, not
   * awaited, goes out only if no replica moved the deploy past it meanwhile.
   */
  async #write(
    report: AgentReport,
    record: DeployRecord,
    logUrl: string,
  ): Promise<{ writes: Promise<void>[]; deployment: DeploymentState | undefined }> {
    const deps = this.#deps;
    const gh = await deps.github(record.installationId);
    const output = { ...deployCheckOutput(report), ...(await this.#supersededBy(report, record)) };
    // A finished deploy's check run carries the Re-sync and Roll back buttons.
    const actions = phaseRow(report.phase).buttons ? { actions: DEPLOY_ACTIONS } : {};
    const state = deploymentState(report.phase);
    const deployment = state !== undefined && record.deploymentId > 0 && state !== record.deploymentState ? state : undefined;
    const guarded = (current: (r: DeployRecord) => boolean) =>
      isFinal(report.phase)
        ? { coalesce: true }
        : { coalesce: true, guard: deps.records.guard(report.jobId, (r) => !r.completed && current(r)) };
    const applied = report.applied ?? 0;
    const writes: Promise<void>[] = [
      gh.updateCheckRun(
        record.repository,
        record.checkRunId,
        { ...checkRunState(report.phase), output, ...actions },
        guarded((r) => r.reported?.at === report.at && r.reported.phase === report.phase && r.reported.applied === applied),
      ),
    ];
    if (deployment)
      writes.push(
        gh.deploymentStatus(
          record.repository,
          record.deploymentId,
          { state: deployment, description: output.title, logUrl },
          guarded((r) => r.deploymentState === deployment),
        ),
      );
    // A merge's outcome in a promoted branch is on the merged pull request's pipeline comment instead.
    const folded =
      record.pipeline === true && record.reason === "merge" && !record.pullRequest && phaseRow(report.phase).outcome !== undefined;
    const comment = folded ? undefined : deployComment(record, report, logUrl);
    if (comment) writes.push(commentOnPull(gh, record, comment));
    return { writes, deployment };
  }

  /** Closes the check run and Deployment of a deploy the agent held, once a newer deploy released the hold. */
  async #release(jobId: string, releasedBy: DeployRecord, releasedByUrl: string): Promise<void> {
    const held = await this.#deps.records.load(jobId);
    if (!held || held.completed || !held.checkRunId) return;
    const gh = await this.#deps.github(held.installationId);
    const released = releasedState(releasedBy, releasedByUrl);
    await gh.updateCheckRun(held.repository, held.checkRunId, released.checkRun, { coalesce: true });
    if (held.deploymentId > 0) await gh.deploymentStatus(held.repository, held.deploymentId, released.deployment, { coalesce: true });
    await this.#deps.records.save(jobId, { ...held, completed: true });
  }

  /** For a superseded deploy, a summary that links the newer deploy's check run (of the same repository and environment only). */
  async #supersededBy(report: AgentReport, record: DeployRecord): Promise<{ summary: string } | undefined> {
    if (report.phase !== "superseded" || !report.supersededBy) return undefined;
    const newer = await this.#deps.records.load(report.supersededBy);
    if (!newer?.checkRunId || newer.repository.id !== record.repository.id || newer.environment !== record.environment) return undefined;
    return { summary: supersededSummary(newer.sha, checkRunUrl(this.#deps.webUrl, newer.repository, newer.checkRunId)) };
  }
}
