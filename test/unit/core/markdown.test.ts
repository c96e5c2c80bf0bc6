import { describe, expect, it } from "vitest";
import type { ResourceChange } from "../../../src/core/diff.ts";
import { code, escapeHtml, escapeInline, escapeLines, htmlCode, renderMarkdown, summaryTable } from "../../../src/core/markdown.ts";
import type { DiffReport } from "../../../src/core/diff-report.ts";
import { driftCheckOutput, objectTable } from "../../../src/core/deploy-status.ts";
import { liveSection } from "../../../src/core/live-preview.ts";
import { previewFailedOutput } from "../../../src/core/preview-comment.ts";
import { liveParts, tableRows } from "../../helpers/live-markdown.ts";

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

/** Names a pull request can give its objects: Kubernetes allows all of these in some kinds' names (RBAC roles, custom resources). */
const HOSTILE = [
  "a|b",
  "c\\|d",
  "x`[link](https://evil.example/a)`y",
  "@octo-org/admins",
  "#123",
  "GH-77",
  "<img src=https://evil.example/p.png>",
  "![i](https://evil.example/p.png)",
  "https://evil.example/login",
  "line\n\n[link](https://evil.example/b)",
];

const deployment = (name: string, action: ResourceChange["action"] = "modified"): ResourceChange => ({
  id: { group: "apps", version: "v1", kind: "Deployment", namespace: "prod", name },
  action,
  diff: `--- a\n+++ b\n@@ -1 +1 @@\n${"+  line: value\n".repeat(40)}`,
});

describe("tables keep their rows whatever the cells hold", () => {
  it("names every object after a `|` in the not-shown table, one row per group", () => {
    const names = ["before", "a|b", "c\\|d", "e||f", "after"];
    // Too small for any diff, big enough for every name.
    const md = renderMarkdown(report(names.map((n) => deployment(n))), { maxLength: 900 });
    expect(md).not.toContain("<details>");
    const rows = tableRows(md).filter((row) => row[0] === "`production`" && row[1] === "🟡 modified");
    expect(rows).toHaveLength(1);
    const objects = rows[0]?.[3] ?? "";
    for (const name of ["before", "a|b", "e||f", "after"]) expect(objects).toContain(`\`prod/${name}\``);
    // A backslash right before a `|` cannot survive GitHub's table parser exactly; the name after it still shows.
    expect(objects).toMatch(/`prod\/c\\?\|d`/);
  });

  it("keeps an environment name with a `|` in its summary row", () => {
    const md = summaryTable(report([deployment("x")], "prod|uction").environments);
    expect(tableRows(md)[1]).toEqual(["`prod|uction`", "0", "1", "0", "0", "changes"]);
  });

  it("keeps every deploy check run row and every drift row whole", () => {
    const objects = HOSTILE.map((name) => ({
      group: "rbac.authorization.k8s.io",
      version: "v1",
      kind: "ClusterRole",
      namespace: "",
      name,
      action: "created" as const,
      health: "current" as const,
      durationMs: 1_000,
      message: `created ${name}`,
    }));
    const rows = tableRows(objectTable(objects)).slice(1);
    expect(rows.map((row) => row.length)).toEqual(HOSTILE.map(() => 4));
    expect(rows.map((row) => row[3])).toEqual(HOSTILE.map(() => "1.0 s"));
    const drift = driftCheckOutput({
      version: 1,
      repository: { owner: "o", name: "r", id: 1 },
      installationId: 1,
      environment: "production",
      sha: "a".repeat(40),
      jobId: "j",
      checked: HOSTILE.length,
      drifted: objects.map(({ group, version, kind, namespace, name }) => ({
        group,
        version,
        kind,
        namespace,
        name,
        action: "missing" as const,
      })),
      healed: [],
      gaveUp: [],
      at: "2026-01-01T00:00:00.000Z",
    });
    expect(
      tableRows(drift.summary)
        .slice(1)
        .map((row) => row[1]),
    ).toEqual(HOSTILE.map(() => "deleted from the cluster"));
  });
});

describe("untrusted text shows as text", () => {
  it("escapeInline leaves no link, image, HTML, mention or reference live", () => {
    for (const text of HOSTILE) expect(liveParts(`Before ${escapeInline(text)} after.`), text).toEqual([]);
    expect(liveParts(escapeLines(HOSTILE.join("\n"))), "escapeLines").toEqual([]);
  });

  it("htmlCode in a <summary> leaves no tag, mention or reference live, and escapeHtml no mention", () => {
    for (const text of HOSTILE) {
      expect(liveParts(`<details><summary>x ${htmlCode(text)}</summary>\n\nbody\n</details>`), text).toEqual([]);
      expect(
        liveParts(`<details><summary>x <sub>${escapeHtml(text)}</sub></summary>\n\nbody\n</details>`).filter((p) =>
          p.startsWith("mention"),
        ),
        text,
      ).toEqual([]);
    }
  });

  it("a code span of anything stays one code span", () => {
    for (const text of HOSTILE) expect(liveParts(`Before ${code(text)} after.`), text).toEqual([]);
  });

  it("the whole preview comment shows hostile object names, environments and messages as text", () => {
    const environments = HOSTILE.map((name, i) => ({
      name: `env-${i}`,
      summary: { added: 1, modified: 0, removed: 0, unchanged: 0 },
      changes: [
        { ...deployment(name, "added"), diff: `--- /dev/null\n+++ b\n@@ -0,0 +1 @@\n+  ${name.replace(/\n/g, " ")}\n  \`\`\`\`\n` },
      ],
      notes: [name],
    }));
    const errors = HOSTILE.map((message) => ({ file: message, line: 1, message, environment: "env-0", side: "head" as const }));
    for (const maxLength of [65_536, 2_500]) {
      const md = renderMarkdown({ environments, errors }, { maxLength, fullDiffUrl: "https://sluice.example/d" });
      expect(liveParts(md, ["https://sluice.example/d"]), `maxLength ${maxLength}`).toEqual([]);
    }
  });

  it("drift diffs stay in their fence and object names in their <summary>", () => {
    const name = "</summary><img src=https://evil.example/p.png>";
    const drift = driftCheckOutput({
      version: 1,
      repository: { owner: "o", name: "r", id: 1 },
      installationId: 1,
      environment: "production",
      sha: "a".repeat(40),
      jobId: "j",
      checked: 1,
      drifted: [
        {
          group: "",
          version: "v1",
          kind: "ConfigMap",
          namespace: "ns",
          name,
          action: "modified",
          diff: "--- applied\n+++ live\n@@ -1,3 +1,3 @@\n ```\n-a: 1\n+[link](https://evil.example/c) @octo-org/admins\n",
        },
      ],
      healed: [],
      gaveUp: [],
      at: "2026-01-01T00:00:00.000Z",
    });
    expect(liveParts(drift.summary)).toEqual([]);
    expect(liveParts(drift.text ?? "")).toEqual([]);
  });
});

describe("untrusted text in the other places Sluice writes", () => {
  it("keeps a live diff with a run of four backticks inside its fence", () => {
    const section = liveSection([
      {
        environment: "production",
        status: {
          state: "answered",
          report: {
            version: 1,
            requestId: "live-1",
            repository: { owner: "o", name: "r", id: 1 },
            installationId: 1,
            environment: "production",
            pullRequest: 1,
            headSha: "a".repeat(40),
            seq: 1,
            changes: [
              {
                group: "",
                version: "v1",
                kind: "ConfigMap",
                namespace: "ns",
                name: "notes",
                action: "configure",
                diff: "--- live\n+++ merged\n@@ -1,2 +1,2 @@\n ````\n-a: 1\n+[link](https://evil.example/d) @octo-org/admins ![i](https://evil.example/p.png)\n",
              },
            ],
            unchanged: 0,
            prune: [],
            at: "2026-01-01T00:00:00.000Z",
          },
        },
      },
    ]);
    expect(liveParts(section)).toEqual([]);
  });

  it("says why a preview gave up as text", () => {
    const output = previewFailedOutput("cannot read chart `x`[link](https://evil.example/e) @octo-org/admins\n\n<img src=x>");
    expect(output.title).toBe("Preview failed");
    expect(liveParts(output.summary)).toEqual([]);
  });
});
