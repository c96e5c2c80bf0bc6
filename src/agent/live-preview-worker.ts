import type { Job } from "bullmq";
import type { LivePreviewRequest, LiveReport } from "../core/agent-protocol.ts";
import { errorMessage } from "../core/errors.ts";
import { verifiedOrRejected, type Attempt, type WorkerDeps } from "./deploy-worker.ts";
import { DeployError } from "./errors.ts";
import { liveAnswerHeader, previewLive, verifyPreviewRequest, type LivePreviewDeps } from "./live-preview.ts";

/**
 * The answer to one verified live preview request, as a value. A transient cluster error is
 * rethrown so BullMQ retries; the last try (or a refusal) still answers, with the error, so the
 * comment does not wait forever.
 */
export async function answerPreview(deps: LivePreviewDeps, request: LivePreviewRequest, attempt: Attempt): Promise<LiveReport> {
  let answer: Omit<LiveReport, "at">;
  try {
    answer = await previewLive(deps, request);
  } catch (error) {
    const permanent = error instanceof DeployError && error.permanent;
    if (!permanent && attempt.attemptsMade + 1 < attempt.attempts) throw error;
    answer = { ...liveAnswerHeader(request), changes: [], unchanged: 0, prune: [], error: errorMessage(error) };
  }
  return { ...answer, at: new Date(deps.now()).toISOString() };
}

/** What the live preview worker needs besides the previews' own. */
export interface LivePreviewWorkerDeps extends WorkerDeps {
  previews: LivePreviewDeps;
  send: (report: LiveReport) => Promise<void>;
}

/** The BullMQ processor of a live preview queue: verifies the request, answers it and sends the answer. */
export function livePreviewProcessor(deps: LivePreviewWorkerDeps): (bullJob: Job) => Promise<void> {
  return async (bullJob) => {
    const request = verifiedOrRejected(bullJob, (data) => verifyPreviewRequest(data, deps.previews), {
      ...deps,
      queue: "live-preview",
      message: "live preview request rejected",
      detail: errorMessage,
    });
    const report = await answerPreview(deps.previews, request, {
      attemptsMade: bullJob.attemptsMade,
      attempts: bullJob.opts.attempts ?? 1,
    });
    await deps.send(report);
    deps.log("info", "live preview answered", { request: request.id, changes: report.changes.length });
  };
}
