import type { RedisClient } from "../../redis/connection.ts";
import { z } from "zod";
import { agentJobSchema, agentReportSchema } from "../../core/agent-protocol.ts";
import { deployReasonSchema } from "../../core/deploy-requests.ts";
import { DEPLOYMENT_STATES } from "../../core/deploy-phases.ts";
import { commitShaSchema, repositoryRefSchema } from "../../core/git-ref.ts";
import { rolloutSchema } from "../../core/fleet.ts";
import { deployRecordKey, deployWaitingKey } from "../state/redis-keys.ts";
import type { Logger } from "../log-context.ts";
import { SealedJson, type RedisMac } from "../state/redis-mac.ts";
import { LockTimeoutError, withRedisLock } from "../state/redis-lock.ts";
import type { WriteGuard } from "../github/pacing.ts";

const RECORD_TTL_SECONDS = 30 * 24 * 3600;
/**
 * How long a guarded write waits for its deploy's lock (outside its pacing lane's places, so the
 * holder's own writes go meanwhile): a holder applies a report or makes the deploy's objects,
 * which takes seconds; one that keeps it longer is writing the deploy's newer state.
 */
const GUARD_WAIT_MS = 30_000;

/** What a deploy looks like on GitHub: its check run, Deployment and where it came from. */
export const deployRecordSchema = z.strictObject({
  /** 0 until the check run is written: the job is queued first, and reports wait for it. */
  checkRunId: z.number().int().nonnegative(),
  deploymentId: z.number().int().nonnegative(),
  repository: repositoryRefSchema,
  installationId: z.number().int().positive(),
  environment: z.string(),
  sha: commitShaSchema,
  reason: deployReasonSchema,
  pullRequest: z.number().int().positive().optional(),
  /** The environment is in its branch's promotion pipeline: the merged pull request's pipeline comment shows a merge's outcome, which posts no comment of its own. */
  pipeline: z.boolean().optional(),
  /** What the job does to a hold: a rollback sets one, a sync or a revert's merge releases it. */
  hold: agentJobSchema.shape.hold,
  /** Set by the first final report; later reports (a replayed job's refusal) change nothing on GitHub. */
  completed: z.boolean().default(false),
  /** The Deployment's newest status written (or waiting for its turn): a report that would write the same again does not. */
  deploymentState: z.enum(DEPLOYMENT_STATES).optional(),
  /** The newest report applied: an older one, delivered late or twice, changes nothing. */
  reported: z
    .strictObject({ at: z.iso.datetime(), phase: agentReportSchema.shape.phase, applied: z.number().int().nonnegative() })
    .optional(),
  /** For an environment on several clusters: the rollout's waves and each cluster's newest report (the record's own `reported` stays unset). */
  rollout: rolloutSchema.optional(),
});
/** What a deploy looks like on GitHub. */
export type DeployRecord = z.infer<typeof deployRecordSchema>;

/**
 * Deploy records in Redis, by job id. Redis is not trusted: a record carries a MAC, so a Redis
 * writer cannot point an agent's (signed) report at another repository's check run or Deployment.
 */
export class DeployRecords {
  readonly #store: SealedJson;
  readonly #redis: RedisClient;
  readonly #log: Logger;

  constructor(redis: RedisClient, mac: RedisMac, log: Logger) {
    this.#store = new SealedJson(redis, mac);
    this.#redis = redis;
    this.#log = log;
  }

  /**
   * Runs `fn` holding the deploy's lock, which every replica's writes of its check run and
   * Deployment take: so a report never overtakes the writes that create what it updates, and two
   * replicas never apply reports of one deploy at once. Throws when the lock is not had in `waitMs`.
   */
  async exclusive<T>(jobId: string, waitMs: number, fn: () => Promise<T>): Promise<T> {
    return withRedisLock(this.#redis, `${deployRecordKey(jobId)}:lock`, { ttlMs: 30_000, waitMs, pollMs: 25 }, fn);
  }

  /**
   * A guard ({@link WriteGuard}) for a write of a deploy's state that is not its last (an
   * in-progress check run, a Deployment's first status), sent without waiting for its turn in this
   * replica's write pacing. Another replica may apply the deploy's next report meanwhile, and write
   * through its own pacing: so when the write's turn comes it goes out under the deploy's lock, and
   * only if `current` still holds for the record then. A write the deploy moved past (finished, or a
   * newer report applied) is not sent: what moved it wrote the newer state. A lock held past the
   * wait (30 s) is taken as a newer state being written, and the older one gives way too.
   */
  guard(jobId: string, current: (record: DeployRecord) => boolean): WriteGuard {
    return async (send) => {
      try {
        return await this.exclusive(jobId, GUARD_WAIT_MS, async () => {
          const record = await this.load(jobId);
          return record && current(record) ? send() : undefined;
        });
      } catch (error) {
        if (error instanceof LockTimeoutError) return undefined;
        throw error;
      }
    };
  }

  /**
   * Marks the wait now shown of a deploy that waits at an approval or a freeze (`token`, one per
   * showing). Kept beside the record rather than in it, so app replicas of the version before read
   * the record as they wrote it during a rolling upgrade.
   */
  async markWaiting(jobId: string, token: string): Promise<void> {
    await this.#redis.set(deployWaitingKey(jobId), token, "EX", RECORD_TTL_SECONDS);
  }

  /** The deploy waits no more (released, or ended): the states of its waits still on their way are turned down. */
  async clearWaiting(jobId: string): Promise<void> {
    await this.#redis.del(deployWaitingKey(jobId));
  }

  /**
   * A guard like {@link guard} for the states of the wait `token` shows: sent only while it is the
   * deploy's newest wait and the deploy is not finished. It reads without the deploy's lock, so its
   * sends never hold up the deploy's release, which takes the lock to queue the job; a state read as
   * current just before the release or an end may still reach GitHub after their first state.
   */
  whileWaiting(jobId: string, token: string): WriteGuard {
    return async (send) => {
      const [mark, record] = await Promise.all([this.#redis.get(deployWaitingKey(jobId)), this.load(jobId)]);
      return mark === token && record && !record.completed ? send() : undefined;
    };
  }

  /** The record of a deploy, or undefined when there is none or it does not verify. */
  async load(jobId: string): Promise<DeployRecord | undefined> {
    const key = deployRecordKey(jobId);
    const value = await this.#store.get(key);
    if (value === undefined) return undefined;
    const parsed = deployRecordSchema.safeParse(value);
    if (!parsed.success) {
      this.#log.warn({ job: jobId }, "deploy record that does not verify ignored");
      return undefined;
    }
    return parsed.data;
  }

  /** Saves a record; its MAC binds it to its job id, so one deploy's record never passes for another's. */
  async save(jobId: string, record: DeployRecord): Promise<void> {
    await this.#store.set(deployRecordKey(jobId), record, RECORD_TTL_SECONDS);
  }
}
