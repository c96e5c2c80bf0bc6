import type { LiveChange, LiveReport } from "./agent-protocol.ts";
import type { ReportProblem } from "./diff-report.ts";
import type { SourceLocation } from "./manifest.ts";
import { displayName, resourceKey } from "./identity.ts";
import { escapeCode, escapeHtml, escapeInline, fenceFor, utf8Length } from "./markdown.ts";
import { shortSha } from "./git-ref.ts";

/** Where one environment's live preview stands. */
export type LiveStatus =
  | { state: "pending" }
  | { state: "answered"; report: LiveReport }
  /** Not asked, and why (a fork, the author's permission, no agent online, a failed render). */
  | { state: "unavailable"; reason: string }
  | { state: "timed-out"; seconds: number }
  /**
   * Not asked because no agent of the environment was online: it gates the check as a wait that
   * ended would, so an agent that is down never lets a change pass unchecked.
   */
  | { state: "offline" };

/** One previewed environment's live preview. */
export interface LiveEnvironment {
  environment: string;
  status: LiveStatus;
  /** What the environment's agent last found drifted from the last deploy. */
  drift?: DriftSummary;
}

/** The live section keeps to this many bytes; diffs that do not fit are named without their text. */
export const LIVE_SECTION_BUDGET = 24_000;

const ACTION_ICON: Record<LiveChange["action"], string> = { create: "🟢", configure: "🟡", refused: "❌" };

/**
 * The live-cluster section of the preview comment: per environment, what merging would change in
 * the live cluster (masked diffs, by the agent), what would be pruned, and what the API server's
 * admission chain or the agent's policy would refuse; or plainly why there is no live preview.
 */
export function liveSection(environments: readonly LiveEnvironment[], budget = LIVE_SECTION_BUDGET): string {
  const title = "#### Live cluster";
  if (environments.length === 0) return `${title}\n\nNo environment was rendered, so nothing was compared with the cluster.`;
  const parts: string[] = [title];
  let used = utf8Length(title);
  const diffs: { environment: string; change: LiveChange }[] = [];
  for (const { environment, status, drift } of environments) {
    const text = [environmentLine(environment, status), driftLine(drift)].filter(Boolean).join("\n");
    parts.push(text);
    used += utf8Length(text) + 2;
    if (status.state === "answered") for (const change of status.report.changes) if (change.diff) diffs.push({ environment, change });
  }
  const omitted: string[] = [];
  for (const { environment, change } of diffs) {
    const block = diffBlock(environment, change, environments.length > 1);
    if (used + utf8Length(block) + 2 > budget) {
      omitted.push(`\`${escapeCode(displayName(change))}\``);
      continue;
    }
    parts.push(block);
    used += utf8Length(block) + 2;
  }
  if (omitted.length > 0) parts.push(`Live diffs not shown here (too long for a comment): ${omitted.join(", ")}.`);
  return parts.join("\n\n");
}

function environmentLine(environment: string, status: LiveStatus): string {
  const name = `**\`${escapeCode(environment)}\`**`;
  switch (status.state) {
    case "pending":
      return `${name}: ⏳ waiting for the agent's dry-run against the live cluster.`;
    case "unavailable":
      return `${name}: no live preview: ${escapeInline(status.reason)}.`;
    case "timed-out":
      return `${name}: ⚠️ no agent answered within ${status.seconds} s; this compares the two commits only. A late answer updates this comment.`;
    case "offline":
      return `${name}: ⚠️ no agent is online for it; this compares the two commits only. Comment \`/diff\` once it is back.`;
    case "answered":
      return answeredLines(name, status.report);
  }
}

function answeredLines(name: string, report: LiveReport): string {
  if (report.error) return `${name}: ⚠️ the agent could not dry-run this pull request: ${escapeInline(report.error)}`;
  const count = (action: LiveChange["action"]) => report.changes.filter((c) => c.action === action).length;
  const refused = report.changes.filter((c) => c.action === "refused");
  const changing = count("create") + count("configure");
  const summary =
    changing + refused.length + report.prune.length === 0
      ? `merging changes nothing in the live cluster (${report.unchanged} objects checked).`
      : `${changing} object${changing === 1 ? "" : "s"} would change live, ${report.prune.length} would be pruned, ${refused.length} would be refused (${report.unchanged} unchanged).`;
  const lines = [`${name}: ${summary}`];
  for (const change of refused) {
    const by = change.refusedBy === "policy" ? "the agent's policy" : "the API server";
    lines.push(`- ❌ \`${escapeCode(displayName(change))}\` refused by ${by}: ${escapeInline(change.message ?? "")}`);
  }
  for (const id of report.prune) lines.push(`- 🔴 \`${escapeCode(displayName(id))}\` would be pruned`);
  return lines.join("\n");
}

function diffBlock(environment: string, change: LiveChange, named: boolean): string {
  const where = named ? ` in \`${escapeCode(environment)}\`` : "";
  const fence = fenceFor(change.diff ?? "");
  return `<details><summary>${ACTION_ICON[change.action]} live ${change.action} <code>${escapeHtml(displayName(change))}</code>${where}</summary>\n\n${fence}diff\n${change.diff ?? ""}\n${fence}\n</details>`;
}

/**
 * Refusals as problems on the objects' files and lines in the head, for the check run's
 * annotations and conclusion: admission feedback before merge.
 */
export function liveProblems(
  environments: readonly LiveEnvironment[],
  sourceOf: (environment: string, key: string) => SourceLocation | undefined,
): ReportProblem[] {
  const problems: ReportProblem[] = [];
  for (const { environment, status } of environments) {
    if (status.state !== "answered") continue;
    for (const change of status.report.changes) {
      if (change.action !== "refused") continue;
      const at = sourceOf(environment, resourceKey(change)) ?? { file: ".github/sluice.yml", line: 1 };
      const by = change.refusedBy === "policy" ? "the agent's policy" : "the API server";
      problems.push({
        file: at.file,
        line: at.line,
        environment,
        side: "head",
        message: `${displayName(change)} would be refused by ${by} in the live cluster: ${change.message ?? ""}`,
      });
    }
  }
  return problems;
}

/** What an agent last found drifted in an environment, as the preview comment shows it. */
export interface DriftSummary {
  sha: string;
  objects: string[];
  healing: boolean;
}

/** One line about drift, for an environment's part of the live section. */
export function driftLine(drift: DriftSummary | undefined): string | undefined {
  if (!drift || drift.objects.length === 0) return undefined;
  const names = drift.objects.slice(0, 10).map((o) => `\`${escapeCode(o)}\``);
  const more = drift.objects.length > 10 ? ` and ${drift.objects.length - 10} more` : "";
  const healing = drift.healing ? " Self-heal is on: the agent applies them again." : "";
  return `- ⚠️ drifted from the last deploy (\`${shortSha(drift.sha)}\`), changed in the cluster by hand: ${names.join(", ")}${more}.${healing}`;
}
