import type { Context } from "probot";
import type { GitHubClient } from "../github/client.ts";
import { pullRequestInfo } from "../github/schemas.ts";
import type { AppQueues } from "../queue/queues.ts";
import type { PullRequestState } from "../services/pr-state.ts";
import { requestPreview } from "../services/preview-requests.ts";
import type { PreviewService } from "../services/preview-service.ts";
import { pullRequestEventSchema, repositoryRef } from "./payloads.ts";

/** Actions that (re)start a preview. */
export const PREVIEW_ACTIONS = ["opened", "synchronize", "reopened", "ready_for_review"];

/** Handles `pull_request` webhooks: previews on open and push, marks the comment on close. */
export function pullRequestHandler(deps: {
  github: (installationId: number) => Promise<GitHubClient>;
  queues: AppQueues;
  prState: PullRequestState;
  previews: PreviewService;
}) {
  return async (context: Context<"pull_request">): Promise<void> => {
    const event = pullRequestEventSchema.parse(context.payload);
    if (!PREVIEW_ACTIONS.includes(event.action) && event.action !== "closed") return;
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
