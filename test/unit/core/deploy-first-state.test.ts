import { describe, expect, it } from "vitest";
import { firstDeployState } from "../../../src/core/deploy-status.ts";

// What a deploy first shows on GitHub once its job is queued (issue 28: one write shows it in
// progress, where "queued" then "in progress" took two, a second apart).

describe("a deploy's first state on GitHub", () => {
  it("is in progress from the first write, for the check run and the Deployment", () => {
    expect(firstDeployState(false, undefined)).toEqual({
      checkRun: "in_progress",
      deployment: "in_progress",
      description: "Queued for the agent",
    });
  });

  it("stays queued while the deploy waits for a hold to be released", () => {
    expect(firstDeployState(true, undefined)).toEqual({ checkRun: "queued", deployment: "queued", description: "Held by /rollback" });
  });

  it("starts a Deployment made after reports were applied at the newest one's state", () => {
    expect(firstDeployState(false, "succeeded").deployment).toBe("success");
    expect(firstDeployState(false, "progress").deployment).toBe("in_progress");
    expect(firstDeployState(true, "held").deployment).toBe("queued");
    expect(firstDeployState(false, "superseded")).toMatchObject({ deployment: "inactive", description: "The agent reported superseded" });
  });
});
