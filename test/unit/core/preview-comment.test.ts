import { describe, expect, it } from "vitest";
import {
  closedComment,
  PREVIEW_MARKER,
  previewAnnotations,
  previewCheckOutput,
  previewComment,
  previewConclusion,
} from "../../../src/core/preview-comment.ts";
import type { DiffReport } from "../../../src/core/diff-report.ts";

const env = (added: number) => ({ name: "production", summary: { added, modified: 0, removed: 0, unchanged: 1 }, changes: [] });

describe("preview comment", () => {
  it("has the range, links, live section and marker", () => {
    const body = previewComment({
      report: { environments: [env(1)], errors: [] },
      baseSha: "a".repeat(40),
      headSha: "b".repeat(40),
      compareUrl: "https://github.com/o/r/compare/a...b",
      fullDiffUrl: "https://sluice/x",
    });
    expect(body).toContain("Comparing [`aaaaaaa`…`bbbbbbb`](https://github.com/o/r/compare/a...b) · [full diff](https://sluice/x)");
    expect(body).toContain("#### Live cluster\n\nNo live diff is available: this Sluice does not deploy");
    expect(body.endsWith(PREVIEW_MARKER)).toBe(true);
  });

  it("marks a closed pull request once, and can switch to merged", () => {
    const closed = closedComment("body", "closed");
    expect(closed).toBe("> [!NOTE]\n> This pull request was closed. The preview below is no longer updated.\n\nbody");
    expect(closedComment(closed, "closed")).toBe(closed);
    expect(closedComment(closed, "merged")).toBe(
      "> [!NOTE]\n> This pull request was merged. The preview below is no longer updated.\n\nbody",
    );
  });

  it("concludes failure on errors, neutral without changes, success otherwise", () => {
    const errors: DiffReport["errors"] = [{ file: "a.yaml", line: 0, message: "bad", environment: "production", side: "head" }];
    expect(previewConclusion({ environments: [env(1)], errors })).toBe("failure");
    expect(previewConclusion({ environments: [env(0)], errors: [] })).toBe("neutral");
    expect(previewConclusion({ environments: [env(2)], errors: [] })).toBe("success");
    expect(previewCheckOutput({ environments: [env(2)], errors: [] }).title).toBe("Changes in 1 environment");
    expect(previewAnnotations(errors)).toEqual([
      { path: "a.yaml", start_line: 1, end_line: 1, annotation_level: "failure", message: "bad", title: "Sluice (production, head)" },
    ]);
  });
});
