import { concurrencyGate, mapBounded } from "../../core/clock.ts";
import type { Config, Environment } from "../../core/config.ts";
import type { DiffOptions } from "../../core/diff.ts";
import type { DiffReport, EnvironmentDiff } from "../../core/diff-report.ts";
import { reportOf, skippedComparison, type EnvironmentComparison } from "../../render/compare.ts";
import { unchangedReason, type CachedComparer, type HeadRender } from "./cached-comparer.ts";

/** How far a comparison has got, as a preview shows it while it renders. */
export interface CompareProgress {
  /** The environments selected. */
  total: number;
  /** Those whose inputs are read, so it is known whether they render: `total` once all are. */
  classified: number;
  /** The environments found to render so far, in configuration order. */
  rendering: readonly string[];
  /** The environments found not to render so far, with why (unaffected by the change), in configuration order. */
  skipped: readonly EnvironmentDiff[];
  /** The environments compared so far, in the order they finished. */
  done: readonly EnvironmentDiff[];
}

/** What a preview compares and how. */
export interface PreviewComparisonInput {
  config: Config;
  comparer: CachedComparer;
  diff?: DiffOptions;
  /** Environments compared at once; the render pool may queue them further. */
  concurrency: number;
  /** Told as each environment's inputs are read and after each one is compared. */
  progress?: (progress: CompareProgress) => void;
}

/** A preview's comparison: its report, where each compared environment's head is, and when the cache entries are stored. */
export interface PreviewComparison {
  report: DiffReport;
  /** The head render of each environment compared (not of one skipped as unchanged). */
  heads: ReadonlyMap<string, HeadRender>;
  /** Settles once the cache entries of every comparison are stored (or given up); never rejects. */
  entries: Promise<void>;
}

/**
 * Compares every environment of a preview at base and head, `concurrency` at a time. Which need
 * no render is found a few at a time ahead of the renders, in configuration order, so the first
 * render starts once the first environment's inputs are read, not all of them. The report keeps
 * configuration order whatever order the comparisons finish in.
 */
export async function comparePreview(input: PreviewComparisonInput): Promise<PreviewComparison> {
  const { comparer } = input;
  const selected = input.config.environments;
  const concurrency = Math.max(1, input.concurrency);
  // Reading inputs is file I/O and hashing: a few at once, started now, in order.
  const reading = concurrencyGate(Math.max(concurrency, 8));
  const work = selected.map((env) => ({ env, read: reading(() => comparer.inputs(env)) }));
  const progress = progressTracker(selected, input.progress);
  const classified = Promise.all(
    work.map(({ read }, index) =>
      read.then((sides) => {
        progress.classified(index, unchangedReason(sides));
      }),
    ),
  );
  // A failure to read inputs is the caller's, from here or from below; never an unhandled one.
  classified.catch(() => undefined);
  const heads = new Map<string, HeadRender>();
  const entries: Promise<void>[] = [];
  const compared = await mapBounded(work, concurrency, async ({ env, read }): Promise<EnvironmentComparison> => {
    const sides = await read;
    const reason = unchangedReason(sides);
    if (reason !== undefined) return skippedComparison(env, reason);
    const result = await comparer.compare(env, sides, input.diff);
    heads.set(env.name, result.head);
    entries.push(result.entries);
    progress.compared(result.comparison.diff);
    return result.comparison;
  });
  await classified;
  return { report: reportOf(compared), heads, entries: Promise.all(entries).then(() => undefined) };
}

/**
 * Tells `progress` (when given) how far the comparison of `selected` has got. It is told after
 * every environment read and compared, a thousand times for 500 environments, so each report is
 * one pass over plain arrays: a skipped environment's entry is made once, when it is read.
 */
function progressTracker(
  selected: readonly Environment[],
  progress: ((progress: CompareProgress) => void) | undefined,
): { classified: (index: number, reason: string | undefined) => void; compared: (diff: EnvironmentDiff) => void } {
  /** By configuration index: undefined until read, then the environment's name when it renders or its skipped entry. */
  const found: (string | EnvironmentDiff | undefined)[] = Array.from({ length: selected.length }, () => undefined);
  let classified = 0;
  const done: EnvironmentDiff[] = [];
  const report = () => {
    if (!progress) return;
    const rendering: string[] = [];
    const skipped: EnvironmentDiff[] = [];
    for (const entry of found) {
      if (typeof entry === "string") rendering.push(entry);
      else if (entry) skipped.push(entry);
    }
    progress({ total: selected.length, classified, rendering, skipped, done: done.slice() });
  };
  return {
    classified: (index, reason) => {
      const env = selected[index];
      if (!env || found[index] !== undefined) return;
      found[index] = reason === undefined ? env.name : skippedComparison(env, reason).diff;
      classified += 1;
      report();
    },
    compared: (diff) => {
      done.push(diff);
      report();
    },
  };
}
