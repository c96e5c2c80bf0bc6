import type { Context } from "probot";
import type { GitHubClient } from "../github/client.ts";
import type { CommandService } from "../commands/command-service.ts";
import { issueCommentEventSchema, repositoryRef } from "./payloads.ts";

/** Handles new pull-request comments that hold Sluice commands. */
export function issueCommentHandler(deps: { github: (installationId: number) => Promise<GitHubClient>; commands: CommandService }) {
  return async (context: Context<"issue_comment.created">): Promise<void> => {
    const event = issueCommentEventSchema.parse(context.payload);
    if (!event.issue.pull_request || !event.comment.body?.trimStart().startsWith("/")) return;
    await deps.commands.handle(await deps.github(event.installation.id), {
      repository: repositoryRef(event.repository),
      installationId: event.installation.id,
      pullRequest: event.issue.number,
      commentId: event.comment.id,
      body: event.comment.body,
      author: event.comment.user.login,
      authorIsBot: event.comment.user.type === "Bot",
    });
  };
}
