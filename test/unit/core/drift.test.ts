import { describe, expect, it } from "vitest";
import { ignoredPaths, managedPaths, mayHaveDrifted, pointerPath, withoutPaths } from "../../../src/core/drift.ts";
import { rawJson } from "../../../src/core/json.ts";

const id = { group: "apps", version: "v1", kind: "Deployment", namespace: "shop", name: "web" };
const live = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: {
    name: "web",
    namespace: "shop",
    managedFields: [
      {
        manager: "sluice",
        operation: "Apply",
        fieldsV1: { "f:spec": { "f:template": { "f:spec": { "f:containers": { 'k:{"name":"web"}': { ".": {}, "f:image": {} } } } } } },
      },
      { manager: "kube-controller-manager", operation: "Update", subresource: "scale", fieldsV1: { "f:spec": { "f:replicas": {} } } },
      {
        manager: "vpa",
        operation: "Update",
        fieldsV1: { "f:spec": { "f:template": { "f:spec": { "f:containers": { 'k:{"name":"web"}': { "f:resources": {} } } } } } },
      },
    ],
  },
  spec: { replicas: 5, template: { spec: { containers: [{ name: "web", image: "web:1", resources: { limits: { cpu: "1" } } }] } } },
};

describe("what is not drift", () => {
  it("reads the fields a manager owns from managedFields, a list item by key counting as the whole list", () => {
    expect(managedPaths(live, ["kube-controller-manager"])).toEqual([["spec", "replicas"]]);
    expect(managedPaths(live, ["vpa"])).toEqual([["spec", "template", "spec", "containers"]]);
    expect(managedPaths(live, ["nobody"])).toEqual([]);
  });

  it("always leaves out the cluster's controllers' fields, and the selected rules' pointers and managers", () => {
    expect(ignoredPaths([], id, live)).toEqual([["spec", "replicas"]]);
    const rules = [
      { kind: "Deployment", jsonPointers: ["/metadata/annotations/a~1b"], managers: [] },
      { kind: "ConfigMap", jsonPointers: ["/data"], managers: ["vpa"] },
    ];
    expect(ignoredPaths(rules, id, live)).toEqual([
      ["metadata", "annotations", "a/b"],
      ["spec", "replicas"],
    ]);
    expect(pointerPath("/a~0b/c~1d")).toEqual(["a~b", "c/d"]);
  });

  it("removes the paths from a copy, keeping 64-bit integers exact", () => {
    const object = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "x" },
      spec: { replicas: 3, big: rawJson("9007199254740993") },
    };
    const stripped = withoutPaths(object, [
      ["spec", "replicas"],
      ["spec", "missing", "deep"],
    ]);
    expect(JSON.stringify(stripped)).toBe('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"spec":{"big":9007199254740993}}');
    expect(object.spec.replicas).toBe(3);
  });
});

describe("which objects need a dry-run", () => {
  const withManagers = (...entries: { manager: string; operation: string }[]) => ({
    ...live,
    metadata: { ...live.metadata, managedFields: entries },
  });
  it("skips objects only Sluice and the cluster's controllers have touched, and suspects the rest", () => {
    expect(
      mayHaveDrifted(
        withManagers({ manager: "sluice", operation: "Apply" }, { manager: "kube-controller-manager", operation: "Update" }),
        "sluice",
        [],
        id,
      ),
    ).toBe(false);
    expect(
      mayHaveDrifted(
        withManagers({ manager: "sluice", operation: "Apply" }, { manager: "kubectl-edit", operation: "Update" }),
        "sluice",
        [],
        id,
      ),
    ).toBe(true);
    // Sluice's own entry gone (someone took every field over): a suspect too.
    expect(mayHaveDrifted(withManagers({ manager: "kube-controller-manager", operation: "Update" }), "sluice", [], id)).toBe(true);
    // A manager the environment's rules ignore for this object does not make it a suspect.
    expect(
      mayHaveDrifted(
        withManagers({ manager: "sluice", operation: "Apply" }, { manager: "vpa", operation: "Update" }),
        "sluice",
        [{ kind: "Deployment", jsonPointers: [], managers: ["vpa"] }],
        id,
      ),
    ).toBe(false);
  });
});
