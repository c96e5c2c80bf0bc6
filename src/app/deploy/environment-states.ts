import type { RedisClient } from "../../redis/connection.ts";
import { z } from "zod";
import { agentReportSchema, type History } from "../../core/agent-protocol.ts";
import { holdSchema, type Hold } from "../../core/inventory.ts";
import { environmentStateKey } from "../state/redis-keys.ts";
import { SealedJson, type RedisMac } from "../state/redis-mac.ts";
import { withRedisLock } from "../state/redis-lock.ts";

const STATE_TTL_SECONDS = 365 * 24 * 3600;

const stateSchema = z.strictObject({
  /** The history from the agent's newest final report, and that report's time. */
  history: agentReportSchema.shape.history,
  historyAt: z.iso.datetime().optional(),
  /** The hold as the app last knew it: set by a rollback at once, then mirrored from the agent's record. */
  hold: holdSchema.optional(),
  /** Revert pull requests opened by rollbacks of this environment: merging one releases the hold. */
  revertPulls: z.array(z.number().int().positive()).default([]),
  /** Deploy jobs the agent held; their check runs are closed when the hold is released. */
  held: z.array(z.string()).default([]),
});
/** What the app keeps of an environment. */
export type EnvironmentState = z.infer<typeof stateSchema>;

/** At most this many held jobs and revert pull requests are remembered per environment. */
const KEPT = 50;

/**
 * What the app keeps per repository environment for `/rollback` and holds, sealed in Redis: a
 * Redis writer cannot change the history rollbacks choose from, invent a hold's revert pull
 * request, or point a release at another deploy. Updates take a short lock, since commands and
 * reports change the same state.
 */
export class EnvironmentStates {
  readonly #redis: RedisClient;
  readonly #store: SealedJson;

  constructor(redis: RedisClient, mac: RedisMac) {
    this.#redis = redis;
    this.#store = new SealedJson(redis, mac);
  }

  /** The state, empty when there is none or it does not verify. */
  async load(repositoryId: number, environment: string): Promise<EnvironmentState> {
    const parsed = stateSchema.safeParse(await this.#store.get(environmentStateKey(repositoryId, environment)));
    return parsed.success ? parsed.data : { revertPulls: [], held: [] };
  }

  /** Changes the state under the lock; `change` returns the new state. */
  async update<T>(repositoryId: number, environment: string, change: (state: EnvironmentState) => [EnvironmentState, T]): Promise<T> {
    const key = environmentStateKey(repositoryId, environment);
    return withRedisLock(this.#redis, `${key}:lock`, { ttlMs: 10_000, waitMs: 10_000, pollMs: 20 }, async () => {
      const [next, result] = change(await this.load(repositoryId, environment));
      await this.#store.set(key, { ...next, revertPulls: next.revertPulls.slice(-KEPT), held: next.held.slice(-KEPT) }, STATE_TTL_SECONDS);
      return result;
    });
  }

  /** A rollback was queued: the environment is held, and merging its revert pull request (if one was opened) releases it. */
  async held(repositoryId: number, environment: string, hold: Hold, revertPull?: number): Promise<void> {
    await this.update(repositoryId, environment, (state) => [
      {
        ...state,
        hold,
        revertPulls: revertPull && !state.revertPulls.includes(revertPull) ? [...state.revertPulls, revertPull] : state.revertPulls,
      },
      undefined,
    ]);
  }

  /** The agent held a deploy job. */
  async heldJob(repositoryId: number, environment: string, jobId: string): Promise<void> {
    await this.update(repositoryId, environment, (state) => [
      { ...state, held: state.held.includes(jobId) ? state.held : [...state.held, jobId] },
      undefined,
    ]);
  }

  /**
   * A final report's history from the agent's record: kept when it is the newest, and its hold
   * mirrored. When a deploy that releases holds succeeded and the record has none, the hold is
   * gone: returns the jobs it held, whose check runs are closed.
   */
  async observe(repositoryId: number, environment: string, report: { history: History; at: string; released: boolean }): Promise<string[]> {
    return this.update(repositoryId, environment, (state) => {
      const newer = !state.historyAt || Date.parse(report.at) >= Date.parse(state.historyAt);
      const next: EnvironmentState = newer ? { ...state, history: report.history, historyAt: report.at } : { ...state };
      if (report.history.hold) return [{ ...next, hold: report.history.hold }, []];
      if (!report.released) return [next, []];
      const released: EnvironmentState = { ...next, revertPulls: [], held: [] };
      delete released.hold;
      return [released, state.held];
    });
  }
}
