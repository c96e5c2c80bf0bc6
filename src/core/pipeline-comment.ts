import { code, escapeInline } from "./markdown.ts";
import { shortSha } from "./git-ref.ts";

/** Marks the merged pull request's comment that shows where its commit is in the promotion pipeline. */
export const PIPELINE_MARKER = "<!-- sluice:pipeline -->";

/** Where a commit is in one environment of its branch's pipeline. */
export interface PipelineStep {
  environment: string;
  /** What the step shows: "✓ deployed 12:03 UTC", "soaking in dev: ends 12:18 UTC", "waiting for approval"… */
  where: string;
  /** Deployed there (by the commit or a later one that contains it): the step will not change again. */
  done: boolean;
  /** Waits for an approval: the comment says how to give one. */
  approval: boolean;
}

/** The pipeline line of a commit: each environment of its branch, in the configuration's order. */
export function pipelineLine(steps: readonly PipelineStep[]): string {
  return steps.map((s) => `${code(s.environment)} ${s.where}`).join(" · ");
}

/** Whether the commit is deployed in every environment of its pipeline: its comment is final. */
export function pipelineDone(steps: readonly PipelineStep[]): boolean {
  return steps.length > 0 && steps.every((s) => s.done);
}

/**
 * The merged pull request's one pipeline comment, edited as its commit moves: where the commit is
 * in each environment, and how to approve where a deploy waits for one.
 */
export function pipelineComment(sha: string, steps: readonly PipelineStep[]): string {
  const approvals = steps.filter((s) => s.approval).map((s) => code(`/approve ${s.environment}`));
  return [
    PIPELINE_MARKER,
    `**Pipeline of \`${shortSha(sha)}\`:** ${pipelineLine(steps)}`,
    ...(approvals.length > 0
      ? ["", `Approve with the **Approve** button on the deploy check run, or comment ${approvals.join(" or ")}.`]
      : []),
    ...(pipelineDone(steps) ? ["", `✅ Deployed to every environment: ${steps.map((s) => escapeInline(s.environment)).join(", ")}.`] : []),
  ].join("\n");
}
