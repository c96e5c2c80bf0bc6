import type { RedisClient } from "../../redis/connection.ts";
import { pullRequestKeys } from "./redis-keys.ts";
import { withRedisLock } from "./redis-lock.ts";

/** Identifies a pull request across repositories. */
export interface PullRef {
  repositoryId: number;
  number: number;
}

const keys = (pr: PullRef) => pullRequestKeys(pr.repositoryId, pr.number);

const RAISE_POSTED = `
local posted = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) < posted then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1`;
const STATE_TTL = 90 * 24 * 3600;

// Takes a window that starts at ARGV[1] (ms) unless the last one, started at the key's value, is
// younger than ARGV[2] ms. The key's TTL (ARGV[3]) only cleans up: the caller's clock decides.
const TAKE_WINDOW = `
local last = tonumber(redis.call('GET', KEYS[1]) or '')
if last and tonumber(ARGV[1]) < last + tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1`;

/**
 * Orders the previews of one pull request: every push or `/diff` takes the next sequence number,
 * and a preview is published only while holding the pull request's lock and only if nothing newer
 * was published, so a slow render of an old head never overwrites a newer one.
 */
export class PullRequestState {
  readonly #redis: RedisClient;

  constructor(redis: RedisClient) {
    this.#redis = redis;
  }

  /** Takes the next sequence number for a pull request's preview. */
  async next(pr: PullRef): Promise<number> {
    const k = keys(pr);
    const seq = await this.#redis.incr(k.seq);
    await this.#redis.expire(k.seq, STATE_TTL);
    return seq;
  }

  /**
   * Takes the next sequence number and runs `start` with it (creating the preview's check run)
   * under a lock of its own: check runs are then created in sequence order, so the newest run of
   * the head, the one branch protection reads, is always the newest preview's, never an older
   * one's that completes as superseded.
   */
  async start<T>(pr: PullRef, start: (seq: number) => Promise<T>): Promise<T> {
    return withRedisLock(this.#redis, keys(pr).starting, { ttlMs: 30_000, waitMs: 120_000, pollMs: 50 }, async () =>
      start(await this.next(pr)),
    );
  }

  /** Whether a `/diff` may run now: at most one a minute per pull request. */
  async allowDiff(pr: PullRef, windowSeconds = 60): Promise<boolean> {
    return (await this.#redis.set(keys(pr).diff, "1", "EX", windowSeconds, "NX")) === "OK";
  }

  /**
   * Whether an invalid command may be answered at `now` (the app's clock, in ms): one answer a
   * minute per pull request, so ten bad comments do not make ten bot comments.
   */
  async allowInvalidReply(pr: PullRef, now: number, windowMs = 60_000): Promise<boolean> {
    return (await this.#redis.eval(TAKE_WINDOW, 1, keys(pr).invalid, String(now), String(windowMs), String(windowMs * 60))) === 1;
  }

  /** Whether `seq` is still the newest preview of the pull request. */
  async isLatest(pr: PullRef, seq: number): Promise<boolean> {
    return Number((await this.#redis.get(keys(pr).seq)) ?? "0") <= seq;
  }

  /**
   * Runs `publish` under the pull request's lock, unless a preview newer than `seq` was already
   * published. Returns whether it ran.
   */
  async publish(pr: PullRef, seq: number, publish: () => Promise<void>, options: { timeoutMs?: number } = {}): Promise<boolean> {
    const k = keys(pr);
    const timeoutMs = options.timeoutMs ?? 120_000;
    return withRedisLock(this.#redis, k.lock, { ttlMs: 30_000, waitMs: timeoutMs, pollMs: 100 }, async () => {
      if ((await this.#redis.eval(RAISE_POSTED, 1, k.posted, String(seq), String(STATE_TTL))) !== 1) return false;
      await publish();
      return true;
    });
  }
}
