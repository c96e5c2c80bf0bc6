import { escapeLines } from "./markdown.ts";

/**
 * The phases of a deploy, one row each: what an agent's report of the phase means for the deploy,
 * its check run, its GitHub Deployment, the comment on the pull request and the texts people read.
 * Everything else (the report schema's phase enum, the app's writes, the first state of a queued
 * deploy) reads these rows, so a new phase is one row here plus the place in the agent that sends it.
 */

/** A deploy check run's status, and its conclusion once completed. */
export type CheckRunState =
  | { readonly status: "queued" | "in_progress" }
  | { readonly status: "completed"; readonly conclusion: "success" | "failure" | "cancelled" | "skipped" };

/** The states of a GitHub Deployment, as Sluice writes its statuses. */
export const DEPLOYMENT_STATES = ["queued", "in_progress", "success", "inactive", "failure"] as const;
/** The state of a GitHub Deployment, as Sluice writes its statuses. */
export type DeploymentState = (typeof DEPLOYMENT_STATES)[number];

/** What a phase's texts are made of: the report's own words and numbers. */
export interface PhaseFacts {
  readonly message: string;
  readonly applied?: number | undefined;
  readonly total?: number | undefined;
  readonly durationMs?: number | undefined;
  /** The report's objects counted per action ("3 created, 1 unchanged"). */
  readonly counts: string;
}

/** What a phase's pull-request comment is made of, already escaped for Markdown. */
export interface CommentWords {
  /** The commit's short SHA. */
  readonly sha: string;
  readonly environment: string;
  /** The deploy's duration, rounded to whole seconds. */
  readonly seconds: number;
  /** The deploy check run's URL. */
  readonly detailsUrl: string;
}

/** One phase of a deploy. */
export interface PhaseRow {
  /** Ends the deploy: after it nothing changes the check run or Deployment. */
  readonly final: boolean;
  /** Ends the agent's job (a held job ends there, though its deploy is not final until the hold is released). */
  readonly endsJob: boolean;
  /** Within one millisecond, the order in which an agent reports phases: a lower rank is older. */
  readonly rank: number;
  /** The deploy check run's status and conclusion. */
  readonly checkRun: CheckRunState;
  /** The Deployment status the phase writes; undefined leaves the Deployment as it is. */
  readonly deployment: DeploymentState | undefined;
  /** The agent held the job behind a `/rollback` hold: the app remembers it, to close it when the hold is released. */
  readonly waitsForHold: boolean;
  /** A deploy that releases the hold (a sync, a revert's merge) releases it in this phase only. */
  readonly releasesHold: boolean;
  /** What the phase tells promotion of the environment: its commit runs healthy, or the deploy failed (the line stops). */
  readonly outcome: "deployed" | "failed" | undefined;
  /** Whether the report's duration counts in the deploy-duration histogram (the deploy ran to an end of its own). */
  readonly timed: boolean;
  /** Whether the check run carries the Re-sync and Roll back buttons. */
  readonly buttons: boolean;
  /** Whether the check run's text is the per-object table of the report. */
  readonly objectTable: boolean;
  /** The check run's title. */
  readonly title: (report: PhaseFacts) => string;
  /** The check run's summary (Markdown). */
  readonly summary: (report: PhaseFacts) => string;
  /** The comment on the deploy's pull request; undefined: the phase does not comment. */
  readonly comment: ((words: CommentWords) => string) | undefined;
}

/** ` in 42 s`, or nothing when the report has no duration. */
function inSeconds(report: PhaseFacts): string {
  return report.durationMs === undefined ? "" : ` in ${Math.round(report.durationMs / 1000)} s`;
}

function message(report: PhaseFacts): string {
  return escapeLines(report.message);
}

/** A failure's message, cut to what a check run's summary holds. */
function failure(report: PhaseFacts): string {
  return escapeLines(report.message.slice(0, 30_000));
}

const HELD_TITLE = "Held by /rollback";

/** Why a held deploy waits, and what releases it. */
function heldSummary(report: Pick<PhaseFacts, "message">): string {
  return `${escapeLines(report.message)}\n\nThis deploy stays queued and does not apply: merge the revert pull request, or comment \`/sync\` (or press Re-sync) to release the environment and deploy the branch's head.`;
}

const IN_PROGRESS = { status: "in_progress" } as const;

/** What a phase is unless its row says otherwise: open, in progress, without buttons, table or comment. */
const OPEN = {
  final: false,
  endsJob: false,
  checkRun: IN_PROGRESS,
  waitsForHold: false,
  releasesHold: false,
  outcome: undefined,
  timed: false,
  buttons: false,
  objectTable: false,
  summary: message,
  comment: undefined,
} as const;

/** What every final phase shares: it ends the agent's job, and ranks after every open phase. */
const FINAL = { ...OPEN, final: true, endsJob: true, rank: 3 } as const;

/** Every phase of a deploy, in the order the report schema lists them. */
export const DEPLOY_PHASES = {
  started: { ...OPEN, rank: 1, deployment: "in_progress", title: () => "Applying" },
  progress: {
    ...OPEN,
    rank: 2,
    deployment: undefined,
    title: (r) => (r.applied !== undefined && r.total !== undefined ? `${r.applied} of ${r.total} applied` : "Applying"),
  },
  succeeded: {
    ...FINAL,
    outcome: "deployed",
    timed: true,
    checkRun: { status: "completed", conclusion: "success" },
    deployment: "success",
    releasesHold: true,
    buttons: true,
    objectTable: true,
    title: (r) => `Deployed${inSeconds(r)}`,
    summary: (r) => `${r.counts}.`,
    comment: (w) => `🚀 Deployed \`${w.sha}\` to **${w.environment}** in ${w.seconds} s. [Details](${w.detailsUrl})`,
  },
  failed: {
    ...FINAL,
    outcome: "failed",
    timed: true,
    checkRun: { status: "completed", conclusion: "failure" },
    deployment: "failure",
    buttons: true,
    objectTable: true,
    title: (r) => `Failed${inSeconds(r)}`,
    summary: failure,
    comment: (w) => `❌ Deploying \`${w.sha}\` to **${w.environment}** failed after ${w.seconds} s. [Details](${w.detailsUrl})`,
  },
  superseded: { ...FINAL, checkRun: { status: "completed", conclusion: "cancelled" }, deployment: "inactive", title: () => "Superseded" },
  rejected: {
    ...FINAL,
    outcome: "failed",
    timed: true,
    checkRun: { status: "completed", conclusion: "failure" },
    deployment: "failure",
    objectTable: true,
    title: () => "Rejected by the agent",
    summary: failure,
  },
  held: {
    ...OPEN,
    endsJob: true,
    rank: 0,
    checkRun: { status: "queued" },
    deployment: "queued",
    waitsForHold: true,
    title: () => HELD_TITLE,
    summary: heldSummary,
    comment: (w) =>
      `⏸️ \`${w.sha}\` is not deployed to **${w.environment}**: the environment is held by \`/rollback\`. Merge the revert pull request or comment \`/sync\` to release it. [Details](${w.detailsUrl})`,
  },
} as const satisfies Record<string, PhaseRow>;

/** A phase of a deploy, as an agent reports it. */
export type DeployPhase = keyof typeof DEPLOY_PHASES;

/** The phases, in the table's order: the report schema's enum. */
export const DEPLOY_PHASE_NAMES = Object.keys(DEPLOY_PHASES) as [DeployPhase, ...DeployPhase[]];

/** The row of a phase. */
export function phaseRow(phase: DeployPhase): PhaseRow {
  return DEPLOY_PHASES[phase];
}

/** Whether a phase ends the deploy: nothing after it changes GitHub. */
export function isFinal(phase: DeployPhase): boolean {
  return phaseRow(phase).final;
}

/** The deploy check run's status and conclusion in a phase. */
export function checkRunState(phase: DeployPhase): CheckRunState {
  return phaseRow(phase).checkRun;
}

/** The GitHub Deployment status a phase sets, or undefined when the phase does not change it. */
export function deploymentState(phase: DeployPhase): DeploymentState | undefined {
  return phaseRow(phase).deployment;
}

/** The phases an agent's job can end in (the agent's final report). */
export const JOB_END_PHASES: readonly DeployPhase[] = DEPLOY_PHASE_NAMES.filter((phase) => phaseRow(phase).endsJob);

/** A report as far as ordering goes: when it was made, its phase, how many objects it had applied. */
export interface ReportPosition {
  readonly at: string;
  readonly phase: DeployPhase;
  readonly applied?: number | undefined;
}

/** Whether a report comes after the one last applied: by its time, then its phase's rank, then its progress. */
export function isNewer(report: ReportPosition, last: ReportPosition): boolean {
  const at = Date.parse(report.at) - Date.parse(last.at);
  if (at !== 0) return at > 0;
  const rank = phaseRow(report.phase).rank - phaseRow(last.phase).rank;
  if (rank !== 0) return rank > 0;
  return (report.applied ?? 0) > (last.applied ?? 0);
}

/**
 * The states the app gives a deploy before or beside the agent's reports: queued for the agent
 * (the check run and Deployment's first state), and closed without applying, when a newer deploy
 * released the hold the agent held it for.
 */
export const APP_DEPLOY_STATES = {
  queued: { checkRun: IN_PROGRESS, deployment: "in_progress", title: "Queued", description: "Queued for the agent" },
  /** The app's forecast of a deploy the agent will hold: the held phase's state, before the agent reports it. */
  held: {
    checkRun: DEPLOY_PHASES.held.checkRun,
    deployment: DEPLOY_PHASES.held.deployment,
    title: HELD_TITLE,
    description: HELD_TITLE,
  },
  released: {
    checkRun: { status: "completed", conclusion: "skipped" },
    deployment: "inactive",
    title: "Not deployed: the hold was released",
    description: "Held by /rollback; not deployed",
  },
} as const satisfies Record<string, { checkRun: CheckRunState; deployment: DeploymentState; title: string; description: string }>;

/** What a gate's texts are made of: the environment it gates and what it waits for, already escaped. */
export interface GateFacts {
  /** The environment the deploy is for. */
  readonly environment?: string;
  /** The upstream environment of a promotion. */
  readonly after?: string;
  /** A commit's short SHA the text is about (the upstream's failed one, or the newer one promoted instead). */
  readonly sha?: string;
  /** "9 of 15 min", for a soak under way. */
  readonly soak?: string;
  readonly approvals?: number;
  readonly required?: number;
  /** "Monday 09:00 Europe/Berlin". */
  readonly until?: string;
  /** Who may approve ("write permission or active membership in @acme/release"). */
  readonly approvers?: string;
  /** Who approved so far. */
  readonly approvedBy?: readonly string[];
  /** Who refused, and why; or why the freeze (already escaped). */
  readonly by?: string;
  readonly reason?: string;
  /** How long an approval was waited for ("24 h"). */
  readonly timeout?: string;
}

/** One state of a deploy held by a gate (promotion, approval or freeze), decided by the app: a row like a phase's. */
export interface GateRow {
  /** Ends the deploy: it will not be applied. */
  readonly final: boolean;
  readonly checkRun: CheckRunState;
  /** The Deployment status the state writes; undefined: the deploy has no Deployment yet (it waits for its promotion). */
  readonly deployment: DeploymentState | undefined;
  /** Whether the check run carries the Approve button. */
  readonly approve: boolean;
  readonly title: (facts: GateFacts) => string;
  /** The check run's summary (Markdown). */
  readonly summary: (facts: GateFacts) => string;
}

const env = (f: GateFacts): string => `\`${f.environment ?? ""}\``;
const upstream = (f: GateFacts): string => `\`${f.after ?? ""}\``;

const QUEUED = { status: "queued" } as const;

/**
 * The states the app holds a deploy in before it hands it to the agents, and how the ones that
 * never reach them end. The check run shows each; the pipeline line of the merged pull request's
 * comment and of each deploy check run is made of them.
 */
export const GATE_STATES = {
  /** Waiting for the upstream environment to run the commit. */
  promotion: {
    final: false,
    checkRun: QUEUED,
    deployment: undefined,
    approve: false,
    title: (f) => `Waiting for ${f.after ?? ""}`,
    summary: (f) =>
      `${env(f)} deploys this commit once ${upstream(f)} has run it (or a later commit that contains it) healthy and without drift for the soak time.`,
  },
  /** The upstream environment runs the commit; its soak is under way. */
  soaking: {
    final: false,
    checkRun: QUEUED,
    deployment: undefined,
    approve: false,
    title: (f) => `Soaking in ${f.after ?? ""}: ${f.soak ?? ""}`,
    summary: (f) =>
      `${upstream(f)} runs this commit; its soak ${f.soak ?? ""}. Newer merges do not restart it: ${env(f)} then takes the newest commit that has soaked. \`/promote ${f.environment ?? ""} <reason>\` skips the rest of the soak.`,
  },
  /** The upstream environment failed to deploy this commit or one before it: nothing passes until a fix deploys there. */
  stopped: {
    final: false,
    checkRun: QUEUED,
    deployment: undefined,
    approve: false,
    title: (f) => `Stopped: ${f.after ?? ""} failed to deploy ${f.sha ?? ""}`,
    summary: (f) =>
      `${upstream(f)} failed to deploy \`${f.sha ?? ""}\`, which this commit contains: the line is stopped until a later commit deploys there healthy, or someone comments \`/sync ${f.after ?? ""}\`.`,
  },
  approval: {
    final: false,
    checkRun: QUEUED,
    deployment: "queued",
    approve: true,
    title: (f) => `Waiting for approval (${f.approvals ?? 0} of ${f.required ?? 1})`,
    summary: (f) =>
      `Needs ${f.required ?? 1} approval${f.required === 1 ? "" : "s"} from ${f.approvers ?? "a permitted person"}${
        f.approvedBy && f.approvedBy.length > 0 ? `; approved by ${f.approvedBy.join(", ")}` : ""
      }. Press Approve or comment \`/approve ${f.environment ?? ""}\`; \`/reject ${f.environment ?? ""} <reason>\` ends the wait.`,
  },
  frozen: {
    final: false,
    checkRun: QUEUED,
    deployment: "queued",
    approve: false,
    title: (f) => `Frozen until ${f.until ?? ""}`,
    summary: (f) =>
      `${env(f)} is frozen until ${f.until ?? ""}: ${f.reason ?? ""}. This deploy applies when the freeze ends, unless a newer one replaces it; an admin can comment \`/sync ${f.environment ?? ""} --override-freeze <reason>\`.`,
  },
  refused: {
    final: true,
    checkRun: { status: "completed", conclusion: "failure" },
    deployment: "failure",
    approve: false,
    title: (f) => `Rejected by ${f.by ?? ""}`,
    summary: (f) => `${f.by ?? ""} rejected this deploy: ${f.reason ?? ""}. It is not applied; the next merge or \`/sync\` asks again.`,
  },
  timedOut: {
    final: true,
    checkRun: { status: "completed", conclusion: "failure" },
    deployment: "failure",
    approve: false,
    title: () => "Approval timed out",
    summary: (f) =>
      `Not enough approvals within ${f.timeout ?? "the approval timeout"} (${f.approvals ?? 0} of ${f.required ?? 1}). It is not applied; the next merge or \`/sync\` asks again.`,
  },
  /** Asked for after a newer deploy of the environment began to wait: that one waits in its place. */
  overtaken: {
    final: true,
    checkRun: { status: "completed", conclusion: "skipped" },
    deployment: "inactive",
    approve: false,
    title: (f) => `Not deployed: ${f.sha ?? "a newer commit"} waits in its place`,
    summary: (f) =>
      `\`${f.sha ?? ""}\`, asked for after this one, already waits at ${env(f)}'s gate; this one is not deployed on its own (it reached the gate last).`,
  },
  /** A newer commit passed the gate first; this one is not deployed on its own. */
  passed: {
    final: true,
    checkRun: { status: "completed", conclusion: "skipped" },
    deployment: "inactive",
    approve: false,
    title: (f) => `Not deployed: ${f.sha ?? "a newer commit"} went instead`,
    summary: (f) => `\`${f.sha ?? ""}\`, a newer commit that contains this one, was deployed instead.`,
  },
} as const satisfies Record<string, GateRow>;

/** A state of a deploy held by a gate. */
export type GateState = keyof typeof GATE_STATES;
