import type { EnvironmentDiff } from "./diff-report.ts";
import { escapeCode, GITHUB_COMMENT_LIMIT, renderMarkdown } from "./markdown.ts";
import { PREVIEW_MARKER } from "./preview-comment.ts";
import { shortSha } from "./git-ref.ts";

/** A preview that is still rendering, as its comment shows it (issue 28: a large preview streams). */
export interface PreviewProgress {
  baseSha: string;
  headSha: string;
  /** Link to GitHub's compare view of the two commits. */
  compareUrl?: string;
  /** The environments of the configuration. */
  total: number;
  /** Those whose inputs are read: whether the change affects them is known. */
  classified: number;
  /** The environments being rendered (found so far while `classified < total`), in configuration order. */
  rendering: readonly string[];
  /** The environments not rendered because the change does not affect them (found so far). */
  skipped: number;
  /** The environments compared so far, in any order. */
  done: readonly EnvironmentDiff[];
}

/**
 * How long a preview renders before its comment may stream (a summary first, filled in as
 * environments finish): a preview done sooner posts its final comment alone, one write.
 */
export const STREAM_AFTER_MS = 1_000;

/** Renders left, in rounds of the render processes, that make a progress comment worth its write. */
const STREAM_MIN_ROUNDS = 2;

/** What {@link streamsNow} knows of the writes a progress comment competes with. */
export interface StreamOptions {
  /**
   * How long the write after a progress write waits behind it (GitHub's write pacing), in ms.
   * Given, no progress write goes out once the renders left are expected to end within twice
   * that: the progress write may wait a gap for its turn, and the final comment a gap behind it.
   */
  writeGapMs?: number;
  /**
   * When the first environment was done, in ms since the preview started: once a write gap has
   * passed since, the rate is counted from there, so the time before the first render (checkouts,
   * reading inputs) does not slow it; before, from the start (a shorter time says little).
   */
  firstDoneMs?: number;
}

/**
 * Whether a preview's comment streams now: it has rendered for {@link STREAM_AFTER_MS} and more
 * than {@link STREAM_MIN_ROUNDS} rounds of the `renderers` render processes are known to be left.
 * A preview of a few environments, however slow, posts only its final comment: a progress write
 * before it would hold it a second behind GitHub's write pacing (issue 28: three environments of
 * 500 touched, comment within 2 s). For the same reason, with `writeGapMs` given, it stops
 * streaming once the renders left (and the environments not yet read, as if each renders) are
 * expected, at the rate environments were done so far, to end within two of those gaps. Measured
 * without this at 150 environments, the final comment reached GitHub 1.0–1.8 s after the last
 * comparison, one gap behind the last progress write (issue 28: comment complete ≤ 1.2 × the
 * renders ÷ cores).
 */
export function streamsNow(
  progress: { total: number; classified: number; rendering: readonly string[]; done: readonly unknown[] },
  elapsedMs: number,
  renderers: number,
  options: StreamOptions = {},
): boolean {
  if (elapsedMs < STREAM_AFTER_MS) return false;
  const left = progress.rendering.length - progress.done.length;
  if (left <= STREAM_MIN_ROUNDS * Math.max(1, renderers)) return false;
  if (options.writeGapMs === undefined) return true;
  const unread = progress.total - progress.classified;
  const sinceFirst = options.firstDoneMs === undefined ? 0 : elapsedMs - options.firstDoneMs;
  const expected =
    sinceFirst >= options.writeGapMs
      ? expectedLeftMs(progress.done.length - 1, left + unread, sinceFirst)
      : expectedLeftMs(progress.done.length, left + unread, elapsedMs);
  return expected > 2 * options.writeGapMs;
}

/** How long `left` more environments take at the rate `done` took `elapsedMs`: forever while none are done. */
export function expectedLeftMs(done: number, left: number, elapsedMs: number): number {
  return done <= 0 || elapsedMs <= 0 ? Number.POSITIVE_INFINITY : (left * elapsedMs) / done;
}

/**
 * The sticky comment's body while a preview renders: what is being rendered, how many are done,
 * and the environments done so far (in configuration order) as the final comment will show them.
 * It carries the preview marker, so the final comment replaces it in place.
 */
export function progressComment(progress: PreviewProgress): string {
  const range = `\`${shortSha(progress.baseSha)}\`…\`${shortSha(progress.headSha)}\``;
  const total = progress.rendering.length;
  const unaffected =
    progress.skipped > 0
      ? ` ${progress.skipped} environment${progress.skipped === 1 ? "" : "s"} unaffected by this change, not rendered.`
      : "";
  const reading =
    progress.classified < progress.total
      ? ` Reading which of the ${progress.total} environments this change affects: ${progress.classified} read so far.`
      : "";
  const order = new Map(progress.rendering.map((name, index) => [name, index]));
  const done = [...progress.done].sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0));
  const header = [
    "### Sluice preview",
    `Comparing ${progress.compareUrl ? `[${range}](${progress.compareUrl})` : range}`,
    `**Rendering: ${progressLine(done.length, total)}.**${unaffected}${reading} This comment fills in as environments finish; the \`sluice/preview\` check completes once all are in.`,
  ].join("\n\n");
  const finished = new Set(done.map((env) => env.name));
  const pending = pendingList(progress.rendering.filter((name) => !finished.has(name)));
  const footer = `${pending}\n\n${PREVIEW_MARKER}`;
  if (done.length === 0) return `${header}\n\n${footer}`;
  return renderMarkdown({ environments: done, errors: [] }, { header, footer, maxLength: GITHUB_COMMENT_LIMIT });
}

/** Pending environments named at most: the list stays a small part of the comment. */
const MAX_PENDING_NAMES = 200;

/** The environments still rendering, folded away. */
function pendingList(pending: readonly string[]): string {
  const shown = pending.slice(0, MAX_PENDING_NAMES).map((name) => `\`${escapeCode(name)}\``);
  const more = pending.length > MAX_PENDING_NAMES ? ` and ${pending.length - MAX_PENDING_NAMES} more` : "";
  return `<details><summary>Still rendering: ${pending.length}</summary>\n\n${shown.join(", ")}${more}\n\n</details>`;
}

/** "37 of 500 environments done". */
export function progressLine(done: number, total: number): string {
  return `${done} of ${total} environment${total === 1 ? "" : "s"} done`;
}
