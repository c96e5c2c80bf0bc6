import { randomUUID } from "node:crypto";
import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job, type WorkerOptions } from "bullmq";
import type { RedisClient } from "../../redis/connection.ts";
import { z } from "zod";
import { agentQueue, latestJobKey, livePreviewQueue, REPORT_QUEUE } from "../../core/agent-protocol.ts";
import { deployJobId, deployRequestSchema, type DeployRequest } from "../../core/deploy-requests.ts";
import { commitShaSchema, repositoryRefSchema } from "../../core/git-ref.ts";
import { canonicalJson } from "../../core/normalize.ts";
import { QUEUE_PREFIX, sequenceKey } from "../state/redis-keys.ts";
import type { RedisMac } from "../state/redis-mac.ts";
import type { Envelope } from "../../core/signing.ts";

/** Rendering of pull-request previews, consumed by the app itself. */
export const PREVIEW_QUEUE = "preview-render";
/** Deploy requests from merges and commands, turned into signed agent jobs by the deploy pipeline. */
export const DEPLOY_REQUEST_QUEUE = "deploy-requests";
/** Delayed checks that end the wait for a live preview nobody answered. */
export const LIVE_TIMEOUT_QUEUE = "live-preview-timeouts";

/** Promotion checks of a repository: at once after what may move a commit on, or delayed to a soak's or freeze's end. */
export const PROMOTION_QUEUE = "promotions";

/** Checks of a rollout over an environment's clusters: at a bake's end, or when a wave's clusters should have answered. */
export const ROLLOUT_QUEUE = "rollout-checks";

/** Writes the drift check run of a fleet's commit, a moment after a cluster's report. */
export const FLEET_DRIFT_QUEUE = "fleet-drift";

/** A fleet drift write: which environment's commit. */
export const fleetDriftWriteSchema = z.strictObject({
  repositoryId: z.number().int().positive(),
  environment: z.string().min(1),
  sha: z.string().regex(/^[0-9a-f]{40}$/),
});
/** A fleet drift write. */
export type FleetDriftWrite = z.infer<typeof fleetDriftWriteSchema>;

/** A rollout check: which deploy. */
export const rolloutCheckSchema = z.strictObject({ jobId: z.string().min(1) });
/** A rollout check. */
export type RolloutCheck = z.infer<typeof rolloutCheckSchema>;

/** A promotion check: which repository, through which installation. */
export const promotionCheckSchema = z.strictObject({
  repository: repositoryRefSchema,
  installationId: z.number().int().positive(),
});
/** A promotion check. */
export type PromotionCheck = z.infer<typeof promotionCheckSchema>;

/**
 * The end of a live preview's wait: which preview. With `write`, not an end: the live answers
 * folded into the preview since its last write are written, a moment after the first of them.
 */
export const liveTimeoutSchema = z.strictObject({
  repositoryId: z.number().int().positive(),
  pullRequest: z.number().int().positive(),
  seq: z.number().int().positive(),
  seconds: z.number().int().positive(),
  write: z.literal(true).optional(),
});
/** The end of a live preview's wait. */
export type LiveTimeout = z.infer<typeof liveTimeoutSchema>;

/** A preview to render: one pull request at one head, numbered so stale ones can be dropped. */
export const previewJobSchema = z.strictObject({
  repository: repositoryRefSchema,
  installationId: z.number().int().positive(),
  pullRequest: z.number().int().positive(),
  baseSha: commitShaSchema,
  headSha: commitShaSchema,
  baseRef: z.string().min(1),
  draft: z.boolean(),
  /** Who opened the pull request, and whether it comes from a fork: live previews depend on both. */
  author: z.string(),
  fromFork: z.boolean(),
  seq: z.number().int().positive(),
  checkRunId: z.number().int().positive(),
});
/** A preview to render. */
export type PreviewJob = z.infer<typeof previewJobSchema>;

/** A request as it waits in Redis: the request and its MAC. */
const queuedSchema = z.strictObject({ request: z.unknown(), mac: z.string().regex(/^[A-Za-z0-9_-]{43}$/) });
/** Brings a repository's pipeline comments (one per merged pull request whose commit is being promoted) up to date. */
export const PIPELINE_COMMENT_QUEUE = "pipeline-comments";
/** Requests older than this are dropped unread: nothing legitimate waits a day. */
const MAX_REQUEST_AGE_MS = 24 * 3600 * 1000;

/**
 * Wraps a request for a queue with its MAC: whoever can write to Redis cannot choose what the
 * app renders, comments or signs.
 */
function sealed(mac: RedisMac, queue: string, request: object): { request: object; mac: string } {
  return { request, mac: mac.sign(queue, canonicalJson(request as Record<string, unknown>)) };
}

/**
 * Reads a queued request: only one this app queued (its MAC verifies) and well-formed is returned.
 * @throws UnrecoverableError saying why anything else is refused; retrying cannot help
 */
function openQueued<T>(data: unknown, mac: RedisMac, queue: string, schema: z.ZodType<T>): T {
  const queued = queuedSchema.safeParse(data);
  if (!queued.success) throw new UnrecoverableError(`${queue} job refused: it is not a request queued by Sluice (no MAC)`);
  const parsed = schema.safeParse(queued.data.request);
  if (!parsed.success) throw new UnrecoverableError(`${queue} job refused: malformed: ${parsed.error.issues[0]?.message ?? ""}`);
  if (!mac.verify(queue, canonicalJson(parsed.data as Record<string, unknown>), queued.data.mac))
    throw new UnrecoverableError(`${queue} job refused: its MAC does not verify; it was not queued by this app`);
  return parsed.data;
}

// Raises a repository environment's sequence to at least the clock, then by one: it grows across
// replicas, and after a Redis flush it starts again above everything signed before.
const NEXT_SEQUENCE = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
local next = current + 1
if next < floor then next = floor end
redis.call('SET', KEYS[1], next, 'EX', ARGV[2])
return next`;

/** What the app's queues need besides Redis. */
export interface AppQueueOptions {
  /** Authenticates what is queued. */
  mac: RedisMac;
  now?: () => number;
}

/** The queues the app adds to. This module is the only place that adds jobs. */
export class AppQueues {
  readonly #connection: ConnectionOptions;
  readonly #redis: RedisClient;
  readonly #preview: Queue;
  readonly #deploy: Queue;
  readonly #agents = new Map<string, Queue>();
  readonly #mac: RedisMac;
  readonly #now: () => number;
  readonly #livePreviews = new Map<string, Queue>();
  readonly #liveTimeouts: Queue;
  readonly #reports: Queue;
  readonly #promotions: Queue;
  readonly #pipelineComments: Queue;
  readonly #rollouts: Queue;
  readonly #fleetDrift: Queue;

  constructor(connection: RedisClient, options: AppQueueOptions) {
    this.#connection = connection;
    this.#redis = connection;
    this.#mac = options.mac;
    this.#now = options.now ?? Date.now;
    this.#preview = new Queue(PREVIEW_QUEUE, { connection, prefix: QUEUE_PREFIX });
    this.#deploy = new Queue(DEPLOY_REQUEST_QUEUE, { connection, prefix: QUEUE_PREFIX });
    this.#liveTimeouts = new Queue(LIVE_TIMEOUT_QUEUE, { connection, prefix: QUEUE_PREFIX });
    this.#reports = new Queue(REPORT_QUEUE.name, { connection, prefix: REPORT_QUEUE.prefix });
    this.#promotions = new Queue(PROMOTION_QUEUE, { connection, prefix: QUEUE_PREFIX });
    this.#pipelineComments = new Queue(PIPELINE_COMMENT_QUEUE, { connection, prefix: QUEUE_PREFIX });
    this.#rollouts = new Queue(ROLLOUT_QUEUE, { connection, prefix: QUEUE_PREFIX });
    this.#fleetDrift = new Queue(FLEET_DRIFT_QUEUE, { connection, prefix: QUEUE_PREFIX });
  }

  /** How many jobs wait, run, are delayed or failed in each queue the app uses (agents' queues once it has added to them). */
  async depths(): Promise<{ queue: string; counts: Record<string, number> }[]> {
    return Promise.all(
      this.#all().map(async (queue) => ({ queue: queue.name, counts: await queue.getJobCounts("waiting", "active", "delayed", "failed") })),
    );
  }

  #all(): Queue[] {
    return [
      this.#preview,
      this.#deploy,
      this.#liveTimeouts,
      this.#reports,
      this.#promotions,
      this.#pipelineComments,
      this.#rollouts,
      this.#fleetDrift,
      ...this.#agents.values(),
      ...this.#livePreviews.values(),
    ];
  }

  /**
   * Queues a promotion check of a repository at `at` (ms; now or later). One check per repository
   * and moment: a soak's end asked for by two replicas, or twice, is one job, kept in Redis across
   * app restarts.
   */
  async addPromotionCheck(check: PromotionCheck, at: number): Promise<void> {
    const data = promotionCheckSchema.parse(check);
    await this.#addAt(this.#promotions, "promotion", data, `promotion-${data.repository.id}-${at}`, at);
  }

  /** Queues a check of a rollout at `at` (ms): one per deploy and moment, however many replicas ask. */
  async addRolloutCheck(check: RolloutCheck, at: number): Promise<void> {
    const data = rolloutCheckSchema.parse(check);
    await this.#addAt(this.#rollouts, "rollout", data, `rollout-${data.jobId}-${at}`, at);
  }

  /**
   * Asks for a fleet commit's drift check run to be written at `at` (ms): asks for the same commit
   * and moment, from any replica, are one job, so reports that come together are one write.
   */
  async addFleetDriftWrite(commit: FleetDriftWrite, at: number): Promise<void> {
    const data = fleetDriftWriteSchema.parse(commit);
    await this.#addAt(this.#fleetDrift, "fleet-drift", data, `fleet-drift-${data.repositoryId}-${data.environment}-${data.sha}-${at}`, at);
  }

  /**
   * Adds a sealed job to run at `at` (ms; now or later) under `jobId`: asks for the same id are one
   * job, kept in Redis across restarts, tried again with backoff.
   */
  async #addAt(queue: Queue, name: string, data: object, jobId: string, at: number): Promise<void> {
    await queue.add(name, sealed(this.#mac, queue.name, data), {
      jobId,
      delay: Math.max(0, at - this.#now()),
      attempts: 5,
      backoff: { type: "exponential", delay: 2_000 },
      removeOnComplete: { age: 3600 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
  }

  /**
   * Asks for a repository's pipeline comments to be brought up to date. Each ask is a job of its
   * own (they run one at a time per repository, each from the newest state), so an ask that comes
   * while one runs is never lost to it.
   */
  async addPipelineComments(check: PromotionCheck, delayMs = 0): Promise<void> {
    const data = promotionCheckSchema.parse(check);
    await this.#pipelineComments.add("pipeline-comments", sealed(this.#mac, PIPELINE_COMMENT_QUEUE, data), {
      delay: delayMs,
      attempts: 5,
      backoff: { type: "exponential", delay: 2_000 },
      removeOnComplete: { age: 3600, count: 1_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
  }

  /** Queues a signed live-preview request for the agents serving `environment`; it is worth nothing once the preview is old. */
  async addLivePreview(environment: string, requestId: string, envelope: Envelope): Promise<void> {
    let queue = this.#livePreviews.get(environment);
    if (!queue) {
      const q = livePreviewQueue(environment);
      queue = new Queue(q.name, { connection: this.#connection, prefix: q.prefix });
      this.#livePreviews.set(environment, queue);
    }
    await queue.add("live-preview", envelope, {
      jobId: requestId,
      attempts: 3,
      backoff: { type: "exponential", delay: 1_000 },
      removeOnComplete: { age: 3600 },
      removeOnFail: { age: 24 * 3600 },
    });
  }

  /** Queues the check that ends a live preview's wait after `delayMs`. */
  async addLiveTimeout(timeout: LiveTimeout, delayMs: number): Promise<void> {
    const data = liveTimeoutSchema.parse(timeout);
    // The end is one job per preview; each asked-for write is one of its own.
    const at = data.write ? `write-${randomUUID()}` : "end";
    await this.#liveTimeouts.add("live-timeout", sealed(this.#mac, LIVE_TIMEOUT_QUEUE, data), {
      jobId: `live-timeout-${data.repositoryId}-${data.pullRequest}-${data.seq}-${at}`,
      delay: delayMs,
      attempts: 5,
      backoff: { type: "exponential", delay: 2_000 },
      removeOnComplete: { age: 3600 },
      removeOnFail: { age: 24 * 3600 },
    });
  }

  /**
   * Queues a signed job for the agents serving `target` (an environment, or one cluster of a
   * fleet's: `core/fleet.ts`'s `targetName`). Retries with backoff cover
   * transient API and Redis errors; the agent ends permanent failures without retrying.
   */
  async addAgentJob(target: string, jobId: string, envelope: Envelope): Promise<void> {
    await this.#agentQueue(target).add("deploy", envelope, {
      jobId,
      attempts: 5,
      backoff: { type: "exponential", delay: 5_000 },
      removeOnComplete: { age: 7 * 24 * 3600 },
      removeOnFail: { age: 30 * 24 * 3600 },
    });
  }

  /** The queue of `target`'s deploy jobs, opened once. */
  #agentQueue(target: string): Queue {
    let queue = this.#agents.get(target);
    if (!queue) {
      const q = agentQueue(target);
      queue = new Queue(q.name, { connection: this.#connection, prefix: q.prefix });
      this.#agents.set(target, queue);
    }
    return queue;
  }

  /**
   * Queues a job signed again in place of the one of the same id still waiting for `target`'s
   * agents (one an agent is applying, or has applied, is left as it is).
   */
  async replaceAgentJob(target: string, jobId: string, envelope: Envelope): Promise<void> {
    const existing = await this.#agentQueue(target).getJob(jobId);
    if (existing) {
      const state = await existing.getState();
      if (state === "active" || state === "completed") return;
      // An agent that took it meanwhile holds its lock: BullMQ refuses the removal, and the agent applies the job it has.
      const removed = await existing.remove().then(
        () => true,
        () => false,
      );
      if (!removed) return;
    }
    await this.addAgentJob(target, jobId, envelope);
  }

  /** Queues a preview render. The id is unique per pull request, head and sequence number. */
  async addPreview(job: PreviewJob): Promise<void> {
    const data = previewJobSchema.parse(job);
    await this.#preview.add("preview", sealed(this.#mac, PREVIEW_QUEUE, data), {
      jobId: `preview-${data.repository.id}-${data.pullRequest}-${data.headSha}-${data.seq}`,
      attempts: 3,
      backoff: { type: "exponential", delay: 2_000 },
      removeOnComplete: { age: 24 * 3600, count: 1_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
  }

  /**
   * Queues a deploy request with the next sequence number of its repository environment and a
   * MAC. Its id is derived from repository, environment, commit, reason and trigger, so the same
   * request twice is one job. Returns false when that job already existed. The request also
   * becomes the environment's newest: an older job that has not started by the time an agent
   * picks it ends as superseded (marked here, in request order, because rendering may finish out
   * of order).
   */
  async addDeployRequest(request: Omit<DeployRequest, "sequence">): Promise<boolean> {
    const jobId = deployJobId(request);
    const existing = await this.#deploy.getJob(jobId);
    if (existing !== undefined) return false;
    const sequence = Number(
      await this.#redis.eval(
        NEXT_SEQUENCE,
        1,
        sequenceKey(request.repository.id, request.environment),
        String(this.#now()),
        String(365 * 24 * 3600),
      ),
    );
    const data = deployRequestSchema.parse({ ...request, sequence });
    // One cluster's `/sync` leaves the environment's rollout under way to its other clusters.
    if (data.cluster === undefined) await this.#redis.set(latestJobKey(data.environment, data.repository.id), jobId, "EX", 30 * 24 * 3600);
    await this.#deploy.add("deploy", sealed(this.#mac, DEPLOY_REQUEST_QUEUE, data), {
      jobId,
      attempts: 3,
      backoff: { type: "exponential", delay: 2_000 },
      removeOnComplete: { age: 7 * 24 * 3600 },
      removeOnFail: { age: 30 * 24 * 3600 },
    });
    return true;
  }

  /** Closes the queue connections. */
  async close(): Promise<void> {
    await Promise.all(this.#all().map((q) => q.close()));
  }
}

/**
 * Consumes preview jobs with `run`; jobs the app did not queue, or malformed ones, fail at once.
 * When the last attempt at a job fails, `giveUp` gets the job (verified, as `run` did) and the
 * error, so its check run does not stay in progress forever.
 */
export function previewWorker(
  connection: ConnectionOptions,
  mac: RedisMac,
  handlers: { run: (job: PreviewJob) => Promise<void>; giveUp: (job: PreviewJob, error: unknown) => Promise<void> },
  options: Partial<WorkerOptions> = {},
): Worker {
  return new Worker(
    PREVIEW_QUEUE,
    async (job: Job) => {
      const preview = openQueued(job.data, mac, PREVIEW_QUEUE, previewJobSchema);
      try {
        await handlers.run(preview);
      } catch (error) {
        if (job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) await handlers.giveUp(preview, error);
        throw error;
      }
    },
    { connection, prefix: QUEUE_PREFIX, concurrency: 2, ...options },
  );
}

/**
 * Reads a queued deploy request: only one this app queued, well-formed, and less than a day old.
 * @throws UnrecoverableError saying why anything else is refused
 */
export function openDeployRequest(data: unknown, mac: RedisMac, now: number): DeployRequest {
  const request = openQueued(data, mac, DEPLOY_REQUEST_QUEUE, deployRequestSchema);
  const age = now - Date.parse(request.createdAt);
  if (age > MAX_REQUEST_AGE_MS)
    throw new UnrecoverableError(
      `${DEPLOY_REQUEST_QUEUE} job refused: it was made ${Math.round(age / 3600_000)} hours ago, over the limit of 24 hours`,
    );
  return request;
}

/** Consumes deploy requests: renders the commit and hands a signed job to the agents. Requests that do not verify fail at once. */
export function deployRequestWorker(
  connection: ConnectionOptions,
  options: { mac: RedisMac; now: () => number },
  process: (request: DeployRequest) => Promise<void>,
): Worker {
  return new Worker(
    DEPLOY_REQUEST_QUEUE,
    async (job: Job) => {
      await process(openDeployRequest(job.data, options.mac, options.now()));
    },
    { connection, prefix: QUEUE_PREFIX, concurrency: 2 },
  );
}

/** A worker of one of the app's MAC'd queues: what the app did not queue, or a malformed entry, fails at once. */
function sealedWorker<T>(
  name: string,
  schema: z.ZodType<T>,
  connection: ConnectionOptions,
  mac: RedisMac,
  process: (data: T) => Promise<void>,
): Worker {
  return new Worker(
    name,
    async (job: Job) => {
      await process(openQueued(job.data, mac, name, schema));
    },
    { connection, prefix: QUEUE_PREFIX, concurrency: 2 },
  );
}

/** Ends the waits of live previews nobody answered. */
export function liveTimeoutWorker(connection: ConnectionOptions, mac: RedisMac, process: (timeout: LiveTimeout) => Promise<void>): Worker {
  return sealedWorker(LIVE_TIMEOUT_QUEUE, liveTimeoutSchema, connection, mac, process);
}

/** Runs promotion checks, two at a time per replica: each takes the repository's lock. */
export function promotionWorker(connection: ConnectionOptions, mac: RedisMac, process: (check: PromotionCheck) => Promise<void>): Worker {
  return sealedWorker(PROMOTION_QUEUE, promotionCheckSchema, connection, mac, process);
}

/** Runs rollout checks: a wave's bake end or timeout, each under its deploy's lock. */
export function rolloutCheckWorker(connection: ConnectionOptions, mac: RedisMac, process: (check: RolloutCheck) => Promise<void>): Worker {
  return sealedWorker(ROLLOUT_QUEUE, rolloutCheckSchema, connection, mac, process);
}

/** Writes fleets' drift check runs, each under its commit's writer lock. */
export function fleetDriftWorker(connection: ConnectionOptions, mac: RedisMac, process: (write: FleetDriftWrite) => Promise<void>): Worker {
  return sealedWorker(FLEET_DRIFT_QUEUE, fleetDriftWriteSchema, connection, mac, process);
}

/** Brings pipeline comments up to date. */
export function pipelineCommentWorker(
  connection: ConnectionOptions,
  mac: RedisMac,
  process: (check: PromotionCheck) => Promise<void>,
): Worker {
  return sealedWorker(PIPELINE_COMMENT_QUEUE, promotionCheckSchema, connection, mac, process);
}

/** Consumes the agents' signed reports. */
export function reportWorker(connection: ConnectionOptions, process: (envelope: unknown) => Promise<void>): Worker {
  // Reports of one deploy must be applied in order, so one at a time.
  return new Worker(
    REPORT_QUEUE.name,
    async (job: Job) => {
      await process(job.data);
    },
    { connection, prefix: REPORT_QUEUE.prefix, concurrency: 1 },
  );
}
