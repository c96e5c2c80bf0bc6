import type { Context } from "probot";
import type { GitHubClient } from "../github/client.ts";
import { pullRequestInfo } from "../github/schemas.ts";
import type { AppQueues } from "../queue/queues.ts";
import type { PullRequestState } from "../state/pr-state.ts";
import { requestPreview } from "../preview/preview-requests.ts";
import type { PreviewService } from "../preview/preview-service.ts";
import { pullRequestEventSchema, repositoryRef } from "./payloads.ts";

/** Actions that (re)start a preview. */
export const PREVIEW_ACTIONS = ["opened", "synchronize", "reopened", "ready_for_review"];

/** Handles `pull_request` webhooks: previews on open, push and a change of base, marks the comment on close. */
export function pullRequestHandler(deps: {
  github: (installationId: number) => Promise<GitHubClient>;
  queues: AppQueues;
  prState: PullRequestState;
  previews: PreviewService;
}) {
  return async (context: Context<"pull_request">): Promise<void> => {
    const event = pullRequestEventSchema.parse(context.payload);
    // A pull request moved to another base is compared with it anew: the old base's check no longer says anything.
    const retargeted = event.action === "edited" && event.changes?.base !== undefined;
    if (!PREVIEW_ACTIONS.includes(event.action) && !retargeted && event.action !== "closed") return;
    const gh = await deps.github(event.installation.id);
    const repository = repositoryRef(event.repository);
    const pr = event.pull_request;
    if (event.action === "closed") {
      await deps.previews.markClosed(gh, repository, pr.number, pr.merged ?? false);
      return;
    }
    await requestPreview(gh, deps, {
      repository,
      installationId: event.installation.id,
      pull: pullRequestInfo(pr, repository.id),
    });
  };
}
