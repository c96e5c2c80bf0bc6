import { helpText, parseCommand, replies } from "../../core/commands.ts";
import type { Config, Environment } from "../../core/config.ts";
import { deployJobId, deployRequest, type DeployRequest, type RepositoryRef } from "../../core/deploy-requests.ts";
import { deployCheckName } from "../../core/deploy-status.ts";
import type { Hold } from "../../core/inventory.ts";
import { code, escapeInline, prefixWithin, utf8Length } from "../../core/markdown.ts";
import { CHECK_RUN_TEXT_LIMIT, rerunNotes } from "../../core/preview-comment.ts";
import { changedFiles, revertBranch, rollbackTarget, WORKFLOWS_DIR, type RollbackAsk } from "../../core/rollback.ts";
import { checkRunUrl, permits, WorkflowsPermissionError, type GitHubClient, type Permission } from "../github/client.ts";
import type { AppQueues } from "../queue/queues.ts";
import type { CheckoutCache } from "./checkout-cache.ts";
import type { EnvironmentStates } from "./environment-states.ts";
import type { Logger } from "./logger.ts";
import type { PullRequestState } from "./pr-state.ts";
import { requestPreview } from "./preview-requests.ts";
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

/** A check run's output as its webhook gave it. */
export interface CheckRunOutput {
  title: string;
  summary: string;
  text?: string;
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
}

/** Who asked for a deploy, and from where. */
interface Asker {
  repository: RepositoryRef;
  installationId: number;
  author: string;
  trigger: DeployRequest["trigger"];
  pullRequest?: number;
}

/**
 * Handles `/diff`, `/sync`, `/rollback` and `/help` in pull-request comments, and the Re-sync and
 * Roll back buttons of deploy check runs: acknowledges, reads the configuration from the default
 * branch, checks the commenter's permission for anything that deploys, acts, and says what it did.
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
    const reply = async (text: string): Promise<void> => {
      await gh.createComment(event.repository, event.pullRequest, text);
    };
    // Answers that change nothing (help, refusals, "too soon") are one a minute per pull request:
    // anyone may comment, and each answer is a comment by Sluice.
    const pr = { repositoryId: event.repository.id, number: event.pullRequest };
    const replyIdle = async (text: string, why: string): Promise<void> => {
      if (await this.#deps.prState.allowInvalidReply(pr, this.#deps.now())) await reply(text);
      else
        this.#deps.log.info(
          { ...pr, author: event.author, why },
          "command not answered: an answer that changed nothing was given less than a minute ago",
        );
    };
    const pull = await gh.pullRequest(event.repository, event.pullRequest);
    // Who may run what, and where it deploys, is the default branch's word, never the pull request's base.
    const config = await reviewedConfig(gh, event.repository, discoverFromCheckout(this.#deps.checkouts, gh, event.repository));
    if (!config.ok) {
      await reply(replies.invalidConfig(event.author, config.errors[0]));
      return;
    }
    const environments = config.config.environments.map((e) => e.name);
    const permission = config.config.commands.permission;
    const command = parseCommand(event.body, environments);
    switch (command?.kind) {
      case undefined:
        return;
      case "help":
        await replyIdle(helpText(environments, permission), "help");
        return;
      case "invalid":
        await replyIdle(helpText(environments, permission, command.reason), "invalid");
        return;
      case "diff": {
        // A new preview restarts the gating check: the same permission as the Re-run button.
        const actual = await gh.permission(event.repository, event.author);
        if (!permits(actual, permission)) {
          this.#deps.log.info(
            { repository: event.repository.id, author: event.author, command: "diff", permission: actual },
            "command refused",
          );
          await replyIdle(replies.refused(event.author, "diff", permission, actual), "refused");
          return;
        }
        if (!(await this.#deps.prState.allowDiff({ repositoryId: event.repository.id, number: event.pullRequest }))) {
          await replyIdle(replies.diffTooSoon(event.author), "too soon");
          return;
        }
        await requestPreview(gh, this.#deps, { repository: event.repository, installationId: event.installationId, pull });
        await reply(replies.diffQueued(event.author, pull.headSha));
        return;
      }
      case "sync":
      case "rollback": {
        const refusal = await this.#refusal(gh, event.repository, event.author, command.kind, permission);
        if (refusal) {
          await replyIdle(refusal, "refused");
          return;
        }
        if (pull.fromFork && !pull.merged) {
          await replyIdle(replies.forkRefused(event.author, command.kind), "fork");
          return;
        }
        const asker: Asker = {
          repository: event.repository,
          installationId: event.installationId,
          author: event.author,
          trigger: `comment-${event.commentId}`,
          pullRequest: event.pullRequest,
        };
        if (command.kind === "sync") {
          await reply(replies.deployed(event.author, "sync", await this.#sync(gh, asker, envsNamed(config.config, command.environments))));
          return;
        }
        let ask: RollbackAsk;
        if (command.to) ask = { to: command.to };
        else if (pull.mergeCommitSha) ask = { before: pull.mergeCommitSha };
        else {
          await reply(replies.notMerged(event.author));
          return;
        }
        // Without names, a pull request's rollback acts on the environments that deployed its merge.
        let envs = envsNamed(config.config, command.environments);
        if (!command.named && "before" in ask) {
          envs = await this.#deployed(event.repository, envs, ask.before);
          if (envs.length === 0) {
            await reply(replies.deployed(event.author, "rollback", [replies.neverDeployed(ask.before)]));
            return;
          }
        }
        await reply(replies.deployed(event.author, "rollback", await this.#rollback(gh, asker, envs, ask)));
        return;
      }
    }
  }

  /**
   * Handles a Re-sync or Roll back button on a `sluice/deploy (<env>)` check run: the same
   * permission check as the comments, and an audit line on the check run either way.
   */
  async handleAction(gh: GitHubClient, event: CheckRunActionEvent): Promise<void> {
    const name = /^sluice\/deploy \((.+)\)$/.exec(event.checkRun.name)?.[1];
    const kind = event.identifier === "sync" ? "sync" : event.identifier === "rollback" ? "rollback" : undefined;
    if (!name || !kind) return;
    const audit = async (text: string): Promise<void> => {
      const line = replies.auditLine(new Date(this.#deps.now()).toISOString(), event.sender, kind, text);
      await gh.updateCheckRun(event.repository, event.checkRun.id, { output: withNote(event.checkRun.output, line) });
    };
    const config = await reviewedConfig(gh, event.repository, discoverFromCheckout(this.#deps.checkouts, gh, event.repository));
    const env = config.ok ? config.config.environments.find((e) => e.name === name) : undefined;
    if (!config.ok || !env) {
      await audit(`refused: the default branch's configuration has no valid environment ${code(name)}; nothing was done.`);
      return;
    }
    const refusal = await this.#refusal(gh, event.repository, event.sender, kind, config.config.commands.permission);
    if (refusal) {
      await audit(`refused: ${refusal}`);
      return;
    }
    const asker: Asker = {
      repository: event.repository,
      installationId: event.installationId,
      author: event.sender,
      trigger: `action-${event.deliveryId.toLowerCase()}`,
    };
    const lines =
      kind === "sync" ? await this.#sync(gh, asker, [env]) : await this.#rollback(gh, asker, [env], { before: event.checkRun.headSha });
    await audit(`\n${lines.join("\n")}`);
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
    const actual = await gh.permission(event.repository, event.sender);
    if (!permits(actual, required)) {
      this.#deps.log.info(
        { repository: event.repository.id, author: event.sender, command: "re-run", permission: actual },
        "command refused",
      );
      await note(rerunNotes.refused(event.sender, required, actual));
      return;
    }
    if (!(await this.#deps.prState.allowDiff({ repositoryId: event.repository.id, number: event.pullRequest }))) {
      await note(rerunNotes.tooSoon());
      return;
    }
    await requestPreview(gh, this.#deps, { repository: event.repository, installationId: event.installationId, pull });
  }

  /** The refusal for someone without the permission deploys need (logged), or undefined when they have it. */
  async #refusal(
    gh: GitHubClient,
    repository: RepositoryRef,
    author: string,
    command: string,
    required: Permission,
  ): Promise<string | undefined> {
    const actual = await gh.permission(repository, author);
    if (!permits(actual, required)) {
      this.#deps.log.info({ repository: repository.id, author, command, permission: actual }, "command refused");
      return replies.refused(author, command, required, actual);
    }
    if (!this.#deps.deploysEnabled) return replies.deploysDisabled(author, command);
    return undefined;
  }

  /** The environments whose history, as their agents reported it, has a deploy of `sha`. */
  async #deployed(repository: RepositoryRef, envs: readonly Environment[], sha: string): Promise<Environment[]> {
    const states = await Promise.all(envs.map((env) => this.#deps.environments.load(repository.id, env.name)));
    return envs.filter((_, i) => states[i]?.history?.revisions.some((r) => r.sha === sha));
  }

  /** Queues a deploy of each environment's tracked branch head; a sync also releases a hold. */
  async #sync(gh: GitHubClient, asker: Asker, envs: readonly Environment[]): Promise<string[]> {
    const lines: string[] = [];
    for (const env of envs) {
      const sha = await gh.branchSha(asker.repository, env.branch);
      const { hold } = await this.#deps.environments.load(asker.repository.id, env.name);
      const queued = await this.#queue(gh, asker, env, { sha, reason: "sync" });
      const sync = { branch: env.branch, sha, link: queued.link, ...(hold ? { heldAt: hold.sha } : {}) };
      lines.push(replies.syncLine(env.name, queued.added, sync));
    }
    return lines;
  }

  /**
   * Queues a rollback of each environment to a revision from the agent's own history, holds the
   * environment, and opens (or moves) one revert pull request per branch and target so Git says
   * what runs.
   */
  async #rollback(gh: GitHubClient, asker: Asker, envs: readonly Environment[], ask: RollbackAsk): Promise<string[]> {
    const lines: string[] = [];
    const reverts = new Map<string, Revert>();
    for (const env of envs) {
      const state = await this.#deps.environments.load(asker.repository.id, env.name);
      const picked = rollbackTarget(state.history, ask);
      if (!picked.ok) {
        lines.push(replies.cannotRollBack(env.name, picked.reason));
        continue;
      }
      const { target, from } = picked;
      const queued = await this.#queue(gh, asker, env, { sha: target.sha, reason: "rollback", from: from.sha });
      lines.push(
        replies.queuedLine(
          env.name,
          queued.added,
          `roll back to \`${target.sha.slice(0, 7)}\` from \`${from.sha.slice(0, 7)}\` (${queued.link}); the environment is held`,
        ),
      );
      const key = `${env.branch}\n${target.sha}`;
      const revert = reverts.get(key) ?? {
        branch: env.branch,
        head: revertBranch(ask, target.sha),
        from: from.sha,
        target: target.sha,
        envs: [],
      };
      revert.envs.push({
        name: env.name,
        hold: { by: asker.author, at: new Date(this.#deps.now()).toISOString(), jobId: queued.jobId, sha: target.sha },
      });
      reverts.set(key, revert);
    }
    for (const revert of reverts.values()) {
      const outcome = await this.#revertPull(gh, asker, revert);
      const pull = outcome.kind === "opened" ? outcome.pull : undefined;
      // Held at once, so the next merge's check run says so; merging the revert pull request releases it.
      for (const { name, hold } of revert.envs) await this.#deps.environments.held(asker.repository.id, name, hold, pull?.number);
      lines.push(revertLine(revert, outcome));
    }
    return lines;
  }

  /**
   * Opens the revert pull request of a rollback (Git Data API): a commit whose tree is the
   * target's on top of the branch head, on `sluice/revert-<merge>`. A second rollback of the same
   * merge moves that branch and keeps its pull request. Writes nothing when the branch already
   * has the target's tree, or when the revert would change a workflow file, which GitHub lets
   * only an app with the `workflows` permission write (#24): Sluice does not ask for it, and
   * says so rather than fail. GitHub's own refusal, should the branch move under the check, gets
   * the same answer.
   */
  async #revertPull(gh: GitHubClient, asker: Asker, revert: Revert): Promise<RevertOutcome> {
    const head = await gh.branchSha(asker.repository, revert.branch);
    const [headTree, targetTree] = await Promise.all([
      gh.commitTree(asker.repository, head),
      gh.commitTree(asker.repository, revert.target),
    ]);
    if (headTree === targetTree) return { kind: "unchanged" };
    const workflows = await workflowChanges(gh, asker.repository, headTree, targetTree);
    const refused = (files: readonly string[]): RevertOutcome => {
      this.#deps.log.info(
        { repository: asker.repository.id, branch: revert.branch, target: revert.target, files },
        "revert pull request not opened: it would change workflow files",
      );
      return { kind: "workflows", files };
    };
    if (workflows.length > 0) return refused(workflows);
    const short = (sha: string): string => sha.slice(0, 7);
    const branch = revert.head;
    try {
      const commit = await gh.createCommit(asker.repository, {
        message: `Revert ${revert.branch} to ${short(revert.target)}\n\nRolled back from ${short(revert.from)} by @${asker.author} with Sluice (${names(revert).join(", ")}).`,
        tree: targetTree,
        parents: [head],
      });
      await gh.setBranch(asker.repository, branch, commit);
    } catch (error) {
      if (error instanceof WorkflowsPermissionError) return refused(error.files);
      throw error;
    }
    const body = replies.revertBody({
      author: asker.author,
      environments: names(revert),
      from: revert.from,
      target: revert.target,
      branch: revert.branch,
      ...(asker.pullRequest ? { pullRequest: asker.pullRequest } : {}),
    });
    const pull =
      (await gh.openPullFrom(asker.repository, branch, revert.branch)) ??
      (await gh.createPull(asker.repository, {
        title: `Revert ${revert.branch} to ${short(revert.target)} (Sluice rollback)`,
        head: branch,
        base: revert.branch,
        body,
      }));
    return { kind: "opened", pull };
  }

  /** Creates the deploy check run (so the reply can link it) and queues the request. */
  async #queue(
    gh: GitHubClient,
    asker: Asker,
    env: Environment,
    what: { sha: string; reason: "sync" | "rollback"; from?: string },
  ): Promise<{ added: boolean; link: string; jobId: string }> {
    const fields = {
      repository: asker.repository,
      installationId: asker.installationId,
      environment: env.name,
      sha: what.sha,
      reason: what.reason,
      requestedBy: asker.author,
      trigger: asker.trigger,
      ...(asker.pullRequest ? { pullRequest: asker.pullRequest } : {}),
      ...(what.from ? { from: what.from } : {}),
    };
    const jobId = deployJobId(fields);
    const checkRunId = await gh.createCheckRun(asker.repository, deployCheckName(env.name), what.sha, {
      externalId: jobId,
      status: "queued",
      output: {
        title: "Rendering",
        summary: `\`/${what.reason}\` by ${escapeInline(asker.author)}: rendering \`${what.sha.slice(0, 7)}\`.`,
      },
    });
    const added = await this.#deps.queues.addDeployRequest(deployRequest({ ...fields, checkRunId }, this.#deps.now()));
    if (!added)
      await gh.updateCheckRun(asker.repository, checkRunId, {
        status: "completed",
        conclusion: "skipped",
        output: { title: "Already queued", summary: "The same request was already queued." },
      });
    return { added, jobId, link: `[check run](${checkRunUrl(this.#deps.webUrl, asker.repository, checkRunId)})` };
  }
}

/** One revert pull request: the tracked branch, its head branch, the rollback, and the environments it covers with their holds. */
interface Revert {
  branch: string;
  head: string;
  from: string;
  target: string;
  envs: { name: string; hold: Hold }[];
}

function names(revert: Revert): string[] {
  return revert.envs.map((e) => e.name);
}

/** What became of a rollback's revert pull request. */
type RevertOutcome =
  | { kind: "opened"; pull: { number: number; url: string } }
  /** The branch already has the target's tree. */
  | { kind: "unchanged" }
  /** Not written: it would change these workflow files (none named when GitHub refused without naming one). */
  | { kind: "workflows"; files: readonly string[] };

/** The reply's line about a revert pull request. */
function revertLine(revert: Revert, outcome: RevertOutcome): string {
  switch (outcome.kind) {
    case "opened":
      return replies.revertOpened(names(revert), outcome.pull, revert.branch);
    case "unchanged":
      return replies.revertNotNeeded(names(revert), revert.branch, revert.target);
    case "workflows":
      return replies.revertTouchesWorkflows(names(revert), revert.branch, revert.target, outcome.files);
  }
}

/**
 * The workflow files (under {@link WORKFLOWS_DIR}) that differ between two trees. Reads each
 * tree's way down to the directory, and lists the directories only when they differ.
 */
async function workflowChanges(gh: GitHubClient, repository: RepositoryRef, before: string, after: string): Promise<string[]> {
  const [from, to] = await Promise.all([gh.subtree(repository, before, WORKFLOWS_DIR), gh.subtree(repository, after, WORKFLOWS_DIR)]);
  if (from === to) return [];
  const [old, next] = await Promise.all([from ? gh.treeFiles(repository, from) : [], to ? gh.treeFiles(repository, to) : []]);
  return changedFiles(old, next).map((path) => `${WORKFLOWS_DIR}/${path}`);
}

/** The configured environments a command names, in configuration order. */
function envsNamed(config: Config, names: readonly string[]): Environment[] {
  return config.environments.filter((e) => names.includes(e.name));
}

/** A check run's output with a line added to its summary: the summary cut (in bytes) to keep within GitHub's limit, the text kept. */
function withNote(output: CheckRunOutput, line: string): CheckRunOutput {
  const summary = prefixWithin(output.summary, CHECK_RUN_TEXT_LIMIT - utf8Length(line) - 2);
  return { ...output, summary: `${summary}\n\n${line}` };
}
