import { z } from "zod";
import type { RedisClient } from "../../redis/connection.ts";
import { deployRequestSchema } from "../../core/deploy-requests.ts";
import { commitShaSchema } from "../../core/git-ref.ts";
import {
  environmentEventSchema,
  kept,
  KEPT_FACTS,
  lineCommitSchema,
  type EnvironmentEvent,
  type LineCommit,
} from "../../core/promotion.ts";
import { gateKey, lineKey } from "../state/redis-keys.ts";
import { SealedJson, type RedisMac } from "../state/redis-mac.ts";
import { withRedisLock } from "../state/redis-lock.ts";

const TTL_SECONDS = 365 * 24 * 3600;
const at = z.number().int().nonnegative();

/** A deploy that waits for approval or for a freeze to end: what runs it again, and who approved it. */
export const pendingDeploySchema = z.strictObject({
  jobId: z.string().min(1),
  request: deployRequestSchema,
  /** When it started to wait (its approval timeout counts from here). */
  since: at,
  approvals: z.array(z.strictObject({ login: z.string().min(1), at })).default([]),
  /** The pull request's author and who merged it, when there is one: four eyes refuses their approvals. */
  author: z.string().optional(),
  merger: z.string().optional(),
  /** A `/sync --override-freeze`: applies through a freeze, recorded with who and why. */
  override: z.strictObject({ by: z.string().min(1), reason: z.string(), at }).optional(),
  /**
   * The commits of the waiting deploys this one replaced (newest wins), with who merged them: it
   * brings their changes too, so four eyes refuses their authors' and mergers' approvals as well.
   */
  brings: z.array(z.strictObject({ sha: commitShaSchema, merger: z.string().optional() })).default([]),
});
/** A deploy that waits for approval or for a freeze to end. */
export type PendingDeploy = z.infer<typeof pendingDeploySchema>;

/** The check run of a commit that waits for its promotion, and the title it shows. */
const waitingCheckSchema = z.strictObject({ sha: commitShaSchema, checkRunId: z.number().int().positive(), title: z.string() });
/** The check run of a commit that waits for its promotion. */
export type WaitingCheck = z.infer<typeof waitingCheckSchema>;

const gateSchema = z.strictObject({
  /** This environment's deploy outcomes and drift checks: its downstream environments' soaks read them. */
  events: z.array(environmentEventSchema).default([]),
  /** `/promote`s of this environment. */
  promotions: z.array(environmentEventSchema).default([]),
  /** The newest commit this environment was asked to deploy. */
  requested: z.strictObject({ sha: commitShaSchema, at }).optional(),
  pending: pendingDeploySchema.optional(),
  /** Another environment is promoted from this one: its outcomes start promotion checks. */
  feeds: z.boolean().default(false),
  /** Commits waiting for their promotion to this environment, each with its deploy check run. */
  waiting: z.array(waitingCheckSchema).default([]),
});
/** What promotion, approvals and freezes keep of a repository environment. */
export type Gate = z.infer<typeof gateSchema>;

const EMPTY: Gate = { events: [], promotions: [], waiting: [], feeds: false };

/**
 * Gates and lines in Redis, sealed: a Redis writer cannot invent an approval, a deploy outcome
 * that soaks a commit, or a waiting deploy. Changes take a short lock per key, since reports,
 * pushes and commands of one environment arrive on several replicas at once.
 */
export class GateStates {
  readonly #redis: RedisClient;
  readonly #store: SealedJson;

  constructor(redis: RedisClient, mac: RedisMac) {
    this.#redis = redis;
    this.#store = new SealedJson(redis, mac);
  }

  async load(repositoryId: number, environment: string): Promise<Gate> {
    const parsed = gateSchema.safeParse(await this.#store.get(gateKey(repositoryId, environment)));
    return parsed.success ? parsed.data : { ...EMPTY };
  }

  /** Changes an environment's gate under its lock; `change` returns the new gate and a result. */
  async update<T>(repositoryId: number, environment: string, change: (gate: Gate) => [Gate, T]): Promise<T> {
    const key = gateKey(repositoryId, environment);
    return this.#locked(key, async () => {
      const [next, result] = change(await this.load(repositoryId, environment));
      const trimmed: Gate = {
        ...next,
        events: next.events.slice(-KEPT_FACTS),
        promotions: next.promotions.slice(-KEPT_FACTS),
        waiting: next.waiting.slice(-KEPT_FACTS),
      };
      await this.#store.set(key, trimmed, TTL_SECONDS);
      return result;
    });
  }

  /**
   * Adds an event to an environment's outcomes; returns whether another environment is promoted
   * from it (`feeds`) and whether it is promoted itself (promotion asked it for a commit).
   */
  async record(repositoryId: number, environment: string, event: EnvironmentEvent): Promise<{ feeds: boolean; promoted: boolean }> {
    return this.update(repositoryId, environment, (gate) => [
      { ...gate, events: kept(gate.events, event) },
      { feeds: gate.feeds, promoted: gate.requested !== undefined },
    ]);
  }

  async line(repositoryId: number, branch: string): Promise<LineCommit[]> {
    const parsed = z.array(lineCommitSchema).safeParse(await this.#store.get(lineKey(repositoryId, branch)));
    return parsed.success ? parsed.data : [];
  }

  /** Adds a pushed commit to its branch's line (once: a redelivered push changes nothing); false when it was there. */
  async push(repositoryId: number, branch: string, commit: LineCommit): Promise<boolean> {
    const key = lineKey(repositoryId, branch);
    return this.#locked(key, async () => {
      const line = await this.line(repositoryId, branch);
      if (line.some((c) => c.sha === commit.sha)) return false;
      await this.#store.set(key, kept(line, commit), TTL_SECONDS);
      return true;
    });
  }

  #locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return withRedisLock(this.#redis, `${key}:lock`, { ttlMs: 10_000, waitMs: 10_000, pollMs: 20 }, fn);
  }
}
