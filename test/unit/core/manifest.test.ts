import { describe, expect, it } from "vitest";
import { parseManifests, splitDocuments } from "../../../src/core/manifest.ts";

const file = "deploy/app.yaml";

describe("parseManifests", () => {
  it("reads a multi-document stream, skipping empty and comment-only documents", () => {
    const text =
      "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n";
    const { objects, problems } = parseManifests(text, { file });
    expect(problems).toEqual([]);
    expect(objects.map((o) => [(o.object.metadata as { name: string }).name, o.source.line])).toEqual([
      ["a", 2],
      ["b", 10],
    ]);
  });

  it("resolves anchors, aliases and merge keys", () => {
    const text = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: &labels
    app: web
spec:
  selector:
    matchLabels: *labels
  template:
    metadata:
      labels:
        <<: *labels
        tier: front
`;
    const [deployment] = parseManifests(text, { file }).objects;
    expect(deployment?.object).toMatchObject({
      spec: { selector: { matchLabels: { app: "web" } }, template: { metadata: { labels: { app: "web", tier: "front" } } } },
    });
  });

  it("flattens List kinds, each item keeping its own line", () => {
    const text = `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata: { name: one }
  - apiVersion: v1
    kind: ConfigMap
    metadata: { name: two }
`;
    const { objects } = parseManifests(text, { file });
    expect(objects.map((o) => o.source)).toEqual([
      { file, line: 4 },
      { file, line: 7 },
    ]);
  });

  it("reads JSON", () => {
    const { objects } = parseManifests('{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}}', { file: "ns.json" });
    expect(objects).toHaveLength(1);
  });

  it("names the missing fields, the file and the line", () => {
    const text =
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n---\nkind: ConfigMap\nmetadata:\n  name: no-version\n---\napiVersion: v1\nmetadata: {}\n";
    const { objects, problems } = parseManifests(text, { file });
    expect(objects).toHaveLength(1);
    expect(problems).toEqual([
      { file, line: 6, message: 'ConfigMap "no-version" is missing apiVersion', reason: "not-an-object" },
      { file, line: 10, message: "object is missing kind, metadata.name", reason: "not-an-object" },
    ]);
  });

  it("explains that generateName objects cannot be applied, and what to do", () => {
    const { problems } = parseManifests("apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: migrate-\n", { file });
    expect(problems).toEqual([
      {
        file,
        line: 1,
        message: expect.stringMatching(
          /^Job has metadata.generateName "migrate-" and no metadata.name: Sluice applies objects declaratively \(server-side apply\), which needs a fixed name\. Set metadata.name; for a Job that must run on every deploy/,
        ) as string,
      },
    ]);
  });

  it("reports unparseable YAML with its line and keeps reading later documents", () => {
    const text =
      "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  password: c2VjcmV0\n  bad: [\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: after\n";
    const { objects, problems } = parseManifests(text, { file });
    expect(objects.map((o) => (o.object.metadata as { name: string }).name)).toEqual(["after"]);
    expect(problems[0]).toMatchObject({ file, message: expect.stringMatching(/^invalid YAML: /) as string });
    expect(problems[0]?.line).toBeGreaterThanOrEqual(7);
    // The parser's code frame would echo the Secret's lines; only the first sentence is kept.
    expect(JSON.stringify(problems)).not.toContain("c2VjcmV0");
  });

  it("rejects documents that are not mappings", () => {
    expect(parseManifests("- a\n- b\n", { file }).problems).toEqual([
      { file, line: 1, message: "document is a list, not a Kubernetes object", reason: "not-an-object" },
    ]);
    expect(parseManifests("just text\n", { file }).problems[0]?.message).toBe("document is a string, not a Kubernetes object");
  });

  it("reports duplicate keys", () => {
    const { problems } = parseManifests("apiVersion: v1\nkind: ConfigMap\nkind: Secret\nmetadata: { name: x }\n", { file });
    expect(problems[0]).toMatchObject({ line: 3, message: expect.stringContaining("invalid YAML") as string });
  });

  it("refuses alias bombs instead of expanding them", () => {
    const bomb = ["a: &a [x,x,x,x,x,x,x,x,x,x]"];
    for (let i = 1; i < 10; i++)
      bomb.push(
        `${"abcdefghij"[i] ?? "z"}: &${"abcdefghij"[i] ?? "z"} [${Array(10)
          .fill(`*${"abcdefghij"[i - 1] ?? "z"}`)
          .join(",")}]`,
      );
    const { objects, problems } = parseManifests(`apiVersion: v1\nkind: ConfigMap\nmetadata: { name: bomb }\n${bomb.join("\n")}\n`, {
      file,
    });
    expect(objects).toEqual([]);
    expect(problems[0]?.message).toMatch(/^invalid YAML: .*alias/i);
  });

  it("refuses a few aliases of a long string that would expand to hundreds of megabytes, naming the file", () => {
    // 61 KB of YAML: a 60,000-character string, a list of 100 aliases of it, 100 aliases of that list.
    const text = [
      "apiVersion: v1",
      "kind: ConfigMap",
      "metadata: { name: wide }",
      `data: { s: &s ${"x".repeat(60_000)} }`,
      `l: &l [${Array(100).fill("*s").join(", ")}]`,
      `m: [${Array(100).fill("*l").join(", ")}]`,
      "",
    ].join("\n");
    const { objects, problems } = parseManifests(text, { file });
    expect(objects).toEqual([]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file, message: expect.stringMatching(/alias/i) as unknown });
  });

  it("maps lines through a locator", () => {
    const { objects } = parseManifests("apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n", {
      file: "out",
      locate: (line) => ({ file: "templates/cm.yaml", line: line + 100 }),
    });
    expect(objects[0]?.source).toEqual({ file: "templates/cm.yaml", line: 101 });
  });
});

describe("splitDocuments", () => {
  it("splits at marker lines, keeping each document's first line", () => {
    const text = "a: 1\n---\nb: 2\n--- {c: 3}\n...\n---\n# comment\nd: 4\n";
    expect(splitDocuments(text)).toEqual([
      { text: "a: 1\n", line: 1 },
      { text: "\nb: 2\n", line: 2 },
      { text: " {c: 3}\n", line: 4 },
      { text: "\n# comment\nd: 4\n", line: 6 },
    ]);
  });

  it("does not split at dashes that are not a marker", () => {
    expect(splitDocuments("a: |\n  --- not a marker\nb: ----\n")).toHaveLength(1);
  });
});

describe("parse cache", () => {
  it("gives the same objects, parsing each distinct document once", () => {
    const cache = new Map<string, unknown>();
    const text = "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: b }\n";
    const first = parseManifests(text, { file, cache });
    const second = parseManifests(text.replace("name: b", "name: c"), { file, cache });
    expect(cache.size).toBe(3);
    expect(second.objects[0]?.object).toBe(first.objects[0]?.object);
    expect(second.objects.map((o) => o.source.line)).toEqual([1, 5]);
  });
});
