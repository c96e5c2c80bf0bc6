import { parseDeployCheckName } from "../../core/check-names.ts";
import { withNote, type CheckRunOutput } from "../../core/check-run-notes.ts";
import { helpText, parseCommand, replies, rerunNotes, type Command, type HelpOptions } from "../../core/commands.ts";
import { teamName } from "../../core/approval.ts";
import type { Config, Environment } from "../../core/config.ts";
import { type RepositoryRef } from "../../core/git-ref.ts";
import type { RollbackAsk } from "../../core/rollback.ts";
import { permits, type GitHubClient, type Permission } from "../github/client.ts";
import { type PullRequestInfo } from "../github/schemas.ts";
import type { AppQueues } from "../queue/queues.ts";
import type { CheckoutCache } from "../checkouts/checkout-cache.ts";
import { CommandDeploys, type Asker } from "./command-deploys.ts";
import type { EnvironmentStates } from "../deploy/environment-states.ts";
import type { Logger } from "../log-context.ts";
import type { PullRequestState } from "../state/pr-state.ts";
import { requestPreview } from "../preview/preview-requests.ts";
import { discoverFromCheckout, reviewedConfig } from "../github/repository-config.ts";
import { RollbackRunner } from "./rollback-runner.ts";
import { GateCommands, requiredPermission } from "./gate-commands.ts";
import type { GatedDeploys } from "../promotion/gated-deploys.ts";
import type { Promotions } from "../promotion/promotions.ts";
import { freezeAt } from "../../core/freeze.ts";

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

/** A press of a button on a deploy check run (`check_run.requested_action`). */
export interface CheckRunActionEvent {
  repository: RepositoryRef;
  installationId: number;
  deliveryId: string;
  checkRun: { id: number; name: string; headSha: string; output: CheckRunOutput };
  identifier: string;
  sender: string;
}

/** A press of Re-run on a `sluice/preview` check run (`check_run.rerequested`). */
export interface PreviewRerunEvent {
  repository: RepositoryRef;
  installationId: number;
  pullRequest: number;
  checkRun: { id: number; headSha: string; output: CheckRunOutput };
  sender: string;
}

/** What the command service needs. */
export interface CommandDeps {
  queues: AppQueues;
  prState: PullRequestState;
  environments: EnvironmentStates;
  now: () => number;
  log: Logger;
  webUrl: string;
  /** Whether this app signs deploy jobs at all (it has a job signing key). */
  deploysEnabled: boolean;
  /** Commit checkouts, for repositories whose environments are discovered rather than configured. */
  checkouts: CheckoutCache;
  /** Deploys waiting at approvals and freezes, and promotion; absent when the app does not deploy. */
  gated?: GatedDeploys | undefined;
  promotions?: Promotions | undefined;
  /** The newest commit promotion asked an environment to deploy: what `/sync` deploys there. */
  promotedSha?: (repositoryId: number, environment: string) => Promise<string | undefined>;
}

/** How a command is answered: `reply` always; `idle` (an answer that changes nothing) at most once a minute per pull request. */
interface Answer {
  reply: (text: string) => Promise<void>;
  idle: (text: string, why: string) => Promise<void>;
}

/** A `/sync` or `/rollback` comment as the dispatcher hands it on: the comment, its pull request and the reviewed configuration. */
interface DeployAsk {
  event: CommentEvent;
  pull: PullRequestInfo;
  config: Config;
  command: Extract<Command, { kind: "sync" | "rollback" }>;
}

/**
 * Handles `/diff`, `/sync`, `/rollback` and `/help` in pull-request comments, and the Re-sync and
 * Roll back buttons of deploy check runs: acknowledges, reads the configuration from the default
 * branch, checks the commenter's permission for anything that deploys, hands the work on (a
 * preview request, {@link CommandDeploys}, {@link RollbackRunner}), and says what it did.
 */
export class CommandService {
  readonly #deps: CommandDeps;
  readonly #deploys: CommandDeploys;
  readonly #rollbacks: RollbackRunner;
  readonly #gates: GateCommands;

  constructor(deps: CommandDeps) {
    this.#deps = deps;
    this.#deploys = new CommandDeploys(deps);
    this.#gates = new GateCommands({ gated: deps.gated, promotions: deps.promotions, log: deps.log });
    this.#rollbacks = new RollbackRunner({ deploys: this.#deploys, environments: deps.environments, now: deps.now, log: deps.log });
  }

  /** Handles a new comment; comments not addressed to Sluice, and bots, are ignored. */
  async handle(gh: GitHubClient, event: CommentEvent): Promise<void> {
    if (event.authorIsBot || parseCommand(event.body, []) === undefined) return;
    await gh.react(event.repository, event.commentId, "eyes");
    const answer = this.#answer(gh, event);
    const pull = await gh.pullRequest(event.repository, event.pullRequest);
    // Who may run what, and where it deploys, is the default branch's word, never the pull request's base.
    const config = await reviewedConfig(gh, event.repository, discoverFromCheckout(this.#deps.checkouts, gh, event.repository));
    if (!config.ok) {
      await answer.reply(replies.invalidConfig(event.author, config.errors[0]));
      return;
    }
    const environments = config.config.environments.map((e) => e.name);
    const permission = config.config.commands.permission;
    const command = parseCommand(event.body, environments);
    switch (command?.kind) {
      case undefined:
        return;
      case "help":
        await answer.idle(helpText(environments, permission, undefined, helpOptions(config.config)), "help");
        return;
      case "invalid":
        await answer.idle(helpText(environments, permission, command.reason, helpOptions(config.config)), "invalid");
        return;
      case "diff":
        await this.#diff(gh, { event, pull, permission }, answer);
        return;
      case "sync":
      case "rollback":
        await this.#deploy(gh, { event, pull, config: config.config, command }, answer);
        return;
      case "approve":
      case "reject":
      case "promote":
        await this.#gate(gh, { event, config: config.config, command }, answer);
        return;
    }
  }

  /** `/approve` (the environment's approval policy decides), `/reject` and `/promote` (the commands permission). */
  async #gate(
    gh: GitHubClient,
    ask: { event: CommentEvent; config: Config; command: Extract<Command, { kind: "approve" | "reject" | "promote" }> },
    answer: Answer,
  ): Promise<void> {
    const { event, config, command } = ask;
    const env = config.environments.find((e) => e.name === command.environment);
    if (!env) return;
    const asker = { repository: event.repository, installationId: event.installationId, author: event.author };
    if (command.kind === "approve") {
      await answer.reply(await this.#gates.approve(gh, asker, env));
      return;
    }
    const refusal = await this.#refusal(gh, event.repository, event.author, command.kind, config.commands.permission);
    if (refusal) {
      await answer.idle(refusal, "refused");
      return;
    }
    await answer.reply(
      command.kind === "reject"
        ? await this.#gates.reject(gh, asker, env, command.reason)
        : await this.#gates.promote(asker, env, command.reason),
    );
  }

  /**
   * Handles a Re-sync or Roll back button on a `sluice/deploy (<env>)` check run: the same
   * permission check as the comments, and an audit line on the check run either way.
   */
  async handleAction(gh: GitHubClient, event: CheckRunActionEvent): Promise<void> {
    const name = parseDeployCheckName(event.checkRun.name);
    const kind =
      event.identifier === "sync" || event.identifier === "rollback" || event.identifier === "approve" ? event.identifier : undefined;
    if (!name || !kind) return;
    const audit = async (text: string): Promise<void> => {
      const line = replies.auditLine(new Date(this.#deps.now()).toISOString(), event.sender, kind, text);
      await gh.updateCheckRun(event.repository, event.checkRun.id, { output: withNote(event.checkRun.output, line) });
    };
    const config = await reviewedConfig(gh, event.repository, discoverFromCheckout(this.#deps.checkouts, gh, event.repository));
    const env = config.ok ? config.config.environments.find((e) => e.name === name) : undefined;
    if (!config.ok || !env) {
      await audit(replies.auditNoEnvironment(name));
      return;
    }
    if (kind === "approve") {
      // Who may approve is the environment's approval policy, judged with the approval.
      const asker = { repository: event.repository, installationId: event.installationId, author: event.sender };
      await audit(await this.#gates.approve(gh, asker, env, event.checkRun.headSha));
      return;
    }
    const refusal = await this.#refusal(gh, event.repository, event.sender, kind, config.config.commands.permission);
    if (refusal) {
      await audit(replies.auditRefused(refusal));
      return;
    }
    const asker: Asker = {
      repository: event.repository,
      installationId: event.installationId,
      author: event.sender,
      trigger: `action-${event.deliveryId.toLowerCase()}`,
    };
    const lines =
      kind === "sync"
        ? await this.#deploys.sync(gh, asker, [env])
        : await this.#rollbacks.run(gh, asker, [env], { before: event.checkRun.headSha });
    await audit(replies.auditDone(lines));
  }

  /**
   * Handles Re-run on a `sluice/preview` check run: what `/diff` does (a new preview of the pull
   * request's head, at most one a minute) without the reply, for someone with the commands
   * permission. GitHub offers the button only to people with write access; Sluice checks all the
   * same. A press not taken is noted on the check run.
   */
  async rerunPreview(gh: GitHubClient, event: PreviewRerunEvent): Promise<void> {
    const note = async (text: string): Promise<void> => {
      const line = rerunNotes.line(new Date(this.#deps.now()).toISOString(), event.sender, text);
      await gh.updateCheckRun(event.repository, event.checkRun.id, { output: withNote(event.checkRun.output, line) });
    };
    const pull = await gh.pullRequest(event.repository, event.pullRequest);
    if (pull.headSha !== event.checkRun.headSha) {
      await note(rerunNotes.outdated(pull.headSha));
      return;
    }
    const config = await reviewedConfig(gh, event.repository, discoverFromCheckout(this.#deps.checkouts, gh, event.repository));
    if (!config.ok) {
      await note(rerunNotes.invalidConfig(config.errors[0]));
      return;
    }
    const required = config.config.commands.permission;
    const actual = await this.#shortOf(gh, { repository: event.repository, author: event.sender, command: "re-run" }, required);
    if (actual) {
      await note(rerunNotes.refused(event.sender, required, actual));
      return;
    }
    if (!(await this.#deps.prState.allowDiff({ repositoryId: event.repository.id, number: event.pullRequest }))) {
      await note(rerunNotes.tooSoon());
      return;
    }
    await requestPreview(gh, this.#deps, { repository: event.repository, installationId: event.installationId, pull });
  }

  /** How to answer a comment. Answers that change nothing (help, refusals, "too soon") are one a minute per pull request: anyone may comment, and each answer is a comment by Sluice. */
  #answer(gh: GitHubClient, event: CommentEvent): Answer {
    const reply = async (text: string): Promise<void> => {
      await gh.createComment(event.repository, event.pullRequest, text);
    };
    const pr = { repositoryId: event.repository.id, number: event.pullRequest };
    const idle = async (text: string, why: string): Promise<void> => {
      if (await this.#deps.prState.allowInvalidReply(pr, this.#deps.now())) await reply(text);
      else
        this.#deps.log.info(
          { ...pr, author: event.author, why },
          "command not answered: an answer that changed nothing was given less than a minute ago",
        );
    };
    return { reply, idle };
  }

  /** `/diff`: a new preview of the pull request's head, for someone with the permission, at most one a minute. */
  async #diff(
    gh: GitHubClient,
    ask: { event: CommentEvent; pull: PullRequestInfo; permission: Permission },
    answer: Answer,
  ): Promise<void> {
    const { event, pull, permission } = ask;
    // A new preview restarts the gating check: the same permission as the Re-run button.
    const actual = await this.#shortOf(gh, { repository: event.repository, author: event.author, command: "diff" }, permission);
    if (actual) {
      await answer.idle(replies.refused(event.author, "diff", permission, actual), "refused");
      return;
    }
    if (!(await this.#deps.prState.allowDiff({ repositoryId: event.repository.id, number: event.pullRequest }))) {
      await answer.idle(replies.diffTooSoon(event.author), "too soon");
      return;
    }
    await requestPreview(gh, this.#deps, { repository: event.repository, installationId: event.installationId, pull });
    await answer.reply(replies.diffQueued(event.author, pull.headSha));
  }

  /** `/sync` and `/rollback`: refused without the permission or on an open fork's pull request; otherwise handed on. */
  async #deploy(gh: GitHubClient, ask: DeployAsk, answer: Answer): Promise<void> {
    const { event, pull, config, command } = ask;
    const refusal = await this.#refusal(gh, event.repository, event.author, command.kind, requiredPermission(command, config));
    if (refusal) {
      await answer.idle(refusal, "refused");
      return;
    }
    if (pull.fromFork && !pull.merged) {
      await answer.idle(replies.forkRefused(event.author, command.kind), "fork");
      return;
    }
    const asker: Asker = {
      repository: event.repository,
      installationId: event.installationId,
      author: event.author,
      trigger: `comment-${event.commentId}`,
      pullRequest: event.pullRequest,
      ...(command.cluster !== undefined ? { cluster: command.cluster } : {}),
    };
    const envs = envsNamed(config, command.environments);
    if (command.kind === "sync" && command.overrideFreeze !== undefined) {
      await answer.reply(
        await this.#overrideFreeze(gh, { ...asker, overrideFreeze: { by: event.author, reason: command.overrideFreeze } }, envs),
      );
      return;
    }
    if (command.kind === "sync") {
      await answer.reply(replies.deployed(event.author, "sync", await this.#deploys.sync(gh, asker, envs)));
      return;
    }
    const rollbackAsk: RollbackAsk | undefined = command.to
      ? { to: command.to }
      : pull.mergeCommitSha
        ? { before: pull.mergeCommitSha }
        : undefined;
    if (!rollbackAsk) {
      await answer.reply(replies.notMerged(event.author));
      return;
    }
    await answer.reply(
      replies.deployed(event.author, "rollback", await this.#rollback(gh, asker, { envs, ask: rollbackAsk, named: command.named })),
    );
  }

  /** `/sync --override-freeze` (an admin's, checked before): the sync, through the freeze of each environment frozen now. */
  async #overrideFreeze(
    gh: GitHubClient,
    asker: Asker & { overrideFreeze: { by: string; reason: string } },
    envs: Environment[],
  ): Promise<string> {
    const now = this.#deps.now();
    const frozen = envs.filter((e) => freezeAt(e.freeze, now) !== undefined).map((e) => e.name);
    const notFrozen = envs.filter((e) => !frozen.includes(e.name)).map((e) => e.name);
    const lines = await this.#deploys.sync(gh, asker, envs);
    if (frozen.length === 0) return replies.notFrozen(asker.author, { environments: notFrozen, lines });
    this.#deps.log.info(
      { repository: asker.repository.id, environments: frozen, by: asker.author, reason: asker.overrideFreeze.reason },
      "freeze overridden",
    );
    return replies.freezeOverridden(asker.author, { frozen, notFrozen, reason: asker.overrideFreeze.reason, lines });
  }

  /** A rollback's reply lines: without names, a pull request's rollback acts on the environments that deployed its merge. */
  async #rollback(gh: GitHubClient, asker: Asker, rollback: { envs: Environment[]; ask: RollbackAsk; named: boolean }): Promise<string[]> {
    const { ask } = rollback;
    if (rollback.named || !("before" in ask)) return this.#rollbacks.run(gh, asker, rollback.envs, ask);
    const envs = await this.#rollbacks.deployedEnvironments(asker.repository, rollback.envs, ask.before);
    if (envs.length === 0) return [replies.neverDeployed(ask.before)];
    return this.#rollbacks.run(gh, asker, envs, ask);
  }

  /** The refusal for someone without the permission deploys need (logged), or undefined when they have it. */
  async #refusal(
    gh: GitHubClient,
    repository: RepositoryRef,
    author: string,
    command: string,
    required: Permission,
  ): Promise<string | undefined> {
    const actual = await this.#shortOf(gh, { repository, author, command }, required);
    if (actual) return replies.refused(author, command, required, actual);
    if (!this.#deps.deploysEnabled) return replies.deploysDisabled(author, command);
    return undefined;
  }

  /** The permission someone has when it falls short of `required` (logged as a refusal), or undefined when it suffices. */
  async #shortOf(
    gh: GitHubClient,
    who: { repository: RepositoryRef; author: string; command: string },
    required: Permission,
  ): Promise<Permission | undefined> {
    const actual = await gh.permission(who.repository, who.author);
    if (permits(actual, required)) return undefined;
    this.#deps.log.info({ repository: who.repository.id, author: who.author, command: who.command, permission: actual }, "command refused");
    return actual;
  }
}

/** What `/help` says of the environments that wait for approval. */
function helpOptions(config: Config): HelpOptions {
  return {
    approvals: config.environments.flatMap((e) =>
      e.approval
        ? [
            {
              environment: e.name,
              from: e.approval.from.map((source) => (source.kind === "permission" ? source.level : teamName(source))).join(" or "),
              required: e.approval.required,
              notAuthor: e.approval.notAuthor,
            },
          ]
        : [],
    ),
  };
}

/** The configured environments a command names, in configuration order. */
function envsNamed(config: Config, names: readonly string[]): Environment[] {
  return config.environments.filter((e) => names.includes(e.name));
}
