import { createHash } from "node:crypto";
import { z } from "zod";
import { commitShaSchema, deployReasonSchema, repositoryRefSchema } from "./deploy-requests.ts";
import type { KubeObject } from "./manifest.ts";
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
  sha,
  reason: deployReasonSchema,
  requestedBy: z.string().min(1),
  createdAt: z.iso.datetime(),
  /** Settings of the environment from the reviewed configuration (the default branch's head). */
  settings: z.strictObject({ namespace: z.string(), prune: z.boolean(), allowEmpty: z.boolean() }),
  /** Orders the jobs of one repository environment; the agent refuses one older than the last it accepted. */
  sequence: z.number().int().positive(),
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

/** What happened to one object in a deploy. */
export const objectResultSchema = z.strictObject({
  group: z.string(),
  version: z.string(),
  kind: z.string(),
  namespace: z.string(),
  name: z.string(),
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
  sha,
  phase: z.enum(["started", "progress", "succeeded", "failed", "superseded", "rejected"]),
  message: z.string(),
  applied: z.number().int().nonnegative().optional(),
  total: z.number().int().nonnegative().optional(),
  objects: z.array(objectResultSchema).optional(),
  /** The job that replaced this one, when superseded. */
  supersededBy: z.string().optional(),
  durationMs: z.number().nonnegative().optional(),
  at: z.iso.datetime(),
});
/** A progress report. */
export type AgentReport = z.infer<typeof agentReportSchema>;

/** The digest of a set of objects, independent of key order. */
export function objectsDigest(objects: readonly KubeObject[]): string {
  const hash = createHash("sha256");
  for (const object of objects) hash.update(canonicalJson(object)).update("\n");
  return hash.digest("hex");
}

/** The queue an environment's deploy jobs go to; its prefix's hash tag keeps it in one cluster slot. */
export function agentQueue(environment: string): { name: string; prefix: string } {
  return { name: `deploy-${environment}`, prefix: `{sluice-${environment}}` };
}

/** The queue agents send reports to. */
export const REPORT_QUEUE = { name: "agent-reports", prefix: "{sluice}" } as const;

/** The Redis key that names the newest job of a repository's environment, for newest-wins. */
export function latestJobKey(environment: string, repositoryId: number): string {
  return `{sluice-${environment}}:latest:${repositoryId}`;
}

/** The Redis key of a content-addressed object blob. */
export function blobKey(environment: string, digest: string): string {
  return `{sluice-${environment}}:blob:${digest}`;
}
