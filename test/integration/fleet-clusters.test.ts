import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { FleetClusters } from "../../src/app/deploy/fleet-clusters.ts";
import { RedisMac } from "../../src/app/state/redis-mac.ts";

// The clusters an environment's globs match, learned from agents' signed statuses (Redis is not trusted).

const DAY = 24 * 3600 * 1000;
const NOW = Date.parse("2026-12-04T12:00:00Z");
let redis: Redis;
let clusters: FleetClusters;

beforeAll(async () => {
  const url = new URL(inject("redisUrl"));
  url.pathname = "/23";
  redis = new Redis(url.toString(), { maxRetriesPerRequest: 1 });
  await redis.flushdb();
  clusters = new FleetClusters(redis, new RedisMac("fleet-clusters-test-secret"));
});

afterAll(async () => {
  await redis.flushdb();
  await redis.quit();
});

describe("the clusters agents announced", () => {
  it("counts a cluster announced by a key bound to some repositories for those repositories alone", async () => {
    await clusters.announced("production", "eu-1", NOW);
    // Another team's agent, its key bound to repository 222: it does not join repository 111's fleet.
    await clusters.announced("production", "eu-9", NOW, [222, 333]);
    expect(await clusters.known("production", NOW, 111)).toEqual(["eu-1"]);
    expect(await clusters.known("production", NOW, 222)).toEqual(["eu-1", "eu-9"]);
  });

  it("forgets a cluster a week after the status that announced it, however late that status is replayed", async () => {
    await clusters.announced("staging", "old-1", NOW - 8 * DAY);
    await clusters.announced("staging", "new-1", NOW - DAY);
    expect(await clusters.known("staging", NOW, 111)).toEqual(["new-1"]);
  });

  it("takes nothing written to Redis by someone else for a cluster", async () => {
    await redis.hset("sluice:fleet-clusters:qa", "forged-1", `${NOW} * 0000`);
    await redis.hset("sluice:fleet-clusters:qa", "forged-2", "garbage");
    await clusters.announced("qa", "real-1", NOW, [111]);
    const [, , mac] = ((await redis.hget("sluice:fleet-clusters:qa", "real-1")) ?? "").split(" ");
    // A real MAC moved to another cluster, or to other repositories, does not verify either.
    await redis.hset("sluice:fleet-clusters:qa", "moved-1", `${NOW} 111 ${mac ?? ""}`);
    await redis.hset("sluice:fleet-clusters:qa", "real-1", `${NOW} * ${mac ?? ""}`);
    expect(await clusters.known("qa", NOW, 111)).toEqual([]);
  });
});
