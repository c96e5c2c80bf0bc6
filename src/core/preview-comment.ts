import { errorList, escapeInline, GITHUB_COMMENT_LIMIT, renderMarkdown, summaryTable } from "./markdown.ts";
import { hasChanges, type DiffReport, type ReportProblem } from "./diff-report.ts";
import { resourceKey } from "./identity.ts";
import { liveProblems, liveSection, type LiveEnvironment } from "./live-preview.ts";
import type { SourceLocation } from "./manifest.ts";

/** The hidden marker that identifies Sluice's sticky comment on a pull request. */
export const PREVIEW_MARKER = "<!-- sluice:preview -->";
/** GitHub refuses check-run summaries and texts longer than this. */
export const CHECK_RUN_TEXT_LIMIT = 65_535;

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

/** The body of the sticky comment: header, report, live section and marker, at most 65,536 characters. */
export function previewComment(input: PreviewCommentInput): string {
  const range = `\`${input.baseSha.slice(0, 7)}\`…\`${input.headSha.slice(0, 7)}\``;
  const header = [
    "### Sluice preview",
    `Comparing ${input.compareUrl ? `[${range}](${input.compareUrl})` : range}${input.fullDiffUrl ? ` · [full diff](${input.fullDiffUrl})` : ""}`,
  ].join("\n\n");
  return renderMarkdown(input.report, {
    header,
    footer: `${input.live ? liveSection(input.live) : noLiveSection()}\n\n${PREVIEW_MARKER}`,
    maxLength: GITHUB_COMMENT_LIMIT,
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
}

/**
 * The comment and the check run of a preview. Live refusals (admission, the agent's policy) fail
 * the check run, annotated on the objects' files and lines in the head.
 */
export function publicationOf(input: PreviewPublication): {
  comment: string;
  conclusion: PreviewConclusion;
  output: { title: string; summary: string; annotations: Annotation[] };
} {
  const sources = headSources(input.report);
  const refused = input.live ? liveProblems(input.live, (environment, key) => sources.get(`${environment}\n${key}`)) : [];
  const checked = refused.length > 0 ? { ...input.report, errors: [...input.report.errors, ...refused] } : input.report;
  return {
    comment: previewComment(input),
    conclusion: previewConclusion(checked),
    output: { ...previewCheckOutput(checked), annotations: previewAnnotations(checked.errors) },
  };
}

function headSources(report: DiffReport): Map<string, SourceLocation> {
  const sources = new Map<string, SourceLocation>();
  for (const env of report.environments)
    for (const change of env.changes) if (change.head) sources.set(`${env.name}\n${resourceKey(change.id)}`, change.head);
  return sources;
}

/** The sticky comment when rendering failed before any diff existed. */
export function failureComment(message: string, headSha: string): string {
  return `### Sluice preview\n\n❌ The preview of \`${headSha.slice(0, 7)}\` failed: ${escapeInline(message)}\n\n${PREVIEW_MARKER}`;
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
  return result.length <= GITHUB_COMMENT_LIMIT ? result : body;
}

/** How the preview check run concludes. */
export type PreviewConclusion = "success" | "failure" | "neutral";

/** The conclusion: failure on any error, neutral when nothing relevant changed, success otherwise. */
export function previewConclusion(report: DiffReport): PreviewConclusion {
  if (report.errors.length > 0) return "failure";
  return hasChanges(report) ? "success" : "neutral";
}

/** The check run's title and summary (the summary table and the errors). */
export function previewCheckOutput(report: DiffReport): { title: string; summary: string } {
  const changed = report.environments.filter((e) => e.summary.added + e.summary.modified + e.summary.removed > 0).length;
  const title =
    report.errors.length > 0
      ? `${report.errors.length} error${report.errors.length === 1 ? "" : "s"}`
      : changed === 0
        ? "No changes"
        : `Changes in ${changed} environment${changed === 1 ? "" : "s"}`;
  const summary = [summaryTable(report.environments), errorList(report.errors, 50)].filter(Boolean).join("\n\n");
  return {
    title,
    summary: summary.length <= CHECK_RUN_TEXT_LIMIT ? summary : `${summary.slice(0, CHECK_RUN_TEXT_LIMIT - 14)}\n\n…(truncated)`,
  };
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
