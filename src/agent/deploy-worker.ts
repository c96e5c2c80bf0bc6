import { UnrecoverableError, type Job } from "bullmq";
import type { AgentJob, AgentReport } from "../core/agent-protocol.ts";
import { errorMessage } from "../core/errors.ts";
import { clusterField } from "../core/fleet.ts";
import type { Envelope } from "../core/signing.ts";
import type { AgentLog } from "./agent-log.ts";
import { admitJob, verifyJob, type Deployer, type DeployerDeps, type Report } from "./deployer.ts";
import { DeployError } from "./errors.ts";
import type { AgentMetrics } from "./metrics.ts";

/** The fields of a report the job decides; the envelope (job, repository, time) is added when it is sent. */
export type ReportFields = Parameters<Report>[0];

/** Which try of a job this is: BullMQ's count of tries made before it, and how many it allows. */
export interface Attempt {
  attemptsMade: number;
  attempts: number;
}

/**
 * How a deploy job ended: the final report to send (superseded, succeeded, or why it failed: on
 * a permanent failure or the last try only), and the failure, if any, with whether a retry can help.
 */
export interface DeployOutcome {
  report?: ReportFields;
  failure?: { error: unknown; permanent: boolean };
}

/** What a deploy job needs. */
export interface DeployJobDeps {
  deployer: Deployer;
  policy: DeployerDeps["policy"];
  now: () => number;
  /** Keeps what was deployed, for drift checks, once a deploy succeeded. */
  remember: (job: AgentJob, envelope: Envelope) => Promise<void>;
}

/**
 * Runs one verified deploy job and returns its final report as a value; the progress reports go
 * out through `report` as it runs. Decides superseded, succeeded and failed, and whether the
 * failure ends the job now (permanent) or after the tries BullMQ allows.
 */
export async function runDeployJob(
  deps: DeployJobDeps,
  job: AgentJob,
  options: { envelope: Envelope; attempt: Attempt; report: Report },
): Promise<DeployOutcome> {
  const { deployer, now } = deps;
  const started = now();
  try {
    admitJob(job, deps.policy, now());
    const supersededBy = await deployer.supersededBy(job);
    if (supersededBy) return { report: { phase: "superseded", message: `superseded by a newer deploy (${supersededBy})`, supersededBy } };
    const objects = await deployer.objects(job);
    const { results, history } = await deployer.deploy(job, objects, options.report);
    await deps.remember(job, options.envelope);
    return {
      report: { phase: "succeeded", message: `deployed ${results.length} objects`, objects: results, durationMs: now() - started, history },
    };
  } catch (error) {
    const ended = error instanceof DeployError ? error : undefined;
    const permanent = ended?.permanent ?? false;
    const failure = { error, permanent };
    if (!permanent && options.attempt.attemptsMade + 1 < options.attempt.attempts) return { failure };
    // The record may be what failed to read; the report goes out without the history then.
    const history = await deployer.history(job).catch(() => undefined);
    const report: ReportFields = {
      phase: ended?.end ?? "failed",
      message: errorMessage(error),
      objects: ended?.objects ?? [],
      durationMs: now() - started,
      ...(history ? { history } : {}),
    };
    return { report, failure };
  }
}

/** Sends the reports of `job`, signed by the caller's `send`, with the job's envelope fields. */
export function reporter(job: AgentJob, now: () => number, send: (report: AgentReport) => Promise<void>): Report {
  return async (fields) => {
    await send({
      version: 1,
      jobId: job.id,
      repository: job.repository,
      installationId: job.installationId,
      environment: job.environment,
      ...clusterField(job.cluster),
      sha: job.sha,
      at: new Date(now()).toISOString(),
      ...fields,
    });
  };
}

/** What every worker of the agent reports to: its log and its metrics. */
export interface WorkerDeps {
  metrics: AgentMetrics;
  log: AgentLog;
}

/**
 * What `verify` makes of a BullMQ job's data. What fails it names nothing that can be trusted:
 * it is logged and counted, and ends the job for good without a report.
 * @throws UnrecoverableError with the verification's message
 */
export function verifiedOrRejected<T>(
  bullJob: Job,
  verify: (data: unknown) => T,
  rejected: WorkerDeps & { queue: "deploy" | "live-preview"; message: string; detail: (error: unknown) => string },
): T {
  try {
    return verify(bullJob.data);
  } catch (error) {
    rejected.log("warn", rejected.message, { job: bullJob.id, error: rejected.detail(error) });
    rejected.metrics.rejectedJobs.inc({ queue: rejected.queue });
    throw new UnrecoverableError(errorMessage(error));
  }
}

/** What the deploy worker needs besides a job's own. */
export interface DeployWorkerDeps extends DeployJobDeps, WorkerDeps {
  appKey: DeployerDeps["appKey"];
  send: (report: AgentReport) => Promise<void>;
}

/**
 * The BullMQ processor of a deploy queue: verifies the job, runs it, sends its final report, and
 * ends the job the way the outcome says (done, retried, or failed for good).
 */
export function deployProcessor(deps: DeployWorkerDeps): (bullJob: Job) => Promise<void> {
  return async (bullJob) => {
    const job = verifiedOrRejected(bullJob, (data) => verifyJob(data, { appKey: deps.appKey, policy: deps.policy }), {
      ...deps,
      queue: "deploy",
      message: "job rejected",
      detail: String,
    });
    const started = deps.now();
    const report = reporter(job, deps.now, deps.send);
    const attempt = { attemptsMade: bullJob.attemptsMade, attempts: bullJob.opts.attempts ?? 1 };
    const outcome = await runDeployJob(deps, job, { envelope: bullJob.data as Envelope, attempt, report });
    if (outcome.report) await report(outcome.report);
    const { failure } = outcome;
    if (!failure) {
      if (outcome.report?.phase === "succeeded")
        deps.log("info", "deploy succeeded", { job: job.id, objects: outcome.report.objects?.length ?? 0, ms: deps.now() - started });
      return;
    }
    deps.log("error", "deploy failed", { job: job.id, error: String(failure.error), permanent: failure.permanent });
    if (failure.permanent) throw new UnrecoverableError(errorMessage(failure.error));
    throw failure.error;
  };
}
