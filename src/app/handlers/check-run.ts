import type { Context } from "probot";
import type { GitHubClient } from "../github/client.ts";
import type { CheckRunOutput } from "../../core/check-run-notes.ts";
import type { CommandService } from "../commands/command-service.ts";
import { PREVIEW_CHECK, previewPullRequest } from "../preview/preview-service.ts";
import { checkRunActionEventSchema, checkRunRerunEventSchema, repositoryRef } from "./payloads.ts";

/** Handles the Re-sync and Roll back buttons on Sluice's own deploy check runs. */
export function checkRunActionHandler(deps: {
  appId: number;
  github: (installationId: number) => Promise<GitHubClient>;
  commands: CommandService;
}) {
  return async (context: Context<"check_run.requested_action">): Promise<void> => {
    const event = checkRunActionEventSchema.parse(context.payload);
    // GitHub sends a check run's button presses to the app that made it; anything else is not ours.
    if (event.check_run.app?.id !== deps.appId || event.sender.type === "Bot") return;
    await deps.commands.handleAction(await deps.github(event.installation.id), {
      repository: repositoryRef(event.repository),
      installationId: event.installation.id,
      deliveryId: context.id,
      checkRun: {
        id: event.check_run.id,
        name: event.check_run.name,
        headSha: event.check_run.head_sha,
        output: checkRunOutput(event.check_run.output, "Deploy"),
      },
      identifier: event.requested_action.identifier,
      sender: event.sender.login,
    });
  };
}

/** Handles the Re-run button on Sluice's own `sluice/preview` check runs: a new preview of that head. */
export function checkRunRerunHandler(deps: {
  appId: number;
  github: (installationId: number) => Promise<GitHubClient>;
  commands: CommandService;
}) {
  return async (context: Context<"check_run.rerequested">): Promise<void> => {
    const event = checkRunRerunEventSchema.parse(context.payload);
    if (event.check_run.app?.id !== deps.appId || event.sender.type === "Bot" || event.check_run.name !== PREVIEW_CHECK) return;
    // The pull request, from the external id Sluice gave the check run: GitHub lists none for a fork's head.
    const pullRequest = previewPullRequest(event.check_run.external_id);
    if (pullRequest === undefined) return;
    await deps.commands.rerunPreview(await deps.github(event.installation.id), {
      repository: repositoryRef(event.repository),
      installationId: event.installation.id,
      pullRequest,
      checkRun: {
        id: event.check_run.id,
        headSha: event.check_run.head_sha,
        output: checkRunOutput(event.check_run.output, "Preview"),
      },
      sender: event.sender.login,
    });
  };
}

/** The output a note is added to: title, summary and (when there is one) the text, which a note must not drop. */
function checkRunOutput(
  output: { title?: string | null; summary?: string | null; text?: string | null } | undefined,
  title: string,
): CheckRunOutput {
  return { title: output?.title ?? title, summary: output?.summary ?? "", ...(output?.text ? { text: output.text } : {}) };
}
