import { errorMessage } from "../../core/errors.ts";
import { fullName } from "../../core/git-ref.ts";
import { AppMetrics } from "../metrics.ts";
import type { PreviewJob } from "../queue/queues.ts";
import { withLogContext, type Logger } from "../log-context.ts";
import type { PreviewService } from "./preview-service.ts";

/** What the preview queue's job functions need. */
export interface PreviewJobDeps {
  previews: PreviewService;
  metrics: AppMetrics;
  log: Logger;
}

/**
 * The preview queue's job functions: `run` previews a pull request's head (timed, and logged with
 * its repository, pull request and commit); `giveUp` marks the check run failed after the last
 * attempt, so it does not stay in progress forever.
 */
export function previewJobs(deps: PreviewJobDeps): {
  run: (job: PreviewJob) => Promise<void>;
  giveUp: (job: PreviewJob, error: unknown) => Promise<void>;
} {
  const { previews, metrics, log } = deps;
  return {
    run: (job) =>
      withLogContext({ repository: fullName(job.repository), pullRequest: job.pullRequest, sha: job.headSha }, () =>
        AppMetrics.timed(metrics.previews, () => previews.run(job)),
      ),
    giveUp: async (job, error) => {
      await previews.fail(job, error).catch((failure: unknown) => {
        log.error({ pullRequest: job.pullRequest, error: errorMessage(failure) }, "could not mark the preview check run failed");
      });
    },
  };
}
