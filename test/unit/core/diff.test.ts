import { describe, expect, it } from "vitest";
import { diffResources, summarize } from "../../../src/core/diff.ts";
import type { ManifestObject } from "../../../src/core/manifest.ts";
import { buildResourceSet, type NormalizedMemo } from "../../../src/core/resource-set.ts";

function set(...objects: Record<string, unknown>[]) {
  const manifests: ManifestObject[] = objects.map((object, index) => ({ object, source: { file: "m.yaml", line: index + 1 } }));
  return buildResourceSet(manifests, "prod").resources;
}

const cm = (name: string, data: Record<string, string>) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data });
const secret = (data: Record<string, string>, stringData?: Record<string, string>) => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "creds" },
  data,
  ...(stringData ? { stringData } : {}),
});

describe("buildResourceSet", () => {
  it("reports a duplicate identity naming both places", () => {
    const manifests: ManifestObject[] = [
      { object: cm("a", {}), source: { file: "one.yaml", line: 3 } },
      { object: { ...cm("a", {}), metadata: { name: "a", namespace: "prod" } }, source: { file: "two.yaml", line: 9 } },
    ];
    const { resources, problems } = buildResourceSet(manifests, "prod");
    expect(resources.size).toBe(1);
    expect(problems).toEqual([{ file: "two.yaml", line: 9, message: "duplicate ConfigMap prod/a (core/v1): also defined at one.yaml:3" }]);
  });

  it("shares normalized JSON between sides only where the identity is the same", () => {
    const memo: NormalizedMemo = new WeakMap();
    const object = cm("a", { k: "v" });
    const source = { file: "a.yaml", line: 1 };
    const prod = buildResourceSet([{ object, source }], "prod", memo).resources.get("/ConfigMap/prod/a");
    const again = buildResourceSet([{ object, source }], "prod", memo).resources.get("/ConfigMap/prod/a");
    const staging = buildResourceSet([{ object, source }], "staging", memo).resources.get("/ConfigMap/staging/a");
    expect(again?.json).toBe(prod?.json);
    expect(JSON.parse(staging?.json ?? "{}")).toMatchObject({ metadata: { namespace: "staging" } });
    expect(JSON.parse(prod?.json ?? "{}")).toMatchObject({ metadata: { namespace: "prod" } });
  });
});

describe("object identity without the version", () => {
  const hpa = (apiVersion: string, max: number) => ({
    apiVersion,
    kind: "HorizontalPodAutoscaler",
    metadata: { name: "podinfo" },
    spec: { maxReplicas: max },
  });

  it("shows an apiVersion bump as one object, modified, with the apiVersion line changing", () => {
    const changes = diffResources(set(hpa("autoscaling/v2beta2", 4)), set(hpa("autoscaling/v2", 4)));
    expect(changes.map((c) => [c.id.kind, c.id.version, c.action])).toEqual([["HorizontalPodAutoscaler", "v2", "modified"]]);
    expect(changes[0]?.diff).toContain("-apiVersion: autoscaling/v2beta2\n+apiVersion: autoscaling/v2\n");
    const removed = diffResources(set(hpa("autoscaling/v2beta2", 4)), set());
    expect(removed[0]?.id.version).toBe("v2beta2");
  });

  it("treats one object declared under two versions as a duplicate", () => {
    const { problems } = buildResourceSet(
      [
        { object: hpa("autoscaling/v2beta2", 4), source: { file: "a.yaml", line: 1 } },
        { object: hpa("autoscaling/v2", 4), source: { file: "b.yaml", line: 1 } },
      ],
      "prod",
    );
    expect(problems).toEqual([
      {
        file: "b.yaml",
        line: 1,
        message:
          "duplicate HorizontalPodAutoscaler prod/podinfo (as autoscaling/v2beta2 and as autoscaling/v2; the version is not part of an object's identity): also defined at a.yaml:1",
      },
    ]);
  });
});

describe("diffResources", () => {
  it("classifies every resource and sorts by identity", () => {
    const changes = diffResources(
      set(cm("gone", {}), cm("same", { a: "1" }), cm("edit", { a: "1" })),
      set(cm("same", { a: "1" }), cm("edit", { a: "2" }), cm("new", {})),
    );
    expect(changes.map((c) => [c.id.name, c.action])).toEqual([
      ["edit", "modified"],
      ["gone", "removed"],
      ["new", "added"],
      ["same", "unchanged"],
    ]);
    expect(summarize(changes)).toEqual({ added: 1, modified: 1, removed: 1, unchanged: 1 });
    expect(changes.find((c) => c.action === "unchanged")?.diff).toBe("");
  });

  it("gives a unified diff of the canonical YAML", () => {
    const [change] = diffResources(set(cm("c", { a: "1", b: "x" })), set(cm("c", { b: "x", a: "2" })));
    expect(change?.diff).toBe(`--- a/v1/ConfigMap/prod/c
+++ b/v1/ConfigMap/prod/c
@@ -4,5 +4,5 @@
   name: c
   namespace: prod
 data:
-  a: '1'
+  a: '2'
   b: x
`);
  });

  it("diffs added and removed resources against nothing", () => {
    const [added] = diffResources(set(), set(cm("n", { a: "1" })));
    expect(added?.diff.split("\n").slice(0, 3)).toEqual(["--- /dev/null", "+++ b/v1/ConfigMap/prod/n", "@@ -0,0 +1,7 @@"]);
    const [removed] = diffResources(set(cm("n", {})), set());
    expect(removed?.diff.startsWith("--- a/v1/ConfigMap/prod/n\n+++ /dev/null\n")).toBe(true);
  });

  it("treats key order as irrelevant", () => {
    const [change] = diffResources(
      set({ kind: "ConfigMap", apiVersion: "v1", metadata: { name: "c" }, data: { b: "2", a: "1" } }),
      set(cm("c", { a: "1", b: "2" })),
    );
    expect(change?.action).toBe("unchanged");
  });

  it("masks Secret values, showing only which keys changed", () => {
    const oldValue = "aHVudGVyMg==";
    const newValue = "aHVudGVyMw==";
    const [change] = diffResources(
      set(secret({ password: oldValue, user: "YWRtaW4=", gone: "Z29uZQ==" })),
      set(secret({ password: newValue, user: "YWRtaW4=" }, { token: "plain-token-value" })),
    );
    expect(change?.action).toBe("modified");
    expect(change?.secretKeys).toEqual({ gone: "removed", password: "changed", token: "added", user: "unchanged" });
    const text = JSON.stringify(change);
    for (const value of [
      oldValue,
      newValue,
      "YWRtaW4=",
      "Z29uZQ==",
      "hunter2",
      "hunter3",
      "admin",
      "plain-token-value",
      Buffer.from("plain-token-value").toString("base64"),
    ]) {
      expect(text).not.toContain(value);
    }
    expect(change?.diff).toContain("-  password: '<masked: changed, old value>'");
    expect(change?.diff).toContain("+  password: '<masked: changed, new value>'");
    expect(change?.diff).toContain("+  token: '<masked: added>'");
    expect(change?.diff).toContain("-  gone: '<masked: removed>'");
  });

  it("shows a Secret whose only change is a value as modified, with masked tokens", () => {
    const [change] = diffResources(set(secret({ a: "MQ==" })), set(secret({ a: "Mg==" })));
    expect(change?.action).toBe("modified");
    expect(change?.diff).not.toMatch(/MQ==|Mg==/);
  });

  it("masks every value of an added Secret", () => {
    const [change] = diffResources(set(), set(secret({}, { password: "s3cr3t" })));
    expect(change?.diff).toContain("+  password: '<masked: added>'");
    expect(change?.diff).not.toContain("s3cr3t");
    expect(change?.diff).not.toContain(Buffer.from("s3cr3t").toString("base64"));
  });

  it("falls back to a whole-object replacement when the edit is too large, without hanging", () => {
    const many = (n: number, offset: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, String((i * 7919 + offset) % 10007)]));
    const [change] = diffResources(set(cm("big", many(5_000, 0))), set(cm("big", many(5_000, 1))), { maxEditLength: 100 });
    expect(change?.replaced).toBe(true);
    const lines = change?.diff.split("\n") ?? [];
    expect(lines[2]).toMatch(/^@@ -1,\d+ \+1,\d+ @@$/);
    expect(lines.filter((l) => l.startsWith("-") && !l.startsWith("---"))).toHaveLength(5_006);
  });
});
