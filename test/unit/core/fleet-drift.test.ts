import { describe, expect, it } from "vitest";
import type { DriftReport } from "../../../src/core/agent-protocol.ts";
import { fleetDriftOutput, fleetDriftRow } from "../../../src/core/fleet-drift.ts";
import { CHECK_RUN_TEXT_LIMIT } from "../../../src/core/markdown.ts";

const sha = "c".repeat(40);

function report(cluster: string, drifted: number): DriftReport {
  return {
    version: 1,
    jobId: "merge-1-production",
    repository: { owner: "acme", name: "shop", id: 1 },
    installationId: 9,
    environment: "production",
    cluster,
    sha,
    checked: 20,
    drifted: Array.from({ length: drifted }, (_, i) => ({
      group: "",
      version: "v1",
      kind: "ConfigMap",
      namespace: "shop",
      name: `cm-${i}`,
      action: "modified" as const,
      diff: `-  k: v1\n+  k: ${"x".repeat(500)}`,
    })),
    healed: [],
    gaveUp: [],
    at: "2026-12-04T12:00:00.000Z",
  };
}

describe("a fleet's drift check run", () => {
  it("has a row per drifted cluster, names the clusters in sync, and is neutral while any drifted", () => {
    const rows = {
      "eu-1": fleetDriftRow(report("eu-1", 0)),
      "eu-2": fleetDriftRow(report("eu-2", 12)),
      canary: fleetDriftRow(report("canary", 0)),
    };
    const { conclusion, output } = fleetDriftOutput(sha, rows);
    expect(conclusion).toBe("neutral");
    expect(output.title).toBe("Drifted on 1 of 3 clusters");
    expect(output.summary).toContain("| `eu-2` | 12: `ConfigMap shop/cm-0`, ");
    expect(output.summary).toContain("`ConfigMap shop/cm-9` and 2 more | off |");
    expect(output.summary).toContain("In sync: `canary`, `eu-1`.");
    expect(output.text).toMatch(/^#### `eu-2`\n\n12 of 20 objects differ/);
    expect(fleetDriftOutput(sha, { canary: rows.canary })).toMatchObject({
      conclusion: "success",
      output: { title: "In sync on 1 cluster" },
    });
  });

  it("names the objects a cluster reports not healthy, and is neutral for them", () => {
    const ailing: DriftReport = {
      ...report("eu-1", 0),
      unhealthy: [
        {
          group: "apps",
          version: "v1",
          kind: "Deployment",
          namespace: "shop",
          name: "web",
          health: "in-progress",
          message: "1 of 3 replicas available",
        },
      ],
    };
    const { conclusion, output } = fleetDriftOutput(sha, { "eu-1": fleetDriftRow(ailing), "eu-2": fleetDriftRow(report("eu-2", 0)) });
    expect(conclusion).toBe("neutral");
    expect(output.title).toBe("In sync on 2 clusters; 1 not healthy");
    expect(output.summary).toContain("| `eu-1` | `Deployment shop/web (in-progress: 1 of 3 replicas available)` |");
  });

  it("fits a check run at 2,000 clusters, every one of them drifted", () => {
    const rows = Object.fromEntries(
      Array.from({ length: 2_000 }, (_, i) => [`edge-${String(i).padStart(4, "0")}`, fleetDriftRow(report(`edge-${i}`, 30))]),
    );
    const { output } = fleetDriftOutput(sha, rows);
    expect(output.title).toBe("Drifted on 2000 of 2000 clusters");
    expect(Buffer.byteLength(output.summary)).toBeLessThan(CHECK_RUN_TEXT_LIMIT);
    expect(output.text?.length).toBeLessThan(CHECK_RUN_TEXT_LIMIT);
    expect(output.summary).toMatch(/\d+ more drifted clusters are not listed here: 2000 clusters drifted in all\./);
  });
});
