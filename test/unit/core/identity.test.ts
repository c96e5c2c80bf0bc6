import { describe, expect, it } from "vitest";
import { diffPath, displayName, identify, resourceKey, splitApiVersion } from "../../../src/core/identity.ts";
import { ScopeResolver } from "../../../src/core/scopes.ts";

describe("identify", () => {
  const none = new ScopeResolver([]);

  it("gives a namespaced object without a namespace the environment's namespace", () => {
    expect(identify({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" } }, "prod", none)).toEqual({
      group: "apps",
      version: "v1",
      kind: "Deployment",
      namespace: "prod",
      name: "web",
    });
  });

  it("keeps an explicit namespace", () => {
    expect(identify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", namespace: "other" } }, "prod", none).namespace).toBe(
      "other",
    );
  });

  it("gives built-in cluster-scoped kinds no namespace, even when one is written", () => {
    expect(identify({ apiVersion: "v1", kind: "Namespace", metadata: { name: "prod", namespace: "x" } }, "prod", none).namespace).toBe("");
    expect(
      identify({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "r" } }, "prod", none).namespace,
    ).toBe("");
  });

  it("learns the scope of CRDs defined in the same set", () => {
    const crd = (kind: string, scope: string) => ({
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: "x" },
      spec: { group: "example.com", scope, names: { kind } },
    });
    const scopes = new ScopeResolver([crd("Backup", "Cluster"), crd("Widget", "Namespaced")]);
    expect(identify({ apiVersion: "example.com/v1", kind: "Backup", metadata: { name: "b" } }, "prod", scopes).namespace).toBe("");
    expect(identify({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } }, "prod", scopes).namespace).toBe("prod");
    // A kind with the same name in another group is unaffected: its scope is unknown.
    expect(scopes.scopeOf("other.io", "Backup")).toBe("unknown");
  });

  it("knows well-known projects' cluster-scoped kinds without their CRDs", () => {
    for (const [apiVersion, kind] of [
      ["cert-manager.io/v1", "ClusterIssuer"],
      ["gateway.networking.k8s.io/v1", "GatewayClass"],
      ["kyverno.io/v1", "ClusterPolicy"],
      ["constraints.gatekeeper.sh/v1beta1", "K8sRequiredLabels"],
      ["karpenter.sh/v1", "NodePool"],
      ["pkg.crossplane.io/v1", "Provider"],
      ["argoproj.io/v1alpha1", "ClusterWorkflowTemplate"],
    ] as const) {
      expect(identify({ apiVersion, kind, metadata: { name: "x" } }, "prod", none).namespace).toBe("");
    }
    expect(
      identify({ apiVersion: "gateway.networking.k8s.io/v1", kind: "HTTPRoute", metadata: { name: "r" } }, "prod", none).namespace,
    ).toBe("");
    expect(none.scopeOf("gateway.networking.k8s.io", "HTTPRoute")).toBe("unknown");
    expect(none.scopeOf("networking.k8s.io", "Ingress")).toBe("namespaced");
  });

  it("never invents a namespace for a kind of unknown scope, and keeps one the manifest gives", () => {
    expect(identify({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } }, "prod", none).namespace).toBe("");
    expect(
      identify({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w", namespace: "team" } }, "prod", none).namespace,
    ).toBe("team");
  });
});

describe("names", () => {
  const id = { group: "apps", version: "v1", kind: "Deployment", namespace: "prod", name: "web" };
  it("formats keys, display names and diff paths", () => {
    expect(resourceKey(id)).toBe("apps/Deployment/prod/web");
    expect(displayName(id)).toBe("Deployment prod/web");
    expect(displayName({ ...id, kind: "Namespace", group: "", namespace: "" })).toBe("Namespace web");
    expect(diffPath({ ...id, group: "" })).toBe("v1/Deployment/prod/web");
  });

  it("splits apiVersion", () => {
    expect(splitApiVersion("v1")).toEqual({ group: "", version: "v1" });
    expect(splitApiVersion("networking.k8s.io/v1")).toEqual({ group: "networking.k8s.io", version: "v1" });
  });
});
