import { describe, expect, it } from "vitest";
import { agentReportSchema } from "../../../src/core/agent-protocol.ts";
import {
  APP_DEPLOY_STATES,
  DEPLOY_PHASE_NAMES,
  DEPLOY_PHASES,
  DEPLOYMENT_STATES,
  isNewer,
  JOB_END_PHASES,
  phaseRow,
  type DeployPhase,
} from "../../../src/core/deploy-phases.ts";
import { deploymentDescription, heldOutput, notQueuedCheckRun, queuedOutput, releasedState } from "../../../src/core/deploy-status.ts";

const rows = DEPLOY_PHASE_NAMES.map((phase) => [phase, phaseRow(phase)] as const);
const facts = { message: "m", counts: "1 created", applied: 1, total: 2, durationMs: 1_000 };

describe("the table of deploy phases", () => {
  it("is the report schema's phase enum, key for key and in order", () => {
    // Arrange / act: the phases an agent's report may name.
    const reportable = agentReportSchema.shape.phase.options;

    // Assert
    expect(reportable).toEqual(Object.keys(DEPLOY_PHASES));
    expect(DEPLOY_PHASE_NAMES).toEqual(["started", "progress", "succeeded", "failed", "superseded", "rejected", "held"]);
  });

  it("times exactly the final phases whose deploy ran to an end of its own, never an open or superseded one", () => {
    const timed = rows.filter(([, row]) => row.timed).map(([phase]) => phase);
    expect(timed).toEqual(["succeeded", "failed", "rejected"]);
    for (const phase of timed) expect(phaseRow(phase).final).toBe(true);
  });

  it("gives every final phase a completed check run with a conclusion and a Deployment state", () => {
    for (const [phase, row] of rows) {
      if (!row.final) continue;
      expect(row.checkRun, phase).toMatchObject({ status: "completed", conclusion: expect.any(String) as unknown });
      expect(DEPLOYMENT_STATES, phase).toContain(row.deployment);
      expect(row.endsJob, phase).toBe(true);
    }
  });

  it("leaves the check run of every phase that is not final open", () => {
    for (const [phase, row] of rows.filter(([, r]) => !r.final)) expect(["queued", "in_progress"], phase).toContain(row.checkRun.status);
  });

  it("ranks every phase that is not final apart, and below every final one", () => {
    const open = rows.filter(([, r]) => !r.final).map(([, r]) => r.rank);
    const final = rows.filter(([, r]) => r.final).map(([, r]) => r.rank);
    expect(new Set(open).size).toBe(open.length);
    expect(Math.max(...open)).toBeLessThan(Math.min(...final));
  });

  it("writes only Deployment states Sluice knows, and texts for every phase", () => {
    for (const [phase, row] of rows) {
      if (row.deployment !== undefined) expect(DEPLOYMENT_STATES, phase).toContain(row.deployment);
      expect(row.title(facts), phase).not.toBe("");
      expect(row.summary(facts), phase).not.toBe("");
    }
  });

  it("offers buttons, an object table and a hold's release only on final phases, and a hold's wait only on one that is not", () => {
    for (const [phase, row] of rows) {
      if (row.buttons || row.objectTable || row.releasesHold) expect(row.final, phase).toBe(true);
      if (row.waitsForHold) expect(row.final, phase).toBe(false);
      if (row.releasesHold) expect(row.checkRun, phase).toEqual({ status: "completed", conclusion: "success" });
    }
  });

  it("comments only on a phase that ends the agent's job", () => {
    const commenting = rows.filter(([, r]) => r.comment !== undefined).map(([p]) => p);
    expect(commenting.every((p) => JOB_END_PHASES.includes(p))).toBe(true);
    expect(commenting).toEqual(["succeeded", "failed", "held"]);
  });

  it("keeps the app's own states apart from the phases and consistent with the held row", () => {
    expect(Object.keys(APP_DEPLOY_STATES)).toEqual(["queued", "held", "released"]);
    expect(APP_DEPLOY_STATES.held).toMatchObject({ checkRun: DEPLOY_PHASES.held.checkRun, deployment: DEPLOY_PHASES.held.deployment });
    expect(APP_DEPLOY_STATES.held.title).toBe(DEPLOY_PHASES.held.title());
  });
});

describe("which of two reports is newer", () => {
  const at = "2026-01-01T00:00:00.000Z";
  const later = "2026-01-01T00:00:00.001Z";

  it("orders by time first, whatever the phases", () => {
    expect(isNewer({ at: later, phase: "started" }, { at, phase: "succeeded", applied: 0 })).toBe(true);
    expect(isNewer({ at, phase: "succeeded" }, { at: later, phase: "started", applied: 0 })).toBe(false);
  });

  it("orders by the phase's rank within one millisecond, then by progress", () => {
    const order: DeployPhase[] = ["held", "started", "progress", "succeeded"];
    for (const [index, phase] of order.entries())
      for (const earlier of order.slice(0, index)) expect(isNewer({ at, phase }, { at, phase: earlier, applied: 0 }), phase).toBe(true);
    expect(isNewer({ at, phase: "progress", applied: 3 }, { at, phase: "progress", applied: 2 })).toBe(true);
    expect(isNewer({ at, phase: "progress", applied: 2 }, { at, phase: "progress", applied: 2 })).toBe(false);
    expect(isNewer({ at, phase: "failed" }, { at, phase: "succeeded", applied: 0 })).toBe(false);
  });
});

describe("a held deploy closed when a newer deploy released the hold", () => {
  it("skips the check run and makes the Deployment inactive, linking the deploy that ran instead", () => {
    const state = releasedState({ sha: "0123456789abcdef0123456789abcdef01234567", reason: "sync" }, "https://github.example/runs/9");
    expect(state.checkRun).toMatchObject({
      status: "completed",
      conclusion: "skipped",
      output: { title: "Not deployed: the hold was released" },
    });
    expect(state.checkRun.output.summary).toContain("released by the sync of [`0123456`](https://github.example/runs/9)");
    expect(state.deployment).toEqual({ state: "inactive", description: "Held by /rollback; not deployed" });
  });
});

describe("the app's texts of a deploy before the agent has it", () => {
  const sha = "0123456789abcdef0123456789abcdef01234567";

  it("describes a Deployment by why it was made", () => {
    expect(deploymentDescription({ reason: "merge", requestedBy: "ada", sha })).toBe("Sluice merge by ada");
    expect(deploymentDescription({ reason: "rollback", requestedBy: "ada", sha, from: "f".repeat(40) })).toBe(
      "Rollback to 0123456 from fffffff by ada",
    );
    expect(deploymentDescription({ reason: "sync", requestedBy: "sluice", sha, convergence: { event: "started", branch: "main" } })).toBe(
      "Sluice: agent came online behind main",
    );
  });

  it("fails the check run of a request that was never queued, saying why and where", () => {
    const run = notQueuedCheckRun("render", [{ file: "k/a.yaml", line: 3, message: "bad", environment: "production" }]);
    expect(run).toMatchObject({ status: "completed", conclusion: "failure", output: { title: "Render failed" } });
    expect(run.output.annotations).toHaveLength(1);
    expect(run.output.annotations[0]).toMatchObject({ path: "k/a.yaml", start_line: 3 });
    expect(notQueuedCheckRun("config", []).output.title).toBe("Invalid configuration");
    expect(notQueuedCheckRun("checkout", []).output.title).toBe("The commit cannot be checked out safely");
  });

  it("shows a queued deploy in progress and a held one queued, with their titles", () => {
    expect(queuedOutput(3, { sha, reason: "merge", requestedBy: "ada" })).toEqual({
      title: "Queued",
      summary: "3 objects of `0123456` queued for the agent (merge, requested by ada).",
    });
    expect(heldOutput("`0123456` was rolled back to by ada.")).toMatchObject({ title: "Held by /rollback" });
    expect(heldOutput("x").summary).toContain("merge the revert pull request, or comment `/sync`");
  });
});
