import { html as diffToHtml } from "diff2html";
import { ColorSchemeType } from "diff2html/lib/types.js";
import type { ResourceChange } from "./diff.ts";
import { formatProblem } from "./errors.ts";
import { diffPath, displayName } from "./identity.ts";
import { targetName } from "./fleet.ts";
import type { LiveEnvironment } from "./live-preview.ts";
import { escapeHtml, orderedChanges } from "./markdown.ts";
import type { DiffReport } from "./diff-report.ts";
import { shortSha } from "./git-ref.ts";

/** The page template (views/diff-page.html) and the stylesheets inlined into it. */
export interface PageViews {
  template: string;
  styles: readonly string[];
}

/** What the page shows besides the report. */
export interface PageOptions {
  title: string;
  /** A line under the title, such as the commit range. Plain text. */
  subtitle?: string;
  /** The live preview: a second tab with what merging would change in the live cluster. */
  live?: readonly LiveEnvironment[];
  /** Where the page came from (the pull request), linked from its header. */
  link?: string;
}

/** Side by side, with a file list, in the reader's light or dark colours. */
const DIFF_OPTIONS = {
  outputFormat: "side-by-side",
  drawFileList: true,
  matching: "none",
  diffStyle: "word",
  colorScheme: ColorSchemeType.AUTO,
} as const;

/**
 * A change's diff with git's header in front: diff2html takes a `/dev/null` side without a
 * `new file mode` or `deleted file mode` line for a rename, and would tag an added object RENAMED.
 */
function withGitHeader(change: ResourceChange): string {
  const path = diffPath(change.id);
  const mode = change.action === "added" ? "new file mode 100644\n" : change.action === "removed" ? "deleted file mode 100644\n" : "";
  return `diff --git a/${path} b/${path}\n${mode}${change.diff}`;
}

/**
 * The full diff page: a self-contained HTML document (styles inlined, no scripts, no CDN) with
 * the summary, the errors, and every changed resource side by side with a file list.
 */
export function renderHtmlPage(report: DiffReport, views: PageViews, options: PageOptions): string {
  const sections = report.environments.map((env) => {
    const changes = orderedChanges(env);
    const diff = changes.map(withGitHeader).join("");
    const s = env.summary;
    const counts = `${s.added} added, ${s.modified} modified, ${s.removed} removed, ${s.unchanged} unchanged`;
    const body =
      changes.length === 0
        ? `<p class="sluice-empty">No changes${env.skipped ? ` (${escapeHtml(env.skipped)})` : ""}.</p>`
        : diffToHtml(diff, DIFF_OPTIONS);
    return `<section class="sluice-env" id="env-${escapeHtml(env.name)}"><h2>${escapeHtml(env.name)} <small>${counts}</small></h2>${body}</section>`;
  });
  const errors =
    report.errors.length === 0
      ? ""
      : `<section class="sluice-errors"><h2>Errors</h2><ul>${report.errors
          .map(
            (e) =>
              `<li><code>${escapeHtml(formatProblem({ ...e, message: "" }).replace(/: $/, ""))}</code>${e.environment ? ` (${escapeHtml(e.environment)}${e.side ? `, ${e.side}` : ""})` : ""}: ${escapeHtml(e.message)}</li>`,
          )
          .join("")}</ul></section>`;
  // One tab per environment (anchors: the page runs no scripts), with its counts.
  const environments =
    report.environments.length > 1
      ? `<nav class="sluice-envs" aria-label="Environments">${report.environments
          .map((env) => {
            const s = env.summary;
            return `<a href="#env-${escapeHtml(env.name)}">${escapeHtml(env.name)} <span class="sluice-counts"><span class="sluice-added">+${s.added}</span> <span class="sluice-modified">~${s.modified}</span> <span class="sluice-removed">−${s.removed}</span></span></a>`;
          })
          .join("")}</nav>`
      : "";
  const git = errors + environments + sections.join("\n");
  // Two tabs without scripts (the page allows none): anchors, and each tab a section of its own.
  const body = options.live
    ? `<nav class="sluice-tabs"><a href="#git">Git diff</a> · <a href="#live">Live cluster</a></nav><section id="git">${git}</section><section id="live"><h2>Live cluster</h2>${liveHtml(options.live)}</section>`
    : git;
  return fillTemplate(views.template, {
    title: escapeHtml(options.title),
    subtitle: escapeHtml(options.subtitle ?? ""),
    back: options.link ? `<a class="sluice-back" href="${escapeHtml(options.link)}">Back to the pull request</a>` : "",
    styles: views.styles.map((css) => css.replace(/<\/style/gi, "<\\/style")).join("\n"),
    body,
  });
}

/** The live tab: per environment, its status, refusals and prunes, and every live diff side by side. */
function liveHtml(live: readonly LiveEnvironment[]): string {
  return live
    .map(({ environment, cluster, status, drift }) => {
      const title = `<h3>${escapeHtml(targetName(environment, cluster))}</h3>`;
      const drifted =
        drift && drift.objects.length > 0
          ? `<p>Drifted from the last deploy (${escapeHtml(shortSha(drift.sha))}): ${drift.objects.map((o) => `<code>${escapeHtml(o)}</code>`).join(", ")}</p>`
          : "";
      if (status.state !== "answered") {
        const why =
          status.state === "pending"
            ? "waiting for the agent"
            : status.state === "timed-out"
              ? `no agent answered within ${status.seconds} s`
              : status.state === "offline"
                ? "no agent is online for it"
                : status.reason;
        return `<section class="sluice-env">${title}<p class="sluice-empty">No live preview: ${escapeHtml(why)}.</p>${drifted}</section>`;
      }
      const report = status.report;
      if (report.error)
        return `<section class="sluice-env">${title}<p>The agent could not dry-run this pull request: ${escapeHtml(report.error)}</p>${drifted}</section>`;
      const refused = report.changes.filter((c) => c.action === "refused");
      const lists = [
        ...refused.map(
          (c) =>
            `<li>refused by ${c.refusedBy === "policy" ? "the agent's policy" : "the API server"}: <code>${escapeHtml(displayName(c))}</code>: ${escapeHtml(c.message ?? "")}</li>`,
        ),
        ...report.prune.map((id) => `<li>would be pruned: <code>${escapeHtml(displayName(id))}</code></li>`),
      ];
      const diffs = report.changes
        .filter((c) => c.diff)
        .map((c) => {
          const path = diffPath(c);
          return `diff --git a/${path} b/${path}\n${c.action === "create" ? "new file mode 100644\n" : ""}${c.diff ?? ""}`;
        })
        .join("");
      const body = diffs
        ? diffToHtml(diffs, DIFF_OPTIONS)
        : `<p class="sluice-empty">Nothing changes live (${report.unchanged} objects checked).</p>`;
      return `<section class="sluice-env">${title}${lists.length > 0 ? `<ul>${lists.join("")}</ul>` : ""}${drifted}${body}</section>`;
    })
    .join("\n");
}

/** Replaces `{{name}}` placeholders with already-escaped values; an unknown placeholder is an error. */
export function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`template placeholder {{${name}}} has no value`);
    return value;
  });
}
