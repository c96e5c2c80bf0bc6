import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job, type WorkerOptions } from "bullmq";
import type { Redis } from "ioredis";
import { z } from "zod";
import { agentQueue, latestJobKey, REPORT_QUEUE } from "../../core/agent-protocol.ts";
import { deployJobId, deployRequestSchema, repositoryRefSchema, type DeployRequest } from "../../core/jobs.ts";
import type { Envelope } from "../../core/signing.ts";

/** BullMQ key prefix; the hash tag keeps each queue's keys in one Redis Cluster slot. */
export const QUEUE_PREFIX = "{sluice}";
/** Rendering of pull-request previews, consumed by the app itself. */
export const PREVIEW_QUEUE = "preview-render";
/** Deploy requests from merges and commands, turned into signed agent jobs by the deploy pipeline. */
export const DEPLOY_REQUEST_QUEUE = "deploy-requests";

/** A preview to render: one pull request at one head, numbered so stale ones can be dropped. */
export const previewJobSchema = z.strictObject({
  repository: repositoryRefSchema,
  installationId: z.number().int().positive(),
  pullRequest: z.number().int().positive(),
  baseSha: z.string().regex(/^[0-9a-f]{40}$/),
  headSha: z.string().regex(/^[0-9a-f]{40}$/),
  baseRef: z.string().min(1),
  draft: z.boolean(),
  seq: z.number().int().positive(),
  checkRunId: z.number().int().positive(),
});
/** A preview to render. */
export type PreviewJob = z.infer<typeof previewJobSchema>;

/** The queues the app adds to. This module is the only place that adds jobs. */
export class AppQueues {
  readonly #connection: ConnectionOptions;
  readonly #redis: Redis;
  readonly #preview: Queue;
  readonly #deploy: Queue;
  readonly #agents = new Map<string, Queue>();

  constructor(connection: Redis) {
    this.#connection = connection;
    this.#redis = connection;
    this.#preview = new Queue(PREVIEW_QUEUE, { connection, prefix: QUEUE_PREFIX });
    this.#deploy = new Queue(DEPLOY_REQUEST_QUEUE, { connection, prefix: QUEUE_PREFIX });
  }

  /**
   * Queues a signed job for the agents serving `environment`. Retries with backoff cover
   * transient API and Redis errors; the agent ends permanent failures without retrying.
   */
  async addAgentJob(environment: string, jobId: string, envelope: Envelope): Promise<void> {
    let queue = this.#agents.get(environment);
    if (!queue) {
      const q = agentQueue(environment);
      queue = new Queue(q.name, { connection: this.#connection, prefix: q.prefix });
      this.#agents.set(environment, queue);
    }
    await queue.add("deploy", envelope, { jobId, attempts: 5, backoff: { type: "exponential", delay: 5_000 }, removeOnComplete: { age: 7 * 24 * 3600 }, removeOnFail: { age: 30 * 24 * 3600 } });
  }

  /** Queues a preview render. The id is unique per pull request, head and sequence number. */
  async addPreview(job: PreviewJob): Promise<void> {
    const data = previewJobSchema.parse(job);
    await this.#preview.add("preview", data, {
      jobId: `preview-${data.repository.id}-${data.pullRequest}-${data.headSha}-${data.seq}`,
      attempts: 3,
      backoff: { type: "exponential", delay: 2_000 },
      removeOnComplete: { age: 24 * 3600, count: 1_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
  }

  /**
   * Queues a deploy request. Its id is derived from repository, environment, commit and reason,
   * so the same request twice is one job. Returns false when that job already existed. The
   * request also becomes the environment's newest: an older job that has not started by the
   * time an agent picks it ends as superseded (marked here, in request order, because rendering
   * may finish out of order).
   */
  async addDeployRequest(request: DeployRequest): Promise<boolean> {
    const data = deployRequestSchema.parse(request);
    const jobId = deployJobId(data);
    const existing = await this.#deploy.getJob(jobId);
    if (existing === undefined) await this.#redis.set(latestJobKey(data.environment, data.repository.id), jobId, "EX", 30 * 24 * 3600);
    await this.#deploy.add("deploy", data, { jobId, attempts: 3, backoff: { type: "exponential", delay: 2_000 }, removeOnComplete: { age: 7 * 24 * 3600 }, removeOnFail: { age: 30 * 24 * 3600 } });
    return existing === undefined;
  }

  /** Closes the queue connections. */
  async close(): Promise<void> {
    await Promise.all([this.#preview.close(), this.#deploy.close(), ...[...this.#agents.values()].map((q) => q.close())]);
  }
}

/** Consumes preview jobs with `process`; jobs whose data does not match the schema fail at once. */
export function previewWorker(connection: ConnectionOptions, process: (job: PreviewJob) => Promise<void>, options: Partial<WorkerOptions> = {}): Worker {
  return new Worker(PREVIEW_QUEUE, async (job: Job) => {
    const parsed = previewJobSchema.safeParse(job.data);
    // Malformed data will not get better on retry.
    if (!parsed.success) throw new UnrecoverableError(`preview job ${job.id ?? "?"} is malformed: ${parsed.error.message}`);
    await process(parsed.data);
  }, { connection, prefix: QUEUE_PREFIX, concurrency: 2, ...options });
}

/** Consumes deploy requests: renders the commit and hands a signed job to the agents. */
export function deployRequestWorker(connection: ConnectionOptions, process: (request: DeployRequest) => Promise<void>): Worker {
  return new Worker(DEPLOY_REQUEST_QUEUE, async (job: Job) => {
    const parsed = deployRequestSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`deploy request ${job.id ?? "?"} is malformed: ${parsed.error.message}`);
    await process(parsed.data);
  }, { connection, prefix: QUEUE_PREFIX, concurrency: 2 });
}

/** Consumes the agents' signed reports. */
export function reportWorker(connection: ConnectionOptions, process: (envelope: unknown) => Promise<void>): Worker {
  // Reports of one deploy must be applied in order, so one at a time.
  return new Worker(REPORT_QUEUE.name, async (job: Job) => { await process(job.data); }, { connection, prefix: REPORT_QUEUE.prefix, concurrency: 1 });
}
