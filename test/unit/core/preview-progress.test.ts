import { describe, expect, it } from "vitest";
import type { EnvironmentDiff } from "../../../src/core/diff-report.ts";
import { GITHUB_COMMENT_LIMIT, utf8Length } from "../../../src/core/markdown.ts";
import { PREVIEW_MARKER } from "../../../src/core/preview-comment.ts";
import { expectedLeftMs, progressComment, STREAM_AFTER_MS, streamsNow } from "../../../src/core/preview-progress.ts";

const names = Array.from({ length: 500 }, (_, i) => `env-${String(i).padStart(3, "0")}`);

function modified(name: string): EnvironmentDiff {
  const diff = Array.from({ length: 40 }, (_, i) => `-  line${i}: old-value-of-some-length\n+  line${i}: new-value-of-some-length`).join(
    "\n",
  );
  return {
    name,
    summary: { added: 0, modified: 1, removed: 0, unchanged: 20 },
    changes: [{ id: { group: "apps", version: "v1", kind: "Deployment", namespace: name, name: "web" }, action: "modified", diff }],
  };
}

describe("progressComment", () => {
  it("says how many of the environments being rendered are done, names those still rendering, and carries the marker", () => {
    const body = progressComment({
      baseSha: "a".repeat(40),
      headSha: "b".repeat(40),
      total: 7,
      classified: 7,
      rendering: ["web", "api", "db"],
      skipped: 4,
      done: [],
    });

    expect(body).toContain("**Rendering: 0 of 3 environments done.**");
    expect(body).toContain("4 environments unaffected by this change, not rendered.");
    expect(body).not.toContain("Reading which");
    expect(body).toContain("<details><summary>Still rendering: 3</summary>\n\n`web`, `api`, `db`");
    expect(body.endsWith(PREVIEW_MARKER)).toBe(true);
  });

  it("shows the environments done in configuration order, whatever order they finished in, and stays under GitHub's limit at 500", () => {
    const done = names.slice(0, 300).reverse().map(modified);

    const body = progressComment({
      baseSha: "a".repeat(40),
      headSha: "b".repeat(40),
      total: 500,
      classified: 500,
      rendering: names,
      skipped: 0,
      done,
    });

    expect(body).toContain("**Rendering: 300 of 500 environments done.**");
    expect(body.indexOf("| `env-000` |")).toBeLessThan(body.indexOf("| `env-299` |"));
    expect(body).toContain("Still rendering: 200");
    expect(utf8Length(body)).toBeLessThanOrEqual(GITHUB_COMMENT_LIMIT);
    expect(body).toContain(PREVIEW_MARKER);
  });

  it("says how many environments' inputs are read while it is not yet known which the change affects", () => {
    const body = progressComment({
      baseSha: "a".repeat(40),
      headSha: "b".repeat(40),
      total: 500,
      classified: 120,
      rendering: names.slice(0, 100),
      skipped: 20,
      done: [modified("env-000")],
    });

    expect(body).toContain("**Rendering: 1 of 100 environments done.**");
    expect(body).toContain("Reading which of the 500 environments this change affects: 120 read so far.");
  });
});

describe("streamsNow", () => {
  const progress = (rendering: number, done: number) => ({
    total: 500,
    classified: 500,
    rendering: names.slice(0, rendering),
    done: names.slice(0, done),
  });

  it("never streams a preview of a few environments, however long it renders: its final comment would wait behind the progress write", () => {
    expect(streamsNow(progress(3, 0), 60_000, 2)).toBe(false);
    expect(streamsNow({ ...progress(3, 0), classified: 120 }, 60_000, 2)).toBe(false);
  });

  it("streams once it has rendered for a second with more than two rounds of renders left", () => {
    expect(streamsNow(progress(500, 0), STREAM_AFTER_MS - 1, 2)).toBe(false);
    expect(streamsNow(progress(500, 0), STREAM_AFTER_MS, 2)).toBe(true);
    expect(streamsNow(progress(500, 495), STREAM_AFTER_MS, 2)).toBe(true);
    expect(streamsNow(progress(500, 496), STREAM_AFTER_MS, 2)).toBe(false);
    expect(streamsNow(progress(500, 496), STREAM_AFTER_MS, 1)).toBe(true);
  });

  it("stops streaming once the renders left are expected, at the rate so far, to end within two write gaps: the final comment would wait behind the write", () => {
    // 400 of 500 done in 10 s: 100 left take 2.5 s, more than two 1 s gaps.
    expect(streamsNow(progress(500, 400), 10_000, 2, { writeGapMs: 1_000 })).toBe(true);
    // 450 done in 10 s: 50 left take about 1.1 s, within two gaps (the write's wait for its turn, then the final comment's).
    expect(streamsNow(progress(500, 450), 10_000, 2, { writeGapMs: 1_000 })).toBe(false);
    // 480 done in 10 s: 20 left take about 0.42 s.
    expect(streamsNow(progress(500, 480), 10_000, 2, { writeGapMs: 1_000 })).toBe(false);
    // Not every environment read yet: those unread count as renders left (20 + 100 take 2.5 s).
    expect(streamsNow({ ...progress(500, 480), classified: 400 }, 10_000, 2, { writeGapMs: 1_000 })).toBe(true);
    // Nothing done yet: no rate to go by, so it streams.
    expect(streamsNow(progress(500, 0), 10_000, 2, { writeGapMs: 1_000 })).toBe(true);
  });
});

describe("streamsNow, with the time the first environment was done", () => {
  const progress = (done: number) => ({ total: 500, classified: 500, rendering: names, done: names.slice(0, done) });

  it("goes by the rate since then: what came before the first render (checkouts, reading inputs) does not slow the estimate", () => {
    // 421 done at 12 s, the first at 2 s: 420 in 10 s, so the 79 left take about 1.9 s, within two 1 s gaps
    // (from the start, 79 × 12 s ÷ 421 would be 2.25 s).
    expect(streamsNow(progress(421), 12_000, 2, { writeGapMs: 1_000, firstDoneMs: 2_000 })).toBe(false);
    // 401 done: 400 in 10 s, the 99 left take about 2.5 s.
    expect(streamsNow(progress(401), 12_000, 2, { writeGapMs: 1_000, firstDoneMs: 2_000 })).toBe(true);
    // Only the first done: counted from the start, 499 left at one per 2 s.
    expect(streamsNow(progress(1), 2_000, 2, { writeGapMs: 1_000, firstDoneMs: 2_000 })).toBe(true);
    // The first done less than a gap ago: counted from the start (79 × 12 s ÷ 421, 2.25 s).
    expect(streamsNow(progress(421), 12_000, 2, { writeGapMs: 1_000, firstDoneMs: 11_500 })).toBe(true);
  });
});

describe("expectedLeftMs", () => {
  it("is the time the environments left take at the rate so far, and unbounded before the first is done", () => {
    expect(expectedLeftMs(100, 50, 4_000)).toBe(2_000);
    expect(expectedLeftMs(0, 50, 4_000)).toBe(Number.POSITIVE_INFINITY);
  });
});
