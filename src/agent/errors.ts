import type { ObjectResult } from "../core/agent-protocol.ts";
import type { DeployPhase } from "../core/deploy-phases.ts";

/**
 * The phase of the report a deploy that cannot go on ends with: failed (it was tried), rejected
 * (it was refused unread) or held (a rollback holds the environment). A row of the phase table.
 */
export type DeployEnd = Extract<DeployPhase, "failed" | "rejected" | "held">;

/**
 * Why a deploy ended before succeeding: the one question the worker asks is whether it is
 * permanent (the same job would fail the same way, so it ends now without burning retries) and
 * which objects it is about. Anything that is not a DeployError is taken as transient.
 */
export class DeployError extends Error {
  /** Per-object results known when the deploy ended. */
  readonly objects: ObjectResult[];
  /** Retrying the same job cannot help. */
  readonly permanent: boolean;
  /** What the report says happened. */
  readonly end: DeployEnd;

  constructor(message: string, options: { objects?: ObjectResult[]; permanent?: boolean; end?: DeployEnd; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DeployError";
    this.objects = options.objects ?? [];
    this.permanent = options.permanent ?? true;
    this.end = options.end ?? "failed";
  }
}

/** A deploy that must not be retried: the same input would fail the same way (a dry-run refusal, the policy, prune safety). */
export class PermanentDeployError extends DeployError {
  constructor(message: string, objects: ObjectResult[] = []) {
    super(message, { objects });
    this.name = "PermanentDeployError";
  }
}

/** A job that must not run: bad signature, wrong digest, expired, replayed, not served here. */
export class RejectedJobError extends DeployError {
  constructor(message: string) {
    super(message, { end: "rejected" });
    this.name = "RejectedJobError";
  }
}

/** Health waiting gave up: names every object that was not healthy and why. */
export class HealthTimeoutError extends DeployError {
  constructor(message: string, objects: ObjectResult[]) {
    super(message, { objects });
    this.name = "HealthTimeoutError";
  }
}

/** A job that is not applied while a rollback holds the environment. */
export class HeldJobError extends DeployError {
  constructor(message: string) {
    super(message, { end: "held" });
    this.name = "HeldJobError";
  }
}
