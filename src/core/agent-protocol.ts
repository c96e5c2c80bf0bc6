import { createHash } from "node:crypto";
import { z } from "zod";
import { deployJobId, deployReasonSchema, type DeployRequest } from "./deploy-requests.ts";
import { commitShaSchema, repositoryRefSchema } from "./git-ref.ts";
import { driftIgnoreSchema, type Environment } from "./config.ts";
import { clusterField, clusterNameSchema } from "./fleet.ts";
import { DEPLOY_PHASE_NAMES } from "./deploy-phases.ts";
import { holdSchema, revisionSchema } from "./inventory.ts";
import type { KubeObject } from "./manifest.ts";
import { resourceIdShape } from "./identity.ts";
import { canonicalJson } from "./normalize.ts";

const sha = commitShaSchema;

/** A deploy job as the agent receives it (inside a signed envelope). */
export const agentJobSchema = z.strictObject({
  version: z.literal(1),
  /** The BullMQ job id, derived from repository, environment, commit and reason. */
  id: z.string().min(1),
  repository: repositoryRefSchema,
  installationId: z.number().int().positive(),
  environment: z.string().min(1),
  /** The one cluster of a fleet this job is for; an agent of another cluster (or of none) refuses it. */
  cluster: clusterNameSchema.optional(),
  sha,
  reason: deployReasonSchema,
  requestedBy: z.string().min(1),
  createdAt: z.iso.datetime(),
  /** Settings of the environment from the reviewed configuration (the default branch's head). */
  settings: z.strictObject({
    namespace: z.string(),
    prune: z.boolean(),
    allowEmpty: z.boolean(),
    /** Re-apply drifted objects. */
    selfHeal: z.boolean().default(false),
    /** Differences that are not drift. */
    driftIgnore: z.array(driftIgnoreSchema).default([]),
  }),
  /** Orders the jobs of one repository environment; the agent refuses one older than the last it accepted. */
  sequence: z.number().int().positive(),
  /**
   * What the job does to a hold on the environment: a rollback sets one, a sync (or the merge of
   * the revert pull request) releases it, and anything else is not applied while one is set.
   */
  hold: z.enum(["keep", "set", "release"]).default("keep"),
  /** When the app signed the job. */
  signedAt: z.iso.datetime(),
  /** After this the job is refused: a signed job must not stay valid forever. */
  expiresAt: z.iso.datetime(),
  /** SHA-256 of the canonical JSON of the objects. */
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  /** The objects inline, or the Redis key of their gzipped, content-addressed blob. */
  objects: z.union([z.strictObject({ inline: z.array(z.record(z.string(), z.unknown())) }), z.strictObject({ blob: z.string().min(1) })]),
});
/** A deploy job. */
export type AgentJob = z.infer<typeof agentJobSchema>;

/** The agent job for a request (for one cluster of a fleet, `time.cluster`), signed at `signedAt` and valid for `ttlMs`. */
export function agentJob(
  request: DeployRequest,
  env: Environment,
  payload: { digest: string; objects: AgentJob["objects"] },
  time: { signedAt: number; ttlMs: number; hold: AgentJob["hold"]; cluster?: string | undefined },
): AgentJob {
  return {
    version: 1,
    id: deployJobId(request),
    repository: request.repository,
    installationId: request.installationId,
    environment: env.name,
    ...clusterField(time.cluster),
    sha: request.sha,
    reason: request.reason,
    requestedBy: request.requestedBy,
    createdAt: request.createdAt,
    settings: {
      namespace: env.namespace,
      prune: env.prune,
      allowEmpty: env.allowEmpty,
      selfHeal: env.selfHeal,
      driftIgnore: env.drift.ignore,
    },
    sequence: request.sequence,
    hold: time.hold,
    signedAt: new Date(time.signedAt).toISOString(),
    expiresAt: new Date(time.signedAt + time.ttlMs).toISOString(),
    digest: payload.digest,
    objects: payload.objects,
  };
}

/** Objects inline, or the Redis key of their gzipped, content-addressed blob. */
export type ObjectsPayload = AgentJob["objects"];

/**
 * A live-preview request (inside a signed envelope of its own kind, so it can never be replayed
 * as a deploy): the agent dry-runs a pull request's rendered objects against the live cluster and
 * writes nothing.
 */
export const livePreviewRequestSchema = z.strictObject({
  version: z.literal(1),
  id: z.string().min(1),
  repository: repositoryRefSchema,
  installationId: z.number().int().positive(),
  environment: z.string().min(1),
  /** The one cluster of a fleet whose agent is asked; an agent of another cluster (or of none) refuses it. */
  cluster: clusterNameSchema.optional(),
  pullRequest: z.number().int().positive(),
  headSha: sha,
  /** The preview this answers: a newer one makes the answer moot. */
  seq: z.number().int().positive(),
  settings: z.strictObject({ namespace: z.string(), prune: z.boolean() }),
  signedAt: z.iso.datetime(),
  expiresAt: z.iso.datetime(),
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  objects: agentJobSchema.shape.objects,
});
/** A live-preview request. */
export type LivePreviewRequest = z.infer<typeof livePreviewRequestSchema>;

const objectIdShape = resourceIdShape;

/** What merging would do to one object in the live cluster, as the agent's dry-run says. */
export const liveChangeSchema = z.strictObject({
  ...objectIdShape,
  /** create or configure: applying changes it; refused: the API server (admission) or the agent's policy would not take it. */
  action: z.enum(["create", "configure", "refused"]),
  /** Unified diff of live → applied, normalized as the git diff is, Secret values masked by the agent. */
  diff: z.string().optional(),
  /** Who refused and why. */
  refusedBy: z.enum(["api-server", "policy"]).optional(),
  message: z.string().optional(),
});
/** One object's live change. */
export type LiveChange = z.infer<typeof liveChangeSchema>;

/** An agent's answer to a live-preview request (inside a signed envelope of kind `live`). */
export const liveReportSchema = z.strictObject({
  version: z.literal(1),
  requestId: z.string().min(1),
  repository: repositoryRefSchema,
  installationId: z.number().int().positive(),
  environment: z.string(),
  /** The cluster of a fleet whose agent answers (the request's). */
  cluster: clusterNameSchema.optional(),
  pullRequest: z.number().int().positive(),
  headSha: sha,
  seq: z.number().int().positive(),
  /** Objects that applying would change or that would be refused; unchanged ones are only counted. */
  changes: z.array(liveChangeSchema),
  unchanged: z.number().int().nonnegative(),
  /** Objects the last deploy applied that merging would prune. */
  prune: z.array(z.strictObject(objectIdShape)),
  /** The request could not be answered at all (refused by the agent, or the cluster failed). */
  error: z.string().optional(),
  at: z.iso.datetime(),
});
/** An agent's live-preview answer. */
export type LiveReport = z.infer<typeof liveReportSchema>;

/** What happened to one object in a deploy. */
export const objectResultSchema = z.strictObject({
  ...objectIdShape,
  action: z.enum(["created", "configured", "unchanged", "pruned", "skipped", "failed"]),
  health: z.enum(["current", "in-progress", "failed", "unknown"]),
  message: z.string().optional(),
  durationMs: z.number().nonnegative(),
});
/** What happened to one object in a deploy. */
export type ObjectResult = z.infer<typeof objectResultSchema>;

/** A progress report from an agent (inside a signed envelope). */
export const agentReportSchema = z.strictObject({
  version: z.literal(1),
  jobId: z.string().min(1),
  repository: repositoryRefSchema,
  installationId: z.number().int().positive(),
  environment: z.string(),
  /** The cluster of a fleet whose agent reports (the job's). */
  cluster: clusterNameSchema.optional(),
  sha,
  /** One of the rows of `DEPLOY_PHASES`. */
  phase: z.enum(DEPLOY_PHASE_NAMES),
  message: z.string(),
  applied: z.number().int().nonnegative().optional(),
  total: z.number().int().nonnegative().optional(),
  objects: z.array(objectResultSchema).optional(),
  /** The job that replaced this one, when superseded. */
  supersededBy: z.string().optional(),
  durationMs: z.number().nonnegative().optional(),
  /** The environment's history after a final phase, from the cluster's record: what `/rollback` may choose from. */
  history: z.strictObject({ revisions: z.array(revisionSchema), hold: holdSchema.optional() }).optional(),
  at: z.iso.datetime(),
});
/** An environment's revisions and hold, as the agent's record has them. */
export type History = NonNullable<AgentReport["history"]>;
/** A progress report. */
export type AgentReport = z.infer<typeof agentReportSchema>;

/** The digest of a set of objects, independent of key order. */
export function objectsDigest(objects: readonly KubeObject[]): string {
  const hash = createHash("sha256");
  for (const object of objects) hash.update(canonicalJson(object)).update("\n");
  return hash.digest("hex");
}

/**
 * The queue an environment's deploy jobs go to; its prefix's hash tag keeps it in one Redis
 * Cluster slot. This and the keys below take a target (`core/fleet.ts`'s `targetName`): the
 * environment's name, or `<environment>@<cluster>` for one cluster of a fleet, whose agents keep
 * apart from the other clusters'.
 */
export function agentQueue(target: string): { name: string; prefix: string } {
  return { name: `deploy-${target}`, prefix: `{sluice-${target}}` };
}

/** The live-preview requests of one environment, for its agents. */
export function livePreviewQueue(target: string): { name: string; prefix: string } {
  return { name: `live-preview-${target}`, prefix: `{sluice-${target}}` };
}

/**
 * Set (with a short expiry) by a running agent of an environment. Only a hint, since Redis is not
 * trusted: it decides whether the app waits for a live preview, never what anything does.
 */
export function agentHeartbeatKey(target: string): string {
  return `{sluice-${target}}:agent-alive`;
}

/**
 * The signed job an agent last applied for a repository environment, kept by the agent for drift
 * checks. Redis is not trusted: the agent checks the app's signature and its own inventory's
 * digest before it believes it.
 */
export function appliedJobKey(target: string, repositoryId: number): string {
  return `{sluice-${target}}:applied:${repositoryId}`;
}

/** The repositories an environment's agents have applied (a hint: each is verified as above). */
export function appliedSetKey(target: string): string {
  return `{sluice-${target}}:applied`;
}

/** How an object differs from what Sluice last applied. */
export const driftedObjectSchema = z.strictObject({
  ...objectIdShape,
  /** modified: the live object no longer matches; missing: it is gone. */
  action: z.enum(["modified", "missing"]),
  /** Unified diff of applied → live, Secret values masked by the agent. */
  diff: z.string().optional(),
  /** Why it cannot be compared: the API server refuses to apply it again as it is now. */
  message: z.string().optional(),
});
/** One drifted object. */
export type DriftedObject = z.infer<typeof driftedObjectSchema>;

/** An agent's drift check of one repository environment (inside a signed envelope of kind `drift`). */
export const driftReportSchema = z.strictObject({
  version: z.literal(1),
  repository: repositoryRefSchema,
  installationId: z.number().int().positive(),
  environment: z.string(),
  /** The cluster of a fleet whose agent checked. */
  cluster: clusterNameSchema.optional(),
  /** The commit last applied, which the drift is measured against. */
  sha,
  jobId: z.string().min(1),
  checked: z.number().int().nonnegative(),
  drifted: z.array(driftedObjectSchema),
  /** Objects self-heal applied again in this check. */
  healed: z.array(z.strictObject(objectIdShape)),
  /** Objects self-heal stopped healing, because something keeps changing them back. */
  gaveUp: z.array(z.strictObject(objectIdShape)),
  /** Objects whose live status is not current (kstatus: still converging, or failed), with why: a wave of a fleet bakes healthy. */
  unhealthy: z
    .array(z.strictObject({ ...objectIdShape, health: z.enum(["in-progress", "failed"]), message: z.string().max(1_000) }))
    .optional(),
  at: z.iso.datetime(),
});
/** A drift report. */
export type DriftReport = z.infer<typeof driftReportSchema>;

/** What an agent's inventory records of one repository in an environment: its newest revision and whether it is held. */
export const appliedRevisionSchema = z.strictObject({
  /** By numeric id, and `owner/name` as it was at the last deploy (for logs and for finding the repository after a Redis flush). */
  repository: z.strictObject({ id: z.number().int().positive(), fullName: z.string().regex(/^[^/\s]+\/[^/\s]+$/) }),
  sha,
  jobId: z.string().min(1),
  /** A rollback holds the environment: the app never converges it to the branch's head then. */
  held: z.boolean(),
});
/** One repository's newest revision in an environment, as the agent's inventory records it. */
export type AppliedRevision = z.infer<typeof appliedRevisionSchema>;

/**
 * An agent's status for one environment (inside a signed envelope of kind `status`), sent when it
 * starts and then every few minutes: it is online, and this is what its inventories (in the
 * cluster, not Redis) say it has applied. The app compares it with the tracked branches' heads
 * and queues a deploy of a head the environment is behind, so a new cluster, an agent that was
 * down longer than a job's lifetime, or a queue that Redis lost converges to Git without a merge.
 */
export const agentStatusSchema = z.strictObject({
  version: z.literal(1),
  environment: z.string().min(1),
  /** The cluster the agent serves the environment on, when it names one: the app learns a fleet's clusters from it. */
  cluster: clusterNameSchema.optional(),
  /** `started`: the agent just came online; `running`: the periodic status. */
  event: z.enum(["started", "running"]),
  /** One entry per repository the environment's inventories name (none in an empty cluster). */
  repositories: z.array(appliedRevisionSchema).max(1_000),
  at: z.iso.datetime(),
});
/** An agent's status for one environment. */
export type AgentStatus = z.infer<typeof agentStatusSchema>;

/** How often a running agent sends its status (jittered by a tenth either way). */
export const STATUS_INTERVAL_MS = 5 * 60 * 1000;

/** The queue agents send reports (deploy reports, live-preview answers, drift reports, statuses) to. */
export const REPORT_QUEUE = { name: "agent-reports", prefix: "{sluice}" } as const;

/** The Redis key that names the newest job of a repository's environment, for newest-wins. */
export function latestJobKey(target: string, repositoryId: number): string {
  return `{sluice-${target}}:latest:${repositoryId}`;
}

/** The Redis key of a content-addressed object blob: in the environment's own hash tag, read by the agents of each of its clusters. */
export function blobKey(environment: string, digest: string): string {
  return `{sluice-${environment}}:blob:${digest}`;
}
