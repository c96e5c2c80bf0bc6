import { approvalsNeeded } from "../../core/approval.ts";
import type { Config, Environment } from "../../core/config.ts";
import type { PipelineStep } from "../../core/pipeline-comment.ts";
import { contains, lineIndex, type LineCommit } from "../../core/promotion.ts";
import type { Gate, GateStates } from "./gate-states.ts";

/**
 * Where each commit of a branch is, environment by environment in the configuration's order (the
 * environments the branch deploys to): read once from the gates, then asked per commit.
 */
export async function pipelineSteps(
  gates: GateStates,
  repositoryId: number,
  config: Config,
  branch: string,
  line: LineCommit[],
): Promise<(sha: string) => PipelineStep[]> {
  const envs = config.environments.filter((e) => e.branch === branch && e.autoDeploy);
  const loaded = await Promise.all(envs.map((e) => gates.load(repositoryId, e.name)));
  return (sha) => envs.map((env, i) => stepIn(env, loaded[i], line, sha));
}

/** Where a commit is in one environment: deployed (by it or a later commit), failed, or what it waits for. */
function stepIn(env: Environment, gate: Gate | undefined, line: LineCommit[], sha: string): PipelineStep {
  const step = (where: string, done = false, approval = false): PipelineStep => ({ environment: env.name, where, done, approval });
  if (!gate) return step("");
  const index = lineIndex(line, sha);
  const deployed = gate.events.find((e) => e.kind === "deployed" && contains(line, lineIndex(line, e.sha), index));
  if (deployed) return step(`✓ deployed ${new Date(deployed.at).toISOString().slice(11, 16)} UTC`, true);
  if (gate.events.some((e) => e.kind === "failed" && e.sha === sha)) return step("✗ failed");
  const waiting = gate.waiting.find((w) => w.sha === sha);
  if (waiting) return step(lowerFirst(waiting.title.split("\n")[0] ?? ""));
  const pending = gate.pending;
  if (pending?.request.sha === sha) {
    const approval = env.approval !== undefined && approvalsNeeded(env.approval, pending.approvals) > 0;
    return step(approval ? "waiting for approval" : "waiting for the freeze to end", false, approval);
  }
  return step("deploying");
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}
