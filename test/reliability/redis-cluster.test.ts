import { afterAll, beforeAll, expect } from "vitest";
import { servers } from "../../src/redis/connection.ts";
import { startRedisCluster, type RedisCluster } from "../env/redis.ts";
import { tempDir } from "../helpers/checkouts.ts";
import type { Stack } from "../helpers/e2e-stack.ts";
import { describeScaleOut } from "./scale-out.ts";

// The scale-out run on a real Redis Cluster: three redis-server masters on loopback, joined by
// redis-cli. Every queue's keys must sit in one slot (their prefixes are hash tags), and the
// state must really be spread over the masters.

let cluster: RedisCluster | undefined;

beforeAll(async () => {
  cluster = await startRedisCluster(await tempDir("sluice-redis-cluster-"));
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

/** Where the run's keys ended up: per master, and per hash tag group (BullMQ queues among them) the slots its keys are in. */
async function slots(stack: Stack): Promise<string[]> {
  const masters = servers(stack.redis);
  expect(masters, "the stack is not on the three-master cluster").toHaveLength(3);
  const perMaster: number[] = [];
  const groupSlots = new Map<string, Set<number>>();
  const queues = new Set<string>();
  for (const node of masters) {
    let count = 0;
    let cursor = "0";
    do {
      const [next, keys] = await node.scan(cursor, "COUNT", 1000);
      cursor = next;
      count += keys.length;
      for (const key of keys) {
        // BullMQ's keys are <prefix>:<queue>:<part> (a queue has a :meta key); Sluice's prefixes are hash tags.
        const group = /^(\{[^}]+\}):([^:]+):(.*)$/.exec(key);
        if (!group) continue;
        const id = `${group[1] ?? ""}:${group[2] ?? ""}`;
        if (group[3] === "meta") queues.add(id);
        const slot = Number(await node.call("CLUSTER", "KEYSLOT", key));
        groupSlots.set(id, (groupSlots.get(id) ?? new Set()).add(slot));
      }
    } while (cursor !== "0");
    perMaster.push(count);
  }
  for (const [group, found] of groupSlots) expect(found.size, `${group}'s keys are in slots ${[...found].join(", ")}`).toBe(1);
  // The app's preview and deploy request queues, the agents' report queue and the environment's deploy queue at least.
  expect(queues.size).toBeGreaterThanOrEqual(4);
  expect(perMaster.filter((n) => n > 0).length, `keys per master: ${perMaster.join(", ")}`).toBeGreaterThanOrEqual(2);
  return [
    `  Redis Cluster: ${perMaster.reduce((a, b) => a + b, 0)} keys over ${perMaster.length} masters (${perMaster.join(" / ")}); ${queues.size} queues, each in one slot: ${[...queues].sort().join(", ")}`,
  ];
}

describeScaleOut({
  redisName: "a Redis Cluster of three masters",
  database: 0,
  redisUrl: () => {
    if (!cluster) throw new Error("the Redis Cluster did not start");
    return cluster.url;
  },
  afterRun: slots,
});
