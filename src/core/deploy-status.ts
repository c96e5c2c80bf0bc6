import type { AgentReport, DriftReport, ObjectResult } from "./agent-protocol.ts";
import type { Convergence } from "./deploy-requests.ts";
import { displayName } from "./identity.ts";
import { code, escapeInline, escapeLines, fenceFor, htmlCode, tableRow } from "./markdown.ts";
import { CHECK_RUN_TEXT_LIMIT } from "./preview-comment.ts";

/** The name of an environment's deploy check run. */
export function deployCheckName(environment: string): string {
  return `sluice/deploy (${environment})`;
}

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

/** A check run's title and summary for a report. */
export function deployCheckOutput(report: AgentReport): { title: string; summary: string; text?: string } {
  const table = report.objects && report.objects.length > 0 ? objectTable(report.objects) : undefined;
  const seconds = report.durationMs === undefined ? "" : ` in ${Math.round(report.durationMs / 1000)} s`;
  switch (report.phase) {
    case "started":
      return { title: "Applying", summary: escapeLines(report.message) };
    case "progress":
      return {
        title: report.applied !== undefined && report.total !== undefined ? `${report.applied} of ${report.total} applied` : "Applying",
        summary: escapeLines(report.message),
      };
    case "succeeded":
      return { title: `Deployed${seconds}`, summary: `${actionCounts(report.objects ?? [])}.`, ...(table ? { text: table } : {}) };
    case "failed":
    case "rejected":
      return {
        title: report.phase === "rejected" ? "Rejected by the agent" : `Failed${seconds}`,
        summary: escapeLines(report.message.slice(0, 30_000)),
        ...(table ? { text: table } : {}),
      };
    case "superseded":
      return { title: "Superseded", summary: escapeLines(report.message) };
    case "held":
      return { title: "Held by /rollback", summary: heldSummary(report.message) };
  }
}

/** Why a held deploy waits, and what releases it. */
export function heldSummary(message: string): string {
  return `${escapeLines(message)}\n\nThis deploy stays queued and does not apply: merge the revert pull request, or comment \`/sync\` (or press Re-sync) to release the environment and deploy the branch's head.`;
}

/** A report's phase. */
export type DeployPhase = AgentReport["phase"];

/** Whether a phase ends the deploy: nothing after it changes GitHub. */
export function isFinal(phase: DeployPhase): boolean {
  return phase === "succeeded" || phase === "failed" || phase === "rejected" || phase === "superseded";
}

/** The deploy check run's status and conclusion in a phase. */
export function checkRunState(
  phase: DeployPhase,
): { status: "in_progress" | "queued" } | { status: "completed"; conclusion: "success" | "cancelled" | "failure" } {
  if (phase === "held") return { status: "queued" };
  if (!isFinal(phase)) return { status: "in_progress" };
  return { status: "completed", conclusion: phase === "succeeded" ? "success" : phase === "superseded" ? "cancelled" : "failure" };
}

/** The GitHub Deployment status a phase sets, or undefined when the phase does not change it. */
export function deploymentState(phase: DeployPhase): "queued" | "in_progress" | "success" | "inactive" | "failure" | undefined {
  switch (phase) {
    case "held":
      return "queued";
    case "started":
      return "in_progress";
    case "progress":
      return undefined;
    case "succeeded":
      return "success";
    case "superseded":
      return "inactive";
    case "failed":
    case "rejected":
      return "failure";
  }
}

/** The state of a GitHub Deployment, as Sluice writes its statuses. */
export type DeploymentState = NonNullable<ReturnType<typeof deploymentState>>;

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
  const checkRun = held ? "queued" : "in_progress";
  if (reported) return { checkRun, deployment: deploymentState(reported) ?? "in_progress", description: `The agent reported ${reported}` };
  return held
    ? { checkRun, deployment: "queued", description: "Held by /rollback" }
    : { checkRun, deployment: "in_progress", description: "Queued for the agent" };
}

/** What a deploy's pull-request comment says, for the phases that comment (success and failure). */
export function deployComment(
  deploy: { sha: string; environment: string },
  report: Pick<AgentReport, "phase" | "durationMs">,
  detailsUrl: string,
): string | undefined {
  const seconds = Math.round((report.durationMs ?? 0) / 1000);
  const sha = deploy.sha.slice(0, 7);
  const environment = escapeInline(deploy.environment);
  if (report.phase === "succeeded") return `🚀 Deployed \`${sha}\` to **${environment}** in ${seconds} s. [Details](${detailsUrl})`;
  if (report.phase === "failed") return `❌ Deploying \`${sha}\` to **${environment}** failed after ${seconds} s. [Details](${detailsUrl})`;
  if (report.phase === "held")
    return `⏸️ \`${sha}\` is not deployed to **${environment}**: the environment is held by \`/rollback\`. Merge the revert pull request or comment \`/sync\` to release it. [Details](${detailsUrl})`;
  return undefined;
}

/** The buttons on a finished deploy check run; the `check_run.requested_action` webhook names them by identifier. */
export const DEPLOY_ACTIONS = [
  { label: "Re-sync", description: "Deploy the tracked branch's head now", identifier: "sync" },
  { label: "Roll back", description: "Deploy the revision live before this", identifier: "rollback" },
] as const satisfies readonly { label: string; description: string; identifier: string }[];

/** The summary of a held deploy's check run once a newer deploy released the hold and ran instead. */
export function releasedSummary(releasedBy: { sha: string; reason: string }, url: string): string {
  return `The environment was held by \`/rollback\` while this deploy waited. The hold was released by the ${releasedBy.reason} of [\`${releasedBy.sha.slice(0, 7)}\`](${url}), which deployed instead; this commit was not applied.`;
}

/** The summary of a superseded deploy's check run, linking the deploy that runs instead. */
export function supersededSummary(newerSha: string, newerCheckRunUrl: string): string {
  return `Superseded by [\`${newerSha.slice(0, 7)}\`](${newerCheckRunUrl}), which was queued after this deploy and runs instead.`;
}

/** What a queued deploy's check run says until the agent picks it up; a deploy the app queued by itself says why. */
export function queuedSummary(
  objects: number,
  request: { sha: string; reason: string; requestedBy: string; convergence?: Convergence | undefined },
): string {
  const queued = `${objects} objects of \`${request.sha.slice(0, 7)}\` queued for the agent (${request.reason}, requested by ${escapeInline(request.requestedBy)}).`;
  return request.convergence
    ? `${queued}\n\nSluice deploys the branch's head by itself: ${convergenceReason(request.convergence)}.`
    : queued;
}

/**
 * Why the app deployed a branch's head by itself, as its check run says it ("agent came online
 * behind `main`"); `plain` for GitHub's plain-text fields (a Deployment's description).
 */
export function convergenceReason(convergence: Convergence, options: { plain?: boolean } = {}): string {
  const show = (text: string): string => (options.plain ? text : code(text));
  const branch = show(convergence.branch);
  const applied = convergence.applied ? show(convergence.applied.slice(0, 7)) : undefined;
  if (convergence.event === "started")
    return applied ? `agent came online at ${applied}, behind ${branch}` : `agent came online behind ${branch}`;
  return applied ? `agent reported ${applied}, behind ${branch}` : `agent reported nothing deployed, behind ${branch}`;
}

/** The name of an environment's drift check run. */
export function driftCheckName(environment: string): string {
  return `sluice/drift (${environment})`;
}

/** A drift check run's title, summary and per-object table with the masked diffs. */
export function driftCheckOutput(report: DriftReport): { title: string; summary: string; text?: string } {
  const at = `checked ${report.checked} objects at ${report.at}`;
  if (report.drifted.length === 0) {
    const healed =
      report.healed.length > 0 ? ` Self-heal applied ${report.healed.map((id) => code(displayName(id))).join(", ")} again.` : "";
    return { title: "In sync", summary: `The live cluster matches \`${report.sha.slice(0, 7)}\` (${at}).${healed}` };
  }
  const lines = [
    `${report.drifted.length} of ${report.checked} objects differ from what Sluice applied at \`${report.sha.slice(0, 7)}\` (${at}).`,
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
