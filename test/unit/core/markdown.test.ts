import { describe, expect, it } from "vitest";
import type { ResourceChange } from "../../../src/core/diff.ts";
import { renderMarkdown, summaryTable } from "../../../src/core/markdown.ts";
import type { DiffReport } from "../../../src/core/diff-report.ts";

function change(name: string, action: ResourceChange["action"], diffLines = 3): ResourceChange {
  const body = Array.from({ length: diffLines }, (_, i) => `+  line${i}: value`).join("\n");
  return {
    id: { group: "apps", version: "v1", kind: "Deployment", namespace: "prod", name },
    action,
    diff: action === "unchanged" ? "" : `--- a\n+++ b\n@@ -1 +1 @@\n${body}\n`,
  };
}

function report(changes: ResourceChange[], name = "production"): DiffReport {
  const summary = { added: 0, modified: 0, removed: 0, unchanged: 0 };
  for (const c of changes) summary[c.action] += 1;
  return { environments: [{ name, summary, changes }], errors: [] };
}

describe("renderMarkdown", () => {
  it("shows the summary and orders diffs removed, modified, added", () => {
    const md = renderMarkdown(
      report([change("a-added", "added"), change("m-modified", "modified"), change("r-removed", "removed"), change("u", "unchanged")]),
    );
    expect(md).toContain("| `production` | 1 | 1 | 1 | 1 | changes |");
    const order = ["r-removed", "m-modified", "a-added"].map((n) => md.indexOf(`Deployment prod/${n}`));
    expect(order.every((pos, i) => pos > 0 && (i === 0 || pos > (order[i - 1] ?? 0)))).toBe(true);
    expect(md).not.toContain("prod/u<");
  });

  it("stays under the cap, keeps the summary complete and names what it left out", () => {
    const changes = Array.from({ length: 600 }, (_, i) =>
      change(`web-${String(i).padStart(3, "0")}`, i % 3 === 0 ? "removed" : "modified", 40),
    );
    const envs = [report(changes, "production").environments[0], report([change("x", "added")], "staging").environments[0]].filter(
      (e) => e !== undefined,
    );
    const md = renderMarkdown(
      { environments: envs, errors: [] },
      { fullDiffUrl: "https://sluice.example/sluice/diff/abc", footer: "<!-- sluice:marker -->" },
    );
    expect(md.length).toBeLessThanOrEqual(65_536);
    expect(md).toContain("| `production` | 0 | 400 | 200 | 0 | changes |");
    expect(md).toContain("| `staging` | 1 | 0 | 0 | 0 | changes |");
    expect(md).toMatch(/\*\*\d+ diffs not shown here\*\*/);
    expect(md).toContain("[Open the full diff](https://sluice.example/sluice/diff/abc)");
    expect(md.endsWith("<!-- sluice:marker -->")).toBe(true);
    // Removed come first, so what fits is removals; modifications are the ones left out.
    expect(md.slice(md.indexOf("<details>"), md.indexOf("<details>") + 40)).toContain("🔴 removed");
    expect(md).not.toContain("<summary>🟡 modified");
  });

  it("respects a small cap exactly, and still names every changed object", () => {
    const md = renderMarkdown(report(Array.from({ length: 50 }, (_, i) => change(`d${i}`, "modified", 20))), { maxLength: 3_000 });
    expect(md.length).toBeLessThanOrEqual(3_000);
    for (let i = 0; i < 50; i++) expect(md).toMatch(new RegExp(`prod/d${i}\\b`));
  });

  it("names every changed object of a kube-prometheus-sized change, added and removed first", () => {
    // 103 changed objects with large diffs, one of them an added ConfigMap.
    const changes = Array.from({ length: 102 }, (_, i) => change(`obj-${String(i).padStart(3, "0")}`, "modified", 400));
    const added: ResourceChange = {
      id: { group: "", version: "v1", kind: "ConfigMap", namespace: "monitoring", name: "grafana-dashboard-new" },
      action: "added",
      diff: `--- /dev/null\n+++ b\n@@ -0,0 +1 @@\n${"+  x: y\n".repeat(300)}`,
    };
    const md = renderMarkdown(report([...changes, added]), { fullDiffUrl: "https://sluice.example/d" });
    expect(md.length).toBeLessThanOrEqual(65_536);
    expect(md).toMatch(/\*\*\d+ diffs not shown here\*\*/);
    for (let i = 0; i < 102; i++) expect(md).toContain(`prod/obj-${String(i).padStart(3, "0")}`);
    expect(md).toContain("monitoring/grafana-dashboard-new");
    const table = md.slice(md.indexOf("| Environment | Change | Kind | Objects |"));
    expect(table.indexOf("🟢 added")).toBeLessThan(table.indexOf("🟡 modified"));
    expect(md).not.toContain("… and");
  });

  it("budgets in bytes, so a comment full of emoji stays under GitHub's limit", () => {
    const emoji = (name: string): ResourceChange => ({
      ...change(name, "modified"),
      diff: `--- a\n+++ b\n@@ -1 +1 @@\n${"+  note: 🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀\n".repeat(200)}`,
    });
    const md = renderMarkdown(report(Array.from({ length: 40 }, (_, i) => emoji(`e${i}`))));
    expect(new TextEncoder().encode(md).length).toBeLessThanOrEqual(65_536);
    for (let i = 0; i < 40; i++) expect(md).toContain(`prod/e${i}`);
  });

  it("lists errors with file and line", () => {
    const md = renderMarkdown({
      environments: [],
      errors: [{ file: "deploy/a.yaml", line: 7, message: "invalid YAML: bad <tag>", environment: "production", side: "head" }],
    });
    expect(md).toContain("- `deploy/a.yaml:7` (production, head): invalid YAML: bad &lt;tag&gt;");
  });

  it("uses a fence longer than any backtick run in a diff", () => {
    const c = change("x", "modified");
    c.diff = "--- a\n+++ b\n@@ -1 +1 @@\n+  script: ```` code\n";
    expect(renderMarkdown(report([c]))).toContain("`````diff\n");
  });

  it("says when there are no environments", () => {
    expect(summaryTable([])).toBe("_No environments._");
  });
});
