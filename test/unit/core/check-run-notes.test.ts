import { describe, expect, it } from "vitest";
import { withNote } from "../../../src/core/check-run-notes.ts";
import { CHECK_RUN_TEXT_LIMIT, utf8Length } from "../../../src/core/markdown.ts";

describe("withNote", () => {
  it("adds the line below the summary and keeps the title and the text", () => {
    const output = { title: "Deploy", summary: "Applied.", text: "| object | action |" };
    expect(withNote(output, "2026-12-04T00:00:00.000Z: noted")).toEqual({
      title: "Deploy",
      summary: "Applied.\n\n2026-12-04T00:00:00.000Z: noted",
      text: "| object | action |",
    });
    expect(withNote({ title: "Deploy", summary: "" }, "noted")).toEqual({ title: "Deploy", summary: "\n\nnoted" });
  });

  it("cuts a full summary (in bytes) so the line fits within GitHub's limit, and keeps the whole line", () => {
    const line = "2026-12-04T00:00:00.000Z: **Roll back** pressed by @octocat: ✓";
    const output = { title: "Deploy", summary: "é".repeat(CHECK_RUN_TEXT_LIMIT) };
    const noted = withNote(output, line);
    expect(utf8Length(noted.summary)).toBeLessThanOrEqual(CHECK_RUN_TEXT_LIMIT);
    expect(noted.summary.endsWith(`\n\n${line}`)).toBe(true);
    expect(output.summary.startsWith(noted.summary.slice(0, -(line.length + 2)))).toBe(true);
  });
});
