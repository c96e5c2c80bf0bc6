import { describe, expect, it } from "vitest";
import { PIPELINE_MARKER, pipelineComment, pipelineDone, pipelineLine, type PipelineStep } from "../../../src/core/pipeline-comment.ts";

const SHA = "0123456789abcdef0123456789abcdef01234567";
const step = (environment: string, where: string, done = false, approval = false): PipelineStep => ({
  environment,
  where,
  done,
  approval,
});

describe("the merged pull request's pipeline comment", () => {
  it("shows each environment in order, one line", () => {
    const steps = [
      step("dev", "✓ deployed 12:03 UTC", true),
      step("staging", "soaking in dev: ends 12:18 UTC"),
      step("production", "waiting for staging"),
    ];
    expect(pipelineLine(steps)).toBe(
      "`dev` ✓ deployed 12:03 UTC · `staging` soaking in dev: ends 12:18 UTC · `production` waiting for staging",
    );
    expect(pipelineComment(SHA, steps)).toBe(
      `${PIPELINE_MARKER}\n**Pipeline of \`0123456\`:** \`dev\` ✓ deployed 12:03 UTC · \`staging\` soaking in dev: ends 12:18 UTC · \`production\` waiting for staging`,
    );
    expect(pipelineDone(steps)).toBe(false);
  });

  it("says how to approve where a deploy waits for an approval", () => {
    const body = pipelineComment(SHA, [
      step("staging", "✓ deployed 12:20 UTC", true),
      step("production", "waiting for approval", false, true),
    ]);
    expect(body).toContain("`production` waiting for approval");
    expect(body.split("\n").at(-1)).toBe("Approve with the **Approve** button on the deploy check run, or comment `/approve production`.");
  });

  it("is done, and says so, once the commit is deployed everywhere; an empty pipeline never is", () => {
    const steps = [step("dev", "✓ deployed 12:03 UTC", true), step("production", "✓ deployed 12:40 UTC", true)];
    expect(pipelineDone(steps)).toBe(true);
    expect(pipelineComment(SHA, steps).split("\n").at(-1)).toBe("✅ Deployed to every environment: dev, production.");
    expect(pipelineDone([])).toBe(false);
  });
});
