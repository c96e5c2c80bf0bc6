import { randomUUID } from "node:crypto";
import type { RedisClient } from "../../redis/connection.ts";

/** How a lock is held: its expiry (renewed while held), and how long and how often to try for it. */
export interface LockTiming {
  ttlMs: number;
  waitMs: number;
  pollMs: number;
}

/** Deletes the lock only if it is still ours. */
const RELEASE = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`;
/** Extends the lock only if it is still ours. */
const RENEW = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) end return 0`;

/** The lock was not had within the wait: another holder kept it. */
export class LockTimeoutError extends Error {
  constructor(key: string, waitMs: number) {
    super(`${key} stayed locked for ${String(waitMs)} ms`);
    this.name = "LockTimeoutError";
  }
}

/**
 * Runs `fn` holding a lock shared by every replica. The lock expires `ttlMs` after its holder
 * dies; while `fn` runs it is renewed every third of that, so a slow holder (GitHub writes paced a
 * second apart) keeps it. Throws, naming the lock, when it cannot be had within `waitMs`.
 */
export async function withRedisLock<T>(redis: RedisClient, key: string, timing: LockTiming, fn: () => Promise<T>): Promise<T> {
  const token = randomUUID();
  const deadline = performance.now() + timing.waitMs;
  while ((await redis.set(key, token, "PX", timing.ttlMs, "NX")) !== "OK") {
    if (performance.now() > deadline) throw new LockTimeoutError(key, timing.waitMs);
    await new Promise((resolve) => setTimeout(resolve, timing.pollMs));
  }
  const renew = setInterval(() => {
    redis.eval(RENEW, 1, key, token, String(timing.ttlMs)).catch(() => undefined);
  }, timing.ttlMs / 3);
  try {
    return await fn();
  } finally {
    clearInterval(renew);
    await redis.eval(RELEASE, 1, key, token);
  }
}
