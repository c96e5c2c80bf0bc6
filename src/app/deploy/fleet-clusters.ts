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

  /**
   * An agent of `cluster` sent a status for `environment` at `at` (ms, the status's own time, at
   * most the app's: a status replayed from Redis keeps a cluster known no longer than it was). A
   * key bound to some repositories announces the cluster for those alone (`repositories`), so one
   * team's agent never joins another team's fleet.
   */
  async announced(environment: string, cluster: string, at: number, repositories?: readonly number[]): Promise<void> {
    const key = fleetClustersKey(environment);
    const value = `${Math.round(at)} ${repositories ? repositories.join(",") : "*"}`;
    await this.#redis.hset(key, cluster, `${value} ${this.#mac.sign(`${key}:${cluster}`, value)}`);
    await this.#redis.pexpire(key, KNOWN_FOR_MS);
  }

  /** The clusters of `environment` announced for `repositoryId` in the week before `now`, sorted. */
  async known(environment: string, now: number, repositoryId: number): Promise<string[]> {
    const key = fleetClustersKey(environment);
    const all = await this.#redis.hgetall(key);
    const known: string[] = [];
    for (const [cluster, text] of Object.entries(all)) {
      const [at = "", repositories = "", mac = ""] = text.split(" ");
      if (!this.#mac.verify(`${key}:${cluster}`, `${at} ${repositories}`, mac)) continue;
      const forRepository = repositories === "*" || repositories.split(",").includes(String(repositoryId));
      if (forRepository && now - Number(at) <= KNOWN_FOR_MS) known.push(cluster);
    }
    return known.sort();
  }
}
