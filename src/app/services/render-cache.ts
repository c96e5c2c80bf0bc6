import { createHash } from "node:crypto";
import { promisify } from "node:util";
import { constants, gunzip, gzip } from "node:zlib";
import type { RedisClient } from "../../redis/connection.ts";
import type { SourceProblem } from "../../core/errors.ts";
import type { Resource } from "../../core/resource-set.ts";
import { RENDER_CACHE_PREFIX } from "../redis-keys.ts";
import type { RedisMac } from "./redis-mac.ts";

/** A cached render never decompresses past this. */
const MAX_RENDER_BYTES = 1024 * 1024 * 1024;

/** One environment rendered at one set of inputs. */
export interface CachedRender {
  resources: Resource[];
  problems: SourceProblem[];
  unknownScopes?: string[];
  notes?: string[];
  /** The environment's path does not exist at these inputs. */
  missing?: boolean;
}

/** Bounds of the render cache. */
export interface RenderCacheOptions {
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
 * Rendered environments in Redis, keyed by a digest of the environment's inputs and settings, so
 * every app replica reuses them: a second pull request on the same base renders only its head.
 */
export class RenderCache {
  readonly #redis: RedisClient;
  readonly #options: Required<RenderCacheOptions>;

  constructor(redis: RedisClient, options: RenderCacheOptions) {
    this.#redis = redis;
    this.#options = { prefix: RENDER_CACHE_PREFIX, ...options };
  }

  /** The cache key for inputs digested as `inputsDigest` rendered with `settings`. */
  static key(inputsDigest: string, settings: unknown): string {
    return createHash("sha256").update(inputsDigest).update("\0").update(JSON.stringify(settings)).digest("hex");
  }

  /** A cached render, refreshing its recency. */
  async get(key: string, now: number): Promise<CachedRender | undefined> {
    const sealed = await this.#redis.getBuffer(`${this.#options.prefix}:${key}`);
    const data = sealed ? this.#options.mac.open(`render:${key}`, sealed) : undefined;
    if (!data) return undefined;
    await this.#redis.zadd(this.#index(), now, key);
    try {
      return JSON.parse((await promisify(gunzip)(data, { maxOutputLength: MAX_RENDER_BYTES })).toString("utf8")) as CachedRender;
    } catch {
      return undefined;
    }
  }

  /** Stores a render unless it is too large; drops the least recently used entries past the bound. */
  async set(key: string, render: CachedRender, now: number): Promise<boolean> {
    // Fast compression off the main thread: rendered manifests compress well at any level.
    const data = await promisify(gzip)(JSON.stringify(render), { level: constants.Z_BEST_SPEED });
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
