import type { ResourceChange } from "./diff.ts";
import { formatProblem } from "./errors.ts";
import { displayName, kindName } from "./identity.ts";
import { ACTION_ORDER, type DiffReport, type EnvironmentDiff, type ReportProblem } from "./diff-report.ts";

/** GitHub refuses issue comments longer than this. */
export const GITHUB_COMMENT_LIMIT = 65_536;

/** GitHub refuses check-run summaries and texts longer than this. */
export const CHECK_RUN_TEXT_LIMIT = 65_535;

/** Options for {@link renderMarkdown}. */
export interface MarkdownOptions {
  /** Hard cap on the length of the result, in bytes. */
  maxLength?: number;
  /** Markdown placed first (a title, the commit range). */
  header?: string;
  /** Markdown placed last (a live-diff section, a marker). Always kept; its last line even when it is too long itself. */
  footer?: string;
  /** Link to the full diff page, named wherever something was left out. */
  fullDiffUrl?: string;
  /** At most this many errors are listed one by one. */
  maxErrors?: number;
  /**
   * Where what the comment has no room for continues, as a noun phrase (for example "the
   * `sluice/preview` check run's details"). With it, {@link renderReport} also returns that
   * continuation (`rest`); without it, the comment points at the full diff page only.
   */
  continuation?: string;
  /** Cap on the continuation, in bytes. */
  continuationLength?: number;
}

/** A report as a comment, and the continuation of what the comment had no room for. */
export interface RenderedReport {
  markdown: string;
  /** The next part of what `markdown` left out (at most `continuationLength` bytes); absent when nothing was left out. */
  rest?: string;
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
 * The PR-comment report: {@link renderReport} without the continuation.
 */
export function renderMarkdown(report: DiffReport, options: MarkdownOptions = {}): string {
  return renderReport(report, options).markdown;
}

/**
 * The PR-comment report, under `maxLength` bytes whatever the report holds. First the summary (a
 * table of the environments with changes or errors, the others counted), the notes and the
 * errors, each within a share of the room; then the changed objects, in the first of these steps
 * that fits, each step saying in words what it left out:
 *
 * 1. per-resource diffs (removed first, then modified, then added) while they fit, and every
 *    other changed object named in a compact table;
 * 2. one line per environment (counts of added, modified and removed) naming objects as far as
 *    room allows;
 * 3. the changed environments' names and counts, then how many more there are.
 *
 * With `continuation`, `rest` carries the next part of what was left out: the diffs that did not
 * fit (step 1), or the objects (then environments) the comment did not name.
 */
export function renderReport(report: DiffReport, options: MarkdownOptions = {}): RenderedReport {
  const maxLength = options.maxLength ?? GITHUB_COMMENT_LIMIT;
  const tail = options.footer ? `\n\n${options.footer}` : "";
  const room = Math.max(0, maxLength - utf8Length(options.header ?? "") - utf8Length(tail));
  const head = [
    options.header,
    summarySection(report, { maxBytes: Math.min(SUMMARY_BYTES, Math.floor(room / 4)) }),
    noteList(report.environments, Math.min(NOTE_BYTES, Math.floor(room / 8))),
    errorList(report.errors, options.maxErrors ?? 50, Math.min(ERROR_BYTES, Math.floor(room / 4))),
  ]
    .filter((part): part is string => Boolean(part))
    .join("\n\n");
  const items = report.environments.flatMap((env) => orderedChanges(env).map((change) => ({ env: env.name, change })));
  const context: Context = {
    url: options.fullDiffUrl,
    continuation: options.continuation,
    multipleEnvironments: report.environments.length > 1,
  };
  const available = maxLength - utf8Length(head) - utf8Length(tail) - 2;
  const changes = changeSection(items, available, context);
  const section = changes.markdown ? `\n\n${changes.markdown}` : "";
  const body = head + section + tail;
  const markdown = utf8Length(body) > maxLength ? cutToFit(head + section, options.footer, maxLength) : body;
  const rest = options.continuation
    ? continuationOf(items, changes, context, options.continuationLength ?? CHECK_RUN_TEXT_LIMIT)
    : undefined;
  return { markdown, ...(rest ? { rest } : {}) };
}

/** Shares of the comment for the summary table, the notes and the errors (the changed objects get the rest). */
const SUMMARY_BYTES = 16_000;
const NOTE_BYTES = 6_000;
const ERROR_BYTES = 12_000;

/**
 * Only a header or footer larger than the cap gets here: the text is cut where it must be, said
 * in words, and the footer's last line (the comment's marker) kept.
 */
function cutToFit(text: string, footer: string | undefined, maxLength: number): string {
  const kept = footer?.split("\n").at(-1) ?? "";
  const note = `\n\n… (cut here: the comment has a size limit of ${maxLength} bytes; the full diff page has everything)${kept ? `\n\n${kept}` : ""}`;
  const whole = footer ? `${text}\n\n${footer}` : text;
  return `${prefixWithin(whole, maxLength - utf8Length(note))}${note}`;
}

/** The longest prefix of `text` within `max` bytes, not splitting a surrogate pair. */
export function prefixWithin(text: string, max: number): string {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code >= 0xd800 && code <= 0xdbff ? 4 : 3;
    if (bytes + size > max) return text.slice(0, i);
    bytes += size;
    if (size === 4) i += 1;
  }
  return text;
}

/** A text within `max` bytes: whole when it fits, else cut with a sentence saying so. */
export function fitWithin(text: string, max: number): string {
  if (utf8Length(text) <= max) return text;
  const note = "\n\n… (cut here: too long for GitHub)";
  return `${prefixWithin(text, Math.max(0, max - utf8Length(note)))}${note}`;
}

/** One changed object of one environment. */
interface Item {
  env: string;
  change: ResourceChange;
}

/** What every step of {@link changeSection} needs besides the objects. */
interface Context {
  url: string | undefined;
  continuation: string | undefined;
  multipleEnvironments: boolean;
}

/** What a step of {@link changeSection} showed, for the continuation to pick up from. */
type Shown =
  | { step: "none"; markdown: string }
  | { step: "diffs"; markdown: string; withoutDiff: Item[] }
  | { step: "lines"; markdown: string; unnamed: Item[] }
  | { step: "environments"; markdown: string; named: Set<string> };

/** The changed objects in the first step that fits in `budget` bytes (see {@link renderReport}). */
function changeSection(items: readonly Item[], budget: number, context: Context): Shown {
  if (items.length === 0) return { step: "none", markdown: "" };
  const diffs = diffsAndNames(items, budget, context);
  if (diffs) return diffs;
  const lines = environmentLines(items, budget, lineIntro(items, context, "comment"));
  if (lines) return { step: "lines", markdown: lines.markdown, unnamed: lines.unnamed };
  const environments = environmentNames(items, budget, { intro: environmentsIntro(items, context), elsewhere: elsewhereOf(context) });
  return { step: "environments", markdown: environments.markdown, named: environments.named };
}

/** Step 1: diffs while they fit, room kept first for naming every object whose diff is left out. */
function diffsAndNames(items: readonly Item[], budget: number, context: Context): Shown | undefined {
  if (!namesMayFit(items, budget)) return undefined;
  const allNamed = namesTable(items, diffsIntro(items.length, context));
  if (utf8Length(allNamed) > budget) return undefined;
  let left = budget - utf8Length(allNamed) - 2;
  const shown: string[] = [];
  const withoutDiff: Item[] = [];
  for (const item of items) {
    // No diff block is this short: once the room is gone, the rest are only named.
    if (left < MIN_DETAILS_BYTES) {
      withoutDiff.push(item);
      continue;
    }
    const block = changeDetails(item.change, context.multipleEnvironments ? item.env : undefined);
    const size = utf8Length(block) + 2;
    if (size <= left) {
      shown.push(block);
      left -= size;
    } else {
      withoutDiff.push(item);
    }
  }
  const leftOut = withoutDiff.length > 0 ? namesTable(withoutDiff, diffsIntro(withoutDiff.length, context)) : fullLink(context.url);
  return { step: "diffs", markdown: [...shown, leftOut].filter(Boolean).join("\n\n"), withoutDiff };
}

/** Fewer bytes than any {@link changeDetails} block has. */
const MIN_DETAILS_BYTES = 64;

function diffsIntro(count: number, context: Context): string {
  const link = context.url ? ` [Open the full diff](${context.url}).` : "";
  const next = context.continuation ? ` ${sentence(context.continuation)} show the next ones.` : "";
  return `**${count} diff${count === 1 ? "" : "s"} not shown here** (the comment has a size limit).${link}${next}`;
}

function lineIntro(items: readonly Item[], context: Context, where: "comment" | "continuation"): string {
  const environments = new Set(items.map((item) => item.env)).size;
  const link = context.url ? ` [Open the full diff](${context.url}) for every object.` : "";
  if (where === "continuation")
    return `**${plural(items.length, "more changed object")} in ${plural(environments, "environment")}**, per environment (counts are of these), named as far as room allows.${link}`;
  const next = context.continuation ? ` ${sentence(context.continuation)} name the next ones.` : "";
  return `**${plural(items.length, "changed object")} in ${plural(environments, "environment")} are too many to name each here**: one line per environment follows, naming objects as far as room allows.${link}${next}`;
}

function environmentsIntro(items: readonly Item[], context: Context): string {
  const environments = new Set(items.map((item) => item.env)).size;
  const link = context.url ? ` [Open the full diff](${context.url}) for every object.` : "";
  return `**${plural(environments, "environment")} changed, too many for a line each here**: their names and counts follow (🟢 added, 🟡 modified, 🔴 removed).${link}`;
}

/** `1 cluster`, `3 clusters`: a count and its noun, plural unless one. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** The objects of each environment, in the order of `items`, by environment in first-seen order. */
function byEnvironment(items: readonly Item[]): Map<string, Item[]> {
  const groups = new Map<string, Item[]>();
  for (const item of items) {
    const group = groups.get(item.env);
    if (group) group.push(item);
    else groups.set(item.env, [item]);
  }
  return groups;
}

/** Added and removed first when naming: they matter most to a reviewer. */
function namingOrder(items: readonly Item[]): Item[] {
  return [...items].sort((a, b) => NAMING_ORDER.indexOf(a.change.action) - NAMING_ORDER.indexOf(b.change.action));
}

function counts(items: readonly Item[]): Record<"added" | "modified" | "removed", number> {
  const result = { added: 0, modified: 0, removed: 0 };
  for (const { change } of items) if (change.action !== "unchanged") result[change.action] += 1;
  return result;
}

/**
 * Step 2: one line per environment, `- env: 3 added, 2 modified, 1 removed: names…, and N more`.
 * Every environment gets the same number of names (the most that fit), then one more each, in
 * order, while room is left. Undefined when not even the lines without names fit.
 */
function environmentLines(items: readonly Item[], budget: number, intro: string): { markdown: string; unnamed: Item[] } | undefined {
  const groups = [...byEnvironment(items)].map(([env, envItems]) => {
    const c = counts(envItems);
    const ordered = namingOrder(envItems);
    const names = ordered.map((item) => code(displayName(item.change.id)));
    return {
      env,
      ordered,
      names,
      sizes: names.map(utf8Length),
      base: `- ${code(env)}: ${c.added} added, ${c.modified} modified, ${c.removed} removed`,
    };
  });
  const lineSize = (g: (typeof groups)[number], named: number, upTo: number): number => {
    // `upTo` is the size of the first `named` names, each with its ", " (": " for the first).
    if (named === 0) return utf8Length(g.base);
    const more = named < g.names.length ? utf8Length(`, and ${g.names.length - named} more`) : 0;
    return utf8Length(g.base) + upTo + more;
  };
  const prefix = groups.map((g) => {
    const sums = [0];
    for (const size of g.sizes) sums.push((sums.at(-1) ?? 0) + size + 2);
    return sums;
  });
  const total = (k: number): number =>
    utf8Length(intro) +
    2 +
    groups.reduce((sum, g, i) => {
      const named = Math.min(k, g.names.length);
      return sum + lineSize(g, named, prefix[i]?.[named] ?? 0) + 1;
    }, 0);
  if (total(0) > budget) return undefined;
  let [low, high] = [0, Math.max(...groups.map((g) => g.names.length))];
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (total(mid) <= budget) low = mid;
    else high = mid - 1;
  }
  // One more name each, in order, while room is left: every line had `low` and `low + 1` did not all fit.
  const named = groups.map((g) => Math.min(low, g.names.length));
  let left = budget - total(low);
  groups.forEach((g, i) => {
    const n = named[i] ?? 0;
    const sums = prefix[i] ?? [];
    if (n >= g.names.length) return;
    const grow = lineSize(g, n + 1, sums[n + 1] ?? 0) - lineSize(g, n, sums[n] ?? 0);
    if (grow > left) return;
    left -= grow;
    named[i] = n + 1;
  });
  const unnamed: Item[] = [];
  const lines = groups.map((g, i) => {
    const n = named[i] ?? 0;
    unnamed.push(...g.ordered.slice(n));
    if (n === 0) return g.base;
    const more = n < g.names.length ? `, and ${g.names.length - n} more` : "";
    return `${g.base}: ${g.names.slice(0, n).join(", ")}${more}`;
  });
  return { markdown: `${intro}\n\n${lines.join("\n")}`, unnamed };
}

/**
 * Step 3: the changed environments' names and counts, as many as fit in `budget` bytes (those in
 * `skip` left out), then how many more there are.
 */
function environmentNames(
  items: readonly Item[],
  budget: number,
  options: { intro: string; skip?: ReadonlySet<string>; elsewhere: string },
): { markdown: string; named: Set<string> } {
  const { intro, elsewhere } = options;
  const skip = options.skip ?? new Set<string>();
  const entries = [...byEnvironment(items)]
    .filter(([env]) => !skip.has(env))
    .map(([env, envItems]) => {
      const c = counts(envItems);
      return { env, text: `${code(env)} (🟢 ${c.added} 🟡 ${c.modified} 🔴 ${c.removed})` };
    });
  // Room for the longest ending this can have.
  const ending = (more: number): string => (more > 0 ? `, … and ${more} more changed environments${elsewhere}.` : ".");
  let left = budget - utf8Length(intro) - 2 - utf8Length(ending(entries.length));
  const named = new Set<string>();
  const shown: string[] = [];
  for (const entry of entries) {
    const size = utf8Length(entry.text) + 2;
    if (size > left) break;
    left -= size;
    shown.push(entry.text);
    named.add(entry.env);
  }
  const more = entries.length - shown.length;
  const list = shown.length > 0 ? `${shown.join(", ")}${ending(more)}` : `… and ${more} more changed environments${elsewhere}.`;
  return { markdown: `${intro}\n\n${list}`, named };
}

/** Where the environments a step-3 list of the comment leaves out are named. */
function elsewhereOf(context: Context): string {
  if (context.continuation) return ` (${context.continuation} or the full diff page name them)`;
  return context.url ? " (on the full diff page)" : " (left out: the comment has a size limit)";
}

/** A sentence's first letter in upper case. */
function sentence(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * The continuation of a comment, within `limit` bytes: the diffs it had no room for, or the
 * objects (then environments) it did not name, each step said in words as in the comment.
 */
function continuationOf(items: readonly Item[], shown: Shown, context: Context, limit: number): string | undefined {
  const link = context.url ? ` [The full diff page](${context.url}) has everything.` : "";
  const intro = `The preview comment had no room for what follows.${link}`;
  const budget = limit - utf8Length(intro) - 2;
  let body: string;
  switch (shown.step) {
    case "none":
      return undefined;
    case "diffs":
      if (shown.withoutDiff.length === 0) return undefined;
      body = moreDiffs(shown.withoutDiff, budget, context);
      break;
    case "lines":
      if (shown.unnamed.length === 0) return undefined;
      body = namesOrLines(shown.unnamed, budget, context, new Set());
      break;
    case "environments":
      body = namesOrLines(items, budget, context, shown.named);
      break;
  }
  return fitWithin(`${intro}\n\n${body}`, limit);
}

/** The diffs a comment named but could not show, while they fit, then how many more. */
function moreDiffs(items: readonly Item[], budget: number, context: Context): string {
  const ending = (more: number): string => `**${plural(more, "more diff")} only on the full diff page** (the comment names each).`;
  let left = budget - utf8Length(ending(items.length)) - 2;
  const shown: string[] = [];
  for (const item of items) {
    const block = changeDetails(item.change, context.multipleEnvironments ? item.env : undefined);
    const size = utf8Length(block) + 2;
    if (size > left) break;
    left -= size;
    shown.push(block);
  }
  const more = items.length - shown.length;
  return [...shown, more > 0 ? ending(more) : ""].filter(Boolean).join("\n\n");
}

/** Every object named in a table, else one line per environment, else the environments not in `skip`. */
function namesOrLines(items: readonly Item[], budget: number, context: Context, skip: ReadonlySet<string>): string {
  const link = context.url ? ` [Open the full diff](${context.url}).` : "";
  const table = (): string =>
    namesTable(items, `**${plural(items.length, "changed object")} not named in the comment**, by environment, change and kind.${link}`);
  if (namesMayFit(items, budget)) {
    const named = table();
    if (utf8Length(named) <= budget) return named;
  }
  const lines = environmentLines(items, budget, lineIntro(items, context, "continuation"));
  if (lines) return lines.markdown;
  const intro = `**The changed environments the comment had no room to name**, with counts (🟢 added, 🟡 modified, 🔴 removed).${link}`;
  return environmentNames(items, budget, { intro, skip, elsewhere: " (on the full diff page)" }).markdown;
}

/** Changes worth showing, in order of importance. */
export function orderedChanges(env: EnvironmentDiff): ResourceChange[] {
  return ACTION_ORDER.flatMap((action) => env.changes.filter((change) => change.action === action));
}

/** Up to this many environments, every one gets a row of the summary table; past it, only those with changes or errors. */
export const FULL_TABLE_ENVIRONMENTS = 50;
/** At most this many rows in a summary table; the others are counted. */
export const MAX_TABLE_ROWS = 100;

/**
 * The summary: how many environments the change did not affect, a table of the environments with
 * counts per action, and lines counting the environments it leaves out. Up to
 * {@link FULL_TABLE_ENVIRONMENTS} environments each get a row; past that only those with changes
 * or errors do, and the unchanged ones are counted in one line. The table holds at most
 * {@link MAX_TABLE_ROWS} rows and `maxBytes` bytes.
 */
export function summarySection(report: DiffReport, options: { maxBytes?: number } = {}): string {
  const environments = report.environments;
  const failing = new Set(report.errors.map((e) => e.environment).filter((name): name is string => name !== undefined));
  const full = environments.length <= FULL_TABLE_ENVIRONMENTS;
  const listed = full ? environments : environments.filter((env) => changed(env) || failing.has(env.name));
  const quiet = full ? 0 : environments.filter((env) => env.skipped === undefined && !changed(env) && !failing.has(env.name)).length;
  const unaffected = unaffectedLine(environments);
  const table = summaryTable(listed, {
    maxBytes: Math.max(0, (options.maxBytes ?? Infinity) - utf8Length(unaffected ?? "") - 200),
    ...(full ? {} : { listing: "with changes or errors" }),
  });
  const quietLine =
    quiet > 0 ? `${plural(quiet, "environment")} rendered with no changes ${quiet === 1 ? "is" : "are"} not listed.` : undefined;
  if (environments.length === 0) return table;
  return [unaffected, listed.length > 0 || full ? table : undefined, quietLine]
    .filter((part): part is string => part !== undefined)
    .join("\n\n");
}

/**
 * How many environments the change did not affect (none of the files they read changed), so were
 * not rendered at either commit; undefined when every environment was rendered.
 */
export function unaffectedLine(environments: readonly EnvironmentDiff[]): string | undefined {
  const count = environments.filter((env) => env.skipped !== undefined).length;
  if (count === 0) return undefined;
  return `${count} environment${count === 1 ? "" : "s"} unaffected by this change, not rendered.`;
}

function changed(env: EnvironmentDiff): boolean {
  return env.summary.added + env.summary.modified + env.summary.removed > 0;
}

/**
 * One table, one row per environment, with counts per action: at most {@link MAX_TABLE_ROWS} rows
 * and `maxBytes` bytes, the rows left out counted below it (as environments of `listing` when the
 * table lists only those).
 */
export function summaryTable(
  environments: readonly EnvironmentDiff[],
  options: { maxBytes?: number; listing?: "with changes or errors" } = {},
): string {
  if (environments.length === 0) return "_No environments._";
  const heading = ["| Environment | 🟢 Added | 🟡 Modified | 🔴 Removed | Unchanged | |", "|---|--:|--:|--:|--:|---|"];
  const which = options.listing ? ` ${options.listing}` : "";
  const moreLine = (more: number): string => `${plural(more, "more environment")}${which} ${more === 1 ? "is" : "are"} not in this table.`;
  let left = (options.maxBytes ?? Infinity) - utf8Length(heading.join("\n")) - utf8Length(moreLine(environments.length)) - 2;
  const rows: string[] = [];
  for (const env of environments) {
    const s = env.summary;
    const status = env.skipped ? `no changes (${escapeInline(env.skipped)})` : changed(env) ? "changes" : "no changes";
    const row = tableRow([code(env.name), `${s.added}`, `${s.modified}`, `${s.removed}`, `${s.unchanged}`, status]);
    if (rows.length >= MAX_TABLE_ROWS || utf8Length(row) + 1 > left) break;
    left -= utf8Length(row) + 1;
    rows.push(row);
  }
  const table = [...heading, ...rows].join("\n");
  const more = environments.length - rows.length;
  return more > 0 ? `${table}\n\n${moreLine(more)}` : table;
}

/** The environments' notes, one line each, within `maxBytes` bytes; the notes left out are counted. */
export function noteList(environments: readonly EnvironmentDiff[], maxBytes = Infinity): string {
  const notes = environments.flatMap((env) => (env.notes ?? []).map((note) => `> ℹ️ ${code(env.name)}: ${escapeInline(note)}`));
  const moreLine = (more: number): string => `> … and ${plural(more, "more note")} (on the full diff page)`;
  let left = maxBytes - utf8Length(moreLine(notes.length));
  const shown: string[] = [];
  for (const note of notes) {
    const size = utf8Length(note) + 3;
    if (size > left) break;
    left -= size;
    shown.push(note);
  }
  if (shown.length < notes.length) shown.push(moreLine(notes.length - shown.length));
  return shown.join("\n>\n");
}

/** Error messages longer than this are cut in lists: the annotation on the file has the whole message. */
const ERROR_MESSAGE_CHARACTERS = 1_000;

/** The errors, each as `file:line: message`, capped at `max` entries and `maxBytes` bytes. */
export function errorList(errors: readonly ReportProblem[], max: number, maxBytes = Infinity): string {
  if (errors.length === 0) return "";
  const heading = `**❌ ${errors.length} error${errors.length === 1 ? "" : "s"}**`;
  const moreLine = (more: number): string => `- … and ${more} more`;
  let left = maxBytes - utf8Length(heading) - 2 - utf8Length(moreLine(errors.length));
  const lines: string[] = [];
  for (const e of errors.slice(0, max)) {
    const where = [e.environment, e.side].filter(Boolean).join(", ");
    const message = e.message.length > ERROR_MESSAGE_CHARACTERS ? `${e.message.slice(0, ERROR_MESSAGE_CHARACTERS)} …(cut)` : e.message;
    const file = formatProblem({ file: e.file.slice(0, ERROR_MESSAGE_CHARACTERS), line: e.line, message: "" }).replace(/: $/, "");
    const line = `- ${code(file)}${where ? ` (${escapeInline(where.slice(0, ERROR_MESSAGE_CHARACTERS))})` : ""}: ${escapeInline(message)}`;
    if (utf8Length(line) + 1 > left) break;
    left -= utf8Length(line) + 1;
    lines.push(line);
  }
  if (errors.length > lines.length) lines.push(moreLine(errors.length - lines.length));
  return `${heading}\n\n${lines.join("\n")}`;
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

/** Added and removed first when naming: they matter most to a reviewer. */
const NAMING_ORDER: readonly ResourceChange["action"][] = ["added", "removed", "modified"];

/** False when the names of `items` cannot fit in `budget` bytes whatever they are (each takes at least "`x`, "), so the table is not built. */
function namesMayFit(items: readonly Item[], budget: number): boolean {
  return items.length * 5 <= budget;
}

/** Names every object of `items` after `intro`, in one table by environment, action and kind. */
function namesTable(items: readonly Item[], intro: string): string {
  const groups = new Map<string, { env: string; action: ResourceChange["action"]; kind: string; names: string[] }>();
  for (const { env, change } of namingOrder(items)) {
    const kind = kindName(change.id);
    const key = `${env}\0${change.action}\0${kind}`;
    let group = groups.get(key);
    if (!group) {
      group = { env, action: change.action, kind, names: [] };
      groups.set(key, group);
    }
    group.names.push(change.id.namespace ? `${change.id.namespace}/${change.id.name}` : change.id.name);
  }
  const rows = [...groups.values()].map((g) =>
    tableRow([code(g.env), `${ICONS[g.action]} ${g.action}`, escapeInline(g.kind), g.names.map(code).join(", ")]),
  );
  return `${intro}\n\n| Environment | Change | Kind | Objects |\n|---|---|---|---|\n${rows.join("\n")}`;
}

function fullLink(url: string | undefined): string {
  return url ? `[Open the full diff](${url}).` : "";
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
 * As many of `names` as fit `budget` bytes, each as `quote` gives it (a code span unless told),
 * joined by commas; then how many more, and `note` after that when some were left out.
 */
export function namesWithin(
  names: readonly string[],
  budget: number,
  options: { quote?: (name: string) => string; note?: string } = {},
): string {
  const quote = options.quote ?? code;
  const shown: string[] = [];
  let used = 0;
  for (const name of names) {
    const quoted = quote(name);
    if (used + utf8Length(quoted) + 2 > budget) break;
    shown.push(quoted);
    used += utf8Length(quoted) + 2;
  }
  const more = names.length - shown.length;
  return more > 0 ? `${shown.join(", ")} and ${more} more${options.note ? ` ${options.note}` : ""}` : shown.join(", ");
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
