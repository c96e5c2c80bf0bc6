import { describe, expect, it } from "vitest";
import { appliedRevisions } from "../../../src/agent/status.ts";
import { convergenceReason, queuedSummary } from "../../../src/core/deploy-status.ts";
import type { Inventory } from "../../../src/core/inventory.ts";

const SHA_A = "a".repeat(40);
const SHA_B = "b".repeat(40);

/** An inventory ConfigMap as the agent writes it. */
function inventoryConfigMap(inventory: Partial<Inventory> & Pick<Inventory, "repositoryId" | "repository" | "environment">) {
  const full: Inventory = { version: 1, objects: [], revisions: [], sequence: 1, sequenceJobId: "j", heals: [], adopted: [], ...inventory };
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: `sluice-inventory-${inventory.repositoryId}`, labels: { "sluice.dev/inventory": "true" } },
    data: { inventory: JSON.stringify(full) },
  };
}

const revision = (sha: string, jobId: string) => ({
  sha,
  jobId,
  digest: "d",
  appliedAt: "2026-11-27T12:00:00.000Z",
  reason: "merge" as const,
});

describe("appliedRevisions", () => {
  it("gives each repository's newest revision in the environment and whether it is held", () => {
    const configMaps = [
      inventoryConfigMap({
        repositoryId: 1,
        repository: "o/one",
        environment: "prod",
        revisions: [revision(SHA_B, "j2"), revision(SHA_A, "j1")],
      }),
      inventoryConfigMap({
        repositoryId: 2,
        repository: "o/two",
        environment: "prod",
        revisions: [revision(SHA_A, "j3")],
        hold: { by: "someone", at: "2026-11-27T12:00:00.000Z", jobId: "j3", sha: SHA_A },
      }),
      inventoryConfigMap({ repositoryId: 3, repository: "o/three", environment: "staging", revisions: [revision(SHA_A, "j4")] }),
    ];

    expect(appliedRevisions(configMaps, "prod")).toEqual([
      { repository: { id: 1, fullName: "o/one" }, sha: SHA_B, jobId: "j2", held: false },
      { repository: { id: 2, fullName: "o/two" }, sha: SHA_A, jobId: "j3", held: true },
    ]);
  });

  it("leaves out inventories with no revision yet, corrupt ones and other ConfigMaps", () => {
    const corrupt = { ...inventoryConfigMap({ repositoryId: 5, repository: "o/five", environment: "prod" }), data: { inventory: "{" } };
    const other = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings" }, data: { inventory: "{}" } };

    const applied = appliedRevisions(
      [inventoryConfigMap({ repositoryId: 4, repository: "o/four", environment: "prod" }), corrupt, other],
      "prod",
    );

    expect(applied).toEqual([]);
  });
});

describe("what a converging deploy's check run says", () => {
  it("says why the app deployed the head by itself", () => {
    expect(convergenceReason({ event: "started", branch: "main" })).toBe("agent came online behind `main`");
    expect(convergenceReason({ event: "started", branch: "main", applied: SHA_A })).toBe("agent came online at `aaaaaaa`, behind `main`");
    expect(convergenceReason({ event: "running", branch: "release`x", applied: SHA_A }, { plain: true })).toBe(
      "agent reported aaaaaaa, behind release`x",
    );
    expect(
      queuedSummary(3, { sha: SHA_B, reason: "merge", requestedBy: "sluice", convergence: { event: "started", branch: "main" } }),
    ).toBe(
      "3 objects of `bbbbbbb` queued for the agent (merge, requested by sluice).\n\nSluice deploys the branch's head by itself: agent came online behind `main`.",
    );
  });
});
