import { describe, expect, it } from "vitest";
import { previewComment, unaffectedLine } from "../../../src/core/preview-comment.ts";
import type { EnvironmentDiff } from "../../../src/core/diff-report.ts";

const zero = { added: 0, modified: 0, removed: 0, unchanged: 0 };
const rendered = (name: string): EnvironmentDiff => ({ name, summary: { ...zero, modified: 1 }, changes: [] });
const skipped = (name: string): EnvironmentDiff => ({ name, summary: zero, changes: [], skipped: "inputs unchanged" });
const comment = (environments: EnvironmentDiff[]): string =>
  previewComment({ report: { environments, errors: [] }, baseSha: "a".repeat(40), headSha: "b".repeat(40) });

describe("the preview comment's count of unaffected environments", () => {
  it("says how many environments the change did not affect and were not rendered", () => {
    const environments = [rendered("web"), ...Array.from({ length: 498 }, (_, i) => skipped(`env-${i}`)), rendered("api")];
    expect(unaffectedLine(environments)).toBe("498 environments unaffected by this change, not rendered.");
    expect(comment(environments)).toContain("\n\n498 environments unaffected by this change, not rendered.\n\n");
  });

  it("says it in the singular for one environment", () => {
    expect(unaffectedLine([rendered("web"), skipped("api")])).toBe("1 environment unaffected by this change, not rendered.");
  });

  it("says nothing when every environment was rendered", () => {
    expect(unaffectedLine([rendered("web"), rendered("api")])).toBeUndefined();
    expect(comment([rendered("web"), rendered("api")])).not.toContain("unaffected");
  });

  it("comes right after the commit range, before the table", () => {
    const body = comment([rendered("web"), skipped("api")]);
    expect(body.indexOf("Comparing `aaaaaaa`…`bbbbbbb`")).toBeLessThan(body.indexOf("1 environment unaffected"));
    expect(body.indexOf("1 environment unaffected")).toBeLessThan(body.indexOf("| Environment |"));
  });
});
