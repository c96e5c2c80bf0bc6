import type { AgentReport, DriftReport, ObjectResult } from "./agent-protocol.ts";
import type { Convergence, DeployRequest } from "./deploy-requests.ts";
import type { ReportProblem } from "./diff-report.ts";
import { displayName } from "./identity.ts";
import {
  APP_DEPLOY_STATES,
  DEPLOY_PHASES,
  GATE_STATES,
  deploymentState,
  phaseRow,
  type CheckRunState,
  type DeployPhase,
  type DeploymentState,
  type GateFacts,
  type GateState,
} from "./deploy-phases.ts";
import { shortSha } from "./git-ref.ts";
import { code, escapeInline, fenceFor, htmlCode, tableRow } from "./markdown.ts";
import { CHECK_RUN_TEXT_LIMIT, previewAnnotations, previewCheckOutput, type Annotation } from "./preview-comment.ts";

const ACTION_ICON: Record<ObjectResult["action"], string> = {
  created: "🟢",
  configured: "🟡",
  unchanged: "⚪",
  pruned: "🔴",
  skipped: "⏭️",
  failed: "❌",
};

/** A per-object table: object, action, health, duration; cut to fit a check run. */
export function objectTable(objects: readonly ObjectResult[]): string {
  const header = "| Object | Action | Health | Duration |\n|---|---|---|--:|";
  const rows: string[] = [];
  let length = header.length;
  for (const [index, o] of objects.entries()) {
    const name = displayName(o);
    const note = o.message ? ` — ${escapeInline(o.message.slice(0, 300))}` : "";
    const row = tableRow([code(name), `${ACTION_ICON[o.action]} ${o.action}${note}`, o.health, `${(o.durationMs / 1000).toFixed(1)} s`]);
    if (length + row.length + 200 > CHECK_RUN_TEXT_LIMIT) {
      rows.push(`\n…and ${objects.length - index} more objects.`);
      break;
    }
    rows.push(row);
    length += row.length + 1;
  }
  return `${header}\n${rows.join("\n")}`;
}

/** Counts per action, for titles. */
export function actionCounts(objects: readonly ObjectResult[]): string {
  const counts = new Map<string, number>();
  for (const o of objects) counts.set(o.action, (counts.get(o.action) ?? 0) + 1);
  return [...counts.entries()].map(([action, n]) => `${n} ${action}`).join(", ") || "no objects";
}

/** A check run's title and summary for a report, from its phase's row. */
export function deployCheckOutput(report: AgentReport): { title: string; summary: string; text?: string } {
  const row = phaseRow(report.phase);
  const facts = { ...report, counts: actionCounts(report.objects ?? []) };
  const table = row.objectTable && report.objects && report.objects.length > 0 ? objectTable(report.objects) : undefined;
  return { title: row.title(facts), summary: row.summary(facts), ...(table ? { text: table } : {}) };
}

/** A held deploy's check-run output, before the agent reports it: `message` says who rolled back to what. */
export function heldOutput(message: string): { title: string; summary: string } {
  return { title: APP_DEPLOY_STATES.held.title, summary: DEPLOY_PHASES.held.summary({ message }) };
}

/** The check-run output of a queued deploy (until the agent picks it up). */
export function queuedOutput(
  objects: number,
  request: Parameters<typeof queuedSummary>[1],
  note?: string,
): { title: string; summary: string } {
  const summary = queuedSummary(objects, request);
  return { title: APP_DEPLOY_STATES.queued.title, summary: note ? `${summary}\n\n${note}` : summary };
}

/** The check run (state and output) and Deployment status of a held deploy closed once a newer deploy released the hold. */
export function releasedState(
  releasedBy: { sha: string; reason: string },
  url: string,
): {
  checkRun: CheckRunState & { output: { title: string; summary: string } };
  deployment: { state: DeploymentState; description: string };
} {
  const state = APP_DEPLOY_STATES.released;
  return {
    checkRun: { ...state.checkRun, output: { title: state.title, summary: releasedSummary(releasedBy, url) } },
    deployment: { state: state.deployment, description: state.description },
  };
}

/**
 * What a deploy's check run and Deployment first show once its job is queued. A deploy that waits
 * for a hold is queued. Any other is in progress from the first write, since its job is already
 * with the agents: one write shows it, where "queued" then "in progress" took two, a second apart
 * (issue 28). A Deployment made after reports were applied (a replica took the deploy over)
 * starts at the newest one's state.
 */
export function firstDeployState(
  held: boolean,
  reported: DeployPhase | undefined,
): { checkRun: "queued" | "in_progress"; deployment: DeploymentState; description: string } {
  const first = held ? APP_DEPLOY_STATES.held : APP_DEPLOY_STATES.queued;
  const checkRun = first.checkRun.status;
  if (reported) return { checkRun, deployment: deploymentState(reported) ?? "in_progress", description: `The agent reported ${reported}` };
  return { checkRun, deployment: first.deployment, description: first.description };
}

/** What a deploy's pull-request comment says, for the phases whose row comments (success, failure, held). */
export function deployComment(
  deploy: { sha: string; environment: string },
  report: Pick<AgentReport, "phase" | "durationMs">,
  detailsUrl: string,
): string | undefined {
  const seconds = Math.round((report.durationMs ?? 0) / 1000);
  return phaseRow(report.phase).comment?.({
    sha: shortSha(deploy.sha),
    environment: escapeInline(deploy.environment),
    seconds,
    detailsUrl,
  });
}

/** The buttons on a finished deploy check run; the `check_run.requested_action` webhook names them by identifier. */
export const DEPLOY_ACTIONS = [
  { label: "Re-sync", description: "Deploy the tracked branch's head now", identifier: "sync" },
  { label: "Roll back", description: "Deploy the revision live before this", identifier: "rollback" },
] as const satisfies readonly { label: string; description: string; identifier: string }[];

/** The summary of a held deploy's check run once a newer deploy released the hold and ran instead. */
export function releasedSummary(releasedBy: { sha: string; reason: string }, url: string): string {
  return `The environment was held by \`/rollback\` while this deploy waited. The hold was released by the ${releasedBy.reason} of [\`${shortSha(releasedBy.sha)}\`](${url}), which deployed instead; this commit was not applied.`;
}

/** The summary of a superseded deploy's check run, linking the deploy that runs instead. */
export function supersededSummary(newerSha: string, newerCheckRunUrl: string): string {
  return `Superseded by [\`${shortSha(newerSha)}\`](${newerCheckRunUrl}), which was queued after this deploy and runs instead.`;
}

/** What a queued deploy's check run says until the agent picks it up; a deploy the app queued by itself says why. */
export function queuedSummary(
  objects: number,
  request: { sha: string; reason: string; requestedBy: string; convergence?: Convergence | undefined },
): string {
  const queued = `${objects} objects of \`${shortSha(request.sha)}\` queued for the agent (${request.reason}, requested by ${escapeInline(request.requestedBy)}).`;
  return request.convergence
    ? `${queued}\n\nSluice deploys the branch's head by itself: ${convergenceReason(request.convergence)}.`
    : queued;
}

/** What a Deployment says it is: a rollback names where it rolled back from, a convergence why the app deployed by itself. */
export function deploymentDescription(request: Pick<DeployRequest, "reason" | "requestedBy" | "sha" | "from" | "convergence">): string {
  if (request.convergence) return `Sluice: ${convergenceReason(request.convergence, { plain: true })}`;
  if (request.reason === "rollback")
    return `Rollback to ${shortSha(request.sha)}${request.from ? ` from ${shortSha(request.from)}` : ""} by ${request.requestedBy}`;
  return `Sluice ${request.reason} by ${request.requestedBy}`;
}

/** The titles of a deploy request that ended before its job was queued, by cause. */
const NOT_QUEUED_TITLES = {
  config: "Invalid configuration",
  checkout: "The commit cannot be checked out safely",
  render: "Render failed",
} as const;
/** Why a deploy request ended before its job was queued. */
export type NotQueuedCause = keyof typeof NOT_QUEUED_TITLES;

/** The failed check run of a deploy request that was never queued: why (`cause`), and its problems as a summary and annotations. */
export function notQueuedCheckRun(
  cause: NotQueuedCause,
  errors: readonly ReportProblem[],
): { status: "completed"; conclusion: "failure"; output: { title: string; summary: string; annotations: Annotation[] } } {
  const summary = previewCheckOutput({ environments: [], errors: [...errors] }).summary;
  return {
    status: "completed",
    conclusion: "failure",
    output: { title: NOT_QUEUED_TITLES[cause], summary, annotations: previewAnnotations(errors) },
  };
}

/**
 * Why the app deployed a branch's head by itself, as its check run says it ("agent came online
 * behind `main`"); `plain` for GitHub's plain-text fields (a Deployment's description).
 */
export function convergenceReason(convergence: Convergence, options: { plain?: boolean } = {}): string {
  const show = (text: string): string => (options.plain ? text : code(text));
  const branch = show(convergence.branch);
  const applied = convergence.applied ? show(shortSha(convergence.applied)) : undefined;
  if (convergence.event === "started")
    return applied ? `agent came online at ${applied}, behind ${branch}` : `agent came online behind ${branch}`;
  return applied ? `agent reported ${applied}, behind ${branch}` : `agent reported nothing deployed, behind ${branch}`;
}

/** A drift check run's title, summary and per-object table with the masked diffs. */
export function driftCheckOutput(report: DriftReport): { title: string; summary: string; text?: string } {
  const at = `checked ${report.checked} objects at ${report.at}`;
  if (report.drifted.length === 0) {
    const healed =
      report.healed.length > 0 ? ` Self-heal applied ${report.healed.map((id) => code(displayName(id))).join(", ")} again.` : "";
    return { title: "In sync", summary: `The live cluster matches \`${shortSha(report.sha)}\` (${at}).${healed}` };
  }
  const lines = [
    `${report.drifted.length} of ${report.checked} objects differ from what Sluice applied at \`${shortSha(report.sha)}\` (${at}).`,
    ...report.healed.map((id) => `- 🩹 self-heal applied ${code(displayName(id))} again`),
    ...report.gaveUp.map((id) => `- ⛔ self-heal stopped healing ${code(displayName(id))}: something keeps changing it back`),
  ];
  const rows = [
    "| Object | Drift |",
    "|---|---|",
    ...report.drifted.map((o) =>
      tableRow([
        code(displayName(o)),
        o.action === "missing" ? "deleted from the cluster" : o.message ? `changed; ${escapeInline(o.message)}` : "changed",
      ]),
    ),
  ];
  let text = "";
  for (const o of report.drifted) {
    if (!o.diff) continue;
    const fence = fenceFor(o.diff);
    const block = `<details><summary>${htmlCode(displayName(o))}</summary>\n\n${fence}diff\n${o.diff}\n${fence}\n</details>\n\n`;
    if (text.length + block.length > CHECK_RUN_TEXT_LIMIT - 1_000) break;
    text += block;
  }
  return {
    title: `${report.drifted.length} object${report.drifted.length === 1 ? "" : "s"} drifted`,
    summary: `${lines.join("\n")}\n\n${rows.join("\n")}`.slice(0, CHECK_RUN_TEXT_LIMIT),
    ...(text ? { text } : {}),
  };
}

/** The Approve button of a deploy check run that waits for approval. */
export const APPROVE_ACTIONS = [
  { label: "Approve", description: "Approve this deploy", identifier: "approve" },
] as const satisfies readonly { label: string; description: string; identifier: string }[];

/** A deploy check run in a gate's state: its status, conclusion, title, summary and (when it waits for approval) the Approve button. */
export function gateCheckRun(
  state: GateState,
  facts: GateFacts,
): {
  status: CheckRunState["status"];
  conclusion?: "success" | "failure" | "cancelled" | "skipped";
  output: { title: string; summary: string };
  actions: readonly { label: string; description: string; identifier: string }[];
} {
  const row = GATE_STATES[state];
  return {
    ...row.checkRun,
    output: { title: row.title(facts), summary: row.summary(facts) },
    actions: row.approve ? APPROVE_ACTIONS : [],
  };
}
