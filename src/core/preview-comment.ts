import type { LiveTimeoutConclusion } from "./config.ts";
import {
  CHECK_RUN_TEXT_LIMIT,
  code,
  errorList,
  escapeInline,
  escapeLines,
  fitWithin,
  GITHUB_COMMENT_LIMIT,
  renderReport,
  summarySection,
  utf8Length,
  type RenderedReport,
} from "./markdown.ts";
import { hasChanges, type DiffReport, type ReportProblem } from "./diff-report.ts";
import { resourceKey } from "./identity.ts";
import { targetName } from "./fleet.ts";
import { liveProblems, liveSection, type LiveEnvironment } from "./live-preview.ts";
import type { SourceLocation } from "./manifest.ts";
import { shortSha } from "./git-ref.ts";

/** The hidden marker that identifies Sluice's sticky comment on a pull request. */
export const PREVIEW_MARKER = "<!-- sluice:preview -->";
export { CHECK_RUN_TEXT_LIMIT, unaffectedLine } from "./markdown.ts";

/** Where the comment says what it had no room for continues: the check run's text. */
const CONTINUATION = "the `sluice/preview` check run's details";

/** What the preview comment shows besides the report. */
export interface PreviewCommentInput {
  report: DiffReport;
  baseSha: string;
  headSha: string;
  /** Link to GitHub's compare view of the two commits. */
  compareUrl?: string;
  /** Link to the full diff page. */
  fullDiffUrl?: string;
  /** The live preview per environment; absent when this Sluice does not do live previews. */
  live?: readonly LiveEnvironment[];
}

/** The body of the sticky comment: header, report, live section and marker, at most 65,536 bytes. */
export function previewComment(input: PreviewCommentInput): string {
  return previewRendering(input).markdown;
}

/**
 * The sticky comment and the continuation of what it had no room for (the check run's text). The
 * count of unaffected environments comes with the summary table, right after the commit range.
 */
function previewRendering(input: PreviewCommentInput): RenderedReport {
  const range = `\`${shortSha(input.baseSha)}\`…\`${shortSha(input.headSha)}\``;
  const header = [
    "### Sluice preview",
    `Comparing ${input.compareUrl ? `[${range}](${input.compareUrl})` : range}${input.fullDiffUrl ? ` · [full diff](${input.fullDiffUrl})` : ""}`,
  ].join("\n\n");
  return renderReport(input.report, {
    header,
    footer: `${input.live ? liveSection(input.live) : noLiveSection()}\n\n${PREVIEW_MARKER}`,
    maxLength: GITHUB_COMMENT_LIMIT,
    continuation: CONTINUATION,
    continuationLength: CHECK_RUN_TEXT_LIMIT,
    ...(input.fullDiffUrl ? { fullDiffUrl: input.fullDiffUrl } : {}),
  });
}

/** The live-cluster section of a Sluice that does not deploy (it has no job signing key, so no agent to ask). */
export function noLiveSection(): string {
  return "#### Live cluster\n\nNo live diff is available: this Sluice does not deploy, so it compares the rendered manifests of the two commits, not the cluster.";
}

/** A published preview: what the comment and the check run are made from, kept so a late live answer can redo both. */
export interface PreviewPublication extends PreviewCommentInput {
  fullDiffUrl: string;
  /** How the check run concludes when an asked agent does not answer in time (the default branch's `previews.liveTimeout`); failure when absent. */
  liveTimeout?: LiveTimeoutConclusion;
  /** The conclusion the check run was last completed with: one that passed is never turned into a failure. */
  concluded?: PreviewConclusion;
}

/** The check run's title, summary, text and annotations. */
export interface PreviewCheckOutput {
  title: string;
  summary: string;
  /** The next part of what the comment had no room for; absent when the comment holds everything. */
  text?: string;
  annotations: Annotation[];
}

/**
 * What the `sluice/preview` check run says. It is a gating check (branch protection, auto-merge and
 * reviewers take a pass as final), so it stays in progress while a live answer that could fail it
 * is awaited, and completes only once every part that can fail it is in.
 */
export type PreviewCheck =
  | { status: "in_progress"; output: PreviewCheckOutput }
  | { status: "completed"; conclusion: PreviewConclusion; output: PreviewCheckOutput };

/** The comment and the check run of a preview. */
export function publicationOf(input: PreviewPublication): { comment: string; check: PreviewCheck } {
  const rendered = previewRendering(input);
  return { comment: rendered.markdown, check: checkOf(input, rendered.rest) };
}

/**
 * The check run of a preview. Live refusals (admission, the agent's policy) fail it, annotated on
 * the objects' files and lines in the head. While an agent's answer is pending it stays in
 * progress (unless the rendered diff already failed it); an agent that did not answer in time
 * gives `liveTimeout`. A check that completed passing keeps its conclusion whatever comes later:
 * a pull request may have merged on it.
 */
export function previewCheck(input: PreviewPublication): PreviewCheck {
  return checkOf(input, previewRendering(input).rest);
}

/** {@link previewCheck} with the comment's continuation (`text`) already rendered. */
function checkOf(input: PreviewPublication, text: string | undefined): PreviewCheck {
  const live = input.live ?? [];
  const sources = headSources(input.report);
  const refused = liveProblems(live, (environment, key) => sources.get(`${environment}\n${key}`));
  const checked = refused.length > 0 ? { ...input.report, errors: [...input.report.errors, ...refused] } : input.report;
  const annotations = previewAnnotations(checked.errors);
  const output = (note?: { title: string; text: string }): PreviewCheckOutput => {
    const { title, summary } = previewCheckOutput(checked, note?.text);
    return { title: note?.title ?? title, summary, ...(text ? { text } : {}), annotations };
  };
  const rendered = previewConclusion(checked);
  const waiting = live.filter((e) => e.status.state === "pending").map((e) => targetName(e.environment, e.cluster));
  const late = live
    .filter((e) => e.status.state === "timed-out" || e.status.state === "offline")
    .map((e) => targetName(e.environment, e.cluster));
  const timeout = input.liveTimeout ?? "failure";
  let next: PreviewCheck;
  if (rendered === "failure") next = { status: "completed", conclusion: "failure", output: output() };
  else if (waiting.length > 0)
    next = { status: "in_progress", output: output({ title: "Waiting for the live cluster", text: checkNotes.waiting(waiting) }) };
  else if (late.length > 0)
    next = {
      status: "completed",
      conclusion: timeout,
      output: output({ title: "No live answer in time", text: checkNotes.timedOut(late, timeout) }),
    };
  else next = { status: "completed", conclusion: rendered, output: output() };
  const { concluded } = input;
  const passed = concluded !== undefined && concluded !== "failure";
  if (passed && (next.status !== "completed" || next.conclusion === "failure"))
    return {
      status: "completed",
      conclusion: concluded,
      output: output({ title: `Completed as ${concluded} before a live answer`, text: checkNotes.after(concluded) }),
    };
  return next;
}

/** The notes a check run's summary starts with when the live cluster has not (fully) had its say. */
const checkNotes = {
  waiting: (environments: readonly string[]): string =>
    `⏳ Waiting for the dry-run against the live cluster of ${names(environments)}: this check completes when the agent answers or the wait ends, never before.`,
  timedOut: (environments: readonly string[], conclusion: LiveTimeoutConclusion): string =>
    conclusion === "failure"
      ? `⚠️ No agent answered for ${names(environments)} in time, so this check fails (\`previews.liveTimeout: failure\` on the default branch): the rendered diff alone does not pass it. A late answer completes it again.`
      : `⚠️ No agent answered for ${names(environments)} in time; this check is neutral (\`previews.liveTimeout: neutral\` on the default branch) and compares the two commits only.`,
  after: (concluded: PreviewConclusion): string =>
    `❌ A live answer came after this check completed as ${concluded}, and it fails the preview (below). A check that passed is not turned into a failure, as the pull request may have merged on it: comment \`/diff\` or press Re-run to check again.`,
};

/** Names the environments (or clusters of a fleet, `env@cluster`): the first 20, then how many more. */
function names(environments: readonly string[]): string {
  const shown = environments.slice(0, 20).map(code).join(", ");
  return environments.length > 20 ? `${shown} and ${environments.length - 20} more` : shown;
}

function headSources(report: DiffReport): Map<string, SourceLocation> {
  const sources = new Map<string, SourceLocation>();
  for (const env of report.environments)
    for (const change of env.changes) if (change.head) sources.set(`${env.name}\n${resourceKey(change.id)}`, change.head);
  return sources;
}

/** The sticky comment when rendering failed before any diff existed. */
export function failureComment(message: string, headSha: string): string {
  return `### Sluice preview\n\n❌ The preview of \`${shortSha(headSha)}\` failed: ${escapeInline(message)}\n\n${PREVIEW_MARKER}`;
}

/** The check run of a preview that gave up: why, as text (the error may quote names from the pull request). */
export function previewFailedOutput(message: string): { title: string; summary: string } {
  return { title: "Preview failed", summary: `The preview could not be produced: ${escapeLines(message.slice(0, 1_000))}` };
}

/** Marks an existing preview comment as belonging to a closed or merged pull request. */
export function closedComment(body: string, state: "closed" | "merged"): string {
  const banner =
    state === "merged"
      ? "> [!NOTE]\n> This pull request was merged. The preview below is no longer updated."
      : "> [!NOTE]\n> This pull request was closed. The preview below is no longer updated.";
  const withoutBanner = body.replace(
    /^> \[!NOTE\]\n> This pull request was (merged|closed)\. The preview below is no longer updated\.\n\n/,
    "",
  );
  const result = `${banner}\n\n${withoutBanner}`;
  return utf8Length(result) <= GITHUB_COMMENT_LIMIT ? result : body;
}

/** How the preview check run concludes. */
export type PreviewConclusion = "success" | "failure" | "neutral";

/** The conclusion: failure on any error, neutral when nothing relevant changed, success otherwise. */
export function previewConclusion(report: DiffReport): PreviewConclusion {
  if (report.errors.length > 0) return "failure";
  return hasChanges(report) ? "success" : "neutral";
}

/** Shares of a check run's summary: the note, the summary table, the errors. */
const CHECK_NOTE_BYTES = 8_000;
const CHECK_TABLE_BYTES = 32_000;
const CHECK_ERROR_BYTES = 20_000;

/**
 * The check run's title and summary (a note first when there is one, the summary table and the
 * errors), within {@link CHECK_RUN_TEXT_LIMIT} bytes: each part within its share, and what a part
 * leaves out counted in words.
 */
export function previewCheckOutput(report: DiffReport, note?: string): { title: string; summary: string } {
  const changed = report.environments.filter((e) => e.summary.added + e.summary.modified + e.summary.removed > 0).length;
  const title =
    report.errors.length > 0
      ? `${report.errors.length} error${report.errors.length === 1 ? "" : "s"}`
      : changed === 0
        ? "No changes"
        : `Changes in ${changed} environment${changed === 1 ? "" : "s"}`;
  const summary = [
    note ? fitWithin(note, CHECK_NOTE_BYTES) : undefined,
    summarySection(report, { maxBytes: CHECK_TABLE_BYTES }),
    errorList(report.errors, 50, CHECK_ERROR_BYTES),
  ]
    .filter(Boolean)
    .join("\n\n");
  return { title, summary: utf8Length(summary) <= CHECK_RUN_TEXT_LIMIT ? summary : fitWithin(summary, CHECK_RUN_TEXT_LIMIT) };
}

/** A check-run annotation on a file and line. */
export interface Annotation {
  path: string;
  start_line: number;
  end_line: number;
  annotation_level: "failure" | "warning" | "notice";
  message: string;
  title: string;
}

/** At most this many annotations per check run: 100,000 errors from one file must not become 2,000 requests. */
export const MAX_ANNOTATIONS = 200;

/**
 * One failure annotation per error, on its file and line (line 1 when the tool named no line), at
 * most {@link MAX_ANNOTATIONS}; the last one says how many more there were.
 */
export function previewAnnotations(errors: readonly ReportProblem[]): Annotation[] {
  const annotations = errors.slice(0, MAX_ANNOTATIONS).map((e) => {
    const line = Math.max(1, e.line);
    return {
      path: e.file,
      start_line: line,
      end_line: line,
      annotation_level: "failure",
      message: e.message.slice(0, 64 * 1024),
      title: `Sluice${e.environment ? ` (${e.environment}${e.side ? `, ${e.side}` : ""})` : ""}`,
    } satisfies Annotation;
  });
  const last = annotations.at(-1);
  if (last && errors.length > MAX_ANNOTATIONS)
    last.message = `${last.message}\n\n(${errors.length - MAX_ANNOTATIONS} more errors are not annotated; the preview comment lists them.)`;
  return annotations;
}
