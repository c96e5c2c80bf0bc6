import type { Worker } from "bullmq";
import { agentReportJob } from "../agents/agent-reports.ts";
import type { Infrastructure } from "./infrastructure.ts";
import type { AppServices } from "./services.ts";
import { deployRequestJob } from "../deploy/deploy-request-jobs.ts";
import { previewJobs } from "../preview/preview-jobs.ts";
import {
  deployRequestWorker,
  liveTimeoutWorker,
  pipelineCommentWorker,
  previewWorker,
  promotionWorker,
  reportWorker,
  rolloutCheckWorker,
  fleetDriftWorker,
} from "../queue/queues.ts";
import type { Logger } from "../log-context.ts";

/** The app's running queue workers. */
export interface AppWorkers {
  preview: Worker;
  /** The deploy requests, the agents' reports and the live-preview timeouts: none when the app does not sign jobs. */
  deploy: Worker[];
  /** Every worker, for readiness. */
  all: Worker[];
}

/** Starts the queue workers, each with its job function, and counts and logs how their jobs end. */
export function startWorkers(
  infra: Infrastructure,
  services: AppServices,
  options: { previewConcurrency: number; now: () => number; log: Logger },
): AppWorkers {
  const { redis, mac, metrics } = infra;
  const { log } = options;
  const preview = previewWorker(redis, mac, previewJobs({ previews: services.previews, metrics, log }), {
    concurrency: options.previewConcurrency,
  });
  preview.on("failed", (job, error) => {
    log.error({ job: job?.id, error: error.message }, "preview job failed");
  });
  const deploy = deployWorkers(infra, services, options.now);
  for (const w of deploy)
    w.on("failed", (job, error) => {
      log.error({ job: job?.id, queue: w.name, error: error.message }, "deploy pipeline job failed");
    });
  const all = [preview, ...deploy];
  for (const w of all) {
    w.on("error", (error) => {
      infra.connectionError(`worker ${w.name}`, error);
    });
    w.on("completed", () => {
      metrics.jobs.inc({ queue: w.name, outcome: "completed" });
    });
    w.on("failed", () => {
      metrics.jobs.inc({ queue: w.name, outcome: "failed" });
    });
  }
  return { preview, deploy, all };
}

/** The deploy flow's workers, when the app signs jobs; the live-preview timeouts' too when it has live previews. */
function deployWorkers(infra: Infrastructure, services: AppServices, now: () => number): Worker[] {
  const { redis, mac } = infra;
  const { deploys, live } = services;
  if (!deploys) return [];
  const fromAgents = agentReportJob({
    live,
    driftReports: services.driftReports,
    convergence: deploys.convergence,
    deployReports: deploys.reports,
    promotions: deploys.promotions,
  });
  return [
    deployRequestWorker(redis, { mac, now }, deployRequestJob(deploys)),
    reportWorker(redis, fromAgents),
    promotionWorker(redis, mac, (check) => deploys.promotions.run(check)),
    rolloutCheckWorker(redis, mac, (check) => deploys.rollouts.check(check.jobId)),
    fleetDriftWorker(redis, mac, (write) => services.fleetDrift.write(write)),
    pipelineCommentWorker(redis, mac, (check) => deploys.pipelineComments.refresh(check)),
    ...(live ? [liveTimeoutWorker(redis, mac, (timeout) => live.timeOut(timeout))] : []),
  ];
}
