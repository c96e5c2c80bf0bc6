import { helpText, parseCommand, replies } from "../../core/commands.ts";
import type { Config } from "../../core/config.ts";
import { deployRequest, type DeployReason, type RepositoryRef } from "../../core/deploy-requests.ts";
import { permits, type GitHubClient } from "../github/client.ts";
import type { AppQueues } from "../queue/queues.ts";
import type { Logger } from "./logger.ts";
import type { PullRequestState } from "./pr-state.ts";
import { requestPreview } from "./preview-requests.ts";
import type { CheckoutCache } from "./checkout-cache.ts";
import { discoverFromCheckout, reviewedConfig } from "./repository-config.ts";

/** A comment that may hold a command. */
export interface CommentEvent {
  repository: RepositoryRef;
  installationId: number;
  pullRequest: number;
  commentId: number;
  body: string;
  author: string;
  authorIsBot: boolean;
}

/** What the command service needs. */
export interface CommandDeps {
  queues: AppQueues;
  prState: PullRequestState;
  now: () => number;
  log: Logger;
  /** Whether this app signs deploy jobs at all (it has a job signing key). */
  deploysEnabled: boolean;
  /** Commit checkouts, for repositories whose environments are discovered rather than configured. */
  checkouts: CheckoutCache;
}

/**
 * Handles `/diff`, `/sync`, `/rollback` and `/help` in pull-request comments: acknowledges with 👀,
 * reads the configuration from the base commit, checks the commenter's permission for anything
 * that deploys, acts, and replies with the outcome.
 */
export class CommandService {
  readonly #deps: CommandDeps;

  constructor(deps: CommandDeps) {
    this.#deps = deps;
  }

  /** Handles a new comment; comments not addressed to Sluice, and bots, are ignored. */
  async handle(gh: GitHubClient, event: CommentEvent): Promise<void> {
    if (event.authorIsBot || parseCommand(event.body, []) === undefined) return;
    await gh.react(event.repository, event.commentId, "eyes");
    const pull = await gh.pullRequest(event.repository, event.pullRequest);
    // Who may run what, and where it deploys, is the default branch's word, never the pull request's base.
    const config = await reviewedConfig(gh, event.repository, discoverFromCheckout(this.#deps.checkouts, gh, event.repository));
    if (!config.ok) {
      const [first] = config.errors;
      await gh.createComment(event.repository, event.pullRequest, replies.invalidConfig(event.author, first));
      return;
    }
    const environments = config.config.environments.map((e) => e.name);
    const permission = config.config.commands.permission;
    const command = parseCommand(event.body, environments);
    switch (command?.kind) {
      case undefined:
        return;
      case "help":
        await gh.createComment(event.repository, event.pullRequest, helpText(environments, permission));
        return;
      case "invalid":
        await gh.createComment(event.repository, event.pullRequest, helpText(environments, permission, command.reason));
        return;
      case "diff":
        if (!(await this.#deps.prState.allowDiff({ repositoryId: event.repository.id, number: event.pullRequest }))) {
          await gh.createComment(event.repository, event.pullRequest, replies.diffTooSoon(event.author));
          return;
        }
        await requestPreview(gh, this.#deps, { repository: event.repository, installationId: event.installationId, pull });
        await gh.createComment(event.repository, event.pullRequest, replies.diffQueued(event.author, pull.headSha));
        return;
      case "sync":
      case "rollback": {
        const actual = await gh.permission(event.repository, event.author);
        if (!permits(actual, permission)) {
          await gh.createComment(event.repository, event.pullRequest, replies.refused(event.author, command.kind, permission, actual));
          this.#deps.log.info(
            { repository: event.repository.id, author: event.author, command: command.kind, permission: actual },
            "command refused",
          );
          return;
        }
        if (!this.#deps.deploysEnabled) {
          await gh.createComment(event.repository, event.pullRequest, replies.deploysDisabled(event.author, command.kind));
          return;
        }
        const lines = await this.#deploy(gh, event, config.config, command.kind, command.environments);
        await gh.createComment(event.repository, event.pullRequest, replies.deployed(event.author, command.kind, lines));
        return;
      }
    }
  }

  async #deploy(gh: GitHubClient, event: CommentEvent, config: Config, reason: DeployReason, names: readonly string[]): Promise<string[]> {
    const lines: string[] = [];
    for (const env of config.environments.filter((e) => names.includes(e.name))) {
      const sha =
        reason === "rollback"
          ? await gh.previousSuccessfulDeployment(event.repository, env.name)
          : await gh.branchSha(event.repository, env.branch);
      if (sha === undefined) {
        lines.push(replies.nothingToRollBack(env.name));
        continue;
      }
      const request = deployRequest(
        {
          repository: event.repository,
          installationId: event.installationId,
          environment: env.name,
          sha,
          reason,
          requestedBy: event.author,
          pullRequest: event.pullRequest,
          trigger: `comment-${event.commentId}`,
        },
        this.#deps.now(),
      );
      const added = await this.#deps.queues.addDeployRequest(request);
      const what = reason === "rollback" ? `roll back to \`${sha.slice(0, 7)}\`` : `deploy \`${env.branch}\` at \`${sha.slice(0, 7)}\``;
      lines.push(replies.queuedLine(env.name, added, what));
    }
    return lines;
  }
}
