import { gunzipSync } from "node:zlib";
import type { KeyObject } from "node:crypto";
import type { Redis } from "ioredis";
import { agentJobSchema, latestJobKey, objectsDigest, type AgentJob, type AgentReport, type ObjectResult } from "../core/agent-protocol.ts";
import { nextInventory } from "../core/inventory.ts";
import type { KubeObject } from "../core/manifest.ts";
import { namespaceAllowed, policyViolations, type AgentPolicy } from "../core/policy.ts";
import { open, SignatureError } from "../core/signing.ts";
import { Applier, PermanentDeployError, idOf, withOwnership, type Planned } from "./apply.ts";
import { waitForHealth } from "./health-wait.ts";
import type { InventoryStore } from "./inventory-store.ts";
import type { Cluster } from "./kube/cluster.ts";
import { prune } from "./prune.ts";

/** Sends a report (signed by the caller's reporter). */
export type Report = (report: Omit<AgentReport, "version" | "jobId" | "repository" | "installationId" | "environment" | "sha" | "at">) => Promise<void>;

/** A job that must not run: bad signature, wrong digest, not served here, outside policy. */
export class RejectedJobError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RejectedJobError";
  }
}

/** What the deployer needs. */
export interface DeployerDeps {
  redis: Redis;
  cluster: Cluster;
  inventories: InventoryStore;
  appKey: KeyObject;
  policy: AgentPolicy & { environments: readonly string[]; repositories: readonly string[] };
  concurrency: number;
  healthTimeoutMs: number;
  now: () => number;
}

/** Verifies a job envelope: signature, schema, served environment and repository. */
export function verifyJob(envelope: unknown, deps: Pick<DeployerDeps, "appKey" | "policy">): AgentJob {
  let payload: unknown;
  try {
    payload = open("job", envelope, deps.appKey);
  } catch (error) {
    throw new RejectedJobError(error instanceof SignatureError ? error.message : `job cannot be read: ${String(error)}`);
  }
  const parsed = agentJobSchema.safeParse(payload);
  if (!parsed.success) throw new RejectedJobError(`signed job does not match the job schema: ${parsed.error.issues[0]?.message ?? ""}`);
  const job = parsed.data;
  if (!deps.policy.environments.includes(job.environment)) throw new RejectedJobError(`environment ${job.environment} is not served by this agent`);
  const repository = `${job.repository.owner}/${job.repository.name}`;
  if (!namespaceAllowed(repository, deps.policy.repositories)) throw new RejectedJobError(`repository ${repository} is not allowed by this agent`);
  return job;
}

/** Runs verified deploy jobs against the cluster. */
export class Deployer {
  readonly #deps: DeployerDeps;

  constructor(deps: DeployerDeps) {
    this.#deps = deps;
  }

  /** The job's objects, checked against the signed digest. */
  async objects(job: AgentJob): Promise<KubeObject[]> {
    let objects: KubeObject[];
    if ("inline" in job.objects) objects = job.objects.inline;
    else {
      const blob = await this.#deps.redis.getBuffer(job.objects.blob);
      if (!blob) throw new RejectedJobError(`the objects blob ${job.objects.blob} is gone`);
      objects = JSON.parse(gunzipSync(blob).toString("utf8")) as KubeObject[];
    }
    const digest = objectsDigest(objects);
    if (digest !== job.digest) throw new RejectedJobError(`objects digest ${digest} does not match the signed digest ${job.digest}`);
    return objects;
  }

  /** Whether a newer job for the same repository environment was queued since this one. */
  async supersededBy(job: AgentJob): Promise<string | undefined> {
    const latest = await this.#deps.redis.get(latestJobKey(job.environment, job.repository.id));
    return latest && latest !== job.id ? latest : undefined;
  }

  /**
   * Deploys: policy check of every object (nothing written on refusal), preflight dry-run and
   * staged apply, prune, health wait, new inventory and revision. Reports as it goes.
   */
  async deploy(job: AgentJob, objects: KubeObject[], report: Report): Promise<ObjectResult[]> {
    const deps = this.#deps;
    const repository = `${job.repository.owner}/${job.repository.name}`;
    const planned: Planned[] = objects.map((object) => ({ id: idOf(object), object: withOwnership(object, repository, job.environment) }));
    const violations = policyViolations(planned.map((p) => p.id), deps.policy);
    if (violations.length > 0) throw new PermanentDeployError(`refused by the agent's policy; nothing was written:\n${violations.map((v) => `- ${v}`).join("\n")}`);
    await report({ phase: "started", message: `applying ${planned.length} objects`, applied: 0, total: planned.length });
    const previous = await deps.inventories.read(repository, job.environment);
    const applier = new Applier(deps.cluster);
    const results = await applier.apply(planned, {
      concurrency: deps.concurrency,
      now: deps.now,
      progress: (applied, total, note) => report({ phase: "progress", message: `${applied} of ${total} applied; ${note}`, applied, total }),
    });
    const pruned = await prune(deps.cluster, previous?.objects ?? [], planned.map((p) => p.id), {
      repository,
      environment: job.environment,
      enabled: job.settings.prune,
      allowEmpty: job.settings.allowEmpty,
      now: deps.now,
    });
    await waitForHealth(deps.cluster, planned, results, {
      timeoutMs: deps.healthTimeoutMs,
      concurrency: deps.concurrency,
      waiting: (note) => report({ phase: "progress", message: `${planned.length} of ${planned.length} applied; ${note}`, applied: planned.length, total: planned.length }),
    });
    await deps.inventories.write(nextInventory(previous, { repository, environment: job.environment, objects: planned.map((p) => p.id) }, { sha: job.sha, jobId: job.id, digest: job.digest, appliedAt: new Date(deps.now()).toISOString() }));
    return [...results, ...pruned];
  }
}
