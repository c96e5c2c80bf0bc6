import { z } from "zod";
import { clusterNameSchema } from "./fleet.ts";
import { commitShaSchema, repositoryRefSchema, type RepositoryRef } from "./git-ref.ts";

/** Why a deploy happens. */
export const deployReasonSchema = z.enum(["merge", "sync", "rollback"]);
/** Why a deploy happens. */
export type DeployReason = z.infer<typeof deployReasonSchema>;

const sha = commitShaSchema;

/**
 * Why the app converges an environment to its branch's head: the agent came online (`started`) or
 * reported in its periodic status (`running`) the revision it has applied (none in an empty
 * cluster), which is not the head of `branch`.
 */
export const convergenceSchema = z.strictObject({
  event: z.enum(["started", "running"]),
  branch: z.string().min(1),
  applied: sha.optional(),
});
/** Why the app converges an environment to its branch's head. */
export type Convergence = z.infer<typeof convergenceSchema>;

/**
 * A request to deploy one environment of one repository at one commit, made by a merge, a
 * `/sync` or a `/rollback`. The app turns it into a signed agent job once the commit is rendered.
 */
export const deployRequestSchema = z.strictObject({
  version: z.literal(1),
  repository: repositoryRefSchema,
  installationId: z.number().int().positive(),
  environment: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/),
  sha,
  reason: deployReasonSchema,
  requestedBy: z.string().min(1),
  /** ISO 8601 time the request was made. */
  createdAt: z.iso.datetime(),
  /** The pull request the request came from, when there is one. */
  pullRequest: z.number().int().positive().optional(),
  /**
   * What asked: `push` for a merge (redelivering the push asks again for the same deploy), or
   * `comment-<id>` for a command, or `action-<delivery>` for a check-run button, so every `/sync`
   * and `/rollback` is a request of its own, or `converge-<ms>` when the app itself deploys a
   * branch head an agent is behind (one request per attempt), or `promotion` when the commit
   * passed its upstream environment's soak (one request per environment and commit).
   */
  trigger: z
    .string()
    .regex(
      /^(push|promotion|comment-\d+|action-[0-9a-f-]{8,64}|converge-\d+)$/,
      "must be push, promotion, comment-<id>, action-<delivery id> or converge-<time in ms>",
    ),
  /** Why the app itself asked for this deploy: an agent's status showed the environment behind the tracked branch. */
  convergence: convergenceSchema.optional(),
  /** The check run the command already created, so its reply could link it. */
  checkRunId: z.number().int().positive().optional(),
  /** For a rollback: the commit that was live when it was asked for. */
  from: sha.optional(),
  /** A `/sync --override-freeze`: the deploy applies through a freeze; who asked and why are recorded. */
  overrideFreeze: z.strictObject({ by: z.string().min(1), reason: z.string().min(1).max(200) }).optional(),
  /** A `/sync --cluster`: only this cluster of the environment's fleet is deployed. */
  cluster: clusterNameSchema.optional(),
  /**
   * Orders the deploys of one repository environment: it only grows (at least the request time in
   * milliseconds), and the agent refuses a job older than the last it accepted.
   */
  sequence: z.number().int().positive(),
});
/** A request to deploy one environment at one commit. */
export type DeployRequest = z.infer<typeof deployRequestSchema>;

/**
 * A BullMQ job id for a deploy request: derived from repository, environment, commit, reason and
 * trigger, so a redelivered webhook maps to the same job while each command is a job of its own.
 * BullMQ forbids `:` in custom ids and ids that are integers; this id has neither.
 */
export function deployJobId(request: Pick<DeployRequest, "repository" | "environment" | "sha" | "reason" | "trigger">): string {
  const base = `${request.reason}-${request.repository.id}-${request.environment}-${request.sha}`;
  return request.trigger === "push" ? base : `${base}-${request.trigger}`;
}

/** What makes a deploy request; the rest (version, time) is filled in by {@link deployRequest}. */
export interface DeployRequestFields {
  repository: RepositoryRef;
  installationId: number;
  environment: string;
  sha: string;
  reason: DeployReason;
  requestedBy: string;
  trigger: DeployRequest["trigger"];
  pullRequest?: number;
  checkRunId?: number;
  from?: string;
  convergence?: Convergence;
  overrideFreeze?: { by: string; reason: string };
  cluster?: string;
}

/**
 * The one way a deploy request is made, by a push, a command or the app's convergence. The
 * sequence is added when it is queued.
 */
export function deployRequest(fields: DeployRequestFields, now: number): Omit<DeployRequest, "sequence"> {
  return { version: 1, ...fields, createdAt: new Date(now).toISOString() };
}
