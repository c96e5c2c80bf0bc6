import { shortSha } from "./git-ref.ts";
import { code, escapeCode, escapeInline } from "./markdown.ts";
import type { RevertOutcome } from "./rollback.ts";

/** A command addressed to Sluice in a pull-request comment. */
export type Command =
  | { kind: "diff" }
  | { kind: "help" }
  | { kind: "sync"; environments: string[]; named: boolean }
  | { kind: "rollback"; environments: string[]; named: boolean; to?: string }
  | { kind: "invalid"; reason: string };

const NAMES = ["diff", "help", "sync", "rollback"] as const;

/** An invalid command's reply names at most this many of its words, each cut to {@link ECHO_LENGTH} characters. */
const ECHOED_WORDS = 5;
const ECHO_LENGTH = 40;

/**
 * A word of the commenter's, as the reply shows it: a code span (so nothing in it is a link, an
 * image, HTML, a mention or a reference), cut short so a long word cannot fill the reply.
 */
function echo(word: string): string {
  return code(word.length > ECHO_LENGTH ? `${word.slice(0, ECHO_LENGTH)}…` : word);
}

/** Words of the commenter's, named in a reply: the first few, and how many more. */
function echoAll(words: readonly string[]): string {
  const more = words.length > ECHOED_WORDS ? ` and ${words.length - ECHOED_WORDS} more` : "";
  return `${words.slice(0, ECHOED_WORDS).map(echo).join(", ")}${more}`;
}

/** Sluice's own names (environments, branches) in a reply, as code spans. */
function names(list: readonly string[]): string {
  return list.map(code).join(", ");
}

/** At most this many workflow files are named in a reply; the rest are counted. */
const WORKFLOW_FILES_NAMED = 5;

/** Workflow files as a reply names them: "`a`, `b` and `c`", "… and 4 more", or the directory when none is known. */
function workflowFiles(files: readonly string[]): string {
  if (files.length === 0) return `files under ${code(".github/workflows/")}`;
  const named = files.slice(0, WORKFLOW_FILES_NAMED).map(code);
  const more = files.length - named.length;
  if (more > 0) return `${named.join(", ")} and ${more} more`;
  const last = named.pop() ?? "";
  return named.length > 0 ? `${named.join(", ")} and ${last}` : last;
}

/**
 * Reads the command on the first line of a comment. Only lines that start with `/diff`, `/help`,
 * `/sync`, `/rollback` or `/sluice` are addressed to Sluice (other slash commands belong to other
 * bots); anything else about them is invalid. Environment names must exist; none means all.
 */
export function parseCommand(body: string, environments: readonly string[]): Command | undefined {
  const firstLine = (body.split(/\r?\n/, 1)[0] ?? "").trim();
  if (!firstLine.startsWith("/")) return undefined;
  const words = firstLine.slice(1).split(/\s+/).filter(Boolean);
  let [name, ...args] = words;
  if (name === "sluice") [name, ...args] = args;
  else if (!NAMES.includes(name as (typeof NAMES)[number])) return undefined;
  switch (name) {
    case "diff":
    case "help":
      return args.length === 0 ? { kind: name } : { kind: "invalid", reason: `/${name} takes no arguments` };
    case "rollback": {
      const to = args.indexOf("to");
      if (to === -1) return environmentsOf("rollback", args, environments);
      const target = args[to + 1];
      if (to !== args.length - 2 || target === undefined || !/^[0-9a-f]{7,40}$/.test(target))
        return { kind: "invalid", reason: "`/rollback [env…] to <sha>` takes one commit SHA (7 to 40 hex digits) after `to`" };
      const command = environmentsOf("rollback", args.slice(0, to), environments);
      return command.kind === "rollback" ? { ...command, to: target } : command;
    }
    case "sync":
      return environmentsOf("sync", args, environments);
    case undefined:
      return { kind: "invalid", reason: "no command given" };
    default:
      return { kind: "invalid", reason: `unknown command ${echo(`/${name}`)}` };
  }
}

/** A `/sync` or `/rollback` with the environments it names (all when it names none). */
function environmentsOf(kind: "sync" | "rollback", args: readonly string[], environments: readonly string[]): Command {
  const unknown = args.filter((arg) => !environments.includes(arg));
  if (unknown.length > 0) return { kind: "invalid", reason: `unknown environment ${echoAll(unknown)}` };
  return { kind, environments: args.length > 0 ? [...new Set(args)] : [...environments], named: args.length > 0 };
}

/** The reply to `/help` and to anything Sluice did not understand. */
export function helpText(environments: readonly string[], permission: string, reason?: string): string {
  const intro = reason ? `I did not understand that: ${reason}.\n\n` : "";
  return `${intro}**Sluice commands** (on the first line of a comment):

| command | what it does |
|---|---|
| \`/diff\` | render and diff this pull request again |
| \`/sync [env…]\` | deploy the tracked branch's head now, and release a hold |
| \`/rollback [env…]\` | on a merged pull request: deploy the revision live before its merge, open a revert pull request and hold the environment |
| \`/rollback [env…] to <sha>\` | roll back to any revision the agent keeps |
| \`/help\` | show this message |

Environments: ${names(environments) || "none"}. Without names, \`/sync\` acts on all of them and \`/rollback\` on those that deployed this pull request's merge.
A held environment applies no merge until its revert pull request merges or someone comments \`/sync\`.
\`/sync\` and \`/rollback\` need **${permission}** permission on this repository.`;
}

/** Replies to commands: one function per situation, the commenter mentioned first. */
export const replies = {
  invalidConfig: (author: string, first: { file: string; line: number; message: string } | undefined): string =>
    `@${author} the configuration on the default branch is invalid, so no command can run: ${code(`${first?.file ?? ""}:${first?.line ?? 0}`)} ${escapeInline(first?.message ?? "")}`,
  diffTooSoon: (author: string): string =>
    `@${author} a preview was requested less than a minute ago; it updates the preview comment when done.`,
  diffQueued: (author: string, headSha: string): string =>
    `@${author} queued a new preview of \`${shortSha(headSha)}\`; the preview comment updates when it is done.`,
  /** The polite refusal: what was asked, what it needs, what the commenter has; nothing happened. */
  refused: (author: string, command: string, required: string, actual: string): string =>
    `Sorry @${author}, \`/${command}\` needs **${required}** permission on this repository and you have **${actual}**. Nothing was done.`,
  deploysDisabled: (author: string, command: string): string =>
    `@${author} deploys are not enabled on this Sluice (it has no job signing key), so \`/${command}\` cannot run. Nothing was done.`,
  deployed: (author: string, command: string, lines: readonly string[]): string => `@${author} \`/${command}\`:\n\n${lines.join("\n")}`,
  forkRefused: (author: string, command: string): string =>
    `Sorry @${author}, \`/${command}\` is not taken on an open pull request from a fork. Nothing was done.`,
  notMerged: (author: string): string =>
    `@${author} this pull request is not merged, so it has no deploy to roll back. Use \`/rollback <env> to <sha>\` to pick a revision. Nothing was done.`,
  neverDeployed: (sha: string): string =>
    `- no environment has \`${shortSha(sha)}\` in the revisions its agent keeps, so there is nothing to roll back to; nothing queued.`,
  /** `reason` is Sluice's own markdown (see `rollbackTarget`). */
  cannotRollBack: (environment: string, reason: string): string => `- ${code(environment)}: cannot roll back: ${reason}; nothing queued.`,
  revertOpened: (environments: readonly string[], pull: { number: number; url: string }, branch: string): string =>
    `- revert pull request [#${pull.number}](${pull.url}) puts ${code(branch)} back; merging it releases ${names(environments)}, and so does \`/sync\`.`,
  revertNotNeeded: (environments: readonly string[], branch: string, target: string): string =>
    `- ${code(branch)} already has \`${shortSha(target)}\`'s tree, so no revert pull request; \`/sync\` releases ${names(environments)}.`,
  /**
   * No revert pull request because it would change workflow files (`files`, or none known), which
   * Sluice never writes: GitHub lets an app do so only with the `workflows` permission, and that
   * would let it change CI. Says how to make the revert by hand and release the hold.
   */
  revertTouchesWorkflows: (environments: readonly string[], branch: string, target: string, files: readonly string[]): string =>
    `- no revert pull request: putting ${code(branch)} back to \`${shortSha(target)}\` would change ${workflowFiles(files)}; Sluice does not write workflow files, since GitHub lets an app do so only with the \`workflows\` permission, which would let it change CI. Revert by hand: on a branch from ${code(branch)}, at the repository's root, run ${code(`git restore --source=${target} --staged --worktree .`)}, commit, and open a pull request; once it is merged, \`/sync\` releases ${names(environments)}.`,
  auditLine: (at: string, sender: string, kind: "sync" | "rollback", text: string): string =>
    `${at}: **${kind === "sync" ? "Re-sync" : "Roll back"}** pressed by @${sender}: ${text}`,
  /** The audit text of a button on the deploy check run of an environment the default branch does not configure (validly). */
  auditNoEnvironment: (environment: string): string =>
    `refused: the default branch's configuration has no valid environment ${code(environment)}; nothing was done.`,
  /** The audit text of a button press refused: `refusal` is the reply a comment would have had. */
  auditRefused: (refusal: string): string => `refused: ${refusal}`,
  /** The audit text of a button press taken: the lines a comment's reply would have had. */
  auditDone: (lines: readonly string[]): string => `\n${lines.join("\n")}`,
  /** A link to a deploy check run, as a reply's line gives it. */
  checkRunLink: (url: string): string => `[check run](${url})`,
  /** A rollback of one environment: the revision it deploys, the one live, and the check run. */
  rollbackLine: (environment: string, added: boolean, rollback: { target: string; from: string; link: string }): string =>
    replies.queuedLine(
      environment,
      added,
      `roll back to \`${shortSha(rollback.target)}\` from \`${shortSha(rollback.from)}\` (${rollback.link}); the environment is held`,
    ),
  /** The reply's line about a revert pull request: opened (or moved), not needed, or left to a person. */
  revertLine: (environments: readonly string[], branch: string, target: string, outcome: RevertOutcome): string => {
    switch (outcome.kind) {
      case "opened":
        return replies.revertOpened(environments, outcome.pull, branch);
      case "unchanged":
        return replies.revertNotNeeded(environments, branch, target);
      case "workflows":
        return replies.revertTouchesWorkflows(environments, branch, target, outcome.files);
    }
  },
  /** The message of a revert pull request's commit. */
  revertCommitMessage: (revert: {
    author: string;
    environments: readonly string[];
    from: string;
    target: string;
    branch: string;
  }): string =>
    `Revert ${revert.branch} to ${shortSha(revert.target)}\n\nRolled back from ${shortSha(revert.from)} by @${revert.author} with Sluice (${revert.environments.join(", ")}).`,
  /** The title of a revert pull request. */
  revertTitle: (branch: string, target: string): string => `Revert ${branch} to ${shortSha(target)} (Sluice rollback)`,
  /** The output of the deploy check run a command creates: rendering, and who asked for it. */
  deployQueuedOutput: (reason: "sync" | "rollback", author: string, sha: string): { title: string; summary: string } => ({
    title: "Rendering",
    summary: `\`/${reason}\` by ${escapeInline(author)}: rendering \`${shortSha(sha)}\`.`,
  }),
  /** The output of a command's deploy check run when the same request was queued already. */
  alreadyQueuedOutput: (): { title: string; summary: string } => ({
    title: "Already queued",
    summary: "The same request was already queued.",
  }),
  /** `what` is Sluice's own markdown. */
  queuedLine: (environment: string, added: boolean, what: string): string =>
    `- ${code(environment)}: ${added ? "queued" : "already queued"}: ${what}.`,
  /** A `/sync` of one environment: the branch head it deploys, the check run, and the hold it releases. */
  syncLine: (environment: string, added: boolean, sync: { branch: string; sha: string; link: string; heldAt?: string }): string =>
    replies.queuedLine(
      environment,
      added,
      `deploy ${code(sync.branch)} at \`${shortSha(sync.sha)}\` (${sync.link})${sync.heldAt ? `; releases the hold set by \`/rollback\` to \`${shortSha(sync.heldAt)}\`` : ""}`,
    ),
  /** The body of a rollback's revert pull request. */
  revertBody: (revert: {
    author: string;
    environments: readonly string[];
    from: string;
    target: string;
    branch: string;
    pullRequest?: number;
  }): string =>
    `@${revert.author} rolled back ${names(revert.environments)} from \`${shortSha(revert.from)}\` to \`${shortSha(revert.target)}\`${revert.pullRequest ? ` (#${revert.pullRequest})` : ""}.\n\nThis pull request makes ${code(revert.branch)} say what runs: its tree is \`${shortSha(revert.target)}\`'s. Until it merges (or someone comments \`/sync\`), the environments are **held**: merges get previews and deploy check runs, and are not applied.`,
};

/**
 * Notes on a `sluice/preview` check run whose Re-run button was pressed and not taken: there is
 * no new check run to say why, and Re-run says nothing in the conversation.
 */
export const rerunNotes = {
  line: (at: string, sender: string, text: string): string => `${at}: **Re-run** pressed by @${sender}: ${text}`,
  outdated: (head: string): string => `not re-run: the pull request's head is now \`${shortSha(head)}\`, which has a preview of its own.`,
  invalidConfig: (first: { file: string; line: number; message: string } | undefined): string =>
    `refused: the configuration on the default branch is invalid (\`${escapeCode(first?.file ?? "")}:${first?.line ?? 0}\` ${escapeInline(first?.message ?? "")}); nothing was done.`,
  refused: (sender: string, required: string, actual: string): string =>
    `refused: re-running the preview needs **${required}** permission and @${sender} has **${actual}**; nothing was done.`,
  tooSoon: (): string =>
    "not re-run: a preview of this pull request was requested less than a minute ago; it updates this pull request when done.",
};
