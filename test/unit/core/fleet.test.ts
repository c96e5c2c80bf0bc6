import { describe, expect, it } from "vitest";
import { fleetOf, parseConfig, ConfigError } from "../../../src/core/config.ts";
import {
  allAtOnce,
  historyCluster,
  matchesCluster,
  rolloutStates,
  nextStep,
  planWaves,
  rolloutSummary,
  rolloutTitle,
  startRollout,
  targetName,
  toWave,
  withClusterReport,
  type FleetSettings,
  type Rollout,
} from "../../../src/core/fleet.ts";

const MIN = 60_000;
const T0 = Date.parse("2026-12-04T10:00:00Z");

const fleet = (overrides: Partial<FleetSettings> = {}): FleetSettings => ({
  clusters: [],
  waves: [["canary-eu"], ["eu-*"], ["us-*", "ap-*"]],
  bakeMs: 10 * MIN,
  clusterTimeoutMs: 15 * MIN,
  ...overrides,
});

/** A cluster's report applied at `at` by the app's clock; the agent's own clock says `agentAt` (the same unless a test says otherwise). */
const report = (phase: "started" | "succeeded" | "failed" | "rejected" | "superseded", at: number, message = "", agentAt = at) => ({
  at: new Date(agentAt).toISOString(),
  phase,
  applied: phase === "succeeded" ? 5 : 0,
  total: 5,
  receivedAt: at,
  message,
});

/** The rollout with every cluster of its current wave deployed at `at`. */
function waveDeployed(rollout: Rollout, at: number): Rollout {
  let next = rollout;
  for (const cluster of rollout.waves[rollout.wave] ?? []) next = withClusterReport(next, cluster, report("succeeded", at));
  return next;
}

describe("cluster names and globs", () => {
  it("matches a name exactly and a glob by its parts", () => {
    expect(matchesCluster("eu-1", "eu-1")).toBe(true);
    expect(matchesCluster("eu-1", "eu-10")).toBe(false);
    expect(matchesCluster("eu-*", "eu-10")).toBe(true);
    expect(matchesCluster("eu-*", "us-1")).toBe(false);
    expect(matchesCluster("*-edge-*", "eu-edge-3")).toBe(true);
    expect(matchesCluster("*", "anything")).toBe(true);
  });

  it("keeps one environment's clusters apart from another's in queue and key names", () => {
    expect(targetName("production")).toBe("production");
    expect(targetName("production", "eu-1")).toBe("production@eu-1");
  });
});

describe("planWaves", () => {
  it("puts each announced cluster in the first wave that matches it, and the rest in a last wave", () => {
    const plan = planWaves(fleet({ clusters: ["*"] }), ["ap-1", "canary-eu", "eu-1", "eu-2", "sa-1", "us-1"]);
    expect(plan.waves).toEqual([["canary-eu"], ["eu-1", "eu-2"], ["ap-1", "us-1"], ["sa-1"]]);
    expect(plan.unmatched).toEqual([]);
  });

  it("keeps a named cluster whose agent never announced itself (it holds its wave), and says which globs matched nothing", () => {
    const plan = planWaves(fleet(), ["eu-1"]);
    expect(plan.waves).toEqual([["canary-eu"], ["eu-1"]]);
    expect(plan.unmatched).toEqual(["us-*", "ap-*"]);
  });

  it("plans nothing when only globs are listed and no agent announced a cluster", () => {
    expect(planWaves(fleet({ waves: [["eu-*"]] }), []).waves).toEqual([]);
  });
});

describe("nextStep", () => {
  const plan = planWaves(fleet(), ["canary-eu", "eu-1", "eu-2", "us-1"]);
  const start = startRollout(plan, fleet(), T0);

  it("works on a wave until its clusters end, within the timeout", () => {
    const rollout = withClusterReport(start, "canary-eu", report("started", T0 + MIN));
    expect(nextStep(rollout, T0 + 2 * MIN)).toEqual({ kind: "working", until: T0 + 15 * MIN });
  });

  it("holds the wave once the timeout passed, naming the clusters that never answered and since when", () => {
    const step = nextStep(start, T0 + 15 * MIN);
    expect(step).toEqual({ kind: "held", silent: ["canary-eu"], since: T0 });
    expect(rolloutTitle(start, step)).toBe("Wave 1 of 3 held: canary-eu not answering since 10:00 UTC");
    expect(rolloutSummary(start, step)).toContain("🔇 no answer since 10:00 UTC");
  });

  it("lets a held wave go on when the silent cluster answers late", () => {
    const late = waveDeployed(start, T0 + 20 * MIN);
    expect(nextStep(late, T0 + 20 * MIN)).toEqual({ kind: "baking", until: T0 + 30 * MIN });
  });

  it("bakes a deployed wave, then starts the next", () => {
    const deployed = waveDeployed(start, T0 + 3 * MIN);
    expect(nextStep(deployed, T0 + 12 * MIN)).toEqual({ kind: "baking", until: T0 + 13 * MIN });
    expect(nextStep(deployed, T0 + 13 * MIN)).toEqual({ kind: "next", wave: 1 });
  });

  it("times a bake by the app's clock, whatever the agent's clock says", () => {
    // An agent whose clock is an hour behind (or that lies) reports its success at 09:03.
    const skewed = withClusterReport(start, "canary-eu", report("succeeded", T0 + 3 * MIN, "", T0 - 57 * MIN));
    expect(nextStep(skewed, T0 + 4 * MIN)).toEqual({ kind: "baking", until: T0 + 13 * MIN });
  });

  it("matches a glob that would make a regular expression backtrack without end, at once", () => {
    const glob = `${"*a".repeat(30)}b`;
    expect(matchesCluster(glob, "a".repeat(63))).toBe(false);
    expect(matchesCluster(glob, `${"a".repeat(62)}b`)).toBe(true);
  });

  it("stops after a wave that drifted while it baked", () => {
    const deployed = waveDeployed(start, T0 + 3 * MIN);
    const step = nextStep(deployed, T0 + 13 * MIN, { drifted: new Set(["canary-eu"]) });
    expect(step).toEqual({ kind: "stopped", reason: "drift", clusters: ["canary-eu"] });
    expect(rolloutTitle(deployed, step)).toBe("Stopped after wave 1 of 3: canary-eu drifted while baking");
  });

  it("stops after a wave whose objects are not healthy when its bake ends", () => {
    const deployed = waveDeployed(start, T0 + 3 * MIN);
    const step = nextStep(deployed, T0 + 13 * MIN, { unhealthy: new Set(["canary-eu"]) });
    expect(step).toEqual({ kind: "stopped", reason: "unhealthy", clusters: ["canary-eu"] });
    expect(rolloutTitle(deployed, step)).toBe("Stopped after wave 1 of 3: canary-eu not healthy at the end of the bake");
    expect(nextStep(deployed, T0 + 13 * MIN, { unhealthy: new Set(["us-east"]) })).toEqual({ kind: "next", wave: 1 });
  });

  it("stops the later waves when a cluster of a wave fails, and names them", () => {
    const second = toWave(waveDeployed(start, T0 + MIN), 1, T0 + 11 * MIN);
    const failed = withClusterReport(
      withClusterReport(second, "eu-1", report("succeeded", T0 + 12 * MIN)),
      "eu-2",
      report("rejected", T0 + 12 * MIN, "denied by admission webhook"),
    );
    const step = nextStep(failed, T0 + 12 * MIN);
    expect(step).toEqual({ kind: "stopped", reason: "failed", clusters: ["eu-2"] });
    const summary = rolloutSummary(failed, step);
    expect(summary).toContain("The later waves were not started (1 cluster: us-1): eu-2 did not deploy.");
    expect(summary).toContain("⛔ refused");
    // The table's note is short; the whole reason follows it, fenced.
    expect(summary).toContain("**eu-2**:\n\n```\ndenied by admission webhook\n```");
    expect(summary).toContain("⏹️ not started");
  });

  it("stops as held, not failed, when /rollback holds a cluster, and rolls a rollback out to every cluster at once", () => {
    const held = withClusterReport(start, "canary-eu", { ...report("started", T0 + MIN), phase: "held", message: "held by /rollback" });
    const step = nextStep(held, T0 + MIN);
    expect(step).toEqual({ kind: "stopped", reason: "held", clusters: ["canary-eu"] });
    expect(rolloutTitle(held, step)).toBe("Held by /rollback on canary-eu");
    expect(rolloutStates(step)).toEqual({ checkRun: { status: "completed", conclusion: "skipped" }, deployment: "inactive" });
    const back = allAtOnce(start);
    expect(back.waves).toEqual([["canary-eu", "eu-1", "eu-2", "us-1"]]);
    expect(back.bakeMs).toBe(0);
    expect(historyCluster(start)).toBe("canary-eu");
  });

  it("ends when its last wave deployed, without a bake after it", () => {
    let rollout = waveDeployed(start, T0 + MIN);
    rollout = waveDeployed(toWave(rollout, 1, T0 + 11 * MIN), T0 + 12 * MIN);
    rollout = waveDeployed(toWave(rollout, 2, T0 + 22 * MIN), T0 + 23 * MIN);
    const step = nextStep(rollout, T0 + 23 * MIN);
    expect(step).toEqual({ kind: "succeeded" });
    expect(rolloutTitle(rollout, step)).toBe("Deployed to 4 clusters in 3 waves");
  });

  it("keeps the table of 2,000 clusters within a check run's summary, counting by state those past its limit", () => {
    const names = Array.from({ length: 2_000 }, (_, i) => `cluster-${String(i).padStart(4, "0")}`);
    const big = startRollout(planWaves(fleet({ waves: [["cluster-*"]] }), names), fleet(), T0);
    const failed = withClusterReport(big, "cluster-0001", report("failed", T0 + MIN, "x".repeat(2_000)));
    const summary = rolloutSummary(failed, nextStep(failed, T0 + MIN));
    expect(summary.length).toBeLessThan(65_535);
    expect(summary).toMatch(/…and \d+ more clusters: \d+ 🕐 queued\./);
    expect(summary).toContain(`**cluster-0001**:\n\n\`\`\`\n${"x".repeat(2_000)}\n\`\`\``);
  });

  it("fits a hundred clusters' table in a check run's summary many times over", () => {
    const names = Array.from({ length: 100 }, (_, i) => `eu-${i}`);
    const big = waveDeployed(startRollout(planWaves(fleet({ waves: [["eu-*"]] }), names), fleet(), T0), T0 + MIN);
    expect(Buffer.byteLength(rolloutSummary(big, nextStep(big, T0 + MIN)))).toBeLessThan(10_000);
  });
});

describe("fleets in the configuration", () => {
  it("reads clusters, waves, bake and the timeout, and leaves environments without them on one cluster", () => {
    const config = parseConfig(`version: 1
environments:
  - name: staging
  - name: production
    waves: [[canary-eu], ["eu-*"], ["us-*", "ap-*"]]
    bake: 10m
    clusterTimeout: 5m
`);
    expect(fleetOf(config.environments[0] ?? ({} as never))).toBeUndefined();
    expect(fleetOf(config.environments[1] ?? ({} as never))).toEqual({
      clusters: [],
      waves: [["canary-eu"], ["eu-*"], ["us-*", "ap-*"]],
      bakeMs: 10 * MIN,
      clusterTimeoutMs: 5 * MIN,
    });
  });

  it("names the line of a wave's cluster that clusters does not list, and of a cluster that is not a name", () => {
    const bad = `version: 1
environments:
  - name: production
    clusters: [eu-1, eu-2]
    waves:
      - [eu-1]
      - [us-1]
`;
    expect(() => parseConfig(bad)).toThrow(ConfigError);
    expect(() => parseConfig(bad)).toThrow(
      /:7: environments\[0\]\.waves\[1\]\[0\].*names cluster us-1, which clusters does not list or match/s,
    );
    expect(() => parseConfig("version: 1\nenvironments:\n  - name: p\n    clusters: [EU_1]\n")).toThrow(
      /:4: environments\[0\]\.clusters\[0\]/,
    );
  });
});
