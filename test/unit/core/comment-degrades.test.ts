import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ResourceChange } from "../../../src/core/diff.ts";
import type { DiffReport, EnvironmentDiff } from "../../../src/core/diff-report.ts";
import { code, renderMarkdown, utf8Length } from "../../../src/core/markdown.ts";
import {
  closedComment,
  previewCheck,
  previewCheckOutput,
  previewComment,
  PREVIEW_MARKER,
  type PreviewPublication,
} from "../../../src/core/preview-comment.ts";
import { liveParts, tableRows } from "../../helpers/live-markdown.ts";

// Issue 28, item 3: a preview of a monorepo-wide change says in words how far down it had to go
// (diffs, then names, then one line per environment, then environment names), hands the next part
// to the check run's text, and never reaches GitHub's limits, whatever the report holds.

const ACTIONS: readonly ResourceChange["action"][] = ["added", "modified", "removed"];
const URL = "https://sluice.example/sluice/diff/abc";

/** `count` changed objects (added, modified and removed in turn) plus one unchanged, with diffs of `diffLines` lines. */
function environment(
  name: string,
  count: number,
  options: { objectName?: (i: number) => string; diffLines?: number } = {},
): EnvironmentDiff {
  const objectName = options.objectName ?? ((i: number) => `web-${i}`);
  const diff = `--- a\n+++ b\n@@ -1 +1 @@\n${"+  image: registry.example/web:1.2.3 🚀\n".repeat(options.diffLines ?? 10)}`;
  const changes: ResourceChange[] = Array.from({ length: count }, (_, i) => ({
    id: { group: "apps", version: "v1", kind: "Deployment", namespace: "prod", name: objectName(i) },
    action: ACTIONS[i % 3] ?? "modified",
    diff,
  }));
  changes.push({ id: { group: "", version: "v1", kind: "ConfigMap", namespace: "prod", name: "same" }, action: "unchanged", diff: "" });
  const summary = { added: 0, modified: 0, removed: 0, unchanged: 0 };
  for (const change of changes) summary[change.action] += 1;
  return { name, summary, changes };
}

function unaffected(name: string): EnvironmentDiff {
  return { name, summary: { added: 0, modified: 0, removed: 0, unchanged: 0 }, changes: [], skipped: "inputs unchanged" };
}

function publication(report: DiffReport): PreviewPublication {
  return { report, baseSha: "a".repeat(40), headSha: "b".repeat(40), fullDiffUrl: URL };
}

const bytes = (text: string | undefined): number => utf8Length(text ?? "");
const pad = (i: number): string => String(i).padStart(3, "0");

describe("a comment that degrades in steps, never silently", () => {
  it("500 environments × 100 changed objects: one line per environment, said in words, not cut", () => {
    const report: DiffReport = { environments: Array.from({ length: 500 }, (_, i) => environment(`env-${pad(i)}`, 100)), errors: [] };
    const comment = previewComment(publication(report));
    expect(bytes(comment)).toBeLessThanOrEqual(65_536);
    expect(comment).not.toContain("(truncated)");
    expect(comment).toContain("**50000 changed objects in 500 environments are too many to name each here**");
    for (let i = 0; i < 500; i++) expect(comment).toContain(`- \`env-${pad(i)}\`: 34 added, 33 modified, 33 removed`);
    // The first few names of each environment, as room allows.
    expect(comment).toContain("`Deployment prod/web-0`");
    expect(comment.endsWith("<!-- sluice:preview -->")).toBe(true);
  });

  it("hands the names the comment had no room for to the check run's text, and says so", () => {
    const report: DiffReport = { environments: Array.from({ length: 500 }, (_, i) => environment(`env-${pad(i)}`, 100)), errors: [] };
    const comment = previewComment(publication(report));
    const check = previewCheck(publication(report));
    const text = check.output.text ?? "";
    expect(comment).toContain("The `sluice/preview` check run's details name the next ones");
    expect(bytes(text)).toBeGreaterThan(0);
    expect(bytes(text)).toBeLessThanOrEqual(65_535);
    expect(bytes(check.output.summary)).toBeLessThanOrEqual(65_535);
    // The last environment's line names fewer objects than it has; the text's line for it names others.
    const lineOf = (markdown: string) => markdown.split("\n").find((line) => line.startsWith("- `env-499`: "));
    const inComment = lineOf(comment) ?? "";
    const inText = lineOf(text) ?? "";
    expect(inComment).toMatch(/, and \d+ more$/);
    const names = (line: string) => [...line.matchAll(/`Deployment [^`]+`/g)].map((m) => m[0]);
    expect(names(inText).length).toBeGreaterThan(0);
    for (const name of names(inText)) expect(names(inComment)).not.toContain(name);
    expect(text).toContain(`[Open the full diff](${URL})`);
  });

  it("names every object while the names fit, and the check run's text shows the diffs that did not", () => {
    const report: DiffReport = { environments: [environment("production", 300, { diffLines: 30 })], errors: [] };
    const comment = previewComment(publication(report));
    expect(comment).toMatch(/\*\*\d+ diffs not shown here\*\*/);
    for (let i = 0; i < 300; i++) expect(comment).toMatch(new RegExp(`prod/web-${i}\\b`));
    const text = previewCheck(publication(report)).output.text ?? "";
    expect(bytes(text)).toBeLessThanOrEqual(65_535);
    // The text shows diffs, each of an object whose diff the comment did not show.
    const shown = [...text.matchAll(/<summary>[^<]*<code>(Deployment prod\/web-\d+)<\/code>/g)].map((m) => m[1] ?? "");
    expect(shown.length).toBeGreaterThan(0);
    for (const name of shown) expect(comment).not.toContain(`<code>${name}</code>`);
    expect(text).toMatch(/\*\*\d+ more diffs only on the full diff page\*\* \(the comment names each\)\.$/);
  });

  it("when even a line per environment does not fit: the changed environments' names and counts, then how many more", () => {
    // 600 environments with names of about 250 bytes: one line each would be 180 kB.
    const name = (i: number) => `${"名前".repeat(40)}-${pad(i)}`;
    const report: DiffReport = { environments: Array.from({ length: 600 }, (_, i) => environment(name(i), 12)), errors: [] };
    const comment = previewComment(publication(report));
    const text = previewCheck(publication(report)).output.text ?? "";
    expect(bytes(comment)).toBeLessThanOrEqual(65_536);
    expect(bytes(text)).toBeLessThanOrEqual(65_535);
    expect(comment).toContain("**600 environments changed, too many for a line each here**");
    const more = /… and (\d+) more changed environments/.exec(comment);
    expect(more).not.toBeNull();
    const inComment = Array.from({ length: 600 }, (_, i) => comment.includes(`${code(name(i))} (🟢 4 🟡 4 🔴 4)`));
    expect(inComment.filter((named) => !named)).toHaveLength(Number(more?.[1]));
    // The next environments are in the check run's text.
    const next = inComment.indexOf(false);
    expect(text).toContain(code(name(next)));
  });

  it("collapses unaffected and unchanged environments into lines instead of a row each", () => {
    const environments = [
      ...Array.from({ length: 495 }, (_, i) => unaffected(`quiet-${pad(i)}`)),
      { ...environment("still", 0), summary: { added: 0, modified: 0, removed: 0, unchanged: 7 } },
      ...["web", "api", "jobs"].map((n) => environment(n, 3)),
      environment("broken", 0),
    ];
    const report: DiffReport = {
      environments,
      errors: [{ file: "deploy/broken/a.yaml", line: 3, message: "bad", environment: "broken", side: "head" }],
    };
    const comment = previewComment(publication(report));
    const summary = previewCheckOutput(report).summary;
    for (const text of [comment, summary]) {
      const rows = tableRows(text.slice(text.indexOf("| Environment | 🟢")));
      expect(rows.slice(1, 5).map((row) => row[0])).toEqual(["`web`", "`api`", "`jobs`", "`broken`"]);
      expect(text).toContain("495 environments unaffected by this change, not rendered.");
      expect(text).toContain("1 environment rendered with no changes is not listed.");
      expect(text).not.toContain("`quiet-000`");
    }
  });

  it("caps the table's rows with a count, at 600 changed environments with long multi-byte names", () => {
    const name = (i: number) => `${"🚀é".repeat(30)}-${pad(i)}`;
    const report: DiffReport = { environments: Array.from({ length: 600 }, (_, i) => environment(name(i), 1)), errors: [] };
    const summary = previewCheckOutput(report).summary;
    expect(bytes(summary)).toBeLessThanOrEqual(65_535);
    expect(summary).not.toContain("(truncated)");
    const more = /(\d+) more environments with changes or errors are not in this table/.exec(summary);
    expect(more).not.toBeNull();
    const rows = tableRows(summary).length - 1;
    expect(rows + Number(more?.[1])).toBe(600);
  });
});

describe("the other ways a comment could pass GitHub's limit", () => {
  it("cuts a footer too long by itself, says so, and keeps its last line (the marker)", () => {
    const report: DiffReport = { environments: [environment("production", 3)], errors: [] };
    const md = renderMarkdown(report, { footer: `${"ünïcödé ".repeat(9_000)}\n\n${PREVIEW_MARKER}`, fullDiffUrl: URL });
    expect(bytes(md)).toBeLessThanOrEqual(65_536);
    expect(md).toContain("… (cut here: the comment has a size limit of 65536 bytes; the full diff page has everything)");
    expect(md.endsWith(PREVIEW_MARKER)).toBe(true);
  });

  it("marks a closed pull request only when the banner fits, counted in bytes", () => {
    const body = `${"🚀".repeat(16_370)}\n\n${PREVIEW_MARKER}`;
    expect(bytes(closedComment(body, "merged"))).toBeLessThanOrEqual(65_536);
    const small = `${"🚀".repeat(100)}\n\n${PREVIEW_MARKER}`;
    expect(closedComment(small, "merged").startsWith("> [!NOTE]")).toBe(true);
  });
});

describe("names a pull request chose stay text at every step", () => {
  const hostile = [
    "a|b",
    "x`[link](https://evil.example/a)`y",
    "@octo-org/admins",
    "#123",
    "<img src=https://evil.example/p.png>",
    "line\n\n[l](https://evil.example/b)",
  ];
  const name = (i: number, long: boolean) => `${hostile[i % hostile.length] ?? ""}${long ? "-".repeat(200) : ""}-${i}`;

  for (const [step, count, long] of [
    ["one line per environment", 100, false],
    ["environment names", 12, true],
  ] as const) {
    it(`at ${step}`, () => {
      const report: DiffReport = {
        environments: Array.from({ length: 500 }, (_, i) => environment(name(i, long), count, { objectName: (j) => name(j, false) })),
        errors: [],
      };
      const comment = previewComment(publication(report));
      const text = previewCheck(publication(report)).output.text ?? "";
      expect(comment).toContain(step === "environment names" ? "too many for a line each here" : "too many to name each here");
      expect(liveParts(comment, [URL])).toEqual([]);
      expect(liveParts(text, [URL])).toEqual([]);
    });
  }
});

/** Object and environment names: long, multi-byte, and unique by their index. */
const nameText = fc.string({ unit: fc.constantFrom("a", "z", "-", "é", "名", "🚀"), minLength: 1, maxLength: 120, size: "max" });

describe("GitHub's limits are never hit", () => {
  it("holds the comment to 65,536 bytes and the check run's summary and text to 65,535, naming every changed environment", () => {
    fc.assert(
      fc.property(
        fc.record({
          counts: fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 1, maxLength: 600, size: "max" }),
          envName: nameText,
          objectName: nameText,
          diffLines: fc.integer({ min: 0, max: 60 }),
          unaffectedEvery: fc.integer({ min: 0, max: 5 }),
          // Errors and notes, with long multi-byte messages, take room of their own.
          errors: fc.integer({ min: 0, max: 300 }),
          notesEvery: fc.integer({ min: 0, max: 5 }),
          message: fc.string({ unit: fc.constantFrom("x", " ", "ü", "🚀"), maxLength: 3_000, size: "max" }),
        }),
        ({ counts, envName, objectName, diffLines, unaffectedEvery, errors, notesEvery, message }) => {
          const environments = counts.map((count, i) => {
            const env =
              unaffectedEvery > 0 && i % unaffectedEvery === 0
                ? unaffected(`${envName}-${i}`)
                : environment(`${envName}-${i}`, count, { objectName: (j) => `${objectName}-${j}`, diffLines });
            return notesEvery > 0 && i % notesEvery === 0 ? { ...env, notes: [message] } : env;
          });
          const report: DiffReport = {
            environments,
            errors: Array.from({ length: errors }, (_, i) => ({
              file: `${objectName}/${i}.yaml`,
              line: i,
              message,
              environment: `${envName}-${i % counts.length}`,
              side: "head" as const,
            })),
          };
          const comment = previewComment(publication(report));
          const check = previewCheck(publication(report));
          expect(bytes(comment)).toBeLessThanOrEqual(65_536);
          expect(bytes(check.output.summary)).toBeLessThanOrEqual(65_535);
          expect(bytes(check.output.text)).toBeLessThanOrEqual(65_535);
          expect(comment).not.toContain("(truncated)");
          expect(comment.endsWith("<!-- sluice:preview -->")).toBe(true);
          const both = `${comment}\n${check.output.text ?? ""}`;
          const changed = environments.filter((e) => e.summary.added + e.summary.modified + e.summary.removed > 0);
          const unnamed = changed.filter((e) => !both.includes(code(e.name)));
          if (unnamed.length > 0) {
            const more = /… and (\d+) more changed environments/.exec(comment);
            expect(more, `${unnamed.length} changed environments named nowhere`).not.toBeNull();
            expect(unnamed.length).toBeLessThanOrEqual(Number(more?.[1]));
          }
        },
      ),
      { numRuns: 25, endOnFailure: true },
    );
  });
});
