import type { LiveChange, LiveReport } from "./agent-protocol.ts";
import type { ReportProblem } from "./diff-report.ts";
import type { SourceLocation } from "./manifest.ts";
import { displayName, resourceKey } from "./identity.ts";
import { code, escapeCode, escapeHtml, escapeInline, fenceFor, namesWithin, prefixWithin, utf8Length } from "./markdown.ts";
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

/** One previewed environment's live preview (for a fleet, one cluster's: a fleet has an entry per cluster). */
export interface LiveEnvironment {
  environment: string;
  /** The cluster of a fleet whose agent this entry asks. */
  cluster?: string;
  status: LiveStatus;
  /** What the environment's (or the cluster's) agent last found drifted from the last deploy. */
  drift?: DriftSummary;
}

/** The live section keeps to this many bytes; diffs that do not fit are named without their text. */
export const LIVE_SECTION_BUDGET = 24_000;

/** One environment's (or group of clusters') lines keep to this many bytes; the diff page has the rest. */
const GROUP_BUDGET = 4_000;

/** A fleet's clusters are named up to this many bytes per answer; the diff page names every one. */
const CLUSTER_NAMES_BUDGET = 2_000;

const ACTION_ICON: Record<LiveChange["action"], string> = { create: "🟢", configure: "🟡", refused: "❌" };

/** Entries that give the same answer: one environment, or the clusters of a fleet whose agents said the same. */
interface LiveGroup {
  environment: string;
  /** The fleet's clusters that gave this answer, sorted; absent for an environment on one cluster. */
  clusters?: string[];
  /** The fleet's number of clusters, when it gave more than one answer. */
  of?: number;
  status: LiveStatus;
  drift?: DriftSummary;
}

/**
 * The live-cluster section of the preview comment: per environment, what merging would change in
 * the live cluster (masked diffs, by the agent), what would be pruned, and what the API server's
 * admission chain or the agent's policy would refuse; or plainly why there is no live preview. A
 * fleet's clusters that give the same answer (and drift) are shown once, with their names, so a
 * hundred clusters take a few lines.
 */
export function liveSection(environments: readonly LiveEnvironment[], budget = LIVE_SECTION_BUDGET): string {
  const title = "#### Live cluster";
  if (environments.length === 0) return `${title}\n\nNo environment was rendered, so nothing was compared with the cluster.`;
  const parts: string[] = [title];
  let used = utf8Length(title);
  const groups = liveGroups(environments);
  const named = new Set(groups.map((g) => g.environment)).size > 1 || groups.some((g) => g.clusters);
  const diffs: { where: string; change: LiveChange }[] = [];
  for (const group of groups) {
    const whole = [environmentLine(groupLabel(group), group.status), driftLine(group.drift)].filter(Boolean).join("\n");
    // One agent's long answer (a refusal's message is the API server's) never pushes the others out.
    const text =
      utf8Length(whole) > GROUP_BUDGET ? `${prefixWithin(whole, GROUP_BUDGET)}\n- … cut here; the full diff page has the rest.` : whole;
    parts.push(text);
    used += utf8Length(text) + 2;
    if (group.status.state !== "answered") continue;
    for (const change of group.status.report.changes) if (change.diff) diffs.push({ where: named ? diffPlace(group) : "", change });
  }
  const omitted: string[] = [];
  for (const { where, change } of diffs) {
    const block = diffBlock(where, change);
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

/**
 * The entries as the comment shows them: an environment on one cluster as it is; a fleet's
 * clusters grouped by what they answered and found drifted, groups in the order of their first
 * cluster, all in the order the environments first appear.
 */
function liveGroups(environments: readonly LiveEnvironment[]): LiveGroup[] {
  const byEnvironment = new Map<string, LiveEnvironment[]>();
  for (const entry of environments) {
    const name = entry.cluster === undefined ? `\u0000${byEnvironment.size}` : entry.environment;
    const entries = byEnvironment.get(name);
    if (entries) entries.push(entry);
    else byEnvironment.set(name, [entry]);
  }
  const groups: LiveGroup[] = [];
  for (const entries of byEnvironment.values()) {
    const [first] = entries;
    if (!first) continue;
    if (first.cluster === undefined) {
      groups.push(first);
      continue;
    }
    const answers = new Map<string, LiveGroup & { clusters: string[] }>();
    for (const entry of [...entries].sort((a, b) => (a.cluster ?? "").localeCompare(b.cluster ?? ""))) {
      const key = answerKey(entry);
      const group = answers.get(key);
      if (group) group.clusters.push(entry.cluster ?? "");
      else
        answers.set(key, {
          environment: entry.environment,
          clusters: [entry.cluster ?? ""],
          status: entry.status,
          ...(entry.drift ? { drift: entry.drift } : {}),
        });
    }
    for (const group of answers.values()) groups.push(answers.size > 1 ? { ...group, of: entries.length } : group);
  }
  return groups;
}

/** What makes two clusters' entries the same answer: everything but who asked, who answered and when. */
function answerKey({ status, drift }: LiveEnvironment): string {
  const said =
    status.state === "answered"
      ? { error: status.report.error, changes: status.report.changes, unchanged: status.report.unchanged, prune: status.report.prune }
      : status;
  const found = drift && drift.objects.length > 0 ? drift : undefined;
  return JSON.stringify([status.state, said, found]);
}

/** The clusters of a group, as many as fit `CLUSTER_NAMES_BUDGET`, then how many more. */
function clusterNames(clusters: readonly string[], quote?: (cluster: string) => string): string {
  return namesWithin(clusters, CLUSTER_NAMES_BUDGET, { ...(quote ? { quote } : {}), note: "(the diff page names each)" });
}

function groupLabel(group: LiveGroup): string {
  const name = `**${code(group.environment)}**`;
  if (!group.clusters) return name;
  const count = group.clusters.length;
  const of = group.of === undefined ? (count === 1 ? "" : `all ${count} clusters, `) : `${count} of ${group.of} clusters, `;
  return `${name} on ${of}${clusterNames(group.clusters)}`;
}

function diffPlace(group: LiveGroup): string {
  const environment = code(group.environment);
  if (!group.clusters) return ` in ${environment}`;
  const [first = ""] = group.clusters;
  const others = group.clusters.length - 1;
  return ` in ${environment} on ${code(first)}${others > 0 ? ` and ${others} more` : ""}`;
}

/** What one environment (or group of a fleet's clusters), named by `name` as the comment shows it, says. */
function environmentLine(name: string, status: LiveStatus): string {
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

function diffBlock(where: string, change: LiveChange): string {
  const fence = fenceFor(change.diff ?? "");
  return `<details><summary>${ACTION_ICON[change.action]} live ${change.action} <code>${escapeHtml(displayName(change))}</code>${where}</summary>\n\n${fence}diff\n${change.diff ?? ""}\n${fence}\n</details>`;
}

/**
 * Refusals as problems on the objects' files and lines in the head, for the check run's
 * annotations and conclusion: admission feedback before merge. A refusal that several clusters of
 * a fleet give alike is one problem that names them.
 */
export function liveProblems(
  environments: readonly LiveEnvironment[],
  sourceOf: (environment: string, key: string) => SourceLocation | undefined,
): ReportProblem[] {
  const problems: ReportProblem[] = [];
  for (const group of liveGroups(environments)) {
    const { environment, status } = group;
    if (status.state !== "answered") continue;
    const where = group.clusters ? ` (clusters ${clusterNames(group.clusters, (c) => c)})` : "";
    for (const change of status.report.changes) {
      if (change.action !== "refused") continue;
      const at = sourceOf(environment, resourceKey(change)) ?? { file: ".github/sluice.yml", line: 1 };
      const by = change.refusedBy === "policy" ? "the agent's policy" : "the API server";
      problems.push({
        file: at.file,
        line: at.line,
        environment,
        side: "head",
        message: `${displayName(change)} would be refused by ${by} in the live cluster${where}: ${change.message ?? ""}`,
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
  /** Objects whose live status is not current, with why (a fleet's clusters report it: a wave bakes healthy). */
  unhealthy?: string[];
}

/** One line about drift, for an environment's part of the live section. */
export function driftLine(drift: DriftSummary | undefined): string | undefined {
  if (!drift || drift.objects.length === 0) return undefined;
  const names = drift.objects.slice(0, 10).map((o) => `\`${escapeCode(o)}\``);
  const more = drift.objects.length > 10 ? ` and ${drift.objects.length - 10} more` : "";
  const healing = drift.healing ? " Self-heal is on: the agent applies them again." : "";
  return `- ⚠️ drifted from the last deploy (\`${shortSha(drift.sha)}\`), changed in the cluster by hand: ${names.join(", ")}${more}.${healing}`;
}
