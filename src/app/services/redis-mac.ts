import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Authenticates what the app keeps in Redis (queued requests, rendered environments, diff pages):
 * Redis is not trusted, so anything the app reads back from it must carry a MAC made with a key
 * that never enters Redis.
 */
export class RedisMac {
  readonly #key: Buffer;

  /** Derives the key from a secret the app holds (the webhook secret). */
  constructor(secret: string) {
    this.#key = createHmac("sha256", secret).update("sluice redis records v1").digest();
  }

  /** The MAC of `data` for `purpose` (a record made for one purpose never passes for another). */
  sign(purpose: string, data: string | Buffer): string {
    return createHmac("sha256", this.#key).update(purpose).update("\0").update(data).digest("base64url");
  }

  /** Whether `mac` is the MAC of `data` for `purpose`, compared in constant time. */
  verify(purpose: string, data: string | Buffer, mac: string): boolean {
    const expected = Buffer.from(this.sign(purpose, data));
    const given = Buffer.from(mac);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  /** `data` with its MAC in front: 43 ASCII characters, then the bytes. */
  seal(purpose: string, data: Buffer): Buffer {
    return Buffer.concat([Buffer.from(this.sign(purpose, data), "ascii"), data]);
  }

  /** The bytes of a sealed record, or undefined when its MAC does not verify. */
  open(purpose: string, sealed: Buffer): Buffer | undefined {
    if (sealed.length < 43) return undefined;
    const data = sealed.subarray(43);
    return this.verify(purpose, data, sealed.subarray(0, 43).toString("ascii")) ? data : undefined;
  }
}
