import { describe, expect, it } from "vitest";
import { canonicalJson, canonicalYaml, normalize } from "../../../src/core/normalize.ts";

const id = { group: "", version: "v1", kind: "ConfigMap", namespace: "prod", name: "c" };

describe("normalize", () => {
  it("drops server-populated fields and the last-applied annotation", () => {
    const live = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "c",
        uid: "u",
        resourceVersion: "7",
        generation: 2,
        creationTimestamp: "2026-01-01T00:00:00Z",
        selfLink: "/x",
        managedFields: [{ manager: "kubectl" }],
        annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}", keep: "me" },
      },
      data: { a: "1" },
      status: { phase: "x" },
    };
    expect(normalize(live, id)).toEqual({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "c", namespace: "prod", annotations: { keep: "me" } },
      data: { a: "1" },
    });
  });

  it("removes the annotations map when only dropped annotations were in it", () => {
    const out = normalize(
      {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "c", annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}" } },
      },
      id,
    );
    expect(out.metadata).toEqual({ name: "c", namespace: "prod" });
  });

  it("removes the namespace of cluster-scoped objects", () => {
    expect(
      normalize(
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "n", namespace: "junk" } },
        { ...id, kind: "Namespace", namespace: "" },
      ).metadata,
    ).toEqual({ name: "n" });
  });

  it("folds a Secret's stringData into data, stringData winning", () => {
    const secret = { apiVersion: "v1", kind: "Secret", metadata: { name: "s" }, data: { a: "b2xk", b: "Yg==" }, stringData: { a: "new" } };
    const out = normalize(secret, { ...id, kind: "Secret" });
    expect(out.data).toEqual({ a: Buffer.from("new").toString("base64"), b: "Yg==" });
    expect(out).not.toHaveProperty("stringData");
    expect(secret.stringData).toEqual({ a: "new" });
  });

  it("makes key order irrelevant and keeps list order", () => {
    const a = normalize({ kind: "ConfigMap", apiVersion: "v1", metadata: { name: "c" }, spec: { b: 1, a: [1, 2] } }, id);
    const b = normalize({ apiVersion: "v1", metadata: { name: "c" }, kind: "ConfigMap", spec: { a: [1, 2], b: 1 } }, id);
    const c = normalize({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, spec: { a: [2, 1], b: 1 } }, id);
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(a)).not.toBe(canonicalJson(c));
  });

  it("prints apiVersion, kind and metadata first, then sorted fields", () => {
    const yaml = canonicalYaml(
      normalize({ spec: { z: 1, a: 2 }, data: {}, metadata: { name: "c" }, kind: "ConfigMap", apiVersion: "v1" }, id),
    );
    expect(yaml).toBe("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: prod\ndata: {}\nspec:\n  a: 2\n  z: 1\n");
  });
});
