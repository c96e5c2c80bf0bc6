import type { RedisClient } from "../../redis/connection.ts";
import type { RedisMac } from "../state/redis-mac.ts";
import { fleetClustersKey } from "../state/redis-keys.ts";

/** How long a cluster stays known after its agent's last status: a cluster taken away leaves globs after this. */
const KNOWN_FOR_MS = 7 * 24 * 3600 * 1000;

/**
 * The clusters whose agents announced themselves for an environment, learned from their signed
 * statuses (each checked against its key's cluster binding): what an environment's cluster globs
 * (`eu-*`, `*`) match. One MAC'd field per cluster, so statuses of two clusters at once never
 * overwrite each other; a field whose MAC does not verify (written by someone else to Redis) is
 * not a cluster.
 */
export class FleetClusters {
  readonly #redis: RedisClient;
  readonly #mac: RedisMac;

  constructor(redis: RedisClient, mac: RedisMac) {
    this.#redis = redis;
    this.#mac = mac;
  }

  /** An agent of `cluster` sent a status for `environment` at `at` (ms). */
  async announced(environment: string, cluster: string, at: number): Promise<void> {
    const key = fleetClustersKey(environment);
    const value = String(at);
    await this.#redis.hset(key, cluster, `${value} ${this.#mac.sign(`${key}:${cluster}`, value)}`);
    await this.#redis.pexpire(key, KNOWN_FOR_MS);
  }

  /** The clusters of `environment` whose agents announced themselves in the last week, by `now`, sorted. */
  async known(environment: string, now: number): Promise<string[]> {
    const key = fleetClustersKey(environment);
    const all = await this.#redis.hgetall(key);
    const known: string[] = [];
    for (const [cluster, text] of Object.entries(all)) {
      const [value = "", mac = ""] = text.split(" ");
      if (!this.#mac.verify(`${key}:${cluster}`, value, mac)) continue;
      if (now - Number(value) <= KNOWN_FOR_MS) known.push(cluster);
    }
    return known.sort();
  }
}
