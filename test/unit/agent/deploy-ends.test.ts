import { describe, expect, inject, it } from "vitest";
import { DeployError, HealthTimeoutError, PermanentDeployError, RejectedJobError } from "../../../src/agent/errors.ts";
import { Cluster } from "../../../src/agent/kube/cluster.ts";
import { waitForHealth } from "../../../src/agent/health-wait.ts";
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
      // The stage returns its refusal with its (empty) changes; rethrown here to assert on it as the error the deploy ends with.
      const refusal = prune(cluster, [id("a"), id("b")], [], {
        repositoryId: 1,
        environment: "production",
        enabled: true,
        allowEmpty: false,
        adopted: [],
        now: () => 0,
      }).then(({ changes, error }) => {
        expect(changes).toEqual([]);
        if (error) throw error;
      });
      await expect(refusal).rejects.toThrow(
        "refusing to prune all 2 objects of production: the new revision has none; set allowEmpty: true to allow it",
      );
      await expect(refusal).rejects.toMatchObject({ permanent: true, end: "failed" });
    } finally {
      cluster.close();
    }
  });
});

describe("deadlines from the injected clock", () => {
  it("ends a health wait when the clock says the time is up, however little real time passed", async () => {
    const cluster = Cluster.connect(inject("kubeconfigPath"), { fieldManager: "sluice-test", qps: 50 });
    // A ConfigMap is current once it exists; this one does not exist, so the wait never ends by itself.
    const missing = {
      id: id("never-created-health-wait"),
      object: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "never-created-health-wait", namespace: "default" } },
    };
    let now = 0;
    const sleeps: number[] = [];
    const clock = {
      now: () => now,
      sleep: (ms: number) => {
        sleeps.push(ms);
        now += 60_000;
        return Promise.resolve();
      },
    };
    try {
      const outcome = await waitForHealth(cluster, [missing], {
        timeoutMs: 300_000,
        concurrency: 2,
        clock,
        waiting: () => Promise.resolve(),
      });
      expect(outcome.ended).toBe("timed-out");
      expect(outcome.message).toContain(
        "health check timed out after 300 s; not healthy:\n- ConfigMap default/never-created-health-wait: not found",
      );
      expect(outcome.health.get("/ConfigMap/default/never-created-health-wait")).toEqual({ status: "in-progress", message: "not found" });
      // Past five simulated minutes in 60-second steps of the fake clock: six polls' sleeps.
      expect(sleeps).toEqual([500, 500, 500, 500, 500, 500]);
    } finally {
      cluster.close();
    }
  });
});
