import { describe, expect, it } from "vitest";
import { diffPath, displayName, identify, resourceKey, ScopeResolver, splitApiVersion } from "../../../src/core/identity.ts";

describe("identify", () => {
  const none = new ScopeResolver([]);

  it("gives a namespaced object without a namespace the environment's namespace", () => {
    expect(identify({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" } }, "prod", none))
      .toEqual({ group: "apps", version: "v1", kind: "Deployment", namespace: "prod", name: "web" });
  });

  it("keeps an explicit namespace", () => {
    expect(identify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", namespace: "other" } }, "prod", none).namespace).toBe("other");
  });

  it("gives built-in cluster-scoped kinds no namespace, even when one is written", () => {
    expect(identify({ apiVersion: "v1", kind: "Namespace", metadata: { name: "prod", namespace: "x" } }, "prod", none).namespace).toBe("");
    expect(identify({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "r" } }, "prod", none).namespace).toBe("");
  });

  it("learns the scope of CRDs defined in the same set", () => {
    const crd = (kind: string, scope: string) => ({ apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", metadata: { name: "x" }, spec: { group: "example.com", scope, names: { kind } } });
    const scopes = new ScopeResolver([crd("Backup", "Cluster"), crd("Widget", "Namespaced")]);
    expect(identify({ apiVersion: "example.com/v1", kind: "Backup", metadata: { name: "b" } }, "prod", scopes).namespace).toBe("");
    expect(identify({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } }, "prod", scopes).namespace).toBe("prod");
    // A kind with the same name in another group is unaffected.
    expect(identify({ apiVersion: "other.io/v1", kind: "Backup", metadata: { name: "b" } }, "prod", scopes).namespace).toBe("prod");
  });
});

describe("names", () => {
  const id = { group: "apps", version: "v1", kind: "Deployment", namespace: "prod", name: "web" };
  it("formats keys, display names and diff paths", () => {
    expect(resourceKey(id)).toBe("apps/v1/Deployment/prod/web");
    expect(displayName(id)).toBe("Deployment prod/web");
    expect(displayName({ ...id, kind: "Namespace", group: "", namespace: "" })).toBe("Namespace web");
    expect(diffPath({ ...id, group: "" })).toBe("v1/Deployment/prod/web");
  });

  it("splits apiVersion", () => {
    expect(splitApiVersion("v1")).toEqual({ group: "", version: "v1" });
    expect(splitApiVersion("networking.k8s.io/v1")).toEqual({ group: "networking.k8s.io", version: "v1" });
  });
});
