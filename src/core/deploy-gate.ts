import { approvalDeadline, approvalsNeeded } from "./approval.ts";
import type { Environment } from "./config.ts";
import type { DeployReason } from "./deploy-requests.ts";
import type { GateFacts, GateState } from "./deploy-phases.ts";
import { describeUntil, freezeAt } from "./freeze.ts";
import { escapeInline } from "./markdown.ts";

/** A deploy as its approval and freeze gates see it. */
export interface GatedDeploy {
  reason: DeployReason;
  /** When it started to wait. */
  since: number;
  approvals: readonly { login: string }[];
  /** A `/sync --override-freeze`. */
  override?: { by: string; reason: string } | undefined;
}

/** What the gates of an environment say of a deploy now. */
export type GateDecision =
  | { kind: "go" }
  | { kind: "wait"; state: Extract<GateState, "approval" | "frozen">; facts: GateFacts; wakeAt?: number }
  | { kind: "end"; state: Extract<GateState, "timedOut">; facts: GateFacts };

/** Whether an environment has gates a deploy may wait at (approval or freeze windows). */
export function hasDeployGates(env: Pick<Environment, "approval" | "freeze">): boolean {
  return env.approval !== undefined || env.freeze.length > 0;
}

/**
 * Decides whether a deploy of `env` goes to the agents now. A rollback always goes (it is how a
 * team gets out of trouble, freeze or not). Approval comes first: a deploy waits until enough
 * permitted people approved it, or fails when the policy's timeout passes; then a freeze holds it
 * until the freeze ends, unless an admin overrode it.
 */
export function decideGate(env: Pick<Environment, "approval" | "freeze">, deploy: GatedDeploy, now: number): GateDecision {
  if (deploy.reason === "rollback") return { kind: "go" };
  const approval = env.approval;
  if (approval && approvalsNeeded(approval, deploy.approvals) > 0) {
    const deadline = approvalDeadline(approval, deploy.since);
    const facts = { approvals: approval.required - approvalsNeeded(approval, deploy.approvals), required: approval.required };
    if (deadline !== undefined && deadline <= now) return { kind: "end", state: "timedOut", facts };
    return { kind: "wait", state: "approval", facts, ...(deadline !== undefined ? { wakeAt: deadline } : {}) };
  }
  const frozen = deploy.override ? undefined : freezeAt(env.freeze, now);
  if (frozen)
    return {
      kind: "wait",
      state: "frozen",
      facts: { until: describeUntil(frozen.until, frozen.timezone, { now }), reason: escapeInline(frozen.reason) },
      wakeAt: frozen.until,
    };
  return { kind: "go" };
}
