import { createHmac, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import { gunzip, gzip } from "node:zlib";
import type { RedisClient } from "../../redis/connection.ts";

const pack = promisify(gzip);
const unpack = promisify(gunzip);

/** The secrets the MACs of Redis records are keyed from. */
export interface RedisMacSecrets {
  /** Every new MAC is made with the key derived from this one. */
  current: string;
  /**
   * Secrets rotated out: MACs made with their keys still verify, so what was queued or stored
   * before a rotation is still read until the overlap ends.
   */
  previous?: readonly string[];
}

/** The MAC key derived from a secret: the secret itself never keys a MAC. */
function macKey(secret: string): Buffer {
  return createHmac("sha256", secret).update("sluice redis records v1").digest();
}

function macWith(key: Buffer, purpose: string, data: string | Uint8Array): string {
  return createHmac("sha256", key).update(purpose).update("\0").update(data).digest("base64url");
}

/**
 * Authenticates what the app keeps in Redis (queued requests, rendered environments, diff pages):
 * Redis is not trusted, so anything the app reads back from it must carry a MAC made with a key
 * that never enters Redis.
 */
export class RedisMac {
  readonly #key: Buffer;
  readonly #previousKeys: readonly Buffer[];
  readonly #mismatch: (() => void) | undefined;

  /**
   * Derives the keys from secrets the app holds: `SLUICE_REDIS_MAC_SECRET` (the webhook secret when
   * unset) and those rotated out. `mismatch` hears of every MAC that verifies under none of them.
   */
  constructor(secrets: string | RedisMacSecrets, mismatch?: () => void) {
    const { current, previous = [] } = typeof secrets === "string" ? { current: secrets } : secrets;
    this.#key = macKey(current);
    this.#previousKeys = previous.map(macKey);
    this.#mismatch = mismatch;
  }

  /** The MAC of `data` for `purpose` (a record made for one purpose never passes for another), always with the current key. */
  sign(purpose: string, data: string | Uint8Array): string {
    return macWith(this.#key, purpose, data);
  }

  /** Whether `mac` is the MAC of `data` for `purpose` under the current key or a previous one, compared in constant time. */
  verify(purpose: string, data: string | Uint8Array, mac: string): boolean {
    const given = Buffer.from(mac);
    const valid = [this.#key, ...this.#previousKeys].some((key) => {
      const expected = Buffer.from(macWith(key, purpose, data));
      return expected.length === given.length && timingSafeEqual(expected, given);
    });
    if (!valid) this.#mismatch?.();
    return valid;
  }

  /** `data` with its MAC in front: 43 ASCII characters, then the bytes. */
  seal(purpose: string, data: Uint8Array): Buffer {
    return Buffer.concat([Buffer.from(this.sign(purpose, data), "ascii"), data]);
  }

  /** The bytes of a sealed record, or undefined when its MAC does not verify. */
  open(purpose: string, sealed: Buffer): Buffer | undefined {
    if (sealed.length < 43) return undefined;
    const data = sealed.subarray(43);
    return this.verify(purpose, data, sealed.subarray(0, 43).toString("ascii")) ? data : undefined;
  }
}

/**
 * JSON kept in Redis under a MAC bound to its key, so a Redis writer can neither forge a value
 * nor move one to another key. Large values can be gzipped.
 */
export class SealedJson {
  readonly #redis: RedisClient;
  readonly #mac: RedisMac;

  constructor(redis: RedisClient, mac: RedisMac) {
    this.#redis = redis;
    this.#mac = mac;
  }

  async set(key: string, value: unknown, ttlSeconds: number, options: { gzip?: boolean } = {}): Promise<void> {
    const text = Buffer.from(JSON.stringify(value));
    const data = options.gzip ? await pack(text) : text;
    await this.#redis.set(key, this.#mac.seal(key, data), "EX", ttlSeconds);
  }

  /** The value, or undefined when there is none, it does not verify, or it is not JSON. */
  async get(key: string, options: { gzip?: boolean } = {}): Promise<unknown> {
    const sealed = await this.#redis.getBuffer(key);
    const data = sealed ? this.#mac.open(key, sealed) : undefined;
    if (!data) return undefined;
    try {
      return JSON.parse((options.gzip ? await unpack(data) : data).toString("utf8"));
    } catch {
      return undefined;
    }
  }
}
