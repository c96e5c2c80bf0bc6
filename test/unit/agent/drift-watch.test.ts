import { describe, expect, it } from "vitest";
import { eventVerdict, foreignHands, nextStep, watchTargets } from "../../../src/agent/drift-watch.ts";
import { KubeApiError, watchEvent } from "../../../src/agent/kube/cluster.ts";

// The decisions of the drift watches (issue 28), as data: which watches an inventory needs, what an
// event means, and what a watch does after its stream ended. The watches themselves run against
// the real apiserver in test/integration/drift-watch.test.ts.

const entry = (manager: string, time: string, extra: Record<string, unknown> = {}) => ({ manager, operation: "Update", time, ...extra });

describe("drift watch decisions", () => {
  it("need one watch per kind and namespace, and one per cluster-scoped kind", () => {
    const targets = watchTargets("prod", [
      { group: "", version: "v1", kind: "ConfigMap", namespace: "a", name: "one" },
      { group: "", version: "v1", kind: "ConfigMap", namespace: "a", name: "two" },
      { group: "", version: "v1", kind: "ConfigMap", namespace: "b", name: "one" },
      { group: "apps", version: "v1", kind: "Deployment", namespace: "a", name: "web" },
      { group: "", version: "v1", kind: "Namespace", namespace: "", name: "a" },
      { group: "", version: "v1", kind: "Namespace", namespace: "", name: "b" },
    ]);

    expect([...targets.values()].map((t) => ({ ...t, names: [...t.names] }))).toEqual([
      { apiVersion: "v1", kind: "ConfigMap", namespace: "a", names: ["one", "two"] },
      { apiVersion: "v1", kind: "ConfigMap", namespace: "b", names: ["one"] },
      { apiVersion: "apps/v1", kind: "Deployment", namespace: "a", names: ["web"] },
      { apiVersion: "v1", kind: "Namespace", namespace: "", names: ["a", "b"] },
    ]);
  });

  it("count the hands of other managers only, outside status and the cluster's controllers", () => {
    const metadata = {
      managedFields: [
        { manager: "sluice", operation: "Apply", time: "2026-12-03T10:00:00Z" },
        entry("kube-controller-manager", "2026-12-03T10:00:01Z"),
        entry("some-operator", "2026-12-03T10:00:02Z", { subresource: "status" }),
        entry("kubectl-patch", "2026-12-03T10:00:03Z"),
      ],
    };

    expect(foreignHands(metadata, "sluice")).toBe("kubectl-patch|Update||2026-12-03T10:00:03Z");
    expect(foreignHands({}, "sluice")).toBe("");
    // A fleet's agent counts status writes too: a change of health is checked at once.
    expect(foreignHands(metadata, "sluice", true).split("\n")).toContain("some-operator|Update|status|2026-12-03T10:00:02Z");
  });

  it("call a new hand, or a hand writing again, an edit; the same hands, or fewer, quiet; a deletion a deletion", () => {
    const first = "kubectl-patch|Update||2026-12-03T10:00:03Z";
    const again = "kubectl-patch|Update||2026-12-03T10:05:00Z";

    expect(eventVerdict("MODIFIED", "", undefined)).toBe("quiet");
    expect(eventVerdict("ADDED", first, undefined)).toBe("edited");
    expect(eventVerdict("MODIFIED", first, first)).toBe("quiet");
    expect(eventVerdict("MODIFIED", again, first)).toBe("edited");
    expect(eventVerdict("MODIFIED", "", first)).toBe("quiet");
    expect(eventVerdict("DELETED", "", first)).toBe("deleted");
  });

  it("list again after 410 Gone, back off after other errors, resume after the server ended the watch", () => {
    expect(nextStep({ errorCode: 410 })).toBe("relist");
    expect(nextStep({ failure: new KubeApiError("ConfigMap watch in a", 410, "Gone", "too old resource version: 1 (200)") })).toBe(
      "relist",
    );
    expect(nextStep({ errorCode: 500 })).toBe("backoff");
    expect(nextStep({ failure: new KubeApiError("ConfigMap watch in a", 0, "Unavailable", "the watch connection dropped") })).toBe(
      "backoff",
    );
    expect(nextStep({})).toBe("resume");
  });

  it("read a watch stream's lines as events, metadata only", () => {
    expect(
      watchEvent('{"type":"MODIFIED","object":{"kind":"PartialObjectMetadata","metadata":{"name":"web","resourceVersion":"7"}}}'),
    ).toEqual({
      type: "MODIFIED",
      metadata: { name: "web", resourceVersion: "7" },
    });
    expect(watchEvent('{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}')).toEqual({
      type: "BOOKMARK",
      resourceVersion: "9",
    });
    expect(
      watchEvent('{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 1 (200)"}}'),
    ).toEqual({ type: "ERROR", code: 410, message: "too old resource version: 1 (200)" });
    expect(watchEvent("")).toBeUndefined();
  });
});
