import { helpText, parseCommand } from "../../core/commands.ts";
import { escapeInline } from "../../core/markdown.ts";
import type { Config } from "../../core/config.ts";
import { deployRequest, type DeployReason, type RepositoryRef } from "../../core/deploy-requests.ts";
import { permits, type GitHubClient, type Permission } from "../github/client.ts";
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
      await gh.createComment(event.repository, event.pullRequest, `@${event.author} the configuration on the default branch is invalid, so no command can run: \`${first?.file ?? ""}:${first?.line ?? 0}\` ${escapeInline(first?.message ?? "")}`);
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
          await gh.createComment(event.repository, event.pullRequest, `@${event.author} a preview was requested less than a minute ago; it updates the preview comment when done.`);
          return;
        }
        await requestPreview(gh, this.#deps, { repository: event.repository, installationId: event.installationId, pull });
        await gh.createComment(event.repository, event.pullRequest, `@${event.author} queued a new preview of \`${pull.headSha.slice(0, 7)}\`; the preview comment updates when it is done.`);
        return;
      case "sync":
      case "rollback": {
        const actual = await gh.permission(event.repository, event.author);
        if (!permits(actual, permission)) {
          await gh.createComment(event.repository, event.pullRequest, refusal(event.author, command.kind, permission, actual));
          this.#deps.log.info({ repository: event.repository.id, author: event.author, command: command.kind, permission: actual }, "command refused");
          return;
        }
        if (!this.#deps.deploysEnabled) {
          await gh.createComment(event.repository, event.pullRequest, `@${event.author} deploys are not enabled on this Sluice (it has no job signing key), so \`/${command.kind}\` cannot run. Nothing was done.`);
          return;
        }
        const lines = await this.#deploy(gh, event, config.config, command.kind, command.environments);
        await gh.createComment(event.repository, event.pullRequest, `@${event.author} \`/${command.kind}\`:\n\n${lines.join("\n")}`);
        return;
      }
    }
  }

  async #deploy(gh: GitHubClient, event: CommentEvent, config: Config, reason: DeployReason, names: readonly string[]): Promise<string[]> {
    const lines: string[] = [];
    for (const env of config.environments.filter((e) => names.includes(e.name))) {
      const sha = reason === "rollback" ? await gh.previousSuccessfulDeployment(event.repository, env.name) : await gh.branchSha(event.repository, env.branch);
      if (sha === undefined) {
        lines.push(`- \`${env.name}\`: no earlier successful deployment to roll back to; nothing queued.`);
        continue;
      }
      const request = deployRequest(
        { repository: event.repository, installationId: event.installationId, environment: env.name, sha, reason, requestedBy: event.author, pullRequest: event.pullRequest, trigger: `comment-${event.commentId}` },
        this.#deps.now(),
      );
      const added = await this.#deps.queues.addDeployRequest(request);
      const what = reason === "rollback" ? `roll back to \`${sha.slice(0, 7)}\`` : `deploy \`${env.branch}\` at \`${sha.slice(0, 7)}\``;
      lines.push(`- \`${env.name}\`: ${added ? "queued" : "already queued"}: ${what}.`);
    }
    return lines;
  }
}

/** The polite refusal: what was asked, what it needs, what the commenter has; nothing happened. */
export function refusal(author: string, command: string, required: Permission, actual: Permission): string {
  return `Sorry @${author}, \`/${command}\` needs **${required}** permission on this repository and you have **${actual}**. Nothing was done.`;
}
