import type { Redis } from "ioredis";
import { z } from "zod";
import { deployReasonSchema, repositoryRefSchema } from "../../core/deploy-requests.ts";
import { deployRecordKey } from "../redis-keys.ts";
import type { Logger } from "./logger.ts";
import type { RedisMac } from "./redis-mac.ts";

const RECORD_TTL_SECONDS = 30 * 24 * 3600;

/** What a deploy looks like on GitHub: its check run, Deployment and where it came from. */
export const deployRecordSchema = z.strictObject({
  checkRunId: z.number().int().positive(),
  deploymentId: z.number().int().nonnegative(),
  repository: repositoryRefSchema,
  installationId: z.number().int().positive(),
  environment: z.string(),
  sha: z.string(),
  reason: deployReasonSchema,
  pullRequest: z.number().int().positive().optional(),
  /** Set by the first final report; later reports (a replayed job's refusal) change nothing on GitHub. */
  completed: z.boolean().default(false),
});
/** What a deploy looks like on GitHub. */
export type DeployRecord = z.infer<typeof deployRecordSchema>;

/**
 * Deploy records in Redis, by job id. Redis is not trusted: a record carries a MAC, so a Redis
 * writer cannot point an agent's (signed) report at another repository's check run or Deployment.
 */
export class DeployRecords {
  readonly #redis: Redis;
  readonly #mac: RedisMac;
  readonly #log: Logger;

  constructor(redis: Redis, mac: RedisMac, log: Logger) {
    this.#redis = redis;
    this.#mac = mac;
    this.#log = log;
  }

  /** The record of a deploy, or undefined when there is none or it does not verify. */
  async load(jobId: string): Promise<DeployRecord | undefined> {
    const sealed = await this.#redis.getBuffer(deployRecordKey(jobId));
    if (!sealed) return undefined;
    const data = this.#mac.open(purpose(jobId), sealed);
    const parsed = data ? deployRecordSchema.safeParse(safeJson(data.toString("utf8"))) : undefined;
    if (!parsed?.success) {
      this.#log.warn({ job: jobId }, "deploy record that does not verify ignored");
      return undefined;
    }
    return parsed.data;
  }

  async save(jobId: string, record: DeployRecord): Promise<void> {
    await this.#redis.set(
      deployRecordKey(jobId),
      this.#mac.seal(purpose(jobId), Buffer.from(JSON.stringify(record))),
      "EX",
      RECORD_TTL_SECONDS,
    );
  }
}

/** The MAC binds a record to its job id, so one deploy's record never passes for another's. */
function purpose(jobId: string): string {
  return `deploy-record:${jobId}`;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
