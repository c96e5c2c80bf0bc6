import type { ResourceChange } from "./diff.ts";
import { formatProblem } from "./errors.ts";
import { displayName } from "./identity.ts";
import { ACTION_ORDER, type DiffReport, type EnvironmentDiff, type ReportProblem } from "./report.ts";

/** GitHub refuses issue comments longer than this. */
export const GITHUB_COMMENT_LIMIT = 65_536;

/** Options for {@link renderMarkdown}. */
export interface MarkdownOptions {
  /** Hard cap on the length of the result. */
  maxLength?: number;
  /** Markdown placed first (a title, the commit range). */
  header?: string;
  /** Markdown placed last (a live-diff section, a marker). Always kept. */
  footer?: string;
  /** Link to the full diff page, named wherever something was left out. */
  fullDiffUrl?: string;
  /** At most this many errors are listed one by one. */
  maxErrors?: number;
}

const ICONS: Record<ResourceChange["action"], string> = { added: "🟢", removed: "🔴", modified: "🟡", unchanged: "⚪" };

/**
 * The PR-comment report. The summary table and the errors are always complete; per-resource
 * diffs follow, removed first, then modified, then added, as many as fit under `maxLength`;
 * whatever did not fit is named and pointed at the full diff page.
 */
export function renderMarkdown(report: DiffReport, options: MarkdownOptions = {}): string {
  const maxLength = options.maxLength ?? GITHUB_COMMENT_LIMIT;
  const head = [options.header, summaryTable(report.environments), noteList(report.environments), errorList(report.errors, options.maxErrors ?? 50)]
    .filter((part): part is string => Boolean(part))
    .join("\n\n");
  const tail = options.footer ? `\n\n${options.footer}` : "";
  const sections = report.environments.flatMap((env) => orderedChanges(env).map((change) => ({ env, change })));
  const multipleEnvironments = report.environments.length > 1;

  // Reserve room for the list of what was left out; it shrinks itself to fit this budget.
  const reserve = sections.length > 0 ? Math.min(4_000, Math.floor(maxLength / 8)) : 0;
  let budget = maxLength - head.length - tail.length - reserve;
  const shown: string[] = [];
  const omitted: { env: string; change: ResourceChange }[] = [];
  for (const { env, change } of sections) {
    const block = `\n\n${changeDetails(change, multipleEnvironments ? env.name : undefined)}`;
    if (block.length <= budget) {
      shown.push(block);
      budget -= block.length;
    } else {
      omitted.push({ env: env.name, change });
    }
  }
  const leftOut = omitted.length > 0 ? `\n\n${omittedList(omitted, reserve + budget, options.fullDiffUrl)}` : fullLink(options.fullDiffUrl, sections.length > 0);
  const body = head + shown.join("") + leftOut + tail;
  if (body.length > maxLength) {
    // Only a header or footer larger than the cap gets here: cut, never exceed.
    return `${body.slice(0, maxLength - 20)}\n\n… (truncated)`;
  }
  return body;
}

/** Changes worth showing, in order of importance. */
export function orderedChanges(env: EnvironmentDiff): ResourceChange[] {
  return ACTION_ORDER.flatMap((action) => env.changes.filter((change) => change.action === action));
}

/** One table, one row per environment, with counts per action. */
export function summaryTable(environments: readonly EnvironmentDiff[]): string {
  if (environments.length === 0) return "_No environments._";
  const rows = environments.map((env) => {
    const s = env.summary;
    const status = env.skipped ? `no changes (${escapeInline(env.skipped)})` : s.added + s.modified + s.removed === 0 ? "no changes" : "changes";
    return `| \`${escapeCode(env.name)}\` | ${s.added} | ${s.modified} | ${s.removed} | ${s.unchanged} | ${status} |`;
  });
  return ["| Environment | 🟢 Added | 🟡 Modified | 🔴 Removed | Unchanged | |", "|---|--:|--:|--:|--:|---|", ...rows].join("\n");
}

/** The environments' notes, one line each. */
export function noteList(environments: readonly EnvironmentDiff[]): string {
  return environments.flatMap((env) => (env.notes ?? []).map((note) => `> ℹ️ \`${escapeCode(env.name)}\`: ${escapeInline(note)}`)).join("\n>\n");
}

/** The errors, each as `file:line: message`, capped at `max` entries. */
export function errorList(errors: readonly ReportProblem[], max: number): string {
  if (errors.length === 0) return "";
  const lines = errors.slice(0, max).map((e) => {
    const where = [e.environment, e.side].filter(Boolean).join(", ");
    return `- \`${escapeCode(formatProblem({ file: e.file, line: e.line, message: "" }).replace(/: $/, ""))}\`${where ? ` (${escapeInline(where)})` : ""}: ${escapeInline(e.message)}`;
  });
  if (errors.length > max) lines.push(`- … and ${errors.length - max} more`);
  return `**❌ ${errors.length} error${errors.length === 1 ? "" : "s"}**\n\n${lines.join("\n")}`;
}

/** A collapsible block with one resource's diff. */
export function changeDetails(change: ResourceChange, environment?: string): string {
  const fence = fenceFor(change.diff);
  const env = environment ? ` <sub>${escapeHtml(environment)}</sub>` : "";
  const note = change.replaced ? "\n\n_Diff too large to compute line by line; shown as a whole-object replacement._" : "";
  const secret = change.secretKeys ? `\n\n${secretKeyTable(change.secretKeys)}` : "";
  return `<details><summary>${ICONS[change.action]} ${change.action} <code>${escapeHtml(displayName(change.id))}</code>${env}</summary>${note}${secret}\n\n${fence}diff\n${change.diff.trimEnd()}\n${fence}\n</details>`;
}

function secretKeyTable(keys: Record<string, string>): string {
  const entries = Object.entries(keys);
  if (entries.length === 0) return "_No data keys._";
  return `Secret keys (values are never shown): ${entries.map(([key, change]) => `\`${escapeCode(key)}\` ${change}`).join(", ")}`;
}

function omittedList(omitted: readonly { env: string; change: ResourceChange }[], budget: number, url: string | undefined): string {
  const link = url ? ` [Open the full diff](${url}).` : "";
  const intro = `**${omitted.length} diff${omitted.length === 1 ? "" : "s"} not shown here** (the comment has a size limit).${link}\n\n`;
  const names: string[] = [];
  let used = intro.length + 40;
  for (const { env, change } of omitted) {
    const name = `${ICONS[change.action]} \`${escapeCode(displayName(change.id))}\` (${env})`;
    if (used + name.length + 2 > budget) break;
    names.push(name);
    used += name.length + 2;
  }
  const rest = omitted.length - names.length;
  return intro + names.join(", ") + (rest > 0 ? `${names.length > 0 ? ", " : ""}… and ${rest} more` : "");
}

function fullLink(url: string | undefined, anyChange: boolean): string {
  return url && anyChange ? `\n\n[Open the full diff](${url}).` : "";
}

/** A backtick fence longer than any run of backticks in the text. */
function fenceFor(text: string): string {
  let longest = 2;
  for (const match of text.matchAll(/`+/g)) longest = Math.max(longest, match[0].length);
  return "`".repeat(longest + 1);
}

/** Control characters and line breaks: in untrusted text each becomes a space. */
// eslint-disable-next-line no-control-regex
const BREAKS = /[\u0000-\u001f\u007f\u2028\u2029]+/g;

/** Escapes text for HTML content and attributes, on one line (a blank line would end an HTML block such as `<summary>`). */
export function escapeHtml(text: string): string {
  return text.replace(BREAKS, " ").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`).replace(/@/g, "@\u200b");
}

/** Text for inside a code span: one line, no backtick to close it early. */
export function escapeCode(text: string): string {
  return text.replace(BREAKS, " ").replace(/`/g, "'");
}

/**
 * Escapes untrusted text for one line of markdown: no line breaks, no HTML, no emphasis, links,
 * images, headings or tables, and no @mention (a zero-width space after `@` keeps GitHub from
 * notifying anyone on Sluice's behalf).
 */
export function escapeInline(text: string): string {
  return text
    .replace(BREAKS, " ")
    .replace(/[\\`*_{}[\]()#+!|~]/g, (c) => `\\${c}`)
    .replace(/[&<>]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : "&gt;"))
    .replace(/@/g, "@\u200b");
}

/** Escapes untrusted text of several lines: each line as {@link escapeInline}, the breaks kept. */
export function escapeLines(text: string): string {
  return text.split(/\r?\n/).map(escapeInline).join("\n");
}
