import { createHash } from "node:crypto";
import type { RedisClient } from "../../redis/connection.ts";
import { RENDER_CACHE_PREFIX } from "../state/redis-keys.ts";
import type { RedisMac } from "../state/redis-mac.ts";

/** Bounds of the render cache. */
export interface RenderEntryStoreOptions {
  ttlSeconds: number;
  /** Renders larger than this (compressed) are not cached. */
  maxEntryBytes: number;
  /** Least-recently-used entries are dropped past this count. */
  maxEntries: number;
  prefix?: string;
  /** Authenticates entries: RedisClient is not trusted, and a forged render would hide changes from reviewers. */
  mac: RedisMac;
}

/**
 * The render cache: render cache entries (rendered environments, `encodeRenderEntry`) in Redis,
 * keyed by a digest of the environment's inputs and settings, so every app replica reuses them:
 * a second pull request on the same base renders only its head.
 */
export class RenderEntryStore {
  readonly #redis: RedisClient;
  readonly #options: Required<RenderEntryStoreOptions>;

  constructor(redis: RedisClient, options: RenderEntryStoreOptions) {
    this.#redis = redis;
    this.#options = { prefix: RENDER_CACHE_PREFIX, ...options };
  }

  /** The cache key for inputs digested as `inputsDigest` rendered with `settings`. */
  static key(inputsDigest: string, settings: unknown): string {
    return createHash("sha256").update(inputsDigest).update("\0").update(JSON.stringify(settings)).digest("hex");
  }

  /**
   * A render cache entry's verified bytes, refreshing its recency: `decodeRenderEntry` reads
   * them, here or in a render process.
   */
  async fetch(key: string, now: number): Promise<Buffer | undefined> {
    const sealed = await this.#redis.getBuffer(`${this.#options.prefix}:${key}`);
    const data = sealed ? this.#options.mac.open(`render:${key}`, sealed) : undefined;
    if (!data) return undefined;
    await this.#redis.zadd(this.#index(), now, key);
    return data;
  }

  /**
   * Stores a render, given as its entry (`encodeRenderEntry`, made in a render process), unless it is
   * too large; drops the least recently used entries past the bound.
   */
  async set(key: string, data: Uint8Array, now: number): Promise<boolean> {
    if (data.length > this.#options.maxEntryBytes) return false;
    await this.#redis.set(`${this.#options.prefix}:${key}`, this.#options.mac.seal(`render:${key}`, data), "EX", this.#options.ttlSeconds);
    await this.#redis.zadd(this.#index(), now, key);
    const excess = (await this.#redis.zcard(this.#index())) - this.#options.maxEntries;
    if (excess > 0) {
      const evicted = await this.#redis.zpopmin(this.#index(), excess);
      for (let i = 0; i < evicted.length; i += 2) await this.#redis.del(`${this.#options.prefix}:${evicted[i] ?? ""}`);
    }
    return true;
  }

  #index(): string {
    return `${this.#options.prefix}:index`;
  }
}
