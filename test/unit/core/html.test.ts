import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { diffResources, summarize } from "../../../src/core/diff.ts";
import { fillTemplate, renderHtmlPage } from "../../../src/core/html.ts";
import { buildResourceSet } from "../../../src/core/resource-set.ts";
import { loadPageViews } from "../../../src/views.ts";

describe("renderHtmlPage", () => {
  it("renders a self-contained side-by-side page with a file list and masked Secrets", async () => {
    const before = buildResourceSet(
      [
        {
          object: { apiVersion: "v1", kind: "Secret", metadata: { name: "s" }, data: { k: "b2xkLXZhbHVl" } },
          source: { file: "a", line: 1 },
        },
      ],
      "prod",
    ).resources;
    const after = buildResourceSet(
      [
        {
          object: { apiVersion: "v1", kind: "Secret", metadata: { name: "s" }, data: { k: "bmV3LXZhbHVl" } },
          source: { file: "a", line: 1 },
        },
        {
          object: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "<script>" }, data: { a: "1" } },
          source: { file: "a", line: 5 },
        },
      ],
      "prod",
    ).resources;
    const changes = diffResources(before, after);
    const page = renderHtmlPage(
      { environments: [{ name: "production", summary: summarize(changes), changes }], errors: [] },
      await loadPageViews(),
      { title: "PR #7 <preview>", subtitle: "abc → def" },
    );
    expect(page.startsWith("<!doctype html>")).toBe(true);
    expect(page).toContain("d2h-file-side-diff");
    expect(page).toContain("d2h-file-list");
    expect(page).toContain("PR #7 &#60;preview&#62;");
    expect(page).not.toContain("<script>");
    expect(page).not.toMatch(/<(script|link)\b/i);
    expect(page).not.toMatch(/(src|href)="https?:/);
    expect(page).not.toMatch(/b2xkLXZhbHVl|bmV3LXZhbHVl|old-value|new-value/);
    expect(page).toContain(".d2h-wrapper");
    expect(page).toContain("1 added, 1 modified, 0 removed, 0 unchanged");
  });

  it("labels added objects ADDED and removed ones DELETED, never RENAMED", async () => {
    const object = (name: string) => ({
      object: { apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data: { a: "1" } },
      source: { file: "a", line: 1 },
    });
    const changes = diffResources(
      buildResourceSet([object("gone"), object("kept")], "prod").resources,
      buildResourceSet([object("new"), { ...object("kept"), object: { ...object("kept").object, data: { a: "2" } } }], "prod").resources,
    );
    const page = renderHtmlPage(
      { environments: [{ name: "production", summary: summarize(changes), changes }], errors: [] },
      await loadPageViews(),
      { title: "t" },
    );
    const tags = [...page.matchAll(/d2h-tag[^>]*>([A-Z]+)</g)].map((m) => m[1]);
    expect(tags.sort()).toEqual(["ADDED", "CHANGED", "DELETED"]);
  });

  it("has the views the page needs", async () => {
    const template = await readFile(new URL("../../../views/diff-page.html", import.meta.url), "utf8");
    expect(() => fillTemplate(template, { title: "", subtitle: "", back: "", styles: "", body: "" })).not.toThrow();
    expect(() => fillTemplate("{{missing}}", {})).toThrow("template placeholder {{missing}} has no value");
  });
});
