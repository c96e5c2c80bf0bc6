import type { Context } from "probot";
import type { GitHubClient } from "../github/client.ts";
import type { CommandService } from "../services/command-service.ts";
import { checkRunActionEventSchema, repositoryRef } from "./payloads.ts";

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
        output: { title: event.check_run.output?.title ?? "Deploy", summary: event.check_run.output?.summary ?? "" },
      },
      identifier: event.requested_action.identifier,
      sender: event.sender.login,
    });
  };
}
