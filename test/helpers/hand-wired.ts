import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, expect, inject } from "vitest";
import { FakeGitHub } from "./fake-github.ts";

/** A fake GitHub and one Redis database of the test environment, for app parts a test wires by hand. */
export interface HandWired {
  github: FakeGitHub;
  redis: Redis;
}

/**
 * Starts a fake GitHub and opens Redis database `database` (emptied) before a file's tests; after
 * each test, no request sent may have broken GitHub's description; after them all, the database is
 * emptied and both are closed. The fields are set once the file's `beforeAll` ran.
 */
export function handWired(database: number): HandWired {
  const wired = {} as HandWired;
  beforeAll(async () => {
    wired.github = await new FakeGitHub().start();
    const url = new URL(inject("redisUrl"));
    url.pathname = `/${String(database)}`;
    wired.redis = new Redis(url.toString(), { maxRetriesPerRequest: null });
    await wired.redis.flushdb();
  });
  afterAll(async () => {
    await wired.redis.flushdb();
    await wired.redis.quit();
    await wired.github.stop();
  });
  afterEach(() => {
    expect(wired.github.violations).toEqual([]);
  });
  return wired;
}
