import { describe, expect, inject, it } from "vitest";
import { DeployError, HealthTimeoutError, PermanentDeployError, RejectedJobError } from "../../../src/agent/errors.ts";
import { Cluster } from "../../../src/agent/kube/cluster.ts";
import { prune } from "../../../src/agent/prune.ts";

const id = (name: string) => ({ group: "", version: "v1", kind: "ConfigMap", namespace: "default", name });

describe("why a deploy ended", () => {
  it("says of every refusal whether retrying can help, which objects it concerns and how the report ends", () => {
    const results = [{ ...id("a"), action: "failed" as const, health: "unknown" as const, durationMs: 0 }];
    expect(new PermanentDeployError("dry-run failed", results)).toMatchObject({ permanent: true, end: "failed", objects: results });
    expect(new RejectedJobError("expired")).toMatchObject({ permanent: true, end: "rejected", objects: [] });
    expect(new HealthTimeoutError("not healthy", results)).toMatchObject({ permanent: true, end: "failed", objects: results });
    expect(new DeployError("maybe later", { permanent: false })).toMatchObject({ permanent: false, end: "failed" });
  });

  it("ends a refusal to prune everything at once for good, instead of burning retries", async () => {
    const cluster = Cluster.connect(inject("kubeconfigPath"), { fieldManager: "sluice-test", qps: 50 });
    try {
      const refusal = prune(cluster, [id("a"), id("b")], [], { repositoryId: 1, environment: "production", enabled: true, allowEmpty: false, now: () => 0 });
      await expect(refusal).rejects.toThrow("refusing to prune all 2 objects of production: the new revision has none; set allowEmpty: true to allow it");
      await expect(refusal).rejects.toMatchObject({ permanent: true, end: "failed" });
    } finally {
      cluster.close();
    }
  });
});
