import type { ResourceChange } from "./diff.ts";
import { formatProblem } from "./errors.ts";
import { displayName, kindName } from "./identity.ts";
import { ACTION_ORDER, type DiffReport, type EnvironmentDiff, type ReportProblem } from "./diff-report.ts";

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

/** UTF-8 bytes of a text: GitHub's limits hold in bytes as well as characters, and an emoji is four bytes. */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff) {
      bytes += 4;
      i += 1;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * The PR-comment report. The summary table and the errors are always complete, and every changed
 * object is named: per-resource diffs follow (removed first, then modified, then added) as many as
 * fit under `maxLength`, counted in bytes; the objects whose diffs did not fit are listed by name
 * in a compact table (added and removed first), pointing at the full diff page.
 */
export function renderMarkdown(report: DiffReport, options: MarkdownOptions = {}): string {
  const maxLength = options.maxLength ?? GITHUB_COMMENT_LIMIT;
  const head = [
    options.header,
    summaryTable(report.environments),
    noteList(report.environments),
    errorList(report.errors, options.maxErrors ?? 50),
  ]
    .filter((part): part is string => Boolean(part))
    .join("\n\n");
  const tail = options.footer ? `\n\n${options.footer}` : "";
  const sections = report.environments.flatMap((env) => orderedChanges(env).map((change) => ({ env: env.name, change })));
  const multipleEnvironments = report.environments.length > 1;
  const available = maxLength - utf8Length(head) - utf8Length(tail);

  // Room for naming every changed object is kept first; diff bodies get what is left.
  const allNamed = sections.length > 0 ? omittedList(sections, options.fullDiffUrl, available) : "";
  let budget = available - utf8Length(allNamed) - 4;
  const shown: string[] = [];
  const omitted: { env: string; change: ResourceChange }[] = [];
  for (const section of sections) {
    const block = `\n\n${changeDetails(section.change, multipleEnvironments ? section.env : undefined)}`;
    const size = utf8Length(block);
    if (size <= budget) {
      shown.push(block);
      budget -= size;
    } else {
      omitted.push(section);
    }
  }
  const leftOut =
    omitted.length > 0 ? `\n\n${omittedList(omitted, options.fullDiffUrl, available)}` : fullLink(options.fullDiffUrl, sections.length > 0);
  const body = head + shown.join("") + leftOut + tail;
  if (utf8Length(body) > maxLength) {
    // Only a header or footer larger than the cap gets here: cut, never exceed.
    let cut = body.slice(0, maxLength - 20);
    while (utf8Length(cut) > maxLength - 20) cut = cut.slice(0, Math.floor(cut.length * 0.9));
    return `${cut}\n\n… (truncated)`;
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
    const status = env.skipped
      ? `no changes (${escapeInline(env.skipped)})`
      : s.added + s.modified + s.removed === 0
        ? "no changes"
        : "changes";
    return tableRow([code(env.name), `${s.added}`, `${s.modified}`, `${s.removed}`, `${s.unchanged}`, status]);
  });
  return ["| Environment | 🟢 Added | 🟡 Modified | 🔴 Removed | Unchanged | |", "|---|--:|--:|--:|--:|---|", ...rows].join("\n");
}

/** The environments' notes, one line each. */
export function noteList(environments: readonly EnvironmentDiff[]): string {
  return environments.flatMap((env) => (env.notes ?? []).map((note) => `> ℹ️ ${code(env.name)}: ${escapeInline(note)}`)).join("\n>\n");
}

/** The errors, each as `file:line: message`, capped at `max` entries. */
export function errorList(errors: readonly ReportProblem[], max: number): string {
  if (errors.length === 0) return "";
  const lines = errors.slice(0, max).map((e) => {
    const where = [e.environment, e.side].filter(Boolean).join(", ");
    return `- ${code(formatProblem({ file: e.file, line: e.line, message: "" }).replace(/: $/, ""))}${where ? ` (${escapeInline(where)})` : ""}: ${escapeInline(e.message)}`;
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
  return `<details><summary>${ICONS[change.action]} ${change.action} ${htmlCode(displayName(change.id))}${env}</summary>${note}${secret}\n\n${fence}diff\n${change.diff.trimEnd()}\n${fence}\n</details>`;
}

function secretKeyTable(keys: Record<string, string>): string {
  const entries = Object.entries(keys);
  if (entries.length === 0) return "_No data keys._";
  return `Secret keys (values are never shown): ${entries.map(([key, change]) => `${code(key)} ${change}`).join(", ")}`;
}

/** Added and removed first when naming what was left out: they matter most to a reviewer. */
const NAMING_ORDER: readonly ResourceChange["action"][] = ["added", "removed", "modified"];

/**
 * Names every object whose diff is not shown, in one table by environment, action and kind. When
 * even the names do not fit in `budget` bytes, each row gives a count instead.
 */
function omittedList(omitted: readonly { env: string; change: ResourceChange }[], url: string | undefined, budget: number): string {
  const link = url ? ` [Open the full diff](${url}).` : "";
  const intro = `**${omitted.length} diff${omitted.length === 1 ? "" : "s"} not shown here** (the comment has a size limit).${link}\n\n| Environment | Change | Kind | Objects |\n|---|---|---|---|\n`;
  const groups = new Map<string, { env: string; action: ResourceChange["action"]; kind: string; names: string[] }>();
  const ordered = [...omitted].sort((a, b) => NAMING_ORDER.indexOf(a.change.action) - NAMING_ORDER.indexOf(b.change.action));
  for (const { env, change } of ordered) {
    const kind = kindName(change.id);
    const key = `${env}\0${change.action}\0${kind}`;
    let group = groups.get(key);
    if (!group) {
      group = { env, action: change.action, kind, names: [] };
      groups.set(key, group);
    }
    group.names.push(change.id.namespace ? `${change.id.namespace}/${change.id.name}` : change.id.name);
  }
  const row = (g: { env: string; action: ResourceChange["action"]; kind: string }, objects: string) =>
    tableRow([code(g.env), `${ICONS[g.action]} ${g.action}`, escapeInline(g.kind), objects]);
  const named = intro + [...groups.values()].map((g) => row(g, g.names.map(code).join(", "))).join("\n");
  if (utf8Length(named) <= budget) return named;
  return (
    intro +
    [...groups.values()]
      .map((g) => row(g, `${g.names.length} object${g.names.length === 1 ? "" : "s"} (names on the full diff page)`))
      .join("\n")
  );
}

function fullLink(url: string | undefined, anyChange: boolean): string {
  return url && anyChange ? `\n\n[Open the full diff](${url}).` : "";
}

/** A backtick fence longer than any run of backticks in the text, so no line of the text can close it. */
export function fenceFor(text: string): string {
  let longest = 2;
  for (const match of text.matchAll(/`+/g)) longest = Math.max(longest, match[0].length);
  return "`".repeat(longest + 1);
}

// Untrusted text (object, file, branch and environment names, error messages, words of a comment)
// reaches GitHub only through the functions below: as a code span (`code`), as plain text
// (`escapeInline`, `escapeLines`), as a `<code>` element in an HTML block (`htmlCode`), and in a
// table row (`tableRow`).

/** Control characters and line breaks: in untrusted text each becomes a space. */
// eslint-disable-next-line no-control-regex
const BREAKS = /[\u0000-\u001f\u007f\u2028\u2029]+/g;

/**
 * Breaks what GitHub's filters turn into notifications and backlinks outside code, links and
 * preformatted text: `@user` and `@org/team` mentions, `#123`, `owner/repo#123` and `GH-123`
 * references. A zero-width space after `@`, `#` or `GH` keeps the text as it reads.
 */
function defuseReferences(text: string): string {
  return text
    .replace(/@/g, "@\u200b")
    .replace(/#(?=\d)/g, "#\u200b")
    .replace(/\b(GH)-(?=\d)/gi, "$1\u200b-");
}

/**
 * Escapes text for HTML content and attributes, on one line (a blank line would end an HTML block
 * such as `<summary>`), with no @mention. In a GitHub comment, put untrusted text in {@link htmlCode}:
 * GitHub links no reference inside `<code>`.
 */
export function escapeHtml(text: string): string {
  return text
    .replace(BREAKS, " ")
    .replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
    .replace(/@/g, "@\u200b");
}

/** Untrusted text as a `<code>` element, for inside an HTML block such as `<summary>`: no tag, no mention, no reference. */
export function htmlCode(text: string): string {
  return `<code>${escapeHtml(text)}</code>`;
}

/**
 * Text for inside a code span: one line, no backtick to close it early. Inside a code span GitHub
 * makes no link, image, HTML, mention or reference, so nothing else needs escaping.
 */
export function escapeCode(text: string): string {
  return text.replace(BREAKS, " ").replace(/`/g, "'");
}

/** Untrusted text as an inline code span; in a table row, also pass the cell through {@link tableRow}. */
export function code(text: string): string {
  return `\`${escapeCode(text)}\``;
}

/**
 * Escapes untrusted text for one line of markdown: no line breaks, no HTML, no emphasis, links,
 * images, headings or tables, no bare URL that GitHub would link, and no mention or reference
 * (see {@link defuseReferences}): nothing GitHub shows as Sluice's own words.
 */
export function escapeInline(text: string): string {
  return defuseReferences(
    text
      .replace(BREAKS, " ")
      .replace(/[\\`*_{}[\]()#+!|~]/g, (c) => `\\${c}`)
      .replace(/[&<>]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : "&gt;"))
      // GitHub links bare URLs and www. addresses (its autolink extension); a zero-width space stops that.
      .replace(/:\/\//g, ":\u200b//")
      .replace(/\b(www)\./gi, "$1\u200b."),
  );
}

/** Escapes untrusted text of several lines: each line as {@link escapeInline}, the breaks kept. */
export function escapeLines(text: string): string {
  return text.split(/\r?\n/).map(escapeInline).join("\n");
}

/**
 * One row of a markdown table from its cells' markdown. A `|` splits a row even inside a code
 * span unless a backslash escapes it, so every unescaped `|` gets one; a line break would end the
 * table, so it becomes a space. (GitHub then drops the backslash before a `|`: a name with `\|` of
 * its own shows in a code span as `|`, and no cell loses the names after it.)
 */
export function tableRow(cells: readonly string[]): string {
  const cell = (text: string): string =>
    text.replace(BREAKS, " ").replace(/(\\*)\|/g, (_, slashes: string) => `${slashes}${slashes.length % 2 === 0 ? "\\" : ""}|`);
  return `| ${cells.map(cell).join(" | ")} |`;
}
