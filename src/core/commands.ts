import { shortSha } from "./git-ref.ts";
import { clusterNameSchema, targetName } from "./fleet.ts";
import { code, escapeCode, escapeInline } from "./markdown.ts";
import type { RevertOutcome } from "./rollback.ts";

/** A command addressed to Sluice in a pull-request comment. */
export type Command =
  | { kind: "diff" }
  | { kind: "help" }
  /** `overrideFreeze` is the commenter's reason for deploying through a freeze window (raw text: escape it wherever it is shown). */
  | { kind: "sync"; environments: string[]; named: boolean; overrideFreeze?: string; cluster?: string }
  | { kind: "rollback"; environments: string[]; named: boolean; to?: string; cluster?: string }
  | { kind: "approve"; environment: string }
  /** `reason` is the commenter's raw text (trimmed, at most {@link REASON_LENGTH} characters): escape it wherever it is shown. */
  | { kind: "reject"; environment: string; reason: string }
  /** `reason` is the commenter's raw text (trimmed, at most {@link REASON_LENGTH} characters): escape it wherever it is shown. */
  | { kind: "promote"; environment: string; reason: string }
  | { kind: "invalid"; reason: string };

/** A command Sluice did not understand, and why. */
type Invalid = Extract<Command, { kind: "invalid" }>;

const NAMES = ["diff", "help", "sync", "rollback", "approve", "reject", "promote"] as const;

/** The options of `/sync`: `/sync [env…] --override-freeze <reason>`, `/sync <env> --cluster <name>`. */
const OVERRIDE_FREEZE = "--override-freeze";
const CLUSTER = "--cluster";

/** Commands with arguments that take no option: `--override-freeze` among them is a mistake, not a word of a reason. */
const WITHOUT_OPTIONS: ReadonlySet<string> = new Set(["rollback", "approve", "reject", "promote"]);

/** A reason (of `/reject`, `/promote`, `--override-freeze`) has at most this many characters: it is recorded on check runs and deployments. */
export const REASON_LENGTH = 200;

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

/** The words after a command's name, and the raw text of the line from any of them on. */
interface Args {
  words: readonly string[];
  /** The line from the `index`th word to its end, trimmed; "" past the last word. */
  from: (index: number) => string;
}

/**
 * Reads the command on the first line of a comment. Only lines that start with `/diff`, `/help`,
 * `/sync`, `/rollback`, `/approve`, `/reject`, `/promote` or `/sluice` are addressed to Sluice
 * (other slash commands belong to other bots); anything else about them is invalid. Environment
 * names must exist; none means all. A reason is the rest of the line, as written.
 */
export function parseCommand(body: string, environments: readonly string[]): Command | undefined {
  const line = (body.split(/\r?\n/, 1)[0] ?? "").trim();
  if (!line.startsWith("/")) return undefined;
  const matches = [...line.slice(1).matchAll(/\S+/g)];
  const start = matches[0]?.[0] === "sluice" ? 1 : 0;
  const name = matches[start]?.[0];
  if (start === 0 && !NAMES.includes(name as (typeof NAMES)[number])) return undefined;
  const rest = matches.slice(start + 1);
  const args: Args = {
    words: rest.map((match) => match[0]),
    from: (index) => {
      const match = rest[index];
      return match === undefined ? "" : line.slice(1 + match.index).trim();
    },
  };
  if (WITHOUT_OPTIONS.has(name ?? "") && args.words.includes(OVERRIDE_FREEZE))
    return invalid(`${code(OVERRIDE_FREEZE)} goes only with \`/sync\`: \`/sync [env…] ${OVERRIDE_FREEZE} <reason>\``);
  return commandOf(name, args, environments);
}

/** The command `name` with its arguments (after `/` or `/sluice`). */
function commandOf(name: string | undefined, args: Args, environments: readonly string[]): Command {
  switch (name) {
    case "diff":
    case "help":
      return args.words.length === 0 ? { kind: name } : invalid(`/${name} takes no arguments`);
    case "rollback":
      return rollbackOf(args.words, environments);
    case "sync":
      return syncOf(args, environments);
    case "approve": {
      const environment = environmentOf("`/approve <env>`", args.words, environments);
      if (typeof environment !== "string") return environment;
      if (args.words.length > 1)
        return invalid(`\`/approve <env>\` takes one environment and nothing after it, not ${echoAll(args.words.slice(1))}`);
      return { kind: "approve", environment };
    }
    case "reject":
    case "promote": {
      const usage = `\`/${name} <env> <reason>\``;
      const environment = environmentOf(usage, args.words, environments);
      if (typeof environment !== "string") return environment;
      const reason = reasonOf(usage, args.from(1), "the environment");
      return typeof reason === "string" ? { kind: name, environment, reason } : reason;
    }
    case undefined:
      return invalid("no command given");
    default:
      return invalid(`unknown command ${echo(`/${name}`)}`);
  }
}

/** An invalid command; `reason` is Sluice's markdown (the commenter's words in it only through `echo`). */
function invalid(reason: string): Invalid {
  return { kind: "invalid", reason };
}

/** `/rollback [env…]`, `/rollback [env…] to <sha>`, and either as `/rollback <env> --cluster <name>` (one cluster of a fleet). */
function rollbackOf(words: readonly string[], environments: readonly string[]): Command {
  const option = clusterOption("rollback", words);
  if ("kind" in option) return option;
  const { cluster, rest: args } = option;
  const other = args.find((word) => word.startsWith("-"));
  if (other !== undefined) return invalid(`\`/rollback\` takes one option, \`${CLUSTER} <name>\`, not ${echo(other)}`);
  const to = args.indexOf("to");
  const named = to === -1 ? args : args.slice(0, to);
  if (cluster !== undefined && named.length !== 1) return invalid(`\`/rollback <env> ${CLUSTER} <name>\` names one environment`);
  const command = environmentsOf("rollback", named, environments);
  if (command.kind !== "rollback") return command;
  const target = to === -1 ? undefined : args[to + 1];
  if (to !== -1 && (to !== args.length - 2 || target === undefined || !/^[0-9a-f]{7,40}$/.test(target)))
    return invalid("`/rollback [env…] to <sha>` takes one commit SHA (7 to 40 hex digits) after `to`");
  return { ...command, ...(target === undefined ? {} : { to: target }), ...(cluster === undefined ? {} : { cluster }) };
}

/** A command's words without its `--cluster <name>`, and the name; invalid when the name is missing or not a cluster's. */
function clusterOption(name: "sync" | "rollback", words: readonly string[]): { cluster?: string; rest: readonly string[] } | Invalid {
  const at = words.indexOf(CLUSTER);
  if (at === -1) return { rest: words };
  const cluster = words[at + 1];
  if (cluster === undefined || !clusterNameSchema.safeParse(cluster).success)
    return invalid(
      `\`/${name} <env> ${CLUSTER} <name>\` takes one cluster's name, as its agent's SLUICE_AGENT_CLUSTER gives it (such as eu-1)`,
    );
  return { cluster, rest: [...words.slice(0, at), ...words.slice(at + 2)] };
}

/**
 * `/sync [env…]`, `/sync <env> --cluster <name>` (one cluster of a fleet), and either with
 * `--override-freeze <reason>` last: everything after that flag is the reason.
 */
function syncOf(args: Args, environments: readonly string[]): Command {
  const flag = args.words.indexOf(OVERRIDE_FREEZE);
  const clustered = clusterOption("sync", flag === -1 ? args.words : args.words.slice(0, flag));
  if ("kind" in clustered) return clustered;
  const { cluster, rest: named } = clustered;
  const option = named.find((word) => word.startsWith("-"));
  if (option !== undefined)
    return invalid(
      `\`/sync\` takes two options, \`${CLUSTER} <name>\` and \`${OVERRIDE_FREEZE} <reason>\` after the environments, not ${echo(option)}`,
    );
  if (cluster !== undefined && named.length !== 1) return invalid(`\`/sync <env> ${CLUSTER} <name>\` names one environment`);
  const synced = environmentsOf("sync", named, environments);
  const command = synced.kind === "sync" && cluster !== undefined ? { ...synced, cluster } : synced;
  if (flag === -1 || command.kind !== "sync") return command;
  const reason = reasonOf(`\`/sync [env…] ${OVERRIDE_FREEZE} <reason>\``, args.from(flag + 1), code(OVERRIDE_FREEZE));
  return typeof reason === "string" ? { ...command, overrideFreeze: reason } : reason;
}

/** A `/sync` or `/rollback` with the environments it names (all when it names none). */
function environmentsOf(kind: "sync" | "rollback", args: readonly string[], environments: readonly string[]): Command {
  const unknown = args.filter((arg) => !environments.includes(arg));
  if (unknown.length > 0) return invalid(`unknown environment ${echoAll(unknown)}`);
  return { kind, environments: args.length > 0 ? [...new Set(args)] : [...environments], named: args.length > 0 };
}

/** The environment a command names first (`usage` is how the command is written), which must exist. */
function environmentOf(usage: string, args: readonly string[], environments: readonly string[]): string | Invalid {
  const [environment] = args;
  if (environment === undefined) return invalid(`${usage} needs the name of an environment`);
  return environments.includes(environment) ? environment : invalid(`unknown environment ${echo(environment)}`);
}

/** Splits text into what people count as characters (the locale does not change grapheme clusters). */
const GRAPHEMES = new Intl.Segmenter("en", { granularity: "grapheme" });

/** Characters as people count them (grapheme clusters): an emoji of several code points is one. */
function characters(text: string): number {
  return Array.from(GRAPHEMES.segment(text)).length;
}

/** A reason as written after `after` (Sluice's markdown): required, at most {@link REASON_LENGTH} characters. */
function reasonOf(usage: string, text: string, after: string): string | Invalid {
  if (text === "") return invalid(`${usage} needs a reason after ${after}`);
  const length = characters(text);
  if (length > REASON_LENGTH) return invalid(`the reason of ${usage} is ${length} characters long; it takes at most ${REASON_LENGTH}`);
  return text;
}

/** An environment's approval policy, as `/help` tells it (the fields of its `approval` that matter to who approves). */
export interface HelpApproval {
  environment: string;
  /** A repository permission level (the least an approver needs) or a team as `@org/team-slug`. */
  from: string;
  required: number;
  notAuthor: boolean;
}

/** What {@link helpText} says beyond the commands. */
export interface HelpOptions {
  /** The environments that wait for approval; without it, the help names the rule only. */
  approvals?: readonly HelpApproval[];
}

/** The reply to `/help` and to anything Sluice did not understand. */
export function helpText(environments: readonly string[], permission: string, reason?: string, options: HelpOptions = {}): string {
  const intro = reason ? `I did not understand that: ${reason}.\n\n` : "";
  return `${intro}**Sluice commands** (on the first line of a comment):

| command | what it does |
|---|---|
| \`/diff\` | render and diff this pull request again |
| \`/sync [env…]\` | deploy the tracked branch's head now, and release a hold |
| \`/rollback [env…]\` | on a merged pull request: deploy the revision live before its merge, open a revert pull request and hold the environment |
| \`/rollback [env…] to <sha>\` | roll back to any revision the agent keeps |
| \`/approve <env>\` | approve the deploy waiting for approval in that environment |
| \`/reject <env> <reason>\` | refuse the deploy waiting for approval in that environment: it is not applied |
| \`/promote <env> <reason>\` | deploy the commit soaking upstream of that environment now, skipping the rest of its soak |
| \`/sync [env…] --override-freeze <reason>\` | deploy now although a freeze window holds the environment |
| \`/sync <env> --cluster <name>\` | deploy the branch's head to one cluster of an environment on several (and release that cluster's hold) |
| \`/rollback <env> --cluster <name>\` | roll one cluster of an environment on several back (also with \`to <sha>\`), and hold that cluster alone |
| \`/help\` | show this message |

Environments: ${names(environments) || "none"}. Without names, \`/sync\` acts on all of them and \`/rollback\` on those that deployed this pull request's merge.
A held environment applies no merge until its revert pull request merges or someone comments \`/sync\`.
\`/sync\`, \`/rollback\`, \`/promote\` and \`/reject\` need **${escapeInline(permission)}** permission on this repository; \`/sync … --override-freeze\` needs **admin**.
\`/approve <env>\` is for whoever the environment's \`approval.from\` allows${approvers(options.approvals)}.`;
}

/** Who may approve in each environment that waits for approval, for `/help`: "" when not told. */
function approvers(approvals: readonly HelpApproval[] | undefined): string {
  if (approvals === undefined) return "";
  if (approvals.length === 0) return ": no environment here waits for approval";
  const each = approvals.map((approval) => {
    const who = approval.from.startsWith("@")
      ? `members of team ${code(approval.from)}`
      : `**${escapeInline(approval.from)}** permission or more`;
    const count = `${approval.required} approval${approval.required === 1 ? "" : "s"}`;
    const fourEyes = approval.notAuthor ? ", not the pull request's author or the person who merged it" : "";
    return `${code(approval.environment)}: ${who}, ${count}${fourEyes}`;
  });
  return `: ${each.join("; ")}`;
}

/** Why `/promote` found nothing to move (see {@link replies}' `nothingToPromote`). */
export type NothingToPromote =
  { kind: "nothing-soaking"; upstream: string } | { kind: "upstream-failed"; upstream: string; sha: string } | { kind: "not-gated" };

/** The labels of the deploy check runs' buttons, by identifier. */
const BUTTON_LABELS = { sync: "Re-sync", rollback: "Roll back", approve: "Approve" } as const;

/** Replies to commands: one function per situation, the commenter mentioned first. */
/** What a rollback deploys, from what, and its check run. */
function rollingBack(rollback: { target: string; from: string; link: string }): string {
  return `roll back to \`${shortSha(rollback.target)}\` from \`${shortSha(rollback.from)}\` (${rollback.link})`;
}

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
  auditLine: (at: string, sender: string, kind: "sync" | "rollback" | "approve", text: string): string =>
    `${at}: **${BUTTON_LABELS[kind]}** pressed by @${sender}: ${text}`,
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
    replies.queuedLine(environment, added, `${rollingBack(rollback)}; the environment is held`),
  /** A rollback of one cluster of a fleet: that cluster alone is held, in its agent's record. */
  clusterRollbackLine: (
    environment: string,
    cluster: string,
    added: boolean,
    rollback: { target: string; from: string; link: string },
  ): string =>
    replies.queuedLine(
      targetName(environment, cluster),
      added,
      `${rollingBack(rollback)}; ${code(cluster)} alone is held: a merge stops at its wave until \`/sync ${environment} --cluster ${cluster}\` releases it, and no revert pull request is opened`,
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
  /** A `/sync --cluster` naming a cluster the environment does not run on (or an environment on one cluster). */
  notAClusterOf: (environment: string, cluster: string, why: "single" | "unlisted"): string =>
    why === "single"
      ? `- ${code(environment)}: nothing queued: it runs on one cluster; \`--cluster\` is for environments that list \`clusters\` or \`waves\`.`
      : `- ${code(environment)}: nothing queued: its \`clusters\` and \`waves\` do not name or match ${code(cluster)}.`,
  /** A `/sync` of an environment promoted from another that has not been promoted anything yet: it would skip the soak. */
  nothingPromotedYet: (environment: string, upstream: string): string =>
    `- ${code(environment)}: nothing queued: no commit has been promoted from ${code(upstream)} yet, and \`/sync\` deploys what promotion chose (\`/promote ${environment} <reason>\` skips a soak).`,
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
  /** An approval counted: how many of how many the environment needs, and "deploying now" once enough. */
  approvalRecorded: (author: string, approval: { environment: string; sha: string; approvals: number; required: number }): string => {
    const { environment, sha, approvals, required } = approval;
    const next = approvals >= required ? "deploying now" : `waiting for ${required - approvals} more`;
    return `@${author} approved the deploy of \`${shortSha(sha)}\` to ${code(environment)}: ${approvals} of ${required} approval${required === 1 ? "" : "s"}; ${next}.`;
  },
  /** An approval not counted; `reason` is plain text (the approval policy's words), shown escaped and last. */
  approvalRefused: (author: string, refusal: { environment: string; reason: string }): string =>
    `Sorry @${author}, your approval of ${code(refusal.environment)} is not counted; nothing was done. Why: ${escapeInline(refusal.reason)}`,
  /** A `/reject` taken: the waiting deploy is not applied; the commenter's reason shown escaped and last. */
  rejectionRecorded: (author: string, rejection: { environment: string; sha: string; reason: string }): string =>
    `@${author} rejected the deploy of \`${shortSha(rejection.sha)}\` to ${code(rejection.environment)}: it will not be applied. Reason: ${escapeInline(rejection.reason)}`,
  /** `/approve` or `/reject` where no deploy waits for approval; `noPolicy` when the environment has no approval policy at all. */
  nothingAwaitingApproval: (author: string, ask: { environment: string; command: "approve" | "reject"; noPolicy?: boolean }): string =>
    ask.noPolicy
      ? `@${author} ${code(ask.environment)} has no approval policy (\`approval\` in its configuration), so nothing there waits for approval and \`/${ask.command}\` did nothing.`
      : `@${author} nothing is waiting for approval in ${code(ask.environment)}, so \`/${ask.command}\` did nothing.`,
  /** A `/promote` taken: the commit skips the rest of its soak upstream; then it deploys, or waits for approval. */
  promotionRecorded: (
    author: string,
    promotion: { environment: string; upstream: string; sha: string; reason: string; waitsForApproval?: boolean },
  ): string => {
    const next = promotion.waitsForApproval ? "it now waits for approval" : "deploying now";
    return `@${author} promoted \`${shortSha(promotion.sha)}\` to ${code(promotion.environment)}, skipping the rest of its soak in ${code(promotion.upstream)}; ${next}. Reason: ${escapeInline(promotion.reason)}`;
  },
  /** A `/promote` with nothing to move: no commit soaking upstream, the upstream's failure stopping the line, or no promotion gate. */
  nothingToPromote: (author: string, ask: { environment: string; why: NothingToPromote }): string => {
    const environment = code(ask.environment);
    const why = ask.why;
    switch (why.kind) {
      case "nothing-soaking":
        return `@${author} no commit of ${code(why.upstream)} is soaking on its way to ${environment}, so there is nothing to promote. Nothing was done.`;
      case "upstream-failed":
        return `@${author} ${code(why.upstream)} failed with \`${shortSha(why.sha)}\`, which stops the line to ${environment} until a fix is merged or someone comments \`/sync\` for ${code(why.upstream)}; there is nothing to promote. Nothing was done.`;
      case "not-gated":
        return `@${author} ${environment} has no promotion gate (\`promotion.after\` in its configuration): it takes each merge as it comes, so there is nothing to promote. Nothing was done.`;
    }
  },
  /**
   * A `/sync --override-freeze` taken: who (the commenter) overrode the freeze of which environments,
   * those named that were not frozen, the reason (escaped, last in the sentence), then the sync's `lines`.
   */
  freezeOverridden: (
    author: string,
    override: { frozen: readonly string[]; notFrozen?: readonly string[]; reason: string; lines: readonly string[] },
  ): string => {
    const notFrozen = override.notFrozen?.length
      ? `; ${names(override.notFrozen)} ${override.notFrozen.length === 1 ? "is" : "are"} not frozen and deploy${override.notFrozen.length === 1 ? "s" : ""} as a normal \`/sync\``
      : "";
    return `@${author} overrode the freeze of ${names(override.frozen)} with \`/sync ${OVERRIDE_FREEZE}\`${notFrozen}. Reason: ${escapeInline(override.reason)}\n\n${override.lines.join("\n")}`;
  },
  /** `--override-freeze` from someone who is not an admin of the repository. */
  overrideRefused: (author: string, actual: string): string =>
    `Sorry @${author}, \`/sync ${OVERRIDE_FREEZE}\` needs **admin** permission on this repository and you have **${escapeInline(actual)}**. Nothing was done.`,
  /** `--override-freeze` where no environment named is frozen: the override is not needed (nor recorded), and the sync's `lines`. */
  notFrozen: (author: string, sync: { environments: readonly string[]; lines: readonly string[] }): string => {
    const one = sync.environments.length === 1;
    return `@${author} ${names(sync.environments)} ${one ? "is" : "are"} not frozen, so \`${OVERRIDE_FREEZE}\` is not needed: ${one ? "it deploys" : "they deploy"} as a normal \`/sync\`.\n\n${sync.lines.join("\n")}`;
  },
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
